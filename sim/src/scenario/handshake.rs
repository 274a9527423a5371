//! Handshake faults: a PUSH client and a PULL server, both PLAIN (even seeds) or both CURVE (odd
//! seeds), with a ZAP handler that admits the client, whose link is partitioned or held, and
//! whose hosts are crashed and bounced, often just after a connection starts (so mid-greeting,
//! or mid-PLAIN / mid-HELLO..INITIATE). Invariants:
//! - during the run: no connection stays in its handshake longer than HANDSHAKE_IVL;
//! - every failure is one the faults explain (timeout, peer gone, stream cut mid-frame),
//!   never an authentication or protocol error;
//! - reconnect storms are bounded: every reconnect delay within RECONNECT_IVL ..
//!   RECONNECT_IVL_MAX + jitter, and at most 1 s / RECONNECT_IVL + 1 attempts in any second;
//! - after the faults stop, the client is connected again within RECONNECT_IVL_MAX plus a
//!   handshake, and every message queued on a surviving connection arrives, in order.

use std::time::Duration;

use bytes::Bytes;
use zeroring_transports::zmtp::mechanism::curve::CurveSecretKey;
use zeroring_transports::zmtp::{FrameError, HeartbeatConfig, MechanismConfig, ZmtpError};

use super::pushpull::{pull_app, push_app, PushPlan};
use super::{check_handshake_bound, Harness, Ledger, Outcome, SimOptions};
use crate::record::Record;
use crate::socket::SocketOptions;

const HANDSHAKE_IVL: Duration = Duration::from_millis(400);
const RECONNECT_IVL: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_millis(400);
const FAULTS_UNTIL: Duration = Duration::from_millis(6000);
const END: Duration = Duration::from_millis(8500);

#[derive(Clone, Copy, Debug)]
enum Active {
    Partition,
    Hold,
    Crashed,
}

pub(crate) fn run(seed: u64, _opts: &SimOptions) -> Outcome {
    let mut h = Harness::new(seed, 5, 40, |_| {});
    let trace = h.trace.clone();
    let ledger = Ledger::default();
    let client_rec = Record::new("client");
    let server_rec = Record::new("server");
    let base = SocketOptions {
        heartbeat: HeartbeatConfig {
            interval: Some(Duration::from_millis(100)),
            ttl: Duration::ZERO,
            timeout: Some(Duration::from_millis(300)),
        },
        handshake_ivl: Some(HANDSHAKE_IVL),
        reconnect_ivl: Some(RECONNECT_IVL),
        reconnect_ivl_max: RECONNECT_MAX,
        connect_timeout: Some(Duration::from_millis(300)),
        backoff_seed: seed ^ 0x4a,
        ..Default::default()
    };
    let curve = seed % 2 == 1;
    let (server_mech, client_mech, accept) = if curve {
        // Long-term keys from the seed, so a run is reproducible; the short-term keys are
        // random but change no timing.
        let key = |salt: u64| {
            let mut k = [0u8; 32];
            for (i, b) in k.iter_mut().enumerate() {
                *b = (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt).rotate_left(i as u32 * 8)
                    as u8
                    ^ i as u8;
            }
            CurveSecretKey::from_bytes(k)
        };
        let (server_secret, client_secret) = (key(1), key(2));
        let client_public = client_secret.public_key();
        (
            MechanismConfig::CurveServer {
                secret: server_secret.clone(),
            },
            MechanismConfig::CurveClient {
                public: client_public,
                secret: client_secret,
                server: server_secret.public_key(),
            },
            // The ZAP handler admits the client's public key.
            (Bytes::copy_from_slice(&client_public), Bytes::new()),
        )
    } else {
        (
            MechanismConfig::PlainServer,
            MechanismConfig::PlainClient {
                username: Bytes::from_static(b"admin"),
                password: Bytes::from_static(b"secret"),
            },
            (Bytes::from_static(b"admin"), Bytes::from_static(b"secret")),
        )
    };
    let mech_name = if curve { "CURVE" } else { "PLAIN" };
    let server_opts = SocketOptions {
        mechanism: server_mech,
        plain_accept: Some(accept),
        ..base.clone()
    };
    let client_opts = SocketOptions {
        mechanism: client_mech,
        ..base
    };
    {
        let (trace, rec, ledger) = (trace.clone(), server_rec.clone(), ledger.clone());
        h.sim.host("server", move || {
            pull_app(
                "server",
                server_opts.clone(),
                trace.clone(),
                rec.clone(),
                ledger.clone(),
                None,
                seed,
            )
        });
    }
    {
        let (trace, rec, ledger) = (trace.clone(), client_rec.clone(), ledger.clone());
        let plan = PushPlan {
            stop_at: END - Duration::from_millis(500),
            gap_ms: (10, 40),
            blocking: false,
        };
        h.sim.host("client", move || {
            push_app(
                "client",
                "server",
                client_opts.clone(),
                trace.clone(),
                rec.clone(),
                ledger.clone(),
                plan.clone(),
                seed,
            )
        });
    }

    let bound = HANDSHAKE_IVL + Duration::from_millis(5);
    let mut seen_conns = 0u64;
    let mut pending: Option<Duration> = None;
    let mut active: Option<(Active, Duration)> = None;
    let mut next_random = Duration::from_millis(200);
    let (mut mid_greeting, mut mid_plain) = (0u32, 0u32);
    let (crec, srec) = (client_rec.clone(), server_rec.clone());
    h.run_until(FAULTS_UNTIL, |h| {
        check_handshake_bound(h, &crec, bound);
        check_handshake_bound(h, &srec, bound);
        let now = h.now();
        // End the active fault when due.
        if let Some((kind, until)) = active {
            if now >= until {
                match kind {
                    Active::Partition => {
                        h.note("repair");
                        h.sim.repair("client", "server");
                    }
                    Active::Hold => {
                        h.note("release");
                        h.sim.release("client", "server");
                    }
                    Active::Crashed => {
                        h.note("bounce server (restart)");
                        h.sim.bounce("server");
                    }
                }
                active = None;
            }
            return;
        }
        // Aim at handshakes: a new connection on the client arms a fault shortly after it.
        let conns = crec.with(|r| r.next_conn);
        if conns != seen_conns {
            seen_conns = conns;
            if pending.is_none() && h.rng.chance(60) {
                pending = Some(now + Duration::from_millis(h.rng.range(0, 80)));
            }
        }
        let due = pending.is_some_and(|t| now >= t) || now >= next_random;
        if !due {
            return;
        }
        pending = None;
        next_random = now + Duration::from_millis(h.rng.range(300, 900));
        let phases: Vec<&str> = [&crec, &srec]
            .iter()
            .flat_map(|r| r.with(|r| r.handshake_phase.values().copied().collect::<Vec<_>>()))
            .collect();
        if phases.contains(&"greeting") {
            mid_greeting += 1;
        }
        if phases.contains(&"mechanism") {
            mid_plain += 1;
        }
        if !phases.is_empty() {
            h.note(format_args!(
                "fault lands mid-handshake ({})",
                phases.join(", ")
            ));
        }
        let len = Duration::from_millis(h.rng.range(20, 500));
        match h.rng.range(0, 4) {
            0 => {
                h.note(format_args!("partition client-server for {len:?}"));
                h.sim.partition("client", "server");
                active = Some((Active::Partition, now + len));
            }
            1 => {
                h.note(format_args!("hold client-server for {len:?}"));
                h.sim.hold("client", "server");
                active = Some((Active::Hold, now + len));
            }
            2 => {
                h.note(format_args!("crash server for {len:?}"));
                h.sim.crash("server");
                srec.with(|r| r.host_stopped(now));
                active = Some((Active::Crashed, now + len));
            }
            _ => {
                h.note("bounce client");
                h.sim.bounce("client");
                crec.with(|r| r.host_stopped(now));
            }
        }
    });
    if let Some((kind, _)) = active {
        match kind {
            Active::Partition => h.sim.repair("client", "server"),
            Active::Hold => h.sim.release("client", "server"),
            Active::Crashed => h.sim.bounce("server"),
        }
    }
    let healed = h.now();
    h.note("faults over");
    h.run_until(END, |h| {
        check_handshake_bound(h, &crec, bound);
        check_handshake_bound(h, &srec, bound);
    });
    let end = h.now();

    // Only failures the faults explain. A write that fails because the peer already closed
    // or reset the connection (it timed the connection out during a hold, or crashed) ends
    // the stream with no protocol error: the I/O half records the I/O error instead.
    let peer_gone = [
        format!("write failed: {}", std::io::ErrorKind::BrokenPipe),
        format!("write failed: {}", std::io::ErrorKind::ConnectionReset),
        format!("read failed: {}", std::io::ErrorKind::ConnectionReset),
    ];
    let allowed_hs: Vec<String> = [
        ZmtpError::HandshakeTimeout.to_string(),
        ZmtpError::ConnectionClosed.to_string(),
        ZmtpError::Frame(FrameError::Truncated).to_string(),
    ]
    .into_iter()
    .chain(peer_gone.iter().cloned())
    .collect();
    let allowed_close: Vec<String> = [
        ZmtpError::HeartbeatTimeout.to_string(),
        ZmtpError::ConnectionClosed.to_string(),
        ZmtpError::Frame(FrameError::Truncated).to_string(),
    ]
    .into_iter()
    .chain(peer_gone.iter().cloned())
    .collect();
    for rec in [&client_rec, &server_rec] {
        let (host, hs, closes) = rec.with(|r| {
            (
                r.host.clone(),
                r.handshake_failures.clone(),
                r.closes.clone(),
            )
        });
        for (t, e) in hs.iter().filter(|(_, e)| !allowed_hs.contains(e)) {
            trace.violation_at(
                *t,
                &host,
                format_args!("handshake failed with `{e}`, which no fault explains"),
            );
        }
        for (t, e) in closes.iter().filter(|(_, e)| !allowed_close.contains(e)) {
            trace.violation_at(
                *t,
                &host,
                format_args!("connection closed with `{e}`, which no fault explains"),
            );
        }
    }
    // Reconnect storms.
    let (attempts, delays) =
        client_rec.with(|r| (r.connect_attempts.clone(), r.reconnect_delays.clone()));
    let cap = RECONNECT_MAX.max(RECONNECT_IVL) + RECONNECT_IVL;
    for d in &delays {
        if *d < RECONNECT_IVL || *d >= cap {
            trace.violation_at(
                end,
                "client",
                format_args!("reconnect delay {d:?} outside {RECONNECT_IVL:?}..{cap:?}"),
            );
        }
    }
    let per_second = (1000 / RECONNECT_IVL.as_millis() as usize) + 1;
    let mut worst = 0;
    for (i, t) in attempts.iter().enumerate() {
        let n = attempts[i..]
            .iter()
            .take_while(|u| **u < *t + Duration::from_secs(1))
            .count();
        worst = worst.max(n);
        if n > per_second {
            trace.violation_at(
                *t,
                "client",
                format_args!(
                    "{n} connect attempts within 1s from {t:?} (storm; at most {per_second})"
                ),
            );
            break;
        }
    }
    // Recovery after the faults.
    let recover_by =
        healed + RECONNECT_MAX + RECONNECT_IVL + HANDSHAKE_IVL + Duration::from_millis(100);
    let back = client_rec.with(|r| r.open_connections().filter_map(|c| c.ready_at).min());
    match back {
        None => trace.violation_at(end, "client", "not connected at the end"),
        Some(t) if t > recover_by => trace.violation_at(
            t,
            "client",
            format_args!("reconnected at {t:?}, later than {recover_by:?}"),
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
        format!(
            "client: {} connect attempts (worst {worst} in 1s), {} handshakes ok, {} failed",
            attempts.len(),
            client_rec.with(|r| r.handshakes_ok),
            client_rec.with(|r| r.handshake_failures.len())
        ),
        format!(
            "server: {} handshakes ok, {} failed",
            server_rec.with(|r| r.handshakes_ok),
            server_rec.with(|r| r.handshake_failures.len())
        ),
        format!("faults landing mid-greeting: {mid_greeting}, mid-{mech_name}: {mid_plain}"),
        format!(
            "messages delivered {}, lost in flight at disconnects {}, late after a reconnect {}",
            flow.delivered, flow.lost, flow.late
        ),
    ];
    h.outcome("handshake", summary)
}
