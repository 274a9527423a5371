//! PUSH→PULL over a flaky link: random latency, turmoil's random link failures (a failed link
//! drops TCP segments, which stalls the stream for good), scripted holds and partitions, and
//! a slow consumer. Invariants: no duplicates, per-peer order, and every message that never
//! arrived was in flight when a connection ended (PUSH keeps its queue across reconnects:
//! only what the dead connection had taken from it can be lost).

use std::time::Duration;

use bytes::Bytes;
use zeroring::{Error, SocketType};

use super::{disconnects, flaky_link, Harness, Ledger, Outcome, SimOptions};
use crate::record::Record;
use crate::rng::SimRng;
use crate::socket::{SimSocket, SocketOptions};
use crate::trace::{sim_now, Trace};

pub(crate) const PORT: u16 = 5555;
const HWM: usize = 20;

/// The message for `seq`: one frame, the sequence number.
pub(crate) fn message(seq: u64) -> Vec<Bytes> {
    vec![Bytes::copy_from_slice(&seq.to_be_bytes())]
}

/// The sequence number of a message (last frame).
pub(crate) fn seq_of(msg: &[Bytes]) -> Option<u64> {
    let last = msg.last()?;
    Some(u64::from_be_bytes(last.get(..8)?.try_into().ok()?))
}

/// How a pusher paces itself.
#[derive(Clone, Debug)]
pub(crate) struct PushPlan {
    /// Stop sending at this simulated time.
    pub stop_at: Duration,
    /// Gap between messages: `gap_ms.0..gap_ms.1`.
    pub gap_ms: (u64, u64),
    /// Blocking send (PUSH semantics) or drop on EAGAIN.
    pub blocking: bool,
}

/// A PUSH host: connects to `target` and sends numbered messages.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn push_app(
    host: &'static str,
    target: &'static str,
    opts: SocketOptions,
    trace: Trace,
    record: Record,
    ledger: Ledger,
    plan: PushPlan,
    seed: u64,
) -> turmoil::Result {
    let sock = SimSocket::new(host, SocketType::Push, opts, trace.clone(), record);
    sock.connect(target, PORT);
    // The pacing differs after each bounce but stays a function of the seed.
    let mut rng = SimRng::new(seed, ledger.with(|l| l.next_seq) + 7);
    while sim_now() < plan.stop_at {
        let seq = ledger.next_seq();
        let sent = if plan.blocking {
            // Blocking send, but give up at stop_at (a PUSH with no peer blocks forever).
            let left = plan.stop_at.saturating_sub(sim_now());
            match tokio::time::timeout(left, sock.send_wait(message(seq))).await {
                Ok(r) => r,
                Err(_) => Err(Error::EAGAIN),
            }
        } else {
            sock.send(message(seq))
        };
        match sent {
            Ok(()) => ledger.sent(seq, host),
            Err(e) => trace.event(host, format_args!("message {seq} not sent: {e:?}")),
        }
        let gap = rng.range(plan.gap_ms.0, plan.gap_ms.1);
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }
    trace.event(host, "done sending");
    std::future::pending::<()>().await;
    Ok(())
}

/// A PULL host: binds and receives, pausing now and then (a slow consumer).
pub(crate) async fn pull_app(
    host: &'static str,
    opts: SocketOptions,
    trace: Trace,
    record: Record,
    ledger: Ledger,
    slow: Option<(u64, u64)>,
    seed: u64,
) -> turmoil::Result {
    let sock = SimSocket::new(host, SocketType::Pull, opts, trace.clone(), record);
    sock.bind(PORT).await?;
    let mut rng = SimRng::new(seed, 0x9011);
    loop {
        let msg = sock.recv().await;
        match seq_of(&msg) {
            Some(seq) => ledger.received(&trace, host, seq),
            None => trace.violation(host, "a message without a sequence number"),
        }
        if let Some((every, pause_ms)) = slow {
            if rng.range(0, every) == 0 {
                tokio::time::sleep(Duration::from_millis(rng.range(1, pause_ms))).await;
            }
        }
    }
}

pub(crate) fn run(seed: u64, opts: &SimOptions) -> Outcome {
    let mut h = Harness::new(seed, 1, 5 + seed % 40, |b| {
        b.fail_rate(0.002).repair_rate(0.2);
    });
    let trace = h.trace.clone();
    let ledger = Ledger::default();
    let push_rec = Record::new("push");
    let pull_rec = Record::new("pull");
    let base = SocketOptions {
        sndhwm: HWM,
        rcvhwm: HWM,
        ..flaky_link(Duration::from_millis(800), seed ^ 0xb0)
    };
    {
        let pull_opts = SocketOptions {
            lose_every: opts.lossy_recv.then_some(97),
            ..base.clone()
        };
        let (trace, rec, ledger, opts) =
            (trace.clone(), pull_rec.clone(), ledger.clone(), pull_opts);
        h.sim.host("pull", move || {
            pull_app(
                "pull",
                opts.clone(),
                trace.clone(),
                rec.clone(),
                ledger.clone(),
                Some((20, 80)),
                seed,
            )
        });
    }
    let stop = Duration::from_millis(6000);
    {
        let (trace, rec, ledger, opts) = (
            trace.clone(),
            push_rec.clone(),
            ledger.clone(),
            base.clone(),
        );
        let plan = PushPlan {
            stop_at: stop,
            gap_ms: (0, 12),
            blocking: true,
        };
        h.sim.host("push", move || {
            push_app(
                "push",
                "pull",
                opts.clone(),
                trace.clone(),
                rec.clone(),
                ledger.clone(),
                plan.clone(),
                seed,
            )
        });
    }
    // Scripted faults on top of turmoil's random failures, in the first 5 s.
    let mut t = 300;
    let mut faults = Vec::new();
    while t < 5000 {
        let len = h.rng.range(20, 700);
        let kind = h.rng.range(0, 3);
        faults.push((t, len, kind));
        t += len + h.rng.range(100, 900);
    }
    for (at, len, kind) in faults {
        h.run_until(Duration::from_millis(at), |_| {});
        match kind {
            0 => {
                h.note(format_args!("partition push-pull for {len}ms"));
                h.sim.partition("push", "pull");
            }
            1 => {
                h.note(format_args!("hold push-pull for {len}ms"));
                h.sim.hold("push", "pull");
            }
            _ => {
                h.note(format_args!("one-way partition push->pull for {len}ms"));
                h.sim.partition_oneway("push", "pull");
            }
        }
        h.run_until(Duration::from_millis(at + len), |_| {});
        match kind {
            0 => {
                h.note("repair push-pull");
                h.sim.repair("push", "pull");
            }
            1 => {
                h.note("release push-pull");
                h.sim.release("push", "pull");
            }
            _ => {
                h.note("repair push->pull");
                h.sim.repair_oneway("push", "pull");
            }
        }
    }
    // Heal: no more random failures; let heartbeats find dead streams, reconnect, drain.
    h.note("heal: random failures off");
    h.sim.set_fail_rate(0.0);
    h.sim.repair("push", "pull");
    h.sim.release("push", "pull");
    h.run_until(stop + Duration::from_millis(3000), |_| {});
    let end = h.now();
    let flow = ledger.check_whole_flow(&trace, end, ("push", &push_rec), ("pull", &pull_rec));
    let cuts = disconnects(&push_rec, &pull_rec);
    let sent = ledger.with(|l| l.sent.len());
    let connections = push_rec.with(|r| r.connections.len());
    let connected = push_rec.with(|r| r.open_connections().count() > 0);
    if !connected && !h.broken {
        trace.violation_at(
            end,
            "push",
            "no connection to pull after the network healed",
        );
    }
    let summary = vec![
        format!(
            "messages sent {sent}, delivered {}, lost in flight at {} disconnects {}, late after a reconnect {}",
            flow.delivered,
            cuts.len(),
            flow.lost,
            flow.late
        ),
        format!(
            "push: {connections} connections, {} hiccups; pull: {:?}",
            push_rec.with(|r| r.hiccups),
            pull_rec.with(|r| r.stats)
        ),
    ];
    h.outcome("pushpull", summary)
}
