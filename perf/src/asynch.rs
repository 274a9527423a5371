//! `zeroring-perf async`: the async API ([`zeroring::AsyncSocket`] on tokio) against the
//! blocking one, same workload, same process layout: REQ/REP round trips (latency) and
//! PUSH→PULL (throughput) over tcp loopback, each side on its own thread (for async: its own
//! current-thread tokio runtime), rounds of the two APIs interleaved. With the `zmqrs`
//! feature, zmq.rs on tokio runs the same workloads as a third row (module `zmqrs`).
//!
//! Owns: these two workloads in both API styles. Must never: time set-up or connection (the
//! first round trip / first message is outside the timed region), or compare figures from
//! different machines.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use zeroring::{AsyncSocket, Context, Socket, SocketType};

#[cfg(feature = "zmqrs")]
mod zmqrs;

/// Which API drives the sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `Socket::send` / `recv`, blocking.
    Blocking,
    /// `AsyncSocket` futures on a current-thread tokio runtime per side.
    Async,
}

impl Api {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Api::Blocking => "blocking",
            Api::Async => "async (tokio)",
        }
    }
}

/// One latency run: round trips and their distribution.
#[derive(Debug, Clone)]
pub struct Lat {
    /// Median round trip, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Mean, µs.
    pub mean_us: f64,
}

/// One throughput run.
#[derive(Debug, Clone, Copy)]
pub struct Thr {
    /// Messages per second, first to last received.
    pub msgs_per_sec: f64,
}

const TIMEOUT_MS: i32 = 30_000;

fn socket(ctx: &Context, t: SocketType) -> Socket {
    let s = ctx.socket(t).expect("socket");
    s.set_linger(0).expect("linger");
    s.set_rcvtimeo(TIMEOUT_MS).expect("rcvtimeo");
    s.set_sndtimeo(TIMEOUT_MS).expect("sndtimeo");
    s
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

/// REQ/REP: `count` round trips of `size` bytes after one untimed warm-up round trip.
pub fn lat(api: Api, size: usize, count: u64) -> Lat {
    let ctx = Context::new();
    let rep = socket(&ctx, SocketType::Rep);
    rep.bind("tcp://127.0.0.1:*").expect("bind");
    let endpoint = rep.get_last_endpoint().expect("endpoint").expect("utf-8");
    let echo = thread::spawn(move || match api {
        Api::Blocking => {
            for _ in 0..=count {
                let m = rep.recv_msg(0).expect("rep recv");
                rep.send_msg(m, 0).expect("rep send");
            }
        }
        Api::Async => runtime().block_on(async move {
            let mut rep = AsyncSocket::new(rep);
            for _ in 0..=count {
                let m = rep.recv().await.expect("rep recv");
                rep.send(m).await.expect("rep send");
            }
        }),
    });
    let req = socket(&ctx, SocketType::Req);
    req.connect(&endpoint).expect("connect");
    let body = vec![b'x'; size];
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    match api {
        Api::Blocking => {
            req.send(&body[..], 0).expect("warm-up");
            req.recv_msg(0).expect("warm-up");
            for _ in 0..count {
                let t = Instant::now();
                req.send(&body[..], 0).expect("req send");
                req.recv_msg(0).expect("req recv");
                h.saturating_record(t.elapsed().as_nanos() as u64);
            }
        }
        Api::Async => runtime().block_on(async {
            let mut req = AsyncSocket::new(req);
            req.send(&body[..]).await.expect("warm-up");
            req.recv().await.expect("warm-up");
            for _ in 0..count {
                let t = Instant::now();
                req.send(&body[..]).await.expect("req send");
                req.recv().await.expect("req recv");
                h.saturating_record(t.elapsed().as_nanos() as u64);
            }
        }),
    }
    echo.join().expect("echo thread");
    Lat {
        p50_us: h.value_at_quantile(0.5) as f64 / 1e3,
        p99_us: h.value_at_quantile(0.99) as f64 / 1e3,
        mean_us: h.mean() / 1e3,
    }
}

/// PUSH→PULL: `count` messages of `size` bytes; the receiver times the first to the last.
pub fn thr(api: Api, size: usize, count: u64) -> Thr {
    let ctx = Context::new();
    let pull = socket(&ctx, SocketType::Pull);
    pull.bind("tcp://127.0.0.1:*").expect("bind");
    let endpoint = pull.get_last_endpoint().expect("endpoint").expect("utf-8");
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let sender = {
        let ctx = ctx.clone();
        thread::spawn(move || {
            let push = socket(&ctx, SocketType::Push);
            push.set_linger(-1).expect("linger");
            push.connect(&endpoint).expect("connect");
            let body = vec![b'x'; size];
            // Each branch hands its socket back, so it stays open until the receiver is done.
            let _open: Box<dyn std::any::Any> = match api {
                Api::Blocking => {
                    for _ in 0..count {
                        push.send(&body[..], 0).expect("push send");
                    }
                    Box::new(push)
                }
                Api::Async => Box::new(runtime().block_on(async {
                    let mut push = AsyncSocket::new(push);
                    for _ in 0..count {
                        push.send(&body[..]).await.expect("push send");
                    }
                    push
                })),
            };
            let _ = done_rx.recv_timeout(Duration::from_secs(60));
        })
    };
    let elapsed = match api {
        Api::Blocking => {
            pull.recv_msg(0).expect("first");
            let t = Instant::now();
            for _ in 1..count {
                pull.recv_msg(0).expect("pull recv");
            }
            t.elapsed()
        }
        Api::Async => runtime().block_on(async {
            let mut pull = AsyncSocket::new(pull);
            pull.recv().await.expect("first");
            let t = Instant::now();
            for _ in 1..count {
                pull.recv().await.expect("pull recv");
            }
            t.elapsed()
        }),
    };
    let _ = done_tx.send(());
    sender.join().expect("sender thread");
    Thr {
        msgs_per_sec: (count.saturating_sub(1)) as f64 / elapsed.as_secs_f64(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs both workloads for both APIs (and for zmq.rs on tokio, where built with the `zmqrs`
/// feature), `runs` interleaved rounds each, and prints a table (medians over the rounds).
pub fn run(size: usize, lat_count: u64, thr_count: u64, runs: usize) -> String {
    type Workloads = (&'static str, Box<dyn Fn() -> (Lat, Thr)>);
    #[allow(unused_mut)] // extended only by optional peers
    let mut rows: Vec<Workloads> = [Api::Blocking, Api::Async]
        .into_iter()
        .map(|api| -> Workloads {
            (
                api.name(),
                Box::new(move || (lat(api, size, lat_count), thr(api, size, thr_count))),
            )
        })
        .collect();
    #[cfg(feature = "zmqrs")]
    rows.push((
        "zmq.rs (tokio)",
        Box::new(move || (zmqrs::lat(size, lat_count), zmqrs::thr(size, thr_count))),
    ));
    let mut lats: Vec<Vec<Lat>> = vec![Vec::new(); rows.len()];
    let mut thrs: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    for _ in 0..runs.max(1) {
        for (i, (_, workloads)) in rows.iter().enumerate() {
            let (l, t) = workloads();
            lats[i].push(l);
            thrs[i].push(t.msgs_per_sec);
        }
    }
    let mut out = format!(
        "async vs blocking, tcp loopback, {size} B, {runs} interleaved rounds (medians)\n\n\
         | API | REQ/REP p50 µs | p99 µs | mean µs | PUSH/PULL msg/s |\n|---|---|---|---|---|\n"
    );
    for (i, (name, _)) in rows.iter().enumerate() {
        out.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.0} |\n",
            name,
            median(lats[i].iter().map(|l| l.p50_us).collect()),
            median(lats[i].iter().map(|l| l.p99_us).collect()),
            median(lats[i].iter().map(|l| l.mean_us).collect()),
            median(thrs[i].clone()),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_apis_complete_both_workloads() {
        for api in [Api::Blocking, Api::Async] {
            let l = lat(api, 16, 50);
            assert!(l.p50_us > 0.0 && l.p99_us >= l.p50_us, "{l:?}");
            let t = thr(api, 16, 2_000);
            assert!(t.msgs_per_sec > 0.0);
        }
    }
}
