//! LINGER on close: a PUSH queues messages while its PULL peer is away, then closes with
//! ZMQ_LINGER L (and waits, as `zmq_ctx_term` does). The peer comes back within L, later than
//! L, or never, at a time drawn from the seed; a quarter of the runs close with LINGER 0.
//! Invariants (libzmq's `session_base_t`: a closed socket's session keeps reconnecting while
//! its pipe owes output, until the pipe is drained or LINGER expires):
//! - peer back within L: every message queued before close arrives, in order, once; close
//!   returns as soon as they went out, within L;
//! - peer back after L, or never: close returns at L (not before: output was owed; not much
//!   after);
//! - LINGER 0: close returns at once and nothing is delivered.
//!
//! The broken variant (`--drop-on-close`) makes close drop the queue whatever LINGER says.

use std::time::Duration;

use zeroring::SocketType;

use super::pushpull::{message, seq_of, PORT};
use super::{Harness, Ledger, Outcome, SimOptions};
use crate::record::Record;
use crate::socket::{SimSocket, SocketOptions};
use crate::trace::{sim_now, Trace};

/// When the PUSH closes.
const CLOSE_AT: Duration = Duration::from_millis(500);
/// Time a returning peer needs at most: one reconnect interval plus its jitter, the
/// handshake and the queue (a few round trips at most 10 ms each).
const COMEBACK_MARGIN: u64 = 400;
/// How late close may return after L (the simulation's 1 ms tick).
const SLACK: Duration = Duration::from_millis(5);

#[derive(Clone, Copy, Debug)]
enum Peer {
    /// Binds this long after the PUSH closed.
    BackAfter(Duration),
    Never,
}

async fn push_app(
    opts: SocketOptions,
    trace: Trace,
    record: Record,
    ledger: Ledger,
    (count, linger_ms): (u64, i32),
) -> turmoil::Result {
    let sock = SimSocket::new("push", SocketType::Push, opts, trace.clone(), record);
    sock.connect("pull", PORT);
    for _ in 0..count {
        let seq = ledger.next_seq();
        match sock.send(message(seq)) {
            Ok(()) => ledger.sent(seq, "push"),
            Err(e) => trace.violation("push", format_args!("message {seq} refused: {e:?}")),
        }
    }
    tokio::time::sleep(CLOSE_AT.saturating_sub(sim_now())).await;
    sock.close(linger_ms).await;
    std::future::pending::<()>().await;
    Ok(())
}

async fn pull_app(trace: Trace, record: Record, ledger: Ledger, peer: Peer) -> turmoil::Result {
    let Peer::BackAfter(after) = peer else {
        std::future::pending::<()>().await;
        return Ok(());
    };
    tokio::time::sleep(CLOSE_AT + after).await;
    let sock = SimSocket::new(
        "pull",
        SocketType::Pull,
        SocketOptions::default(),
        trace.clone(),
        record,
    );
    sock.bind(PORT).await?;
    loop {
        let m = sock.recv().await;
        match seq_of(&m) {
            Some(seq) => ledger.received(&trace, "pull", seq),
            None => trace.violation("pull", "a message with no sequence number"),
        }
    }
}

pub(crate) fn run(seed: u64, opts: &SimOptions) -> Outcome {
    let mut h = Harness::new(seed, 1, 10, |_| {});
    let trace = h.trace.clone();
    let (push_rec, pull_rec) = (Record::new("push"), Record::new("pull"));
    let ledger = Ledger::default();
    let count = h.rng.range(1, 300);
    let linger_ms: i32 = match h.rng.range(0, 8) {
        0 | 1 => 0,
        2 => -1,
        _ => h.rng.range(COMEBACK_MARGIN + 100, 3000) as i32,
    };
    let peer = match (linger_ms, h.rng.range(0, 4)) {
        // LINGER −1 would wait forever for a peer that never comes.
        (-1, _) | (_, 0 | 1) => {
            let within = if linger_ms > 0 {
                linger_ms as u64 - COMEBACK_MARGIN
            } else {
                2000
            };
            Peer::BackAfter(Duration::from_millis(h.rng.range(0, within)))
        }
        (_, 2) => Peer::BackAfter(Duration::from_millis(
            linger_ms.max(0) as u64 + h.rng.range(50, 500),
        )),
        _ => Peer::Never,
    };
    h.note(format_args!(
        "{count} messages queued, close at {CLOSE_AT:?} with LINGER {linger_ms} ms, peer {peer:?}"
    ));
    let push_opts = SocketOptions {
        backoff_seed: seed ^ 0x11,
        drop_on_close: opts.drop_on_close,
        ..Default::default()
    };
    {
        let (t, r, l) = (trace.clone(), push_rec.clone(), ledger.clone());
        h.sim.host("push", move || {
            push_app(
                push_opts.clone(),
                t.clone(),
                r.clone(),
                l.clone(),
                (count, linger_ms),
            )
        });
    }
    {
        let (t, r, l) = (trace.clone(), pull_rec.clone(), ledger.clone());
        h.sim.host("pull", move || {
            pull_app(t.clone(), r.clone(), l.clone(), peer)
        });
    }
    let end = CLOSE_AT + Duration::from_millis(linger_ms.max(2000) as u64 + 1500);
    h.run_until(end, |_| {});

    let took = push_rec.with(|r| r.close_took);
    let got = ledger.with(|l| l.received.get("pull").cloned().unwrap_or_default());
    let limit = (linger_ms >= 0).then(|| Duration::from_millis(linger_ms as u64));
    let in_time = match (peer, limit) {
        (Peer::BackAfter(after), Some(l)) => after + Duration::from_millis(COMEBACK_MARGIN) <= l,
        (Peer::BackAfter(_), None) => true,
        (Peer::Never, _) => false,
    };
    let t = h.now();
    match took {
        None => h.trace.violation_at(t, "push", "close never returned"),
        Some(took) => {
            if let Some(l) = limit {
                if took > l + SLACK {
                    h.trace.violation_at(
                        t,
                        "push",
                        format_args!("close took {took:?}, longer than LINGER {l:?}"),
                    );
                }
                if l > Duration::ZERO && !in_time && took + SLACK < l {
                    h.trace.violation_at(
                        t,
                        "push",
                        format_args!(
                            "close returned after {took:?} with output owed and no peer, before LINGER {l:?}"
                        ),
                    );
                }
            }
        }
    }
    if limit == Some(Duration::ZERO) && !got.is_empty() {
        h.trace.violation_at(
            t,
            "pull",
            format_args!(
                "{} messages delivered after a close with LINGER 0",
                got.len()
            ),
        );
    }
    if in_time && limit != Some(Duration::ZERO) {
        let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
        let want: Vec<u64> = (0..count).collect();
        if seqs != want {
            let missing = want.iter().filter(|s| !seqs.contains(s)).count();
            h.trace.violation_at(
                t,
                "pull",
                format_args!(
                    "the peer came back within LINGER but got {} of {count} messages queued before close ({missing} lost{})",
                    seqs.len(),
                    if seqs.windows(2).any(|w| w[0] >= w[1]) { ", out of order" } else { "" }
                ),
            );
        }
    }
    let summary = vec![format!(
        "queued {count}, LINGER {linger_ms} ms, peer {peer:?}: close took {took:?}, delivered {}; push connects {} (failed {})",
        got.len(),
        push_rec.with(|r| r.connect_attempts.len()),
        push_rec.with(|r| r.connect_failures),
    )];
    h.outcome("linger", summary)
}
