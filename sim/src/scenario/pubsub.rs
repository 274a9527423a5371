//! PUB/SUB with subscribers cut off by partitions, holds and one-way partitions, reconnecting
//! after each. Invariants:
//! - during the run: a subscriber never receives a message for a topic it is not subscribed
//!   to, and never one message twice;
//! - every publisher-side pipe to a subscriber receives that subscriber's subscriptions soon
//!   after it attaches (the replay on reconnect);
//! - per publisher-side pipe, what arrived is a prefix of what was queued (losses only in
//!   flight at a disconnect or by PUB's HWM drop, which is counted);
//! - after the network heals, every message published on a subscribed topic arrives.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use zeroring_transports::zmtp::HeartbeatConfig;

use super::pushpull::{seq_of, PORT};
use super::{Harness, Ledger, Outcome, SimOptions};
use crate::pattern::{Pub, Sub};
use crate::pipe::Record;
use crate::socket::{SimSocket, SocketOptions};
use crate::trace::{sim_now, Trace};

const TOPICS: [&str; 4] = ["A", "B", "C", "D"];
const HWM: usize = 100;
/// sub2 subscribes to C at this time and cancels B at the next.
const SUB2_ADD_C: Duration = Duration::from_millis(1500);
const SUB2_DROP_B: Duration = Duration::from_millis(3000);
const HEAL: Duration = Duration::from_millis(5000);
const FINAL_FROM: Duration = Duration::from_millis(8000);
const STOP: Duration = Duration::from_millis(8500);
const END: Duration = Duration::from_millis(9000);
/// A new pipe must receive the subscriber's subscriptions within this.
const REPLAY_WITHIN: Duration = Duration::from_millis(300);

fn topic_of(seq: u64) -> &'static str {
    TOPICS[(seq % 4) as usize]
}

/// The topics `host` is subscribed to at `t`.
fn expected(host: &str, t: Duration) -> BTreeSet<&'static str> {
    let mut s = BTreeSet::new();
    if host == "sub1" {
        s.insert("A");
        s.insert("B");
    } else {
        if t < SUB2_DROP_B {
            s.insert("B");
        }
        if t >= SUB2_ADD_C {
            s.insert("C");
        }
    }
    s
}

async fn pub_app(
    opts: SocketOptions,
    trace: Trace,
    record: Record,
    ledger: Ledger,
) -> turmoil::Result {
    let sock = SimSocket::new("pub", Box::new(Pub::default()), opts, trace.clone(), record);
    sock.bind(PORT).await?;
    while sim_now() < STOP {
        let seq = ledger.next_seq();
        let msg = vec![
            Bytes::from_static(topic_of(seq).as_bytes()),
            Bytes::copy_from_slice(&seq.to_be_bytes()),
        ];
        let pipes = sock.send(msg).unwrap_or_default();
        ledger.sent(seq, "pub", pipes);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    trace.event("pub", "done publishing");
    std::future::pending::<()>().await;
    Ok(())
}

fn sub_msg(first: u8, topic: &str) -> Vec<Bytes> {
    let mut b = vec![first];
    b.extend_from_slice(topic.as_bytes());
    vec![Bytes::from(b)]
}

async fn sub_app(
    host: &'static str,
    opts: SocketOptions,
    replay: bool,
    trace: Trace,
    record: Record,
    ledger: Ledger,
) -> turmoil::Result {
    let sock = SimSocket::new(
        host,
        Box::new(Sub::new(replay)),
        opts,
        trace.clone(),
        record,
    );
    let mut local: BTreeSet<&'static str> = BTreeSet::new();
    for t in expected(host, sim_now()) {
        sock.send(sub_msg(1, t)).ok();
        local.insert(t);
        trace.event(host, format_args!("subscribe {t}"));
    }
    sock.connect("pub", PORT);
    loop {
        // Apply the subscription script, then receive until the next change.
        let want = expected(host, sim_now());
        for t in want.difference(&local.clone()) {
            sock.send(sub_msg(1, t)).ok();
            local.insert(t);
            trace.event(host, format_args!("subscribe {t}"));
        }
        for t in local.clone().difference(&want) {
            sock.send(sub_msg(0, t)).ok();
            local.remove(t);
            trace.event(host, format_args!("unsubscribe {t}"));
        }
        let next_change = [SUB2_ADD_C, SUB2_DROP_B]
            .into_iter()
            .find(|&c| c > sim_now())
            .unwrap_or(Duration::from_secs(3600));
        let left = next_change.saturating_sub(sim_now());
        let Ok(msg) = tokio::time::timeout(left, sock.recv()).await else {
            continue;
        };
        let Some(seq) = seq_of(&msg) else {
            trace.violation(host, "a message without a sequence number");
            continue;
        };
        let topic = String::from_utf8_lossy(&msg[0]).into_owned();
        if !local.contains(topic.as_str()) || topic != topic_of(seq) {
            trace.violation(
                host,
                format_args!("message {seq} on topic {topic} arrived; subscribed to {local:?}"),
            );
        }
        ledger.received(&trace, host, seq);
    }
}

pub(crate) fn run(seed: u64, opts: &SimOptions) -> Outcome {
    let mut h = Harness::new(seed, 1, 5 + seed % 30, |_| {});
    let trace = h.trace.clone();
    let ledger = Ledger::default();
    let pub_rec = Record::new("pub");
    let subs = ["sub1", "sub2"];
    let sub_recs = [Record::new("sub1"), Record::new("sub2")];
    let base = SocketOptions {
        heartbeat: HeartbeatConfig {
            interval: Some(Duration::from_millis(100)),
            ttl: Duration::ZERO,
            timeout: Some(Duration::from_millis(300)),
        },
        handshake_ivl: Some(Duration::from_millis(1000)),
        reconnect_ivl: Some(Duration::from_millis(100)),
        reconnect_ivl_max: Duration::from_millis(800),
        connect_timeout: Some(Duration::from_millis(500)),
        sndhwm: HWM,
        rcvhwm: HWM,
        backoff_seed: seed ^ 0x5b,
        ..Default::default()
    };
    {
        let (trace, rec, ledger, opts) =
            (trace.clone(), pub_rec.clone(), ledger.clone(), base.clone());
        h.sim.host("pub", move || {
            pub_app(opts.clone(), trace.clone(), rec.clone(), ledger.clone())
        });
    }
    for (i, host) in subs.into_iter().enumerate() {
        let (trace, rec, ledger) = (trace.clone(), sub_recs[i].clone(), ledger.clone());
        let sock_opts = SocketOptions {
            backoff_seed: seed ^ (0x51 + i as u64),
            ..base.clone()
        };
        let replay = opts.replay_subscriptions;
        h.sim.host(host, move || {
            sub_app(
                host,
                sock_opts.clone(),
                replay,
                trace.clone(),
                rec.clone(),
                ledger.clone(),
            )
        });
    }
    // Faults per subscriber link, between 0.5 s and the heal.
    let mut faults = Vec::new();
    for sub in subs {
        let mut t = h.rng.range(300, 900);
        while t < HEAL.as_millis() as u64 - 200 {
            let len = h.rng.range(150, 1200).min(HEAL.as_millis() as u64 - t);
            let kind = h.rng.range(0, 3);
            faults.push((t, sub, true, kind, len));
            faults.push((t + len, sub, false, kind, 0));
            t += len + h.rng.range(200, 1500);
        }
    }
    faults.sort_by_key(|f| (f.0, f.1, !f.2));
    // Fault windows per subscriber: a subscription sent into one may be lost with the stream.
    let windows: Vec<(&str, Duration, Duration)> = faults
        .iter()
        .filter(|f| f.2)
        .map(|f| {
            (
                f.1,
                Duration::from_millis(f.0),
                Duration::from_millis(f.0 + f.4),
            )
        })
        .collect();
    for (at, sub, start, kind, len) in faults {
        h.run_until(Duration::from_millis(at), |_| {});
        match (start, kind) {
            (true, 0) => {
                h.note(format_args!("partition pub-{sub} for {len}ms"));
                h.sim.partition("pub", sub);
            }
            (true, 1) => {
                h.note(format_args!("hold pub-{sub} for {len}ms"));
                h.sim.hold("pub", sub);
            }
            (true, _) => {
                h.note(format_args!("one-way partition {sub}->pub for {len}ms"));
                h.sim.partition_oneway(sub, "pub");
            }
            (false, 0) => {
                h.note(format_args!("repair pub-{sub}"));
                h.sim.repair("pub", sub);
            }
            (false, 1) => {
                h.note(format_args!("release pub-{sub}"));
                h.sim.release("pub", sub);
            }
            (false, _) => {
                h.note(format_args!("repair {sub}->pub"));
                h.sim.repair_oneway(sub, "pub");
            }
        }
    }
    h.run_until(HEAL, |_| {});
    h.note("heal");
    for sub in subs {
        h.sim.repair("pub", sub);
        h.sim.release("pub", sub);
    }
    h.run_until(END, |_| {});
    let end = h.now();

    let mut summary = Vec::new();
    let pipes = pub_rec.with(|r| r.pipes.clone());
    let subs_seen = pub_rec.with(|r| r.subscriptions.clone());
    for sub in subs {
        // Replay: every publisher-side pipe to `sub` got its subscriptions.
        for (p, pr) in pipes.iter().filter(|(_, pr)| pr.peer_host == sub) {
            let lived = pr
                .terminated_at
                .unwrap_or(end)
                .saturating_sub(pr.attached_at);
            let from = pr.attached_at.saturating_sub(Duration::from_millis(50));
            let to = pr.attached_at + REPLAY_WITHIN;
            let faulted = windows
                .iter()
                .any(|&(w, a, b)| w == sub && a < to && b > from);
            if lived < REPLAY_WITHIN || faulted {
                continue;
            }
            let before = expected(
                sub,
                pr.attached_at.saturating_sub(Duration::from_millis(100)),
            );
            let after = expected(sub, pr.attached_at + REPLAY_WITHIN);
            for topic in before.intersection(&after) {
                let got = subs_seen.iter().any(|(t, sp, on, tp)| {
                    sp == p
                        && *on
                        && &tp[..] == topic.as_bytes()
                        && *t <= pr.attached_at + REPLAY_WITHIN
                });
                if !got {
                    trace.violation_at(
                        pr.attached_at + REPLAY_WITHIN,
                        "pub",
                        format_args!("{p} from {sub} attached at {:?} but its subscription to {topic} never came", pr.attached_at),
                    );
                }
            }
        }
        // Per-pipe order and losses; sub2's cancelled B is filtered at the SUB and not owed.
        let sub_ledger = ledger.filtered(|seq| !(sub == "sub2" && topic_of(seq) == "B"));
        let (delivered, lost) = sub_ledger.check_flow(&trace, end, "pub", &pub_rec, sub);
        // After the heal: everything published on a subscribed topic arrived.
        let final_expected: Vec<u64> = ledger.with(|l| {
            l.routed_at
                .iter()
                .filter(|(_, &t)| t >= FINAL_FROM)
                .map(|(&s, _)| s)
                .filter(|&s| expected(sub, end).contains(topic_of(s)))
                .collect()
        });
        let got: BTreeSet<u64> = ledger.with(|l| {
            l.received
                .get(sub)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect()
        });
        let missing: Vec<u64> = final_expected
            .iter()
            .copied()
            .filter(|s| !got.contains(s))
            .collect();
        if !missing.is_empty() {
            trace.violation_at(
                end,
                sub,
                format_args!(
                    "{} of {} messages published after the heal on subscribed topics never arrived (first: {})",
                    missing.len(),
                    final_expected.len(),
                    missing[0]
                ),
            );
        }
        summary.push(format!(
            "{sub}: delivered {delivered}, lost in flight at disconnects {lost}, connections {}",
            pipes.values().filter(|p| p.peer_host == sub).count()
        ));
    }
    summary.push(format!(
        "pub: published {}, dropped at HWM {}, dropped queued at disconnect {}",
        ledger.with(|l| l.routed.len()),
        pub_rec.with(|r| r.dropped_hwm),
        pub_rec.with(|r| r.dropped_on_disconnect)
    ));
    h.outcome("pubsub", summary)
}
