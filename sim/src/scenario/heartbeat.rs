//! A silent partition: turmoil drops every segment and never reports an error, so only
//! heartbeats can notice. Invariants: both sides close the connection with a heartbeat timeout
//! no earlier than the partition and no later than HEARTBEAT_IVL + HEARTBEAT_TIMEOUT after it;
//! the connecter reconnects within RECONNECT_IVL_MAX (+ jitter) after the repair; messages sent
//! on the new connection all arrive.

use std::time::Duration;

use zeroring_transports::zmtp::{HeartbeatConfig, ZmtpError};

use super::pushpull::{pull_app, push_app, PushPlan};
use super::{check_handshake_bound, Harness, Ledger, Outcome, SimOptions};
use crate::record::Record;
use crate::socket::SocketOptions;

const IVL: Duration = Duration::from_millis(100);
const TIMEOUT: Duration = Duration::from_millis(300);
const RECONNECT_IVL: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_millis(1000);
/// Timer granularity of the simulation (1 ms ticks) plus one tick of scheduling.
const SLACK: Duration = Duration::from_millis(3);

pub(crate) fn run(seed: u64, opts: &SimOptions) -> Outcome {
    let mut h = Harness::new(seed, 1, 10, |_| {});
    let trace = h.trace.clone();
    let ledger = Ledger::default();
    let client_rec = Record::new("client");
    let server_rec = Record::new("server");
    let heartbeat = if opts.heartbeats {
        HeartbeatConfig {
            interval: Some(IVL),
            ttl: Duration::ZERO,
            timeout: Some(TIMEOUT),
        }
    } else {
        HeartbeatConfig::default()
    };
    let base = SocketOptions {
        heartbeat,
        handshake_ivl: Some(Duration::from_millis(500)),
        reconnect_ivl: Some(RECONNECT_IVL),
        reconnect_ivl_max: RECONNECT_MAX,
        backoff_seed: seed ^ 0x4b,
        ..Default::default()
    };
    let t_p = Duration::from_millis(h.rng.range(1000, 2000));
    let t_r = t_p + Duration::from_millis(h.rng.range(600, 1500));
    let stop = t_r + RECONNECT_MAX + Duration::from_millis(1200);
    let end = stop + Duration::from_millis(300);
    {
        let (trace, rec, ledger, opts) = (
            trace.clone(),
            server_rec.clone(),
            ledger.clone(),
            base.clone(),
        );
        h.sim.host("server", move || {
            pull_app(
                "server",
                opts.clone(),
                trace.clone(),
                rec.clone(),
                ledger.clone(),
                None,
                seed,
            )
        });
    }
    {
        let (trace, rec, ledger, opts) = (
            trace.clone(),
            client_rec.clone(),
            ledger.clone(),
            base.clone(),
        );
        let plan = PushPlan {
            stop_at: stop,
            gap_ms: (40, 60),
            blocking: false,
        };
        h.sim.host("client", move || {
            push_app(
                "client",
                "server",
                opts.clone(),
                trace.clone(),
                rec.clone(),
                ledger.clone(),
                plan.clone(),
                seed,
            )
        });
    }
    let bound = Duration::from_millis(500) + SLACK;
    h.run_until(t_p, |h| {
        check_handshake_bound(h, &client_rec, bound);
        check_handshake_bound(h, &server_rec, bound);
    });
    h.note(format_args!("silent partition client-server"));
    h.sim.partition("client", "server");
    h.run_until(t_r, |_| {});
    h.note("repair client-server");
    h.sim.repair("client", "server");
    h.run_until(end, |h| {
        check_handshake_bound(h, &client_rec, bound);
        check_handshake_bound(h, &server_rec, bound);
    });

    let hb = ZmtpError::HeartbeatTimeout.to_string();
    let detect_by = t_p + IVL + TIMEOUT + SLACK;
    for rec in [&client_rec, &server_rec] {
        let (host, closes) = rec.with(|r| (r.host.clone(), r.closes.clone()));
        if let Some((t, e)) = closes.iter().find(|(t, _)| *t < t_p) {
            trace.violation_at(
                *t,
                &host,
                format_args!("connection closed before the partition: {e}"),
            );
        }
        match closes.iter().find(|(t, _)| *t >= t_p) {
            None => trace.violation_at(end, &host, "the silent partition was never detected"),
            Some((t, e)) => {
                if *t > detect_by || *e != hb {
                    trace.violation_at(
                        *t,
                        &host,
                        format_args!("partition at {t_p:?} detected at {t:?} by `{e}`; wanted a heartbeat timeout by {detect_by:?}"),
                    );
                }
            }
        }
    }
    // Reconnected after the repair, within RECONNECT_IVL_MAX plus jitter and a handshake.
    let reconnect_by = t_r + RECONNECT_MAX + RECONNECT_IVL + Duration::from_millis(100);
    let reattached = client_rec.with(|r| {
        r.connections
            .values()
            .filter_map(|c| c.ready_at)
            .filter(|t| *t >= t_r)
            .min()
    });
    match reattached {
        None => trace.violation_at(end, "client", "never reconnected after the repair"),
        Some(t) if t > reconnect_by => trace.violation_at(
            t,
            "client",
            format_args!("reconnected at {t:?}, later than {reconnect_by:?}"),
        ),
        Some(_) => {}
    }
    let flow = ledger.check_whole_flow(
        &trace,
        end,
        ("client", &client_rec),
        ("server", &server_rec),
    );
    let summary = vec![
        format!("partition {t_p:?}..{t_r:?}; heartbeat ivl {IVL:?} timeout {TIMEOUT:?}"),
        format!("client closes {:?}", client_rec.with(|r| r.closes.clone())),
        format!("server closes {:?}", server_rec.with(|r| r.closes.clone())),
        format!(
            "client connect attempts {}, reconnected at {reattached:?}",
            client_rec.with(|r| r.connect_attempts.len())
        ),
        format!(
            "messages delivered {}, lost in flight at disconnects {}, late after a reconnect {}",
            flow.delivered, flow.lost, flow.late
        ),
    ];
    h.outcome("heartbeat", summary)
}
