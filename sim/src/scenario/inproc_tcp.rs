//! inproc mixed with tcp: on host `a` a PULL (`sink`) is bound on tcp and joined over inproc
//! to a PUSH on the same host (`local`); a PUSH on host `b` (`remote`) connects over tcp, and
//! the tcp link is partitioned and held and `b` is bounced. The sink fair-queues the inproc
//! pipe with the tcp pipes that come and go. Invariants:
//! - the inproc flow loses nothing, ever, and arrives in order (nothing can disconnect it);
//! - the tcp flow loses only what was in flight at a disconnect, in per-connection order.
//!
//! The simulator hosts no `Context`, so the inproc join is the production pipe pair
//! (`zeroring::attach::inproc_pair`) attached to both sockets directly, not the context's
//! name registry (bind/connect order, pending connects). The broken variant is
//! `--lossy-recv` (the sink discards every 97th message).

use std::time::Duration;

use zeroring::SocketType;

use super::pushpull::{message, push_app, seq_of, PushPlan, PORT};
use super::{flaky_link, Harness, Ledger, Outcome, SimOptions};
use crate::record::Record;
use crate::rng::SimRng;
use crate::socket::{SimSocket, SocketOptions};
use crate::trace::{sim_now, Trace};

const FAULTS_UNTIL: Duration = Duration::from_millis(3500);
const SEND_UNTIL: Duration = Duration::from_millis(4500);
const END: Duration = Duration::from_millis(5500);

#[allow(clippy::too_many_arguments)]
async fn host_a(
    sink_opts: SocketOptions,
    trace: Trace,
    sink_rec: Record,
    local_rec: Record,
    ledger: Ledger,
    seed: u64,
) -> turmoil::Result {
    let sink = SimSocket::new("a", SocketType::Pull, sink_opts, trace.clone(), sink_rec);
    sink.bind(PORT).await?;
    let local = SimSocket::new(
        "a",
        SocketType::Push,
        SocketOptions::default(),
        trace.clone(),
        local_rec,
    );
    local.connect_inproc(&sink, "sink");
    let (l, t) = (ledger.clone(), trace.clone());
    tokio::task::spawn_local(async move {
        let mut rng = SimRng::new(seed, 0x1a);
        while sim_now() < SEND_UNTIL {
            let seq = l.next_seq();
            match local.send(message(seq)) {
                Ok(()) => l.sent(seq, "local"),
                Err(e) => t.event("a", format_args!("local message {seq} not sent: {e:?}")),
            }
            tokio::time::sleep(Duration::from_millis(rng.range(2, 15))).await;
        }
        std::future::pending::<()>().await;
    });
    loop {
        let msg = sink.recv().await;
        match seq_of(&msg) {
            Some(seq) => ledger.received(&trace, "sink", seq),
            None => trace.violation("a", "a message without a sequence number"),
        }
    }
}

pub(crate) fn run(seed: u64, opts: &SimOptions) -> Outcome {
    let mut h = Harness::new(seed, 1, 5 + seed % 25, |_| {});
    let trace = h.trace.clone();
    let ledger = Ledger::default();
    let (sink_rec, local_rec, remote_rec) =
        (Record::new("a"), Record::new("a-local"), Record::new("b"));
    let base = flaky_link(Duration::from_millis(600), seed ^ 0x1b);
    {
        let sink_opts = SocketOptions {
            lose_every: opts.lossy_recv.then_some(97),
            ..base.clone()
        };
        let (t, s, l, g) = (
            trace.clone(),
            sink_rec.clone(),
            local_rec.clone(),
            ledger.clone(),
        );
        h.sim.host("a", move || {
            host_a(
                sink_opts.clone(),
                t.clone(),
                s.clone(),
                l.clone(),
                g.clone(),
                seed,
            )
        });
    }
    {
        let (t, r, g) = (trace.clone(), remote_rec.clone(), ledger.clone());
        let plan = PushPlan {
            stop_at: SEND_UNTIL,
            gap_ms: (2, 15),
            blocking: false,
        };
        let o = base.clone();
        h.sim.host("b", move || {
            push_app(
                "b",
                "a",
                o.clone(),
                t.clone(),
                r.clone(),
                g.clone(),
                plan.clone(),
                seed,
            )
        });
    }
    let mut t = h.rng.range(100, 400);
    while t < FAULTS_UNTIL.as_millis() as u64 {
        h.run_until(Duration::from_millis(t), |_| {});
        let len = Duration::from_millis(h.rng.range(30, 700));
        let now = h.now();
        match h.rng.range(0, 3) {
            0 => {
                h.note(format_args!("partition a-b for {len:?}"));
                h.sim.partition("a", "b");
                h.run_until(now + len, |_| {});
                h.sim.repair("a", "b");
            }
            1 => {
                h.note(format_args!("hold a-b for {len:?}"));
                h.sim.hold("a", "b");
                h.run_until(now + len, |_| {});
                h.sim.release("a", "b");
            }
            _ => {
                h.note("bounce b");
                h.sim.bounce("b");
                remote_rec.with(|r| r.host_stopped(now));
            }
        }
        t = h.now().as_millis() as u64 + h.rng.range(50, 500);
    }
    h.note("faults over");
    h.run_until(END, |_| {});
    let t_end = h.now();
    // inproc: nothing explains a loss.
    let local = ledger.check_flow(
        &h.trace,
        t_end,
        "local",
        "sink",
        |_| true,
        &[],
        &[],
        Duration::ZERO,
        0,
    );
    let remote = ledger.check_whole_flow(&h.trace, t_end, ("b", &remote_rec), ("sink", &sink_rec));
    let summary = vec![format!(
        "inproc: {} delivered, {} lost; tcp: {} delivered, {} lost in flight, {} late; sink connections {}",
        local.delivered,
        local.lost,
        remote.delivered,
        remote.lost,
        remote.late,
        sink_rec.with(|r| r.connections.len())
    )];
    h.outcome("inproc-tcp", summary)
}
