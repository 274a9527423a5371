//! Scenarios: hosts, a fault schedule drawn from the seed, and invariants checked during the
//! run (after every simulation step) and at its end.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

use turmoil::Sim;

use crate::pipe::{PipeId, Record};
use crate::rng::SimRng;
use crate::trace::Trace;

mod dealer_router;
mod handshake;
mod heartbeat;
mod hwm;
mod pubsub;
mod pushpull;
mod req_rep;

/// Switches that deliberately break the stand-in patterns, for the tests that prove the
/// simulator can fail. Every switch defaults to correct behaviour.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// SUB replays its subscriptions to every new pipe (libzmq `xsub_t::xattach_pipe`).
    pub replay_subscriptions: bool,
    /// Heartbeats configured on both sides (off: a silent partition goes undetected).
    pub heartbeats: bool,
    /// REQ uses ZMQ_REQ_CORRELATE (off: a late reply can be taken for the current one).
    pub req_correlate: bool,
    /// The PULL side's driver silently loses every 97th message (pushpull only).
    pub lossy_driver: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            replay_subscriptions: true,
            heartbeats: true,
            req_correlate: true,
            lossy_driver: false,
        }
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
        if self.options.lossy_driver {
            flags.push_str(" --lossy-driver");
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
            about: "PLAIN handshakes under partitions, holds, crashes and bounces; no stuck handshake, bounded reconnects",
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

/// During-run check: queues stay within the high-water marks.
pub(crate) fn check_memory(
    h: &Harness,
    record: &Record,
    sndhwm: usize,
    rcvhwm: usize,
    held: usize,
) {
    let (host, o, i, hd) = record.with(|r| {
        (
            r.host.clone(),
            r.max_out_queued,
            r.max_in_queued,
            r.max_held,
        )
    });
    let mut bad = Vec::new();
    if o > sndhwm {
        bad.push(format!("outbound queue reached {o} > SNDHWM {sndhwm}"));
    }
    if i > rcvhwm {
        bad.push(format!("inbound queue reached {i} > RCVHWM {rcvhwm}"));
    }
    if hd > held {
        bad.push(format!("driver held {hd} decoded messages > {held}"));
    }
    if !bad.is_empty() {
        for b in bad {
            h.trace.violation_at(h.now(), &host, b);
        }
        record.with(|r| {
            r.max_out_queued = 0;
            r.max_in_queued = 0;
            r.max_held = 0;
        });
    }
}

/// Sent and received sequence numbers of one flow of messages.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ledger(Rc<RefCell<LedgerInner>>);

#[derive(Debug, Default)]
pub(crate) struct LedgerInner {
    /// Next sequence number to send (survives a bounce of the sender).
    pub next_seq: u64,
    /// seq → (sender host, pipes it was queued on).
    pub routed: BTreeMap<u64, (String, Vec<PipeId>)>,
    /// seq → simulated time it was sent.
    pub routed_at: BTreeMap<u64, Duration>,
    /// Receiver host → seqs in arrival order.
    pub received: BTreeMap<String, Vec<u64>>,
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

    pub fn sent(&self, seq: u64, sender: &str, pipes: Vec<PipeId>) {
        let t = crate::trace::sim_now();
        self.with(|l| {
            l.routed.insert(seq, (sender.to_string(), pipes));
            l.routed_at.insert(seq, t);
        });
    }

    /// A copy holding only the messages `keep` accepts (for flows where some are not owed).
    pub fn filtered(&self, keep: impl Fn(u64) -> bool) -> Ledger {
        let l = self.0.borrow();
        let inner = LedgerInner {
            next_seq: l.next_seq,
            routed: l
                .routed
                .iter()
                .filter(|(s, _)| keep(**s))
                .map(|(s, v)| (*s, v.clone()))
                .collect(),
            routed_at: l.routed_at.clone(),
            received: l
                .received
                .iter()
                .map(|(h, v)| (h.clone(), v.iter().copied().filter(|s| keep(*s)).collect()))
                .collect(),
            seen: BTreeMap::new(),
        };
        Ledger(Rc::new(RefCell::new(inner)))
    }

    /// Records an arrival; a duplicate is a violation at once.
    pub fn received(&self, trace: &Trace, receiver: &str, seq: u64) {
        let dup = self.with(|l| {
            l.received
                .entry(receiver.to_string())
                .or_default()
                .push(seq);
            !l.seen.entry(receiver.to_string()).or_default().insert(seq)
        });
        if dup {
            trace.violation(receiver, format_args!("message {seq} delivered twice"));
        }
    }

    /// End-of-run check of the flow from `sender` (its record) to `receiver`:
    /// - every message `receiver` got was queued on one of the sender's pipes to it;
    /// - on each such pipe, what arrived is a prefix of what was queued, in order;
    /// - a pipe still open at the end delivered everything queued on it (exactly once);
    /// - so every loss is a suffix of a pipe whose connection ended: in flight at a disconnect.
    ///
    /// Returns (delivered, lost) counts.
    pub fn check_flow(
        &self,
        trace: &Trace,
        t: Duration,
        sender: &str,
        sender_record: &Record,
        receiver: &str,
    ) -> (usize, usize) {
        let pipes = sender_record.with(|r| r.pipes.clone());
        let l = self.0.borrow();
        let got = l.received.get(receiver).cloned().unwrap_or_default();
        let mut per_pipe: BTreeMap<PipeId, Vec<u64>> = BTreeMap::new();
        for (&seq, (from, routes)) in &l.routed {
            if from != sender {
                continue;
            }
            for p in routes {
                if pipes.get(p).is_some_and(|pr| pr.peer_host == receiver) {
                    per_pipe.entry(*p).or_default().push(seq);
                }
            }
        }
        let mut where_routed: BTreeMap<u64, PipeId> = BTreeMap::new();
        for (p, seqs) in &per_pipe {
            for &s in seqs {
                where_routed.entry(s).or_insert(*p);
            }
        }
        let mut arrived: BTreeMap<PipeId, Vec<u64>> = BTreeMap::new();
        for &s in &got {
            if l.routed.get(&s).is_some_and(|(from, _)| from != sender) {
                // Another sender's message: its own flow checks it.
                continue;
            }
            match where_routed.get(&s) {
                Some(p) => arrived.entry(*p).or_default().push(s),
                None => trace.violation_at(
                    t,
                    receiver,
                    format_args!("got message {s} that {sender} never queued for it"),
                ),
            }
        }
        let (mut delivered, mut lost) = (0, 0);
        for (p, queued) in &per_pipe {
            let a = arrived.get(p).map(Vec::as_slice).unwrap_or(&[]);
            delivered += a.len();
            lost += queued.len().saturating_sub(a.len());
            if a.len() > queued.len() || a != &queued[..a.len()] {
                let first_bad = a
                    .iter()
                    .zip(queued)
                    .position(|(x, y)| x != y)
                    .unwrap_or(queued.len());
                trace.violation_at(
                    t,
                    receiver,
                    format_args!(
                        "{p} from {sender}: arrivals are not the queued order (first difference at #{first_bad}: got {:?}, queued {:?})",
                        a.get(first_bad),
                        queued.get(first_bad)
                    ),
                );
                continue;
            }
            let open = pipes.get(p).is_some_and(|pr| pr.terminated_at.is_none());
            if open && a.len() < queued.len() {
                trace.violation_at(
                    t,
                    receiver,
                    format_args!(
                        "{p} from {sender} is still connected but {} of {} queued messages never arrived (first missing {})",
                        queued.len() - a.len(),
                        queued.len(),
                        queued[a.len()]
                    ),
                );
            }
        }
        (delivered, lost)
    }
}
