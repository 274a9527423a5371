//! High-water marks with slow consumers, no network faults:
//! - PUSH → slow PULL: PUSH blocks at its HWM and never drops; the backlog (sent − received)
//!   stays below what the pipes, the stream core and turmoil's TCP window can hold; after the
//!   producer stops, everything arrives exactly once, in order.
//! - PUB → slow SUB + fast SUB: PUB never blocks and drops for the slow subscriber only; every
//!   drop is counted (the slow one's losses equal PUB's HWM drop counter); the fast subscriber
//!   gets every message; what the slow one gets is in order.

use std::time::Duration;

use bytes::Bytes;

use zeroring::options::num;
use zeroring::SocketType;
use zeroring_transports::driver::stream_core::OUT_HIGH_WATER;

use super::{Harness, Ledger, Outcome, SimOptions};
use crate::connection::{MAX_SEND_CHUNKS, READ_BUF};
use crate::record::Record;
use crate::socket::{SimSocket, SocketOptions};
use crate::trace::{sim_now, Trace};

use super::pushpull::seq_of;

const HWM: usize = 10;
const PAYLOAD: usize = 4096;
const PRODUCE_UNTIL: Duration = Duration::from_millis(3000);
const END: Duration = Duration::from_millis(9000);
const PUSH_PORT: u16 = 5555;
const PUB_PORT: u16 = 5556;
/// Slow consumers take one message per this.
const SLOW: Duration = Duration::from_millis(10);
/// turmoil's default TCP window, in segments (`Builder::tcp_capacity`).
const TCP_SEGMENTS: usize = 64;

fn big(seq: u64, topic: &'static [u8]) -> Vec<Bytes> {
    let mut body = vec![0u8; PAYLOAD];
    body[..8].copy_from_slice(&seq.to_be_bytes());
    let mut m = vec![Bytes::from(body)];
    if !topic.is_empty() {
        m.insert(0, Bytes::from_static(topic));
    }
    m
}

fn seq(msg: &[Bytes]) -> Option<u64> {
    seq_of(&[msg.last()?.slice(..8)])
}

async fn producer(
    host: &'static str,
    publisher: bool,
    opts: SocketOptions,
    trace: Trace,
    record: Record,
    ledger: Ledger,
) -> turmoil::Result {
    let sock = if publisher {
        let s = SimSocket::new(host, SocketType::Pub, opts, trace.clone(), record);
        s.bind(PUB_PORT).await?;
        // Let both subscribers connect and subscribe first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        s
    } else {
        let s = SimSocket::new(host, SocketType::Push, opts, trace.clone(), record);
        s.connect("pull", PUSH_PORT);
        s
    };
    while sim_now() < PRODUCE_UNTIL {
        let n = ledger.next_seq();
        let msg = big(n, if publisher { b"T" } else { b"" });
        let sent = if publisher {
            sock.send(msg)
        } else {
            let left = PRODUCE_UNTIL.saturating_sub(sim_now());
            match tokio::time::timeout(left, sock.send_wait(msg)).await {
                Ok(r) => r,
                Err(_) => break,
            }
        };
        match sent {
            Ok(()) => ledger.sent(n, host),
            Err(e) => trace.violation(host, format_args!("send of {n} failed: {e:?}")),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    trace.event(
        host,
        format_args!(
            "done producing ({} messages)",
            ledger.with(|l| l.sent.len())
        ),
    );
    std::future::pending::<()>().await;
    Ok(())
}

async fn consumer(
    host: &'static str,
    subscriber: bool,
    slow: bool,
    opts: SocketOptions,
    trace: Trace,
    record: Record,
    ledger: Ledger,
) -> turmoil::Result {
    let sock = if subscriber {
        let s = SimSocket::new(host, SocketType::Sub, opts, trace.clone(), record);
        s.set_option(num::SUBSCRIBE, b"T")
            .expect("SUB takes SUBSCRIBE");
        s.connect("pub", PUB_PORT);
        s
    } else {
        let s = SimSocket::new(host, SocketType::Pull, opts, trace.clone(), record);
        s.bind(PUSH_PORT).await?;
        s
    };
    loop {
        let msg = sock.recv().await;
        match seq(&msg) {
            Some(n) => ledger.received(&trace, host, n),
            None => trace.violation(host, "a message without a sequence number"),
        }
        if slow {
            tokio::time::sleep(SLOW).await;
        }
    }
}

pub(crate) fn run(seed: u64, _opts: &SimOptions) -> Outcome {
    let mut h = Harness::new(seed, 1, 2 + seed % 10, |_| {});
    let trace = h.trace.clone();
    let pipeline = Ledger::default();
    let fanout = Ledger::default();
    let recs: Vec<Record> = ["push", "pull", "pub", "slow", "fast"]
        .into_iter()
        .map(Record::new)
        .collect();
    let opts = SocketOptions {
        sndhwm: HWM,
        rcvhwm: HWM,
        backoff_seed: seed ^ 0x11,
        ..Default::default()
    };
    {
        let (t, r, l, o) = (
            trace.clone(),
            recs[1].clone(),
            pipeline.clone(),
            opts.clone(),
        );
        h.sim.host("pull", move || {
            consumer(
                "pull",
                false,
                true,
                o.clone(),
                t.clone(),
                r.clone(),
                l.clone(),
            )
        });
    }
    {
        let (t, r, l, o) = (
            trace.clone(),
            recs[0].clone(),
            pipeline.clone(),
            opts.clone(),
        );
        h.sim.host("push", move || {
            producer("push", false, o.clone(), t.clone(), r.clone(), l.clone())
        });
    }
    {
        let (t, r, l, o) = (trace.clone(), recs[2].clone(), fanout.clone(), opts.clone());
        h.sim.host("pub", move || {
            producer("pub", true, o.clone(), t.clone(), r.clone(), l.clone())
        });
    }
    for (i, (host, slow)) in [("slow", true), ("fast", false)].into_iter().enumerate() {
        let (t, r, l, o) = (
            trace.clone(),
            recs[3 + i].clone(),
            fanout.clone(),
            opts.clone(),
        );
        h.sim.host(host, move || {
            consumer(host, true, slow, o.clone(), t.clone(), r.clone(), l.clone())
        });
    }
    // What may be in flight between a blocked PUSH and a slow PULL, in messages: both pipes;
    // the encoder (it takes one more message while below OUT_HIGH_WATER); the write waiting
    // for TCP credit (at most MAX_SEND_CHUNKS buffers, a message is at least one); turmoil's
    // window of TCP_SEGMENTS unread segments, one write each; one read buffer decoded and held
    // by the paused stream.
    let wire = PAYLOAD + 9;
    let held = READ_BUF / wire + 1;
    let bound = 2 * HWM + (OUT_HIGH_WATER / wire + 1) + (TCP_SEGMENTS + 1) * MAX_SEND_CHUNKS + held;
    let mut worst = 0usize;
    let mut reported = false;
    let p = pipeline.clone();
    h.run_until(END, |h| {
        let backlog = p.with(|l| l.sent.len() - l.received.get("pull").map_or(0, Vec::len));
        worst = worst.max(backlog);
        if backlog > bound && !reported {
            reported = true;
            h.trace.violation_at(
                h.now(),
                "push",
                format_args!(
                    "backlog {backlog} messages exceeds the bound {bound}: PUSH did not block"
                ),
            );
        }
    });
    let end = h.now();
    let mut summary = Vec::new();
    // PUSH: blocks, never drops; all delivered exactly once in order.
    let flow = pipeline.check_flow(
        &trace,
        end,
        "push",
        "pull",
        |_| true,
        &[],
        &[],
        Duration::ZERO,
        0,
    );
    let (delivered, lost) = (flow.delivered, flow.lost);
    let sent = pipeline.with(|l| l.sent.len());
    if delivered != sent || lost != 0 {
        trace.violation_at(
            end,
            "pull",
            format_args!(
                "PUSH sent {sent}, PULL got {delivered}, lost {lost}: PUSH must block, not drop"
            ),
        );
    }
    summary.push(format!(
        "push->pull: sent {sent}, delivered {delivered}, worst backlog {worst} (bound {bound})"
    ));
    // PUB: drops for the slow subscriber only, every drop counted.
    let published = fanout.with(|l| l.sent.len());
    let counted = recs[2].with(|r| r.stats.dropped_hwm);
    for (host, slow) in [("slow", true), ("fast", false)] {
        let allowed = if slow { counted } else { 0 };
        let flow = fanout.check_flow(
            &trace,
            end,
            "pub",
            host,
            |_| true,
            &[],
            &[],
            Duration::ZERO,
            allowed,
        );
        let (got, lost) = (flow.delivered, flow.lost);
        if !slow && got != published {
            trace.violation_at(end, host, format_args!("fast subscriber: published {published}, received {got}: it must get everything"));
        }
        if slow && lost as u64 != counted {
            trace.violation_at(
                end,
                host,
                format_args!(
                    "the slow subscriber lost {lost} messages but PUB counted {counted} HWM drops"
                ),
            );
        }
        if slow && counted == 0 {
            trace.violation_at(
                end,
                host,
                "the slow subscriber never hit its HWM: the scenario tests nothing",
            );
        }
        summary.push(format!(
            "pub->{host}: published {published}, received {got}, lost {lost}"
        ));
    }
    summary.push(format!("pub: HWM drops counted {counted}"));
    h.outcome("hwm", summary)
}
