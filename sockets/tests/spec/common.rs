#![allow(dead_code)]

use std::time::Duration;

use zeroring::{Context, Error, Socket, SocketType, DONTWAIT};

/// Generous bound for anything that should happen "now": tests never rely on it passing.
pub const TIMEOUT_MS: i32 = 5000;

pub fn sock(ctx: &Context, t: SocketType) -> Socket {
    let s = ctx.socket(t).unwrap();
    s.set_rcvtimeo(TIMEOUT_MS).unwrap();
    s.set_sndtimeo(TIMEOUT_MS).unwrap();
    s
}

pub fn bound(ctx: &Context, t: SocketType, ep: &str) -> Socket {
    let s = sock(ctx, t);
    s.bind(ep).unwrap();
    s
}

pub fn connected(ctx: &Context, t: SocketType, ep: &str) -> Socket {
    let s = sock(ctx, t);
    s.connect(ep).unwrap();
    s
}

pub fn recv_str(s: &Socket) -> String {
    s.recv_string(0).unwrap().unwrap()
}

pub fn recv_parts(s: &Socket) -> Vec<Vec<u8>> {
    s.recv_multipart(0).unwrap()
}

pub fn send_parts(s: &Socket, parts: &[&[u8]]) {
    s.send_multipart(parts.iter().copied(), 0).unwrap();
}

pub fn assert_no_msg(s: &Socket) {
    assert_eq!(s.recv_bytes(DONTWAIT), Err(Error::EAGAIN));
}

/// Waits until `f` holds, polling; panics after the generous timeout.
pub fn eventually(mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_millis(TIMEOUT_MS as u64),
            "condition not reached"
        );
        std::thread::yield_now();
    }
}
