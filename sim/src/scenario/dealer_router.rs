//! DEALER↔ROUTER echo across random link failures, partitions and holds, with two dealers and ROUTER_HANDOVER: a
//! dealer that reconnects with the same routing id takes its id over even while the router
//! still holds the old, half-open connection. Invariants:
//! - a dealer only ever receives replies to its own requests (no reply to the wrong peer);
//! - requests and replies: no duplicates, per-peer order, every loss in flight at a
//!   disconnect (message flow);
//! - after the heal both dealers are connected and their last requests are answered.

use std::time::Duration;

use bytes::Bytes;
use zeroring_transports::zmtp::HeartbeatConfig;

use super::pushpull::{message, seq_of, PORT};
use zeroring::options::num;
use zeroring::SocketType;

use super::{disconnects, flaky_link, Harness, Ledger, Outcome, SimOptions};
use crate::record::Record;
use crate::rng::SimRng;
use crate::socket::{SimSocket, SocketOptions};
use crate::trace::{sim_now, Trace};

const HEAL: Duration = Duration::from_millis(4000);
const STOP: Duration = Duration::from_millis(6000);
const END: Duration = Duration::from_millis(6500);

async fn router_app(
    opts: SocketOptions,
    trace: Trace,
    record: Record,
    requests: Ledger,
    replies: Ledger,
) -> turmoil::Result {
    let sock = SimSocket::new("router", SocketType::Router, opts, trace.clone(), record);
    sock.bind(PORT).await?;
    loop {
        let msg = sock.recv().await;
        let Some(seq) = seq_of(&msg) else {
            trace.violation("router", "a request without a sequence number");
            continue;
        };
        requests.received(&trace, "router", seq);
        // Echo: [routing id, payload].
        match sock.send(msg) {
            Ok(()) => replies.sent(seq, "router"),
            Err(e) => trace.event("router", format_args!("reply {seq} not sent: {e:?}")),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn dealer_app(
    host: &'static str,
    opts: SocketOptions,
    trace: Trace,
    record: Record,
    requests: Ledger,
    replies: Ledger,
    seed: u64,
) -> turmoil::Result {
    let sock = SimSocket::new(host, SocketType::Dealer, opts, trace.clone(), record);
    sock.connect("router", PORT);
    let rx = sock.clone();
    let (rt, rq, rp) = (trace.clone(), requests.clone(), replies.clone());
    tokio::task::spawn_local(async move {
        loop {
            let msg = rx.recv().await;
            let Some(seq) = seq_of(&msg) else {
                rt.violation(host, "a reply without a sequence number");
                continue;
            };
            let owner = rq.sender_of(seq);
            if owner.as_deref() != Some(host) {
                rt.violation(
                    host,
                    format_args!("reply {seq} belongs to {owner:?}: matched to the wrong peer"),
                );
            }
            rp.received(&rt, host, seq);
        }
    });
    let mut rng = SimRng::new(seed, host.len() as u64 + requests.with(|l| l.next_seq));
    while sim_now() < STOP {
        let seq = requests.next_seq();
        match sock.send(message(seq)) {
            Ok(()) => requests.sent(seq, host),
            Err(e) => trace.event(host, format_args!("request {seq} not sent: {e:?}")),
        }
        tokio::time::sleep(Duration::from_millis(rng.range(5, 25))).await;
    }
    std::future::pending::<()>().await;
    Ok(())
}

pub(crate) fn run(seed: u64, _opts: &SimOptions) -> Outcome {
    let mut h = Harness::new(seed, 1, 5 + seed % 25, |b| {
        b.fail_rate(0.001).repair_rate(0.2);
    });
    let trace = h.trace.clone();
    let requests = Ledger::default();
    let replies = Ledger::default();
    let router_rec = Record::new("router");
    let dealers = ["dealer1", "dealer2"];
    let dealer_recs = [Record::new("dealer1"), Record::new("dealer2")];
    // The router's side notices late, so a reconnecting dealer meets its old pipe.
    let base = flaky_link(Duration::from_millis(500), seed ^ 0xde);
    {
        let router_opts = SocketOptions {
            heartbeat: HeartbeatConfig {
                interval: Some(Duration::from_millis(400)),
                ttl: Duration::ZERO,
                timeout: Some(Duration::from_millis(1200)),
            },
            int_options: vec![(num::ROUTER_HANDOVER, 1)],
            ..base.clone()
        };
        let (trace, rec, rq, rp) = (
            trace.clone(),
            router_rec.clone(),
            requests.clone(),
            replies.clone(),
        );
        h.sim.host("router", move || {
            router_app(
                router_opts.clone(),
                trace.clone(),
                rec.clone(),
                rq.clone(),
                rp.clone(),
            )
        });
    }
    for (i, host) in dealers.into_iter().enumerate() {
        let opts = SocketOptions {
            routing_id: Bytes::from(format!("D{}", i + 1)),
            backoff_seed: seed ^ (0xd1 + i as u64),
            ..base.clone()
        };
        let (trace, rec, rq, rp) = (
            trace.clone(),
            dealer_recs[i].clone(),
            requests.clone(),
            replies.clone(),
        );
        h.sim.host(host, move || {
            dealer_app(
                host,
                opts.clone(),
                trace.clone(),
                rec.clone(),
                rq.clone(),
                rp.clone(),
                seed,
            )
        });
    }
    let mut faults = Vec::new();
    for d in dealers {
        let mut t = h.rng.range(200, 700);
        while t < HEAL.as_millis() as u64 - 100 {
            let len = h.rng.range(100, 900).min(HEAL.as_millis() as u64 - t);
            let hold = h.rng.chance(30);
            faults.push((t, d, true, hold, len));
            faults.push((t + len, d, false, hold, 0));
            t += len + h.rng.range(200, 1200);
        }
    }
    faults.sort_by_key(|f| (f.0, f.1, !f.2));
    for (at, d, start, hold, len) in faults {
        h.run_until(Duration::from_millis(at), |_| {});
        match (start, hold) {
            (true, false) => {
                h.note(format_args!("partition router-{d} for {len}ms"));
                h.sim.partition("router", d);
            }
            (true, true) => {
                h.note(format_args!("hold router-{d} for {len}ms"));
                h.sim.hold("router", d);
            }
            (false, false) => {
                h.note(format_args!("repair router-{d}"));
                h.sim.repair("router", d);
            }
            (false, true) => {
                h.note(format_args!("release router-{d}"));
                h.sim.release("router", d);
            }
        }
    }
    h.run_until(HEAL, |_| {});
    h.note("heal: random failures off");
    h.sim.set_fail_rate(0.0);
    for d in dealers {
        h.sim.repair("router", d);
        h.sim.release("router", d);
    }
    h.run_until(END, |_| {});
    let end = h.now();
    let mut summary = Vec::new();
    // The router notices a dead connection only after its heartbeat timeout; until then it
    // routes replies for a reconnected dealer to the old connection (libzmq does the same).
    let grace = Duration::from_millis(400 + 1200);
    for (i, d) in dealers.into_iter().enumerate() {
        let cuts = disconnects(&dealer_recs[i], &router_rec);
        let dealer_cuts = dealer_recs[i].with(|r| r.disconnects());
        let router_cuts = router_rec.with(|r| r.disconnects_with(d));
        let rq = requests.check_flow(
            &trace,
            end,
            d,
            "router",
            |_| true,
            &cuts,
            &dealer_cuts,
            grace,
            0,
        );
        let (rq_ok, rq_lost) = (rq.delivered, rq.lost);
        let mine = |s: u64| requests.sender_of(s).as_deref() == Some(d);
        let rp = replies.check_flow(
            &trace,
            end,
            "router",
            d,
            mine,
            &cuts,
            &router_cuts,
            grace,
            0,
        );
        let (rp_ok, rp_lost) = (rp.delivered, rp.lost);
        if dealer_recs[i].with(|r| r.open_connections().count() == 0) {
            trace.violation_at(end, d, "not connected after the heal");
        }
        summary.push(format!(
            "{d}: requests delivered {rq_ok} lost {rq_lost}; replies delivered {rp_ok} lost {rp_lost}; connections {}",
            dealer_recs[i].with(|r| r.connections.len())
        ));
    }
    let stats = router_rec.with(|r| r.stats);
    summary.push(format!(
        "router: unroutable replies dropped {}, connections {}",
        stats.dropped_unroutable,
        router_rec.with(|r| r.connections.len())
    ));
    h.outcome("dealer-router", summary)
}
