//! The monitor: a PLAIN PULL server, a PUSH client with the right password and an intruder
//! with a wrong one, under partitions, holds, crashes and bounces drawn from the seed. Every
//! connecter's and every accepted connection's monitor events (as `zmq_socket_monitor` would
//! publish them) must form a valid path, libzmq's:
//!
//! ```text
//! connecter:  ( CONNECT_DELAYED ( CLOSED CONNECT_RETRIED
//!                               | CONNECTED [HANDSHAKE_SUCCEEDED | HANDSHAKE_FAILED_*]
//!                                 DISCONNECTED CONNECT_RETRIED ) )*
//! accepted:   ACCEPTED [HANDSHAKE_SUCCEEDED | HANDSHAKE_FAILED_*] DISCONNECTED
//! ```
//!
//! cut anywhere by the end of the run or a stop of the host. The intruder must see
//! HANDSHAKE_FAILED_AUTH, and no path may report success for it. The broken variant
//! (`--skip-disconnected`) loses DISCONNECTED events.

use std::time::Duration;

use bytes::Bytes;
use zeroring_transports::monitor::MonitorEvent;
use zeroring_transports::zmtp::MechanismConfig;

use super::pushpull::{pull_app, push_app, PushPlan};
use super::{flaky_link, Harness, Ledger, Outcome, SimOptions};
use crate::record::Record;
use crate::socket::SocketOptions;
use crate::trace::Trace;

const FAULTS_UNTIL: Duration = Duration::from_millis(4000);
const END: Duration = Duration::from_millis(5500);

/// Where a path is, after the events so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    /// Before the first event, or a connecter after CONNECT_RETRIED.
    Idle,
    /// CONNECT_DELAYED: an attempt in flight.
    Attempt,
    /// CLOSED after CONNECT_DELAYED: the attempt failed and its descriptor is closed.
    AttemptClosed,
    /// CONNECTED or ACCEPTED: a connection in its handshake.
    Handshake,
    /// The handshake succeeded.
    Ready,
    /// The handshake failed; DISCONNECTED follows.
    Failed,
    /// DISCONNECTED: a connecter retries next; an accepted path is over.
    Down,
}

fn handshake_failed(e: MonitorEvent) -> bool {
    matches!(
        e,
        MonitorEvent::HandshakeFailedNoDetail
            | MonitorEvent::HandshakeFailedProtocol
            | MonitorEvent::HandshakeFailedAuth
    )
}

/// The next state, or `None` when `e` cannot follow `at`.
fn step(connecter: bool, at: At, e: MonitorEvent) -> Option<At> {
    use MonitorEvent as M;
    Some(match (at, e) {
        (At::Idle, M::ConnectDelayed) if connecter => At::Attempt,
        (At::Idle, M::Accepted) if !connecter => At::Handshake,
        (At::Attempt, M::Connected) => At::Handshake,
        (At::Attempt, M::Closed) => At::AttemptClosed,
        (At::AttemptClosed, M::ConnectRetried) => At::Idle,
        (At::Handshake, M::HandshakeSucceeded) => At::Ready,
        (At::Handshake, e) if handshake_failed(e) => At::Failed,
        (At::Handshake | At::Ready | At::Failed, M::Disconnected) => At::Down,
        (At::Down, M::ConnectRetried) if connecter => At::Idle,
        _ => return None,
    })
}

/// Checks every path of `record`; returns how many events it checked.
pub(crate) fn check_paths(trace: &Trace, record: &Record) -> usize {
    let (host, paths, stops) =
        record.with(|r| (r.host.clone(), r.monitor.clone(), r.stops.clone()));
    let mut checked = 0;
    for (path, events) in paths {
        let connecter = path.contains(" connect ");
        let mut at = At::Idle;
        let mut last: Option<Duration> = None;
        for (t, e) in events {
            checked += 1;
            if last.is_some_and(|l| stops.iter().any(|s| *s > l && *s < t)) {
                // The host stopped in between: the socket of that path is gone.
                trace.violation_at(
                    t,
                    &host,
                    format_args!("{path}: {e:?} after its host stopped"),
                );
                break;
            }
            last = Some(t);
            match step(connecter, at, e) {
                Some(next) => at = next,
                None => {
                    trace.violation_at(
                        t,
                        &host,
                        format_args!("{path}: {e:?} cannot follow {at:?} (invalid monitor path)"),
                    );
                    break;
                }
            }
        }
    }
    checked
}

pub(crate) fn run(seed: u64, opts: &SimOptions) -> Outcome {
    let mut h = Harness::new(seed, 1, 20, |_| {});
    let trace = h.trace.clone();
    let ledger = Ledger::default();
    let recs = [
        Record::new("server"),
        Record::new("client"),
        Record::new("intruder"),
    ];
    let base = SocketOptions {
        skip_disconnected: opts.skip_disconnected,
        ..flaky_link(Duration::from_millis(400), seed ^ 0x3c)
    };
    let user = Bytes::from_static(b"admin");
    let server_opts = SocketOptions {
        mechanism: MechanismConfig::PlainServer,
        plain_accept: Some((user.clone(), Bytes::from_static(b"secret"))),
        ..base.clone()
    };
    let client = |password: &'static [u8], salt: u64| SocketOptions {
        mechanism: MechanismConfig::PlainClient {
            username: user.clone(),
            password: Bytes::from_static(password),
        },
        backoff_seed: seed ^ salt,
        ..base.clone()
    };
    {
        let (t, r, l) = (trace.clone(), recs[0].clone(), ledger.clone());
        h.sim.host("server", move || {
            pull_app(
                "server",
                server_opts.clone(),
                t.clone(),
                r.clone(),
                l.clone(),
                None,
                seed,
            )
        });
    }
    for (i, (host, o)) in [
        ("client", client(b"secret", 1)),
        ("intruder", client(b"wrong", 2)),
    ]
    .into_iter()
    .enumerate()
    {
        let (t, r, l) = (trace.clone(), recs[i + 1].clone(), ledger.clone());
        let plan = PushPlan {
            stop_at: END - Duration::from_millis(300),
            gap_ms: (20, 60),
            blocking: false,
        };
        h.sim.host(host, move || {
            push_app(
                host,
                "server",
                o.clone(),
                t.clone(),
                r.clone(),
                l.clone(),
                plan.clone(),
                seed,
            )
        });
    }
    let mut t = h.rng.range(100, 400);
    while t < FAULTS_UNTIL.as_millis() as u64 {
        h.run_until(Duration::from_millis(t), |_| {});
        let len = h.rng.range(30, 700);
        let now = h.now();
        match h.rng.range(0, 5) {
            0 => {
                h.note(format_args!("partition client-server for {len}ms"));
                h.sim.partition("client", "server");
                h.run_until(now + Duration::from_millis(len), |_| {});
                h.sim.repair("client", "server");
            }
            1 => {
                h.note(format_args!("hold client-server for {len}ms"));
                h.sim.hold("client", "server");
                h.run_until(now + Duration::from_millis(len), |_| {});
                h.sim.release("client", "server");
            }
            2 => {
                h.note(format_args!("crash server for {len}ms"));
                h.sim.crash("server");
                recs[0].with(|r| r.host_stopped(now));
                h.run_until(now + Duration::from_millis(len), |_| {});
                h.sim.bounce("server");
            }
            3 => {
                h.note("bounce client");
                h.sim.bounce("client");
                recs[1].with(|r| r.host_stopped(now));
            }
            _ => {}
        }
        t = h.now().as_millis() as u64 + h.rng.range(100, 600);
    }
    h.note("faults over");
    h.run_until(END, |_| {});
    let checked: usize = recs.iter().map(|r| check_paths(&h.trace, r)).sum();
    let t_end = h.now();
    let intruder = recs[2].with(|r| r.monitor.clone());
    let saw_auth_failure = intruder
        .values()
        .flatten()
        .any(|(_, e)| *e == MonitorEvent::HandshakeFailedAuth);
    if intruder
        .values()
        .flatten()
        .any(|(_, e)| *e == MonitorEvent::HandshakeSucceeded)
    {
        h.trace.violation_at(
            t_end,
            "intruder",
            "a handshake with the wrong password succeeded",
        );
    }
    let intruder_attempts = recs[2].with(|r| r.connect_attempts.len());
    if !saw_auth_failure && intruder_attempts > 3 {
        h.trace.violation_at(
            t_end,
            "intruder",
            format_args!("{intruder_attempts} attempts and no HANDSHAKE_FAILED_AUTH"),
        );
    }
    let paths: usize = recs.iter().map(|r| r.with(|r| r.monitor.len())).sum();
    let summary = vec![format!(
        "{paths} monitor paths, {checked} events checked; client connections {}, intruder attempts {intruder_attempts}",
        recs[1].with(|r| r.connections.len())
    )];
    h.outcome("monitor", summary)
}
