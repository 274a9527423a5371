//! What the hostile-peer suites (`hostile_load.rs`, `hostile_limits.rs`,
//! `handshake_cap_libzmq.rs`) share: one test at a time (they measure the whole process), RSS
//! and descriptor counts, bounded polls, a raw ZMTP peer, a healthy client that must be served
//! within 2 s, and the receiving end of a burst of clients.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zeroring::transports::zmtp::{Connection, ConnectionConfig, Event};
use zeroring::{Context, MonitorEvent, Socket, SocketType};

static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time: they measure the whole process.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resident set size in bytes.
pub fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

pub fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

pub fn addr(endpoint: &str) -> &str {
    endpoint.trim_start_matches("tcp://")
}

/// A healthy REQ asks `endpoint` once and must get its answer within 2 s.
pub fn healthy_request(ctx: &Context, endpoint: &str) -> Duration {
    let req = ctx.socket(SocketType::Req).unwrap();
    req.set_linger(0).unwrap();
    req.set_rcvtimeo(10_000).unwrap();
    let started = Instant::now();
    req.connect(endpoint).unwrap();
    req.send("healthy", 0).unwrap();
    assert_eq!(req.recv_bytes(0).unwrap(), b"healthy");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "healthy client served after {took:?}"
    );
    took
}

/// A raw peer of `socket_type` that has completed its NULL handshake with `endpoint`.
pub fn raw_peer(endpoint: &str, socket_type: SocketType) -> (TcpStream, Connection) {
    let mut tcp = TcpStream::connect(addr(endpoint)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut conn = Connection::new(ConnectionConfig::new(socket_type), Instant::now()).unwrap();
    let mut buf = vec![0u8; 4096];
    loop {
        while let Some(out) = conn.poll_transmit() {
            tcp.write_all(&out).unwrap();
        }
        if conn.is_ready() {
            break;
        }
        let n = tcp.read(&mut buf).unwrap();
        assert!(n > 0, "closed during the handshake");
        conn.handle_input(Bytes::copy_from_slice(&buf[..n]), Instant::now());
        while let Some(e) = conn.poll_event() {
            assert!(!matches!(e, Event::HandshakeFailed(_)), "{e:?}");
        }
    }
    (tcp, conn)
}

/// Counts the monitor events of `s` for which `want(event, value)` holds, until `stop`
/// (monitor endpoint `inproc://monitor-{name}`).
pub fn count_monitor_events(
    ctx: &Context,
    s: &Socket,
    name: &str,
    stop: Arc<AtomicBool>,
    want: fn(MonitorEvent, u32) -> bool,
) -> (Arc<AtomicUsize>, thread::JoinHandle<()>) {
    let ep = format!("inproc://monitor-{name}");
    s.monitor(&ep, MonitorEvent::ALL).unwrap();
    let m = ctx.socket(SocketType::Pair).unwrap();
    m.connect(&ep).unwrap();
    m.set_rcvtimeo(50).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let t = thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Ok(parts) = m.recv_multipart(0) else {
                continue;
            };
            let code = u16::from_le_bytes([parts[0][0], parts[0][1]]);
            let value = u32::from_le_bytes(parts[0][2..6].try_into().unwrap());
            if MonitorEvent::from_code(code).is_some_and(|e| want(e, value)) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    (count, t)
}

/// Receives the burst's `n` messages, one from each client, each once.
pub fn receive_burst(pull: &Socket, n: usize) {
    let mut seen = vec![false; n];
    for k in 0..n {
        let m = pull.recv_bytes(0).unwrap_or_else(|e| {
            let missing = seen.iter().filter(|s| !**s).count();
            panic!("message {k} of {n}: {e:?}; {missing} clients' messages missing")
        });
        let i: usize = std::str::from_utf8(&m).unwrap().parse().unwrap();
        assert!(!std::mem::replace(&mut seen[i], true), "client {i} twice");
    }
}
