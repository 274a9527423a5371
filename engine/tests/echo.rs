//! Echo through the engine over TCP and Unix sockets, on both backends: many connections,
//! length-prefixed messages from 0 B to 16 MiB, written in uneven chunks so the server sees
//! split reads, and read back and compared byte for byte.

#![cfg(not(loom))]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use common::{backends, engine, payload, EchoListener};
use zeroring_engine::{BufPoolConfig, Engine};

const SIZES: &[usize] = &[0, 1, 7, 255, 256, 4096, 16 * 1024, 65_536, 1 << 20];
const HUGE: usize = 16 << 20;

/// Writes messages `[u32 len][payload]` in uneven chunks, then reads them all back.
fn client<S: Read + Write + Send + 'static>(
    mut stream: S,
    conn: usize,
    sizes: Vec<usize>,
    split: impl Fn() -> S,
) {
    let mut writer = split();
    let sizes_w = sizes.clone();
    let w = std::thread::spawn(move || {
        let mut chunk = 1 + conn % 7;
        for (n, &len) in sizes_w.iter().enumerate() {
            let mut frame = (len as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(&payload(conn, n, len));
            let mut at = 0;
            while at < frame.len() {
                // Uneven chunk sizes: 1..=~300 KiB, so frames straddle reads.
                chunk = (chunk * 31 + 17) % (300 * 1024) + 1;
                let end = (at + chunk).min(frame.len());
                writer.write_all(&frame[at..end]).expect("client write");
                at = end;
            }
        }
        writer
    });
    for (n, &len) in sizes.iter().enumerate() {
        let mut hdr = [0u8; 4];
        stream
            .read_exact(&mut hdr)
            .unwrap_or_else(|e| panic!("conn {conn} msg {n}: header: {e}"));
        assert_eq!(
            u32::from_be_bytes(hdr) as usize,
            len,
            "conn {conn} msg {n}: length"
        );
        let mut body = vec![0u8; len];
        stream
            .read_exact(&mut body)
            .unwrap_or_else(|e| panic!("conn {conn} msg {n}: body: {e}"));
        assert!(
            body == payload(conn, n, len),
            "conn {conn} msg {n} ({len} B): echoed bytes differ"
        );
    }
    drop(w.join().expect("writer thread"));
}

fn sizes_for(conn: usize, huge: bool) -> Vec<usize> {
    let mut v: Vec<usize> = (0..3)
        .flat_map(|r| SIZES.iter().map(move |s| s + (r * conn) % 3))
        .collect();
    if huge {
        v.push(HUGE);
        v.push(0);
    }
    v
}

fn run_clients<S: Read + Write + Send + 'static>(
    conns: usize,
    connect: impl Fn() -> S + Sync + Send + Clone + 'static,
    clone: fn(&S) -> S,
) {
    let threads: Vec<_> = (0..conns)
        .map(|conn| {
            let connect = connect.clone();
            std::thread::spawn(move || {
                let s = connect();
                let second = clone(&s);
                let slot = std::sync::Mutex::new(Some(second));
                client(s, conn, sizes_for(conn, conn < 2), move || {
                    slot.lock().unwrap().take().unwrap()
                });
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

fn set_timeouts_tcp(s: &TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
}

#[test]
fn tcp_echo_many_connections_all_sizes() {
    for choice in backends() {
        let engine: Engine = engine(choice, BufPoolConfig::default());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let fd = Arc::new(OwnedFd::from(listener));
        engine.threads()[0]
            .spawn(move || EchoListener { fd })
            .unwrap();
        run_clients(
            12,
            move || {
                let s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                set_timeouts_tcp(&s);
                s
            },
            |s| s.try_clone().unwrap(),
        );
        let spawned: u64 = engine
            .threads()
            .iter()
            .map(|t| {
                t.stats()
                    .completions
                    .load(std::sync::atomic::Ordering::Relaxed)
            })
            .sum();
        assert!(spawned > 0);
        engine.shutdown();
    }
}

#[test]
fn unix_echo_many_connections_all_sizes() {
    for choice in backends() {
        let engine = engine(choice, BufPoolConfig::default());
        let dir =
            std::env::temp_dir().join(format!("zeroring-echo-{}-{:?}", std::process::id(), choice));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("echo.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let fd = Arc::new(OwnedFd::from(listener));
        engine.threads()[1]
            .spawn(move || EchoListener { fd })
            .unwrap();
        let p = path.clone();
        run_clients(
            8,
            move || {
                let s = UnixStream::connect(&p).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
                s
            },
            |s| s.try_clone().unwrap(),
        );
        engine.shutdown();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
