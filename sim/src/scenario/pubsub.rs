//! PUB/SUB with subscribers cut off by partitions, holds and one-way partitions, reconnecting
//! after each. The publisher is an XPUB with XPUB_VERBOSE, so it sees every subscription it
//! applies — its acknowledgement; each subscriber has topics of its own, so an
//! acknowledgement names its subscriber. Invariants:
//! - during the run: a subscriber never receives a message for a topic it is not subscribed
//!   to, and never one message twice;
//! - every connection a subscriber makes brings its subscriptions to the publisher (the SUB's
//!   replay on reconnect) within REPLAY_WITHIN;
//! - per subscriber, messages arrive in publishing order, and a message published on an
//!   acknowledged subscription (no disconnect since the acknowledgement) arrives unless a
//!   connection between the two ended after it was published;
//! - after the network heals, every message published on a subscribed topic arrives.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use zeroring::options::num;
use zeroring::SocketType;

use super::pushpull::{seq_of, PORT};
use super::{flaky_link, Harness, Ledger, Outcome, SimOptions};
use crate::record::Record;
use crate::socket::{SimSocket, SocketOptions};
use crate::trace::{sim_now, Trace};

/// Published topics: each subscriber's own ("1…", "2…"), some nobody subscribes to.
const TOPICS: [&str; 6] = ["1A", "1B", "1C", "2A", "2B", "2C"];
const HWM: usize = 100;
/// sub2 subscribes to 2C at this time and cancels 2B at the next.
const SUB2_ADD_C: Duration = Duration::from_millis(1500);
const SUB2_DROP_B: Duration = Duration::from_millis(3000);
const HEAL: Duration = Duration::from_millis(5000);
const FINAL_FROM: Duration = Duration::from_millis(8000);
const STOP: Duration = Duration::from_millis(8500);
const END: Duration = Duration::from_millis(9000);
/// A new connection must bring the subscriber's subscriptions within this.
const REPLAY_WITHIN: Duration = Duration::from_millis(300);
/// The publisher notices a dead connection within HEARTBEAT_IVL + HEARTBEAT_TIMEOUT.
/// The publisher's loop period: it reads acknowledgements once per turn.
const ACK_POLL: Duration = Duration::from_millis(5);
const PUB_DETECTS: Duration = Duration::from_millis(400);

fn topic_of(seq: u64) -> &'static str {
    TOPICS[(seq % TOPICS.len() as u64) as usize]
}

/// The topics `host` is subscribed to at `t`.
fn expected(host: &str, t: Duration) -> BTreeSet<&'static str> {
    let mut s = BTreeSet::new();
    if host == "sub1" {
        s.insert("1A");
        s.insert("1B");
    } else {
        if t < SUB2_DROP_B {
            s.insert("2B");
        }
        if t >= SUB2_ADD_C {
            s.insert("2C");
        }
    }
    s
}

/// The subscriber a topic belongs to.
fn owner(topic: &str) -> &'static str {
    if topic.starts_with('1') {
        "sub1"
    } else {
        "sub2"
    }
}

/// Subscriptions the publisher applied: (time, topic).
type Acks = std::rc::Rc<std::cell::RefCell<Vec<(Duration, String)>>>;

async fn pub_app(
    opts: SocketOptions,
    trace: Trace,
    record: Record,
    ledger: Ledger,
    acks: Acks,
) -> turmoil::Result {
    let opts = SocketOptions {
        int_options: vec![(num::XPUB_VERBOSE, 1)],
        ..opts
    };
    let sock = SimSocket::new("pub", SocketType::XPub, opts, trace.clone(), record);
    sock.bind(PORT).await?;
    while sim_now() < STOP {
        while let Some(msg) = sock.try_recv() {
            let [body] = msg.as_slice() else { continue };
            if body.first() == Some(&1) {
                let topic = String::from_utf8_lossy(&body[1..]).into_owned();
                trace.event("pub", format_args!("subscription to {topic} applied"));
                acks.borrow_mut().push((sim_now(), topic));
            } else if body.first() == Some(&0) {
                // The last pipe with this subscription went (its connection ended).
                let topic = String::from_utf8_lossy(&body[1..]).into_owned();
                trace.event("pub", format_args!("subscription to {topic} gone"));
            }
        }
        let seq = ledger.next_seq();
        let msg = vec![
            Bytes::from_static(topic_of(seq).as_bytes()),
            Bytes::copy_from_slice(&seq.to_be_bytes()),
        ];
        if sock.send(msg).is_ok() {
            ledger.sent(seq, "pub");
        }
        tokio::time::sleep(ACK_POLL).await;
    }
    trace.event("pub", "done publishing");
    std::future::pending::<()>().await;
    Ok(())
}

async fn sub_app(
    host: &'static str,
    opts: SocketOptions,
    trace: Trace,
    record: Record,
    ledger: Ledger,
) -> turmoil::Result {
    let sock = SimSocket::new(host, SocketType::Sub, opts, trace.clone(), record);
    let mut local: BTreeSet<&'static str> = BTreeSet::new();
    sock.connect("pub", PORT);
    loop {
        // Apply the subscription script, then receive until the next change.
        let want = expected(host, sim_now());
        for t in want.difference(&local.clone()) {
            sock.set_option(num::SUBSCRIBE, t.as_bytes())
                .expect("SUB takes SUBSCRIBE");
            local.insert(t);
            trace.event(host, format_args!("subscribe {t}"));
        }
        for t in local.clone().difference(&want) {
            sock.set_option(num::UNSUBSCRIBE, t.as_bytes())
                .expect("SUB takes UNSUBSCRIBE");
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
    let acks = Acks::default();
    let pub_rec = Record::new("pub");
    let subs = ["sub1", "sub2"];
    let sub_recs = [Record::new("sub1"), Record::new("sub2")];
    let base = SocketOptions {
        sndhwm: HWM,
        rcvhwm: HWM,
        ..flaky_link(Duration::from_millis(800), seed ^ 0x5b)
    };
    {
        let (trace, rec, ledger, o, acks) = (
            trace.clone(),
            pub_rec.clone(),
            ledger.clone(),
            base.clone(),
            acks.clone(),
        );
        h.sim.host("pub", move || {
            pub_app(
                o.clone(),
                trace.clone(),
                rec.clone(),
                ledger.clone(),
                acks.clone(),
            )
        });
    }
    for (i, host) in subs.into_iter().enumerate() {
        let (trace, rec, ledger) = (trace.clone(), sub_recs[i].clone(), ledger.clone());
        let sock_opts = SocketOptions {
            backoff_seed: seed ^ (0x51 + i as u64),
            forward_hiccups: opts.replay_subscriptions,
            ..base.clone()
        };
        h.sim.host(host, move || {
            sub_app(
                host,
                sock_opts.clone(),
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
    let acks = acks.borrow().clone();
    let mut acked: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, t) in &acks {
        *acked.entry(owner(t)).or_default() += 1;
    }
    for (i, sub) in subs.into_iter().enumerate() {
        let mut cuts = sub_recs[i].with(|r| r.disconnects());
        cuts.extend(pub_rec.with(|r| r.disconnects_with(sub)));
        cuts.sort();
        // Replay: every connection from `sub` brought its subscriptions.
        let conns: Vec<_> = pub_rec.with(|r| {
            r.connections
                .values()
                .filter(|c| c.peer_host == sub)
                .filter_map(|c| Some((c.ready_at?, c.ended_at)))
                .collect()
        });
        for (ready, ended) in &conns {
            let to = *ready + REPLAY_WITHIN;
            let lived = ended.is_none_or(|e| e > to);
            let from = ready.saturating_sub(Duration::from_millis(50));
            let faulted = windows
                .iter()
                .any(|&(w, a, b)| w == sub && a < to && b > from);
            if !lived || faulted || to > end {
                continue;
            }
            let before = expected(sub, ready.saturating_sub(Duration::from_millis(100)));
            for topic in before.intersection(&expected(sub, to)) {
                let got = acks
                    .iter()
                    .any(|(t, tp)| tp == topic && *t >= *ready && *t <= to);
                if !got {
                    trace.violation_at(
                        to,
                        "pub",
                        format_args!("the connection from {sub} ready at {ready:?} never brought its subscription to {topic}"),
                    );
                }
            }
        }
        // Order, duplicates, and losses on acknowledged subscriptions.
        let sent_times: BTreeMap<u64, Duration> =
            ledger.with(|l| l.sent.iter().map(|(s, (_, t))| (*s, *t)).collect());
        // An acknowledgement is only worth something if it came from a live connection. The
        // XPUB (as libzmq's) reads what a pipe delivered up to its end, so the subscriptions
        // of a connection that had already died reach the application at its next turn
        // (ACK_POLL later at most); such a late acknowledgement proves nothing. Counted: an
        // acknowledgement while a connection from `sub` is ready and open, and no connection
        // from `sub` ended within the ACK_POLL before it.
        let pub_cuts = pub_rec.with(|r| r.disconnects_with(sub));
        let live_ack = |t: Duration| {
            conns
                .iter()
                .any(|(ready, ended)| *ready <= t && ended.is_none_or(|e| e > t))
                && !pub_cuts.iter().any(|d| *d <= t && *d + ACK_POLL >= t)
        };
        let owed = |seq: u64| {
            let topic = topic_of(seq);
            let Some(&sent_at) = sent_times.get(&seq) else {
                return false;
            };
            // Never owed: others' topics, and 2B (cancelled: the SUB filters what was in flight).
            if owner(topic) != sub || !expected(sub, sent_at).contains(topic) || topic == "2B" {
                return false;
            }
            let Some(ack) = acks
                .iter()
                .rev()
                .find(|(t, tp)| tp == topic && *t <= sent_at && live_ack(*t))
                .map(|(t, _)| *t)
            else {
                return false;
            };
            !cuts.iter().any(|d| *d >= ack && *d <= sent_at)
        };
        let flow = ledger.check_flow(
            &trace,
            end,
            "pub",
            sub,
            owed,
            &cuts,
            &pub_cuts,
            PUB_DETECTS,
            0,
        );
        let (delivered, lost) = (flow.delivered, flow.lost);
        // After the heal: everything published on a subscribed topic arrived.
        let got: BTreeSet<u64> = ledger.with(|l| {
            l.received
                .get(sub)
                .map(|v| v.iter().map(|(s, _)| *s).collect())
                .unwrap_or_default()
        });
        let missing: Vec<u64> = ledger.with(|l| {
            l.sent
                .iter()
                .filter(|(_, (_, t))| *t >= FINAL_FROM)
                .map(|(&s, _)| s)
                .filter(|&s| expected(sub, end).contains(topic_of(s)) && !got.contains(&s))
                .collect()
        });
        if !missing.is_empty() {
            trace.violation_at(
                end,
                sub,
                format_args!(
                    "{} messages published after the heal on subscribed topics never arrived (first: {})",
                    missing.len(),
                    missing[0]
                ),
            );
        }
        summary.push(format!(
            "{sub}: delivered {delivered} owed, lost in flight at disconnects {lost}, connections {}, subscriptions acknowledged {}",
            conns.len(),
            acked.get(sub).copied().unwrap_or(0)
        ));
    }
    let stats = pub_rec.with(|r| r.stats);
    summary.push(format!(
        "pub: published {}, dropped at HWM {}",
        ledger.with(|l| l.sent.len()),
        stats.dropped_hwm
    ));
    h.outcome("pubsub", summary)
}
