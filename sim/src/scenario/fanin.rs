//! Fan-in: hundreds of PUSH connections (200-300, from 2-5 hosts) into one slow PULL, no
//! faults. The PULL takes a few messages per millisecond; every PUSH offers four times its fair
//! share (blocking sends), with SNDHWM = RCVHWM = 4, so every inbound pipe fills, its stream
//! pauses on back-pressure and resumes when the reader makes room. Invariants:
//! - message flow per PUSH: everything it sent arrives, once, in order (nothing is lost: no
//!   connection ends);
//! - no stream starves the others: once every connection is up, every PUSH gets at least
//!   one message through in every window of PROGRESS_ROUNDS fair-queue rounds (the mean
//!   interval between one connection's deliveries) while producing, and over the run none
//!   gets less than a quarter of the mean (the PULL's fair queue over paused and resumed
//!   streams);
//! - every connection is up within CONNECTED_BY, and stays up;
//! - the run did exercise back-pressure: when production stops, every PUSH has more queued
//!   than both pipes can hold.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use zeroring::SocketType;

use super::{Harness, Ledger, Outcome, SimOptions};
use crate::record::Record;
use crate::rng::SimRng;
use crate::socket::{SimSocket, SocketOptions};
use crate::trace::{sim_now, Trace};

const PORT: u16 = 5555;
const HWM: usize = 4;
const CONNECTED_BY: Duration = Duration::from_millis(500);
const PRODUCE_UNTIL: Duration = Duration::from_millis(600);
const END: Duration = Duration::from_millis(1500);
/// Every PUSH gets a message through in every window of this many fair-queue rounds while
/// producing.
const PROGRESS_ROUNDS: u32 = 4;

/// One PUSH socket's name: `c<host>.<socket>`.
fn sender(host: usize, socket: usize) -> String {
    format!("c{host}.{socket}")
}

fn message(seq: u64, size: usize) -> Vec<Bytes> {
    let mut body = vec![0u8; size.max(8)];
    body[..8].copy_from_slice(&seq.to_be_bytes());
    vec![Bytes::from(body)]
}

/// A client host: `sockets` PUSH sockets, each with its own connection to the PULL, each
/// offering a message every `gap` (blocking when its pipe is full).
async fn clients(
    host: usize,
    sockets: usize,
    size: usize,
    gap: Duration,
    trace: Trace,
    records: Vec<Record>,
    ledger: Ledger,
) -> turmoil::Result {
    let opts = SocketOptions {
        sndhwm: HWM,
        rcvhwm: HWM,
        ..Default::default()
    };
    let mut tasks = Vec::new();
    for (i, record) in records.into_iter().enumerate().take(sockets) {
        let name = sender(host, i);
        let sock = SimSocket::new(&name, SocketType::Push, opts.clone(), trace.clone(), record);
        let ledger = ledger.clone();
        tasks.push(tokio::task::spawn_local(async move {
            // One connect per millisecond per host: turmoil's listener panics when more
            // SYNs than its socket buffer (64) arrive before it accepts.
            tokio::time::sleep(Duration::from_millis(i as u64)).await;
            sock.connect("pull", PORT);
            while sim_now() < PRODUCE_UNTIL {
                tokio::time::sleep(gap).await;
                let seq = ledger.next_seq();
                let left = PRODUCE_UNTIL.saturating_sub(sim_now());
                match tokio::time::timeout(left, sock.send_wait(message(seq, size))).await {
                    Ok(Ok(())) => ledger.sent(seq, &name),
                    _ => break,
                }
            }
            std::future::pending::<()>().await;
        }));
    }
    std::future::pending::<()>().await;
    Ok(())
}

/// The PULL: takes `batch` messages, then sleeps 1 ms; drains fast once production stops.
async fn reader(batch: u64, trace: Trace, record: Record, ledger: Ledger) -> turmoil::Result {
    let opts = SocketOptions {
        sndhwm: HWM,
        rcvhwm: HWM,
        ..Default::default()
    };
    let sock = SimSocket::new("pull", SocketType::Pull, opts, trace.clone(), record);
    sock.bind(PORT).await?;
    loop {
        // Slow while the PUSHes produce; then drain as fast as the socket delivers.
        let batch = if sim_now() < PRODUCE_UNTIL {
            batch
        } else {
            1000
        };
        for _ in 0..batch {
            let msg = sock.recv().await;
            let seq = msg
                .first()
                .and_then(|b| b.get(..8))
                .map(|b| u64::from_be_bytes(b.try_into().unwrap_or_default()));
            match seq {
                // The ledger files arrivals under the receiver; the flow check filters them
                // by sender.
                Some(seq) => ledger.received(&trace, "pull", seq),
                None => trace.violation("pull", "a message without a sequence number"),
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub(crate) fn run(seed: u64, _opts: &SimOptions) -> Outcome {
    let mut rng = SimRng::new(seed, 0xfa41);
    let hosts = rng.range(2, 6) as usize;
    let connections = rng.range(200, 301) as usize;
    let size = [16usize, 256, 2048][rng.range(0, 3) as usize];
    let batch = rng.range(3, 9);
    // Each PUSH offers four times its fair share of what the reader takes: every inbound pipe
    // fills and its stream pauses, while the backlog stays small enough to drain by END.
    let gap = Duration::from_millis((connections as u64 / (4 * batch)).max(1));
    let mut h = Harness::new(seed, 1, 1 + seed % 5, |_| {});
    let trace = h.trace.clone();
    let ledger = Ledger::default();
    let pull_rec = Record::new("pull");
    {
        let (t, r, l) = (trace.clone(), pull_rec.clone(), ledger.clone());
        h.sim.host("pull", move || {
            reader(batch, t.clone(), r.clone(), l.clone())
        });
    }
    // Socket i of host k: connections spread evenly over the hosts.
    let mut senders: Vec<(String, Record)> = Vec::new();
    for k in 0..hosts {
        let n = connections / hosts + usize::from(k < connections % hosts);
        let records: Vec<Record> = (0..n).map(|i| Record::new(&sender(k, i))).collect();
        senders.extend((0..n).map(|i| (sender(k, i), records[i].clone())));
        let (t, l) = (trace.clone(), ledger.clone());
        h.sim.host(format!("c{k}"), move || {
            clients(k, n, size, gap, t.clone(), records.clone(), l.clone())
        });
    }
    h.note(format_args!(
        "{connections} PUSH connections from {hosts} hosts, {size}-byte messages; the PULL takes {batch} per ms, RCVHWM = SNDHWM = {HWM}"
    ));
    h.run_until(END, |_| {});
    let end = h.now();

    // Everyone connected in time.
    let mut all_up = Duration::ZERO;
    for (name, rec) in &senders {
        match rec.with(|r| r.connections.values().filter_map(|c| c.ready_at).min()) {
            Some(t) if t <= CONNECTED_BY => all_up = all_up.max(t),
            Some(t) => trace.violation_at(
                t,
                name,
                format_args!("connected at {t:?}, later than {CONNECTED_BY:?}"),
            ),
            None => trace.violation_at(end, name, "never connected"),
        }
        if rec.with(|r| r.connections.len()) != 1 {
            trace.violation_at(end, name, "more than one connection with no fault");
        }
    }
    // Flow, per PUSH: with no disconnect, nothing may be lost.
    let mut counts: Vec<(usize, &str)> = Vec::new();
    let mut arrivals: Vec<Vec<Duration>> = Vec::new();
    let mut lost_total = 0;
    for (name, _) in &senders {
        let flow = ledger.check_flow(
            &trace,
            end,
            name,
            "pull",
            |_| true,
            &[],
            &[],
            Duration::ZERO,
            0,
        );
        lost_total += flow.lost;
        // Arrivals while producing: the fairness measure.
        let produced = ledger.with(|l| {
            let arrivals = l.received.get("pull").map(Vec::as_slice).unwrap_or(&[]);
            arrivals
                .iter()
                .filter(|(s, t)| {
                    *t >= all_up
                        && *t < PRODUCE_UNTIL
                        && l.sent.get(s).is_some_and(|(h, _)| h == name)
                })
                .map(|(_, t)| *t)
                .collect::<Vec<_>>()
        });
        counts.push((produced.len(), name));
        arrivals.push(produced);
    }
    // Progress: with every pipe backlogged, a fair queue serves each connection once per
    // round of all of them; no connection may go PROGRESS_ROUNDS rounds (the mean interval
    // between its deliveries, measured over the run) without a message through.
    let total: usize = counts.iter().map(|c| c.0).sum();
    let producing = PRODUCE_UNTIL.saturating_sub(all_up);
    let round = producing.mul_f64(counts.len() as f64 / total.max(1) as f64);
    let window = (round * PROGRESS_ROUNDS).max(Duration::from_millis(20));
    for ((_, name), produced) in counts.iter().zip(&arrivals) {
        let mut from = all_up;
        while from + window <= PRODUCE_UNTIL {
            let to = from + window;
            if !produced.iter().any(|t| *t >= from && *t < to) {
                trace.violation_at(
                    to,
                    name,
                    format_args!(
                        "no message from {name} got through in {from:?}..{to:?} ({PROGRESS_ROUNDS} rounds of the fair queue): starved"
                    ),
                );
                break;
            }
            from = to;
        }
    }
    // The scenario exercises back-pressure: when production stops, every PUSH has more
    // queued than both pipes hold, so the PULL's inbound pipe was full and its stream paused.
    let backlogs: Vec<usize> = ledger.with(|l| {
        let arrived: BTreeSet<u64> = l
            .received
            .get("pull")
            .map(|v| {
                v.iter()
                    .filter(|(_, t)| *t < PRODUCE_UNTIL)
                    .map(|(s, _)| *s)
                    .collect()
            })
            .unwrap_or_default();
        senders
            .iter()
            .map(|(name, _)| {
                l.sent
                    .iter()
                    .filter(|(s, (h, _))| h == name && !arrived.contains(s))
                    .count()
            })
            .collect()
    });
    let min_backlog = backlogs.iter().copied().min().unwrap_or(0);
    if min_backlog <= 2 * HWM {
        trace.violation_at(
            PRODUCE_UNTIL,
            "sim",
            format_args!("a PUSH had only {min_backlog} messages queued: the pipes never filled (scenario too gentle)"),
        );
    }
    let mean = total as f64 / counts.len().max(1) as f64;
    let (min, min_name) = counts.iter().min().copied().unwrap_or((0, ""));
    let (max, _) = counts.iter().max().copied().unwrap_or((0, ""));
    if (min as f64) < mean / 4.0 {
        trace.violation_at(
            PRODUCE_UNTIL,
            min_name,
            format_args!(
                "{min_name} got {min} messages through while producing, under a quarter of the mean {mean:.1}: unfair"
            ),
        );
    }
    let sent = ledger.with(|l| l.sent.len());
    let summary = vec![
        format!("{connections} connections from {hosts} hosts, {size}-byte messages, reader {batch}/ms; all up at {all_up:?}; progress window {window:?}"),
        format!("messages sent {sent}, lost {lost_total}; while producing per connection: min {min}, mean {mean:.1}, max {max}; queued per connection when production stopped: min {min_backlog}, max {}", backlogs.iter().max().copied().unwrap_or(0)),
        format!("pull: {:?}", pull_rec.with(|r| r.stats)),
    ];
    h.outcome("fanin", summary)
}
