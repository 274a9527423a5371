//! RECONNECT_STOP: a PUSH client connects to a PULL server that often binds late (so the
//! client's first attempts are refused), crashes and comes back, and whose link is held or
//! partitioned (a handshake then runs past HANDSHAKE_IVL, an established connection past its
//! heartbeat). The client's RECONNECT_STOP is CONN_REFUSED, HANDSHAKE_FAILED or both, by seed.
//! Invariants, from what the client's record says happened on the wire, not from the session's
//! own decisions:
//! - the connecter stops at the first cause its bits name — a refused attempt
//!   (CONN_REFUSED), a connection that ended before its handshake completed (HANDSHAKE_FAILED)
//!   — at that moment, and never without one (a connection lost after its handshake, or an
//!   attempt that failed otherwise, is retried);
//! - after it stops, no connect attempt is made;
//! - without a cause, the client is connected again once the faults are over;
//! - the server receives the messages in order, none twice, and a message that never arrived
//!   was lost around a disconnect or at the stop (the ledger's checks).

use std::time::Duration;

use super::pushpull::{pull_app, push_app, PushPlan};
use super::{disconnects, Harness, Ledger, Outcome, SimOptions};
use crate::record::Record;
use crate::socket::SocketOptions;

const HANDSHAKE_IVL: Duration = Duration::from_millis(300);
const FAULTS_UNTIL: Duration = Duration::from_millis(3000);
const END: Duration = Duration::from_millis(4500);
/// The session stops in the same simulated step as its cause: allow one tick's slack.
const SAME_MOMENT: Duration = Duration::from_millis(1);

pub(crate) fn run(seed: u64, opts: &SimOptions) -> Outcome {
    let mut h = Harness::new(seed, 1, 20, |_| {});
    let trace = h.trace.clone();
    let ledger = Ledger::default();
    let client_rec = Record::new("client");
    let server_rec = Record::new("server");
    let stop = 1 + (seed % 3) as i32;
    let base = SocketOptions {
        handshake_ivl: Some(HANDSHAKE_IVL),
        reconnect_ivl: Some(Duration::from_millis(50)),
        reconnect_ivl_max: Duration::from_millis(200),
        heartbeat: zeroring_transports::zmtp::HeartbeatConfig {
            interval: Some(Duration::from_millis(100)),
            ttl: Duration::ZERO,
            timeout: Some(Duration::from_millis(300)),
        },
        backoff_seed: seed ^ 0x57,
        ..Default::default()
    };
    // Half the runs bind at once, so the first cause is a later fault's.
    let delay = match h.rng.range(0, 2) {
        0 => Duration::ZERO,
        _ => Duration::from_millis(h.rng.range(20, 400)),
    };
    h.note(format_args!(
        "client RECONNECT_STOP {stop}, server binds after {delay:?}"
    ));
    {
        let (o, t, r, l) = (
            base.clone(),
            trace.clone(),
            server_rec.clone(),
            ledger.clone(),
        );
        // Every incarnation binds after `delay`.
        h.sim.host("server", move || {
            let (o, t, r, l) = (o.clone(), t.clone(), r.clone(), l.clone());
            async move {
                tokio::time::sleep(delay).await;
                pull_app("server", o, t, r, l, None, seed).await
            }
        });
    }
    {
        let o = SocketOptions {
            reconnect_stop: stop,
            ignore_reconnect_stop: opts.ignore_reconnect_stop,
            ..base.clone()
        };
        let (t, r, l) = (trace.clone(), client_rec.clone(), ledger.clone());
        let plan = PushPlan {
            // Then a second to drain before the end.
            stop_at: END - Duration::from_millis(1000),
            gap_ms: (3, 12),
            blocking: false,
        };
        h.sim.client("client", async move {
            push_app("client", "server", o, t, r, l, plan, seed).await
        });
    }
    let mut t = h.rng.range(50, 400);
    while t < FAULTS_UNTIL.as_millis() as u64 {
        h.run_until(Duration::from_millis(t), |_| {});
        let len = Duration::from_millis(h.rng.range(20, 600));
        let now = h.now();
        match h.rng.range(0, 3) {
            0 => {
                h.note(format_args!("crash server for {len:?}"));
                h.sim.crash("server");
                server_rec.with(|r| r.host_stopped(now));
                h.run_until(now + len, |_| {});
                h.note("restart server");
                h.sim.bounce("server");
            }
            1 => {
                h.note(format_args!("hold client-server for {len:?}"));
                h.sim.hold("client", "server");
                h.run_until(now + len, |_| {});
                h.sim.release("client", "server");
            }
            _ => {
                h.note(format_args!("partition client-server for {len:?}"));
                h.sim.partition("client", "server");
                h.run_until(now + len, |_| {});
                h.sim.repair("client", "server");
            }
        }
        t = h.now().as_millis() as u64 + h.rng.range(50, 500);
    }
    h.note("faults over");
    h.run_until(END, |_| {});
    let mut summary = check(&h, &client_rec, stop);
    // What the client queued is lost only around a disconnect, or when its session gave up
    // (the session's pipe goes with it, as libzmq's terminates).
    let mut cuts = disconnects(&client_rec, &server_rec);
    cuts.extend(client_rec.with(|r| r.sessions_closed.clone()));
    cuts.sort();
    let client_cuts = client_rec.with(|r| {
        let mut c = r.disconnects();
        c.extend(r.sessions_closed.iter().copied());
        c
    });
    let end = h.now();
    let flow = ledger.check_flow(
        &trace,
        end,
        "client",
        "server",
        |_| true,
        &cuts,
        &client_cuts,
        Duration::ZERO,
        0,
    );
    summary.push(format!(
        "messages sent {}, delivered {}, lost at a disconnect or the stop {}",
        ledger.with(|l| l.sent.len()),
        flow.delivered,
        flow.lost
    ));
    h.outcome("reconnect-stop", summary)
}

/// Checks the stop against the causes the client's record shows; returns the summary.
fn check(h: &Harness, client: &Record, stop: i32) -> Vec<String> {
    client.with(|r| {
        let refused = r.connect_refusals.first().copied().filter(|_| stop & 1 != 0);
        let lost_in_handshake = r
            .connections
            .values()
            .filter(|c| c.ready_at.is_none())
            .filter_map(|c| c.ended_at)
            .min()
            .filter(|_| stop & 2 != 0);
        let cause = match (refused, lost_in_handshake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (cause, r.sessions_closed.as_slice()) {
            (Some(at), [closed]) if *closed >= at && *closed - at <= SAME_MOMENT => {}
            (Some(at), closed) => h.trace.violation_at(
                h.now(),
                "client",
                format_args!("RECONNECT_STOP {stop}: a cause at {at:?}, but the session closed at {closed:?}"),
            ),
            (None, []) => {}
            (None, closed) => h.trace.violation_at(
                h.now(),
                "client",
                format_args!("RECONNECT_STOP {stop}: the session closed at {closed:?} with no cause"),
            ),
        }
        if let Some(at) = cause {
            let late: Vec<_> = r.connect_attempts.iter().filter(|&&t| t > at).collect();
            if !late.is_empty() {
                h.trace.violation_at(
                    h.now(),
                    "client",
                    format_args!("connect attempts after the stop at {at:?}: {late:?}"),
                );
            }
        } else if r.open_connections().next().is_none() {
            h.trace.violation_at(
                h.now(),
                "client",
                "no cause to stop, yet not connected after the faults",
            );
        }
        vec![format!(
            "RECONNECT_STOP {stop}: {} attempts, {} refused, {} connections ({} ended in their handshake), stopped at {:?}",
            r.connect_attempts.len(),
            r.connect_refusals.len(),
            r.connections.len(),
            r.connections
                .values()
                .filter(|c| c.ready_at.is_none() && c.ended_at.is_some())
                .count(),
            r.sessions_closed.first(),
        )]
    })
}
