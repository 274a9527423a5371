//! Scenarios: hosts, a fault schedule drawn from the seed, and invariants checked during the
//! run (after every simulation step) and at its end.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

use turmoil::Sim;

use zeroring_transports::zmtp::HeartbeatConfig;

use crate::record::Record;
use crate::rng::SimRng;
use crate::socket::SocketOptions;
use crate::trace::Trace;

mod dealer_router;
mod fanin;
mod handshake;
mod heartbeat;
mod hwm;
mod inproc_tcp;
mod linger;
mod monitor;
mod pubsub;
mod pushpull;
mod req_rep;
mod router_mandatory;

/// Switches that deliberately break a run, for the tests that prove the simulator can fail.
/// Every switch defaults to correct behaviour.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Connecters' links forward the socket's hiccup, so a reconnected SUB sends its
    /// subscriptions again (off: the simulator must notice the missing replay).
    pub replay_subscriptions: bool,
    /// Heartbeats configured on both sides (off: a silent partition goes undetected).
    pub heartbeats: bool,
    /// REQ uses ZMQ_REQ_CORRELATE (off: a late reply can be taken for the current one).
    pub req_correlate: bool,
    /// The PULL socket silently discards every 97th message (pushpull, inproc-tcp).
    pub lossy_recv: bool,
    /// Close drops what is queued whatever ZMQ_LINGER says (linger only).
    pub drop_on_close: bool,
    /// The monitor loses DISCONNECTED events (monitor only).
    pub skip_disconnected: bool,
    /// The ROUTER runs without ROUTER_MANDATORY while the check expects it (router-mandatory
    /// only).
    pub no_mandatory: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            replay_subscriptions: true,
            heartbeats: true,
            req_correlate: true,
            lossy_recv: false,
            drop_on_close: false,
            skip_disconnected: false,
            no_mandatory: false,
        }
    }
}

/// Options for sockets on a faulty link: heartbeats every 100 ms with a 300 ms timeout (so a
/// silent partition is noticed), HANDSHAKE_IVL 1 s, RECONNECT_IVL 100 ms up to
/// `reconnect_ivl_max`, CONNECT_TIMEOUT 500 ms; reconnect jitter from `backoff_seed`.
pub(crate) fn flaky_link(reconnect_ivl_max: Duration, backoff_seed: u64) -> SocketOptions {
    SocketOptions {
        heartbeat: HeartbeatConfig {
            interval: Some(Duration::from_millis(100)),
            ttl: Duration::ZERO,
            timeout: Some(Duration::from_millis(300)),
        },
        handshake_ivl: Some(Duration::from_millis(1000)),
        reconnect_ivl: Some(Duration::from_millis(100)),
        reconnect_ivl_max,
        connect_timeout: Some(Duration::from_millis(500)),
        backoff_seed,
        ..Default::default()
    }
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub scenario: &'static str,
    pub seed: u64,
    /// The event trace: `seconds host event`, one line per event.
    pub trace: Vec<String>,
    /// Invariant violations; empty when the run passed.
    pub violations: Vec<String>,
    /// Counters worth reading after the run.
    pub summary: Vec<String>,
    /// The switches the run used (non-default ones appear in the replay command).
    pub options: SimOptions,
}

impl Outcome {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        let mut flags = String::new();
        if !self.options.replay_subscriptions {
            flags.push_str(" --no-replay");
        }
        if !self.options.heartbeats {
            flags.push_str(" --no-heartbeats");
        }
        if !self.options.req_correlate {
            flags.push_str(" --no-correlate");
        }
        if self.options.lossy_recv {
            flags.push_str(" --lossy-recv");
        }
        if self.options.drop_on_close {
            flags.push_str(" --drop-on-close");
        }
        if self.options.skip_disconnected {
            flags.push_str(" --skip-disconnected");
        }
        if self.options.no_mandatory {
            flags.push_str(" --no-mandatory");
        }
        format!(
            "cargo run -p zeroring-sim -- --scenario {} --seed {}{flags}",
            self.scenario, self.seed
        )
    }

    /// The trace, the summary and the verdict, as the CLI prints them.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for line in &self.trace {
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(s, "--- summary");
        for line in &self.summary {
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(s, "--- verdict");
        if self.passed() {
            let _ = writeln!(s, "PASS {} seed {}", self.scenario, self.seed);
        } else {
            for v in &self.violations {
                let _ = writeln!(s, "violation: {v}");
            }
            let _ = writeln!(
                s,
                "FAIL {} seed {}: replay with `{}`",
                self.scenario,
                self.seed,
                self.replay_command()
            );
        }
        s
    }
}

/// A named scenario.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioInfo {
    pub name: &'static str,
    pub about: &'static str,
    pub run: fn(u64, &SimOptions) -> Outcome,
}

/// Every scenario.
pub fn scenarios() -> &'static [ScenarioInfo] {
    &[
        ScenarioInfo {
            name: "heartbeat",
            about: "silent partition: detected within HEARTBEAT_IVL+TIMEOUT on both sides, reconnected after repair",
            run: heartbeat::run,
        },
        ScenarioInfo {
            name: "handshake",
            about: "PLAIN and CURVE handshakes under partitions, holds, crashes and bounces; no stuck handshake, bounded reconnects",
            run: handshake::run,
        },
        ScenarioInfo {
            name: "pushpull",
            about: "PUSH->PULL over a flaky link: per-pipe order, no duplicates, every loss in flight at a disconnect",
            run: pushpull::run,
        },
        ScenarioInfo {
            name: "pubsub",
            about: "PUB/SUB with partitioned subscribers: subscriptions replayed, nothing unsubscribed, all delivered after heal",
            run: pubsub::run,
        },
        ScenarioInfo {
            name: "dealer-router",
            about: "DEALER<->ROUTER echo with ROUTER_HANDOVER across partitions: replies to the right peer, in order",
            run: dealer_router::run,
        },
        ScenarioInfo {
            name: "hwm",
            about: "slow consumers: PUSH blocks at HWM with bounded backlog; PUB drops for the slow SUB only, every drop counted",
            run: hwm::run,
        },
        ScenarioInfo {
            name: "req-rep",
            about: "REQ (RELAXED+CORRELATE) -> REP across holds and partitions: no stuck REQ, no reply matched to the wrong request",
            run: req_rep::run,
        },
        ScenarioInfo {
            name: "fanin",
            about: "200-300 PUSH connections into one slow PULL: pipes fill, streams pause; nothing lost, no connection starves",
            run: fanin::run,
        },
        ScenarioInfo {
            name: "linger",
            about: "PUSH closes with LINGER while its peer is away: all delivered if it returns within LINGER, close bounded by LINGER",
            run: linger::run,
        },
        ScenarioInfo {
            name: "monitor",
            about: "PLAIN client and intruder under partitions, holds, crashes: every connection's monitor events form a valid path",
            run: monitor::run,
        },
        ScenarioInfo {
            name: "router-mandatory",
            about: "ROUTER_MANDATORY with DEALERs crashing, returning, partitioned: EHOSTUNREACH exactly when no live pipe",
            run: router_mandatory::run,
        },
        ScenarioInfo {
            name: "inproc-tcp",
            about: "a PULL fed over inproc and over a faulty tcp link: the inproc flow loses nothing, the tcp flow only in flight",
            run: inproc_tcp::run,
        },
    ]
}

/// Runs scenario `name` with `seed`; `None` when there is no such scenario.
pub fn run(name: &str, seed: u64, opts: &SimOptions) -> Option<Outcome> {
    scenarios()
        .iter()
        .find(|s| s.name == name)
        .map(|s| Outcome {
            options: opts.clone(),
            ..(s.run)(seed, opts)
        })
}

/// The simulation, its trace and the scenario's random numbers.
pub(crate) struct Harness {
    pub sim: Sim<'static>,
    pub trace: Trace,
    pub rng: SimRng,
    pub seed: u64,
    /// Set when a host failed or a step errored: the run stops.
    pub broken: bool,
}

impl Harness {
    /// A simulation seeded with `seed`, message latency in `min..=max` ms.
    pub fn new(
        seed: u64,
        min_ms: u64,
        max_ms: u64,
        configure: impl FnOnce(&mut turmoil::Builder),
    ) -> Self {
        let mut b = turmoil::Builder::new();
        b.rng_seed(seed)
            .simulation_duration(Duration::from_secs(3600))
            .tick_duration(Duration::from_millis(1))
            .min_message_latency(Duration::from_millis(min_ms))
            .max_message_latency(Duration::from_millis(max_ms))
            // A fixed epoch: nothing in a run may depend on the wall clock.
            .epoch(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            // Hosts run in a seeded random order each step: more interleavings per seed.
            .enable_random_order();
        configure(&mut b);
        Harness {
            sim: b.build(),
            trace: Trace::new(),
            rng: SimRng::new(seed, 0x5eed),
            seed,
            broken: false,
        }
    }

    pub fn now(&self) -> Duration {
        self.sim.elapsed()
    }

    /// Records a scenario action in the trace.
    pub fn note(&self, text: impl std::fmt::Display) {
        self.trace.at(self.now(), "sim", text);
    }

    /// Steps until simulated time `until`, running `check` after every step.
    pub fn run_until(&mut self, until: Duration, mut check: impl FnMut(&mut Harness)) {
        while !self.broken && self.sim.elapsed() < until {
            if let Err(e) = self.sim.step() {
                let t = self.now();
                self.trace
                    .violation_at(t, "sim", format_args!("host failed: {e}"));
                self.broken = true;
                return;
            }
            check(self);
        }
    }

    /// Finishes: the outcome with `summary`.
    pub fn outcome(self, scenario: &'static str, summary: Vec<String>) -> Outcome {
        Outcome {
            scenario,
            seed: self.seed,
            trace: self.trace.lines(),
            violations: self.trace.violations(),
            summary,
            options: SimOptions::default(),
        }
    }
}

/// During-run check: no connection of `record` has been in its handshake longer than `limit`.
pub(crate) fn check_handshake_bound(h: &Harness, record: &Record, limit: Duration) {
    let now = h.now();
    let stuck: Vec<(u64, Duration)> = record.with(|r| {
        r.in_handshake
            .iter()
            .filter(|(_, &t)| now.saturating_sub(t) > limit)
            .map(|(&n, &t)| (n, t))
            .collect()
    });
    for (n, t) in stuck {
        let host = record.with(|r| r.host.clone());
        h.trace.violation_at(
            now,
            &host,
            format_args!(
                "connection {n} in its handshake since {:?}, longer than {:?}",
                t, limit
            ),
        );
        // Report once.
        record.with(|r| {
            r.in_handshake.remove(&n);
        });
    }
}

/// What [`Ledger::check_flow`] counted.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Flow {
    /// Owed messages that arrived.
    pub delivered: usize,
    /// Owed messages lost in flight at a disconnect (or counted drops).
    pub lost: usize,
    /// Messages that arrived after a later one because the sender had abandoned the
    /// connection they were written to (stale bytes read after a stall).
    pub late: usize,
}

/// Sent and received sequence numbers of the messages of one scenario.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ledger(Rc<RefCell<LedgerInner>>);

#[derive(Debug, Default)]
pub(crate) struct LedgerInner {
    /// Next sequence number to send (survives a bounce of the sender).
    pub next_seq: u64,
    /// seq → (sender host, simulated time it was sent).
    pub sent: BTreeMap<u64, (String, Duration)>,
    /// Receiver host → (seq, arrival time) in arrival order.
    pub received: BTreeMap<String, Vec<(u64, Duration)>>,
    seen: BTreeMap<String, BTreeSet<u64>>,
}

impl Ledger {
    pub fn with<R>(&self, f: impl FnOnce(&mut LedgerInner) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }

    /// Takes the next sequence number.
    pub fn next_seq(&self) -> u64 {
        self.with(|l| {
            let s = l.next_seq;
            l.next_seq += 1;
            s
        })
    }

    /// The socket took message `seq` from `sender`.
    pub fn sent(&self, seq: u64, sender: &str) {
        let t = crate::trace::sim_now();
        self.with(|l| {
            l.sent.insert(seq, (sender.to_string(), t));
        });
    }

    /// The sender of `seq`, if it was sent.
    pub fn sender_of(&self, seq: u64) -> Option<String> {
        self.with(|l| l.sent.get(&seq).map(|(h, _)| h.clone()))
    }

    /// Records an arrival; a duplicate is a violation at once.
    pub fn received(&self, trace: &Trace, receiver: &str, seq: u64) {
        let t = crate::trace::sim_now();
        let dup = self.with(|l| {
            l.received
                .entry(receiver.to_string())
                .or_default()
                .push((seq, t));
            !l.seen.entry(receiver.to_string()).or_default().insert(seq)
        });
        if dup {
            trace.violation(receiver, format_args!("message {seq} delivered twice"));
        }
    }

    /// End-of-run check of the messages `sender` sent to `receiver` (those `owed` selects):
    /// - everything that arrived was sent, in the order it was sent (per-peer order);
    /// - every message that never arrived is explained: a connection (of either host, from
    ///   `disconnects`) ended after it was sent and before the next message got through, or
    ///   within `grace` after (the side that notices a dead connection last may route to it
    ///   meanwhile): lost in flight at a disconnect; or it is one of `policy_drops` drops the
    ///   socket counted (PUB at its HWM).
    ///
    /// - a message arrives after a later one only if a connection of the sender (from
    ///   `sender_cuts`) ended after it was sent and before the later one arrived: bytes
    ///   written to a connection the sender abandoned, read after the stall that made it
    ///   give up (ZeroMQ orders per connection; libzmq behaves the same).
    ///
    /// Returns what it counted.
    #[allow(clippy::too_many_arguments)]
    pub fn check_flow(
        &self,
        trace: &Trace,
        t_end: Duration,
        sender: &str,
        receiver: &str,
        owed: impl Fn(u64) -> bool,
        disconnects: &[Duration],
        sender_cuts: &[Duration],
        grace: Duration,
        policy_drops: u64,
    ) -> Flow {
        let l = self.0.borrow();
        let arrivals: Vec<(u64, Duration)> = l
            .received
            .get(receiver)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|(s, _)| l.sent.get(s).is_none_or(|(h, _)| h == sender))
                    .collect()
            })
            .unwrap_or_default();
        for (s, t) in &arrivals {
            if !l.sent.contains_key(s) {
                trace.violation_at(*t, receiver, format_args!("got message {s} nobody sent"));
            }
        }
        // Order: ZeroMQ orders messages per connection. A sender that abandons a connection
        // (heartbeat timeout during a stall) cannot recall what it already wrote into it; if
        // the receiver has not noticed, it still reads those bytes when the stall ends — after
        // what the sender's next connection delivered meanwhile (libzmq does the same:
        // `sim/tests/libzmq_evidence.rs`). So a message may arrive after a later one only if a
        // connection of the sender ended after it was sent and before the later one arrived.
        let mut late = 0;
        // The highest sequence number so far; below it, an arrival was overtaken.
        let mut highest: Option<(u64, Duration)> = None;
        // The last late arrival and what overtook it: late ones keep their own order.
        let mut last_late: Option<(u64, u64)> = None;
        for (i, &(m, t_m)) in arrivals.iter().enumerate() {
            match highest {
                Some((n, _)) if n >= m => {
                    // The first arrival of anything above m: when m was overtaken.
                    let (over, t_over) = arrivals[..i]
                        .iter()
                        .copied()
                        .find(|(s, _)| *s > m)
                        .unwrap_or((n, t_m));
                    let sent_at = l.sent.get(&m).map(|(_, t)| *t);
                    let abandoned = sent_at.is_some_and(|sent_at| {
                        sender_cuts.iter().any(|d| *d >= sent_at && *d <= t_over)
                    });
                    let in_order = last_late.is_none_or(|(prev, o)| o != over || prev < m);
                    if abandoned && in_order {
                        late += 1;
                        if last_late.is_none_or(|(_, o)| o != over) {
                            trace.at(
                                t_m,
                                receiver,
                                format_args!(
                                    "message {m} from {sender} arrived after {over}: it was sent on a connection {sender} abandoned before {over} arrived (late arrivals follow)"
                                ),
                            );
                        }
                        last_late = Some((m, over));
                    } else {
                        trace.violation_at(
                            t_m,
                            receiver,
                            format_args!(
                                "from {sender}: message {m} arrived after {over} (out of order)"
                            ),
                        );
                        break;
                    }
                }
                _ => highest = Some((m, t_m)),
            }
        }
        let got: BTreeSet<u64> = arrivals.iter().map(|(s, _)| *s).collect();
        let (mut delivered, mut lost, mut unexplained) = (0, 0, Vec::new());
        for (&s, (from, sent_at)) in &l.sent {
            if from != sender || !owed(s) {
                continue;
            }
            if got.contains(&s) {
                delivered += 1;
                continue;
            }
            lost += 1;
            let next = arrivals
                .iter()
                .find(|(n, _)| *n > s)
                .map_or(t_end, |(_, t)| *t);
            if !disconnects
                .iter()
                .any(|d| *d >= *sent_at && *d <= next + grace)
            {
                unexplained.push((s, *sent_at));
            }
        }
        if unexplained.len() as u64 > policy_drops {
            let (s, at) = unexplained[0];
            trace.violation_at(
                t_end,
                receiver,
                format_args!(
                    "{} messages from {sender} never arrived with no disconnect to explain them{} (first: {s}, sent at {at:?})",
                    unexplained.len(),
                    if policy_drops > 0 {
                        format!(" beyond the {policy_drops} drops counted")
                    } else {
                        String::new()
                    }
                ),
            );
        }
        Flow {
            delivered,
            lost,
            late,
        }
    }
}

impl Ledger {
    /// [`Ledger::check_flow`] for a flow where every message is owed and whoever notices a
    /// dead connection first stops routing to it: losses only around the two hosts'
    /// disconnects.
    pub fn check_whole_flow(
        &self,
        trace: &Trace,
        t_end: Duration,
        (sender, sender_rec): (&str, &Record),
        (receiver, receiver_rec): (&str, &Record),
    ) -> Flow {
        let cuts = disconnects(sender_rec, receiver_rec);
        let sender_cuts = sender_rec.with(|r| r.disconnects());
        self.check_flow(
            trace,
            t_end,
            sender,
            receiver,
            |_| true,
            &cuts,
            &sender_cuts,
            Duration::ZERO,
            0,
        )
    }
}

/// The disconnect times of both hosts of a flow.
pub(crate) fn disconnects(a: &Record, b: &Record) -> Vec<Duration> {
    let mut d = a.with(|r| r.disconnects());
    d.extend(b.with(|r| r.disconnects()));
    d.sort();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A ledger where "s" sent 1..=6 at 10 ms apart and "r" got them in `order`, 10 ms apart
    /// from 100 ms.
    fn ledger(order: &[u64]) -> Ledger {
        let l = Ledger::default();
        l.with(|l| {
            for s in 1..=6 {
                l.sent.insert(s, ("s".into(), ms(10 * s)));
            }
            let got: Vec<(u64, Duration)> = order
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, ms(100 + 10 * i as u64)))
                .collect();
            l.received.insert("r".into(), got);
        });
        l
    }

    fn check(order: &[u64], sender_cuts: &[Duration]) -> (Vec<String>, Flow) {
        let trace = Trace::new();
        let flow = ledger(order).check_flow(
            &trace,
            ms(1000),
            "s",
            "r",
            |_| true,
            sender_cuts,
            sender_cuts,
            Duration::ZERO,
            0,
        );
        (trace.violations(), flow)
    }

    #[test]
    fn in_order_passes() {
        let (v, flow) = check(&[1, 2, 3, 4, 5, 6], &[]);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!((flow.delivered, flow.late), (6, 0));
    }

    #[test]
    fn an_inversion_without_a_sender_disconnect_is_a_violation() {
        let (v, _) = check(&[1, 4, 5, 2, 3, 6], &[]);
        assert!(v.iter().any(|v| v.contains("out of order")), "{v:?}");
        // A receiver-side disconnect explains nothing about order.
        let trace = Trace::new();
        ledger(&[1, 4, 5, 2, 3, 6]).check_flow(
            &trace,
            ms(1000),
            "s",
            "r",
            |_| true,
            &[ms(25)],
            &[],
            Duration::ZERO,
            0,
        );
        assert!(!trace.violations().is_empty());
    }

    #[test]
    fn bytes_of_a_connection_the_sender_abandoned_may_arrive_late_in_their_own_order() {
        // 2 and 3 were sent (20, 30 ms) before the sender's connection ended at 35 ms; 4
        // overtook them at 110 ms.
        let (v, flow) = check(&[1, 4, 5, 2, 3, 6], &[ms(35)]);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(flow.late, 2);
        // Not in their own order: a violation.
        let (v, _) = check(&[1, 4, 5, 3, 2, 6], &[ms(35)]);
        assert!(v.iter().any(|v| v.contains("out of order")), "{v:?}");
        // The disconnect came after the overtaking arrival: no excuse.
        let (v, _) = check(&[1, 4, 5, 2, 3, 6], &[ms(115)]);
        assert!(v.iter().any(|v| v.contains("out of order")), "{v:?}");
        // The late message was sent after the disconnect: no excuse.
        let (v, _) = check(&[1, 4, 5, 2, 3, 6], &[ms(15)]);
        assert!(v.iter().any(|v| v.contains("out of order")), "{v:?}");
    }
}
