//! ROUTER_MANDATORY with peers leaving and returning: a ROUTER (ROUTER_MANDATORY,
//! ROUTER_HANDOVER) sends to three DEALERs by routing id, and to one id that never connects,
//! while the DEALERs crash, come back, are partitioned and held. Invariant, checked at every
//! send: the send fails with EHOSTUNREACH exactly when libzmq's would — when the ROUTER has no
//! live pipe for that id, i.e. the peer's latest connection whose handshake succeeded (with
//! ROUTER_HANDOVER it takes the id over from an older one, whose pipe closes) has ended, or
//! there is none (as the ROUTER's own record of its connections says); with a live pipe it
//! succeeds or says EAGAIN (the pipe is at its HWM). The broken variant
//! (`--no-mandatory`) runs the ROUTER without ROUTER_MANDATORY, which drops silently.

use std::time::Duration;

use bytes::Bytes;
use zeroring::options::num;
use zeroring::{Error, SocketType};

use super::pushpull::PORT;
use super::{flaky_link, Harness, Outcome, SimOptions};
use crate::record::Record;
use crate::socket::{SimSocket, SocketOptions};
use crate::trace::Trace;

const DEALERS: [&str; 3] = ["d1", "d2", "d3"];
const FAULTS_UNTIL: Duration = Duration::from_millis(4000);
const END: Duration = Duration::from_millis(5500);

#[derive(Debug, Default)]
struct Counts {
    sent: u64,
    unreachable: u64,
    again: u64,
}

async fn router_app(
    opts: SocketOptions,
    trace: Trace,
    record: Record,
    counts: std::rc::Rc<std::cell::RefCell<Counts>>,
) -> turmoil::Result {
    let sock = SimSocket::new(
        "router",
        SocketType::Router,
        opts,
        trace.clone(),
        record.clone(),
    );
    sock.bind(PORT).await?;
    let mut n = 0u64;
    loop {
        for id in DEALERS.iter().chain(&["ghost"]) {
            n += 1;
            let r = sock.send(vec![
                Bytes::from_static(id.as_bytes()),
                Bytes::copy_from_slice(&n.to_be_bytes()),
            ]);
            // What libzmq's ROUTER knows: a pipe per peer from its handshake to its end, and
            // with ROUTER_HANDOVER the id belongs to the peer's latest handshake (an older
            // connection still open lost its pipe to it).
            let live = record.with(|r| {
                r.connections
                    .values()
                    .filter(|c| c.peer_host == *id && c.ready_seq.is_some())
                    .max_by_key(|c| c.ready_seq)
                    .is_some_and(|c| c.ended_at.is_none())
            });
            let mut c = counts.borrow_mut();
            match (r, live) {
                (Ok(()), true) => c.sent += 1,
                (Err(Error::EAGAIN), true) => c.again += 1,
                (Err(Error::EHOSTUNREACH), false) => c.unreachable += 1,
                (r, live) => trace.violation(
                    "router",
                    format_args!(
                        "send to {id}: {r:?}, but the peer {} (libzmq: {})",
                        if live {
                            "has a live pipe"
                        } else {
                            "has no live pipe"
                        },
                        if live { "Ok or EAGAIN" } else { "EHOSTUNREACH" }
                    ),
                ),
            }
        }
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
}

async fn dealer_app(
    host: &'static str,
    opts: SocketOptions,
    trace: Trace,
    record: Record,
) -> turmoil::Result {
    let opts = SocketOptions {
        routing_id: Bytes::from_static(host.as_bytes()),
        ..opts
    };
    let sock = SimSocket::new(host, SocketType::Dealer, opts, trace, record);
    sock.connect("router", PORT);
    loop {
        let _ = sock.recv().await;
    }
}

pub(crate) fn run(seed: u64, opts: &SimOptions) -> Outcome {
    let mut h = Harness::new(seed, 1, 15, |_| {});
    let trace = h.trace.clone();
    let base = flaky_link(Duration::from_millis(400), seed ^ 0x5a);
    let router_rec = Record::new("router");
    let recs: Vec<Record> = DEALERS.iter().map(|d| Record::new(d)).collect();
    let counts = std::rc::Rc::new(std::cell::RefCell::new(Counts::default()));
    {
        let router_opts = SocketOptions {
            int_options: vec![
                (num::ROUTER_MANDATORY, !opts.no_mandatory as i32),
                (num::ROUTER_HANDOVER, 1),
            ],
            ..base.clone()
        };
        let (t, r, c) = (trace.clone(), router_rec.clone(), counts.clone());
        h.sim.host("router", move || {
            router_app(router_opts.clone(), t.clone(), r.clone(), c.clone())
        });
    }
    for (i, d) in DEALERS.iter().enumerate() {
        let o = SocketOptions {
            backoff_seed: seed ^ (i as u64 + 1),
            ..base.clone()
        };
        let (t, r) = (trace.clone(), recs[i].clone());
        h.sim
            .host(*d, move || dealer_app(d, o.clone(), t.clone(), r.clone()));
    }
    let mut t = h.rng.range(100, 300);
    while t < FAULTS_UNTIL.as_millis() as u64 {
        h.run_until(Duration::from_millis(t), |_| {});
        let i = h.rng.range(0, DEALERS.len() as u64) as usize;
        let d = DEALERS[i];
        let len = Duration::from_millis(h.rng.range(30, 800));
        let now = h.now();
        match h.rng.range(0, 4) {
            0 => {
                h.note(format_args!("crash {d} for {len:?}"));
                h.sim.crash(d);
                recs[i].with(|r| r.host_stopped(now));
                h.run_until(now + len, |_| {});
                h.note(format_args!("restart {d}"));
                h.sim.bounce(d);
            }
            1 => {
                h.note(format_args!("bounce {d}"));
                h.sim.bounce(d);
                recs[i].with(|r| r.host_stopped(now));
            }
            2 => {
                h.note(format_args!("partition router-{d} for {len:?}"));
                h.sim.partition("router", d);
                h.run_until(now + len, |_| {});
                h.sim.repair("router", d);
            }
            _ => {
                h.note(format_args!("hold router-{d} for {len:?}"));
                h.sim.hold("router", d);
                h.run_until(now + len, |_| {});
                h.sim.release("router", d);
            }
        }
        t = h.now().as_millis() as u64 + h.rng.range(50, 500);
    }
    h.note("faults over");
    h.run_until(END, |_| {});
    let c = counts.borrow();
    let summary = vec![format!(
        "sends ok {}, EHOSTUNREACH {}, EAGAIN {}; router connections {}",
        c.sent,
        c.unreachable,
        c.again,
        router_rec.with(|r| r.connections.len())
    )];
    drop(c);
    h.outcome("router-mandatory", summary)
}
