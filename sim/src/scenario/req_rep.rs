//! REQ (ZMQ_REQ_RELAXED + ZMQ_REQ_CORRELATE) → REP echo across holds (which deliver late
//! replies) and partitions (which kill connections). The REQ gives up on a reply after a short
//! timeout and sends a new request (RELAXED allows it). Invariants:
//! - every reply the application gets answers its *current* request (no reply matched to the
//!   wrong request), checked as it arrives;
//! - the REQ is never stuck: it can always send (no EFSM), and after the heal every request
//!   is answered within the timeout.

use std::time::Duration;

use super::pushpull::{message, seq_of, PORT};
use zeroring::options::num;
use zeroring::{Error, SocketType};

use super::{flaky_link, Harness, Outcome, SimOptions};
use crate::record::Record;
use crate::socket::{SimSocket, SocketOptions};
use crate::trace::{sim_now, Trace};

const REPLY_TIMEOUT: Duration = Duration::from_millis(150);
const HEAL: Duration = Duration::from_millis(4000);
/// From here on every request must be answered in time.
const SETTLED: Duration = Duration::from_millis(5500);
const END: Duration = Duration::from_millis(6500);

async fn rep_app(opts: SocketOptions, trace: Trace, record: Record) -> turmoil::Result {
    let sock = SimSocket::new("rep", SocketType::Rep, opts, trace, record);
    sock.bind(PORT).await?;
    loop {
        let body = sock.recv().await;
        let _ = sock.send(body);
    }
}

async fn req_app(
    opts: SocketOptions,
    correlate: bool,
    trace: Trace,
    record: Record,
    stats: std::rc::Rc<std::cell::RefCell<(u64, u64)>>,
) -> turmoil::Result {
    let opts = SocketOptions {
        int_options: vec![
            (num::REQ_RELAXED, 1),
            (num::REQ_CORRELATE, correlate as i32),
        ],
        ..opts
    };
    let sock = SimSocket::new("req", SocketType::Req, opts, trace.clone(), record);
    sock.connect("rep", PORT);
    let mut seq = 0u64;
    while sim_now() < END {
        seq += 1;
        match sock.send(message(seq)) {
            Ok(_) => {}
            Err(e) => {
                if e != Error::EAGAIN {
                    trace.violation(
                        "req",
                        format_args!("request {seq}: send refused with {e:?} (stuck REQ)"),
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        }
        match tokio::time::timeout(REPLY_TIMEOUT, sock.recv()).await {
            Ok(reply) => {
                stats.borrow_mut().0 += 1;
                let got = seq_of(&reply);
                if got != Some(seq) {
                    trace.violation(
                        "req",
                        format_args!(
                            "reply for request {got:?} taken as the reply to request {seq}"
                        ),
                    );
                }
            }
            Err(_) => {
                stats.borrow_mut().1 += 1;
                trace.event(
                    "req",
                    format_args!("request {seq}: no reply within {REPLY_TIMEOUT:?}"),
                );
                if sim_now() >= SETTLED {
                    trace.violation(
                        "req",
                        format_args!(
                            "request {seq} unanswered after the network healed (stuck REQ)"
                        ),
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::future::pending::<()>().await;
    Ok(())
}

pub(crate) fn run(seed: u64, opts: &SimOptions) -> Outcome {
    let mut h = Harness::new(seed, 1, 5 + seed % 20, |_| {});
    let trace = h.trace.clone();
    let req_rec = Record::new("req");
    let rep_rec = Record::new("rep");
    let base = flaky_link(Duration::from_millis(500), seed ^ 0x7e);
    let stats = std::rc::Rc::new(std::cell::RefCell::new((0u64, 0u64)));
    {
        let (trace, rec, o) = (trace.clone(), rep_rec.clone(), base.clone());
        h.sim.host("rep", move || {
            rep_app(o.clone(), trace.clone(), rec.clone())
        });
    }
    {
        let (trace, rec, o, st) = (trace.clone(), req_rec.clone(), base.clone(), stats.clone());
        let correlate = opts.req_correlate;
        h.sim.host("req", move || {
            req_app(o.clone(), correlate, trace.clone(), rec.clone(), st.clone())
        });
    }
    // Holds shorter than heartbeat detection deliver late replies on a live connection;
    // partitions end connections.
    let mut t = h.rng.range(200, 500);
    while t < HEAL.as_millis() as u64 - 100 {
        h.run_until(Duration::from_millis(t), |_| {});
        let hold = h.rng.chance(70);
        let len = if hold {
            h.rng.range(160, 380)
        } else {
            h.rng.range(100, 800)
        };
        if hold {
            h.note(format_args!("hold req-rep for {len}ms"));
            h.sim.hold("req", "rep");
        } else {
            h.note(format_args!("partition req-rep for {len}ms"));
            h.sim.partition("req", "rep");
        }
        h.run_until(Duration::from_millis(t + len), |_| {});
        if hold {
            h.note("release req-rep");
            h.sim.release("req", "rep");
        } else {
            h.note("repair req-rep");
            h.sim.repair("req", "rep");
        }
        t += len + h.rng.range(150, 700);
    }
    h.run_until(HEAL, |_| {});
    h.note("heal");
    h.sim.repair("req", "rep");
    h.sim.release("req", "rep");
    h.run_until(END, |_| {});
    let (answered, timed_out) = *stats.borrow();
    let summary = vec![
        format!("requests answered {answered}, timed out {timed_out}"),
        format!(
            "req connections {}, hiccups {}; req {:?}; rep {:?}",
            req_rec.with(|r| r.connections.len()),
            req_rec.with(|r| r.hiccups),
            req_rec.with(|r| r.stats),
            rep_rec.with(|r| r.stats)
        ),
    ];
    h.outcome("req-rep", summary)
}
