//! Engine echo demo: a TCP echo server made of engine handlers, measured against the floor (a
//! plain blocking-socket echo thread) with the same client, on loopback.
//!
//! `cargo run --release -p zeroring-engine --example echo -- [round_trips] [stream_mib]`
//!
//! It prints the backend each I/O thread found, the round-trip latency percentiles of 64-byte
//! ping-pongs, and streaming throughput through the echo. Set `ZERORING_BACKEND=epoll` to run
//! the fallback backend.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zeroring_engine::{Completion, Cx, Engine, EngineConfig, Handler, Op, OpId, SendBuf, SharedFd};

struct Listener(SharedFd);

impl Handler for Listener {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        cx.submit(Op::Accept { fd: self.0.clone() });
    }
    fn on_completion(&mut self, cx: &mut Cx<'_>, _: OpId, c: Completion<'_>, _: bool) {
        if let Completion::Accepted(Ok(fd)) = c {
            let _ = socket2::SockRef::from(&fd).set_nodelay(true);
            cx.spawn(Box::new(Echo {
                fd: Arc::new(fd),
                pending: VecDeque::new(),
                sending: false,
            }));
        }
    }
}

struct Echo {
    fd: SharedFd,
    pending: VecDeque<Bytes>,
    sending: bool,
}

impl Handler for Echo {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        cx.submit(Op::Recv {
            fd: self.fd.clone(),
        });
    }
    fn on_completion(&mut self, cx: &mut Cx<'_>, _: OpId, c: Completion<'_>, _: bool) {
        match c {
            Completion::Received(Ok(b)) if !b.is_empty() => {
                self.pending.push_back(Bytes::copy_from_slice(b))
            }
            Completion::Sent { result: Ok(_), .. } => self.sending = false,
            _ => return cx.close(),
        }
        if !self.sending && !self.pending.is_empty() {
            self.sending = true;
            let bufs = self.pending.drain(..).map(SendBuf::from).collect();
            cx.submit(Op::Send {
                fd: self.fd.clone(),
                bufs,
                zero_copy: false,
            });
        }
    }
}

fn floor_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            s.set_nodelay(true).unwrap();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
    format!(
        "p50 {:6.1} µs  p90 {:6.1}  p99 {:6.1}  p99.9 {:6.1}",
        p(0.5),
        p(0.9),
        p(0.99),
        p(0.999)
    )
}

fn round_trips(addr: SocketAddr, n: usize) -> Vec<Duration> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let msg = [42u8; 64];
    let mut back = [0u8; 64];
    for _ in 0..n / 10 {
        s.write_all(&msg).unwrap();
        s.read_exact(&mut back).unwrap();
    }
    (0..n)
        .map(|_| {
            let t = Instant::now();
            s.write_all(&msg).unwrap();
            s.read_exact(&mut back).unwrap();
            t.elapsed()
        })
        .collect()
}

fn stream(addr: SocketAddr, mib: usize) -> f64 {
    let s = TcpStream::connect(addr).unwrap();
    let mut r = s.try_clone().unwrap();
    let total = mib << 20;
    let t = Instant::now();
    let w = std::thread::spawn(move || {
        let mut s = s;
        let chunk = vec![1u8; 1 << 16];
        for _ in 0..total / chunk.len() {
            s.write_all(&chunk).unwrap();
        }
    });
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    while got < total {
        got += r.read(&mut buf).unwrap();
    }
    w.join().unwrap();
    total as f64 / t.elapsed().as_secs_f64() / (1 << 20) as f64
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(20_000);
    let mib = args.get(1).copied().unwrap_or(512);

    let engine = Engine::start(EngineConfig::default()).expect("engine start");
    for t in engine.threads() {
        println!(
            "I/O thread {}: {} (pinned to {:?})",
            t.index(),
            t.info().backend,
            t.info().pinned_to
        );
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    let fd: SharedFd = Arc::new(OwnedFd::from(l));
    engine.threads()[0].spawn(move || Listener(fd)).unwrap();
    let floor = floor_server();

    println!("\n64-byte round trips ({n} each, loopback TCP):");
    println!(
        "  floor (blocking thread) {}",
        percentiles(round_trips(floor, n))
    );
    println!(
        "  zeroring engine         {}",
        percentiles(round_trips(addr, n))
    );
    println!("\nstreaming {mib} MiB through the echo:");
    println!("  floor (blocking thread) {:8.0} MiB/s", stream(floor, mib));
    println!("  zeroring engine         {:8.0} MiB/s", stream(addr, mib));
    engine.shutdown();
}
