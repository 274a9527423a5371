//! One hostile peer never hurts the others (issue 17): a multipart message that never ends is
//! cut off at the connection's incomplete-message limit, and while the attack runs a healthy
//! client is served. Raw ZMTP peers are driven by the sans-IO `Connection` over a TcpStream.

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zeroring::options::num;
use zeroring::transports::zmtp::Connection;
use zeroring::{Context, SocketType};

#[path = "common/hostile.rs"]
mod common;
use common::raw_peer;

/// Sends 100-byte MORE frames until the peer cuts the connection (a write fails) or
/// `budget` bytes went out; returns the bytes sent.
fn endless_message(mut tcp: TcpStream, mut conn: Connection, budget: usize) -> usize {
    let part = Bytes::from(vec![0x5Au8; 100]);
    let mut sent = 0;
    while sent < budget {
        for _ in 0..100 {
            conn.send_frame(part.clone(), true).unwrap();
        }
        while let Some(out) = conn.poll_transmit() {
            if tcp.write_all(&out).is_err() {
                return sent;
            }
            sent += out.len();
        }
    }
    sent
}

#[test]
fn a_message_that_never_ends_is_cut_off_while_others_are_served() {
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    // 4 MiB: 100-byte parts cost 164 bytes each, so the cut comes after ~25,000 parts.
    pull.set_option(num::ZR_MAX_INCOMPLETE_MSG, &(4i64 << 20).to_ne_bytes())
        .unwrap();
    pull.set_rcvtimeo(20_000).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = pull.get_last_endpoint().unwrap().unwrap();

    let (tcp, conn) = raw_peer(&endpoint, SocketType::Push);
    let budget = 64 << 20;
    let attacker = thread::spawn(move || endless_message(tcp, conn, budget));

    // A healthy client, served while the attack runs.
    let good = ctx.socket(SocketType::Push).unwrap();
    good.connect(&endpoint).unwrap();
    let started = Instant::now();
    good.send("fine", 0).unwrap();
    assert_eq!(pull.recv_bytes(0).unwrap(), b"fine");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let sent = attacker.join().unwrap();
    assert!(
        sent < budget,
        "the endless message was never cut off ({sent} bytes sent)"
    );
    // Nothing of the partial message reached the socket.
    good.send("after", 0).unwrap();
    assert_eq!(pull.recv_bytes(0).unwrap(), b"after");
}

#[test]
fn the_incomplete_message_limit_has_a_default_and_allows_big_legitimate_messages() {
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    assert_eq!(
        pull.get_option(num::ZR_MAX_INCOMPLETE_MSG).unwrap(),
        (64i64 << 20).to_ne_bytes()
    );
    pull.set_rcvtimeo(20_000).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = pull.get_last_endpoint().unwrap().unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.connect(&endpoint).unwrap();
    // 999 × 10 KiB: ~10 MiB, well inside the default.
    for i in 0..999 {
        let flags = if i < 998 { zeroring::SNDMORE } else { 0 };
        push.send(vec![i as u8; 10 * 1024], flags).unwrap();
    }
    let parts = pull.recv_multipart(0).unwrap();
    assert_eq!(parts.len(), 999);
}

#[test]
fn a_peer_that_leaves_mid_message_delivers_none_of_it() {
    // libzmq rolls the session's pipe back; a zeroring stream hands the socket whole messages
    // only, so the parts of a message cut by the peer's exit never reach the application
    // (before: the pipe's close published them, and the next message was glued to them).
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvtimeo(20_000).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = pull.get_last_endpoint().unwrap().unwrap();
    let (mut tcp, mut conn) = raw_peer(&endpoint, SocketType::Push);
    for part in ["one", "two", "three"] {
        conn.send_frame(Bytes::from(part), true).unwrap();
    }
    while let Some(out) = conn.poll_transmit() {
        tcp.write_all(&out).unwrap();
    }
    drop(tcp);
    let good = ctx.socket(SocketType::Push).unwrap();
    good.connect(&endpoint).unwrap();
    good.send("whole", 0).unwrap();
    assert_eq!(pull.recv_multipart(0).unwrap(), vec![b"whole".to_vec()]);
}
