//! The `async` workloads through zmq.rs (crate `zeromq`) on tokio: the pure-Rust async peer
//! that zeroring's `AsyncSocket` is compared with. Same layout as the zeroring rows — tcp
//! loopback, each side on its own thread with its own current-thread runtime, one untimed
//! warm-up round trip or first message, a fresh payload copy per message.
//!
//! Owns: these two workloads for zmq.rs. Must never: block a runtime thread while zmq.rs's
//! writer tasks still have to run on it (waits are tokio waits, not std ones).

use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use hdrhistogram::Histogram;
use tokio::sync::oneshot;
use zeromq::prelude::*;
use zeromq::{PullSocket, PushSocket, RepSocket, ReqSocket, ZmqMessage};

use super::{Lat, Thr};

fn message(body: &[u8]) -> ZmqMessage {
    ZmqMessage::from(body.to_vec())
}

/// zmq.rs needs I/O and timers enabled on the runtime (the zeroring rows need neither).
fn io_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// REQ/REP: `count` round trips of `size` bytes after one untimed warm-up round trip.
pub fn lat(size: usize, count: u64) -> Lat {
    let (ep_tx, ep_rx) = mpsc::channel::<String>();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let echo = thread::spawn(move || {
        io_runtime().block_on(async move {
            let mut rep = RepSocket::new();
            let ep = rep.bind("tcp://127.0.0.1:0").await.expect("bind");
            ep_tx.send(ep.to_string()).expect("endpoint");
            for _ in 0..=count {
                let m = rep.recv().await.expect("rep recv");
                rep.send(m).await.expect("rep send");
            }
            // zmq.rs has no LINGER: the socket stays open, and this runtime keeps running its
            // writer task, until the requester has the last reply.
            let _ = done_rx.await;
        })
    });
    let endpoint = ep_rx.recv().expect("endpoint");
    let body = vec![b'x'; size];
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    io_runtime().block_on(async {
        let mut req = ReqSocket::new();
        // Returns after the handshake: the first send has its peer.
        req.connect(&endpoint).await.expect("connect");
        req.send(message(&body)).await.expect("warm-up");
        req.recv().await.expect("warm-up");
        for _ in 0..count {
            let t = Instant::now();
            req.send(message(&body)).await.expect("req send");
            req.recv().await.expect("req recv");
            h.saturating_record(t.elapsed().as_nanos() as u64);
        }
    });
    let _ = done_tx.send(());
    echo.join().expect("echo thread");
    Lat {
        p50_us: h.value_at_quantile(0.5) as f64 / 1e3,
        p99_us: h.value_at_quantile(0.99) as f64 / 1e3,
        mean_us: h.mean() / 1e3,
    }
}

/// PUSH→PULL: `count` messages of `size` bytes; the receiver times the first to the last.
pub fn thr(size: usize, count: u64) -> Thr {
    let rt = io_runtime();
    let mut pull = PullSocket::new();
    let endpoint = rt
        .block_on(pull.bind("tcp://127.0.0.1:0"))
        .expect("bind")
        .to_string();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let sender = thread::spawn(move || {
        io_runtime().block_on(async move {
            let mut push = PushSocket::new();
            push.connect(&endpoint).await.expect("connect");
            let body = vec![b'x'; size];
            for _ in 0..count {
                push.send(message(&body)).await.expect("push send");
            }
            // zmq.rs has no LINGER: the socket stays open, and this runtime keeps running
            // its writer task, until the receiver has everything.
            let _ = done_rx.await;
        })
    });
    let elapsed = rt.block_on(async {
        pull.recv().await.expect("first");
        let t = Instant::now();
        for _ in 1..count {
            pull.recv().await.expect("pull recv");
        }
        t.elapsed()
    });
    let _ = done_tx.send(());
    sender.join().expect("sender thread");
    Thr {
        msgs_per_sec: (count.saturating_sub(1)) as f64 / elapsed.as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_workloads_complete() {
        let l = super::lat(16, 50);
        assert!(l.p50_us > 0.0 && l.p99_us >= l.p50_us, "{l:?}");
        assert!(super::thr(16, 2_000).msgs_per_sec > 0.0);
    }
}
