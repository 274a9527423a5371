//! Scenarios: hosts, a fault schedule drawn from the seed, and invariants checked during the
//! run (after every simulation step) and at its end.

use std::fmt::Write as _;
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
mod ledger;
mod linger;
mod monitor;
mod pubsub;
mod pushpull;
mod reconnect_stop;
mod req_rep;
mod router_mandatory;

pub(crate) use ledger::{disconnects, Ledger};

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
    /// The connecter ignores RECONNECT_STOP while the check expects it (reconnect-stop only).
    pub ignore_reconnect_stop: bool,
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
            ignore_reconnect_stop: false,
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
        if self.options.ignore_reconnect_stop {
            flags.push_str(" --ignore-reconnect-stop");
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
        ScenarioInfo {
            name: "reconnect-stop",
            about: "RECONNECT_STOP under refusals, crashes, holds: the connecter stops exactly at its first named cause, then never connects",
            run: reconnect_stop::run,
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
