//! High-water marks with slow consumers, no network faults:
//! - PUSH → slow PULL: PUSH blocks at its HWM and never drops; the backlog (sent − received)
//!   stays below what the pipes, the driver and turmoil's TCP window can hold; queues never
//!   exceed SNDHWM / RCVHWM; after the producer stops, everything arrives exactly once, in order.
//! - PUB → slow SUB + fast SUB: PUB never blocks and drops for the slow subscriber only; every
//!   drop is counted (published = queued + dropped, per subscriber); the fast subscriber gets
//!   every message; what the slow one gets is in order with no gaps other than counted drops.

use std::time::Duration;

use bytes::Bytes;

use super::{check_memory, Harness, Ledger, Outcome, SimOptions};
use crate::pattern::{Pub, Pull, Push, Sub};
use crate::pipe::Record;
use crate::socket::{SimSocket, SocketOptions, OUT_HIGH_WATER, READ_BUF, WRITE_BATCH};
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
        let s = SimSocket::new(host, Box::new(Pub::default()), opts, trace.clone(), record);
        s.bind(PUB_PORT).await?;
        // Let both subscribers connect and subscribe first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        s
    } else {
        let s = SimSocket::new(host, Box::new(Push::default()), opts, trace.clone(), record);
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
            Ok(p) => ledger.sent(n, host, p),
            Err(e) => trace.violation(host, format_args!("send of {n} failed: {e:?}")),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    trace.event(
        host,
        format_args!(
            "done producing ({} messages)",
            ledger.with(|l| l.routed.len())
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
        let s = SimSocket::new(host, Box::new(Sub::new(true)), opts, trace.clone(), record);
        s.send(vec![Bytes::from_static(b"\x01T")]).ok();
        s.connect("pub", PUB_PORT);
        s
    } else {
        let s = SimSocket::new(host, Box::new(Pull::default()), opts, trace.clone(), record);
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
    // the encoder (it takes one more message while below OUT_HIGH_WATER); the write waiting for
    // TCP credit and the segment being read (a write batch stops at the first chunk that
    // reaches WRITE_BATCH); turmoil's window of TCP_SEGMENTS unread segments; one read buffer
    // decoded and held by the paused driver.
    let wire = PAYLOAD + 9;
    let seg = WRITE_BATCH / wire + 1;
    let held = READ_BUF / wire + 1;
    let bound = 2 * HWM + (OUT_HIGH_WATER / wire + 1) + 2 * seg + TCP_SEGMENTS * seg + held;
    let mut worst = 0usize;
    let mut reported = false;
    let p = pipeline.clone();
    h.run_until(END, |h| {
        for r in &recs {
            check_memory(h, r, HWM, HWM, held + 1);
        }
        let backlog = p.with(|l| l.routed.len() - l.received.get("pull").map_or(0, Vec::len));
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
    let (delivered, lost) = pipeline.check_flow(&trace, end, "push", &recs[0], "pull");
    let sent = pipeline.with(|l| l.routed.len());
    if delivered != sent || lost != 0 {
        trace.violation_at(
            end,
            "pull",
            format_args!(
                "PUSH sent {sent}, PULL got {delivered}, lost {lost}: PUSH must block, not drop"
            ),
        );
    }
    summary.push(format!("push->pull: sent {sent}, delivered {delivered}, worst backlog {worst} (bound {bound}), pull pauses {}", recs[1].with(|r| r.pauses)));
    // PUB: drops for the slow subscriber only, every drop counted.
    let published = fanout.with(|l| l.routed.len());
    let pub_pipes = recs[2].with(|r| r.pipes.clone());
    let mut routed_total = 0;
    for (host, slow) in [("slow", true), ("fast", false)] {
        let (got, lost) = fanout.check_flow(&trace, end, "pub", &recs[2], host);
        let queued: usize = fanout.with(|l| {
            l.routed
                .values()
                .filter(|(_, ps)| {
                    ps.iter()
                        .any(|p| pub_pipes.get(p).is_some_and(|pr| pr.peer_host == host))
                })
                .count()
        });
        routed_total += queued;
        let dropped = published - queued;
        if !slow && (dropped != 0 || got != published) {
            trace.violation_at(end, host, format_args!("fast subscriber: published {published}, queued {queued}, received {got}: it must get everything"));
        }
        if slow && dropped == 0 {
            trace.violation_at(
                end,
                host,
                "the slow subscriber never hit its HWM: the scenario tests nothing",
            );
        }
        summary.push(format!("pub->{host}: published {published}, queued {queued}, dropped at HWM {dropped}, received {got}, lost {lost}"));
    }
    let counted = recs[2].with(|r| r.dropped_hwm) as usize;
    if counted != 2 * published - routed_total {
        trace.violation_at(
            end,
            "pub",
            format_args!(
                "PUB counted {counted} HWM drops, but {} messages were not queued",
                2 * published - routed_total
            ),
        );
    }
    h.outcome("hwm", summary)
}
