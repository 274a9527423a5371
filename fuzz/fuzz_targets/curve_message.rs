//! MESSAGE decryption: a CURVE pair completes its handshake, then the input
//! drives the traffic one side receives: valid sealed frames (which must arrive
//! intact while the connection lives), sealed frames with bytes flipped, raw
//! frames, and replays. Never panics; a valid frame is never lost or altered.
#![no_main]

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zeroring_transports::zmtp::mechanism::curve::{keypair, CurveSecretKey};
use zeroring_transports::zmtp::{Connection, ConnectionConfig, Event, MechanismConfig};
use zeroring_transports::SocketType;

fn drain(c: &mut Connection) -> Bytes {
    let mut out = BytesMut::new();
    while let Some(chunk) = c.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    out.freeze()
}

type Pair = ([u8; 32], CurveSecretKey);

/// Long-term keys made once per process (the short-term ones stay per connection).
fn keys() -> Option<(Pair, Pair)> {
    static KEYS: std::sync::OnceLock<Option<(Pair, Pair)>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| Some((keypair().ok()?, keypair().ok()?)))
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let Some(((spub, ssec), (cpub, csec))) = keys() else {
        return;
    };
    let mut c = ConnectionConfig::new(SocketType::Pair);
    c.mechanism = MechanismConfig::CurveClient {
        public: cpub,
        secret: csec,
        server: spub,
    };
    let mut s = ConnectionConfig::new(SocketType::Pair);
    s.mechanism = MechanismConfig::CurveServer { secret: ssec };
    let (Ok(mut a), Ok(mut b)) = (Connection::new(c, now), Connection::new(s, now)) else {
        return;
    };
    for _ in 0..4 {
        let x = drain(&mut a);
        b.handle_input(x, now);
        let y = drain(&mut b);
        a.handle_input(y, now);
    }
    assert!(
        a.is_ready() && b.is_ready(),
        "a clean CURVE handshake completes"
    );
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    // ctl bit 0: which side sends.
    let (tx, rx) = if ctl & 1 == 0 {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let mut last = Bytes::new();
    let mut rest = rest;
    while let Some((&op, tail)) = rest.split_first() {
        let len = usize::from(op >> 2).min(tail.len());
        let (piece, next) = tail.split_at(len);
        rest = next;
        let piece = Bytes::copy_from_slice(piece);
        match op & 3 {
            0 => {
                // Intact: must arrive as sent while the receiver is alive.
                if tx.send_frame(piece.clone(), false).is_err() {
                    return;
                }
                last = drain(tx);
                let alive = !rx.is_closed();
                rx.handle_input(last.clone(), now);
                if alive {
                    match rx.poll_event() {
                        Some(Event::Frame { body, more }) => assert!(body == piece && !more),
                        other => panic!("a valid frame did not arrive: {other:?}"),
                    }
                }
            }
            1 => {
                if tx.send_frame(piece.clone(), false).is_err() {
                    return;
                }
                let mut sealed = BytesMut::from(&drain(tx)[..]);
                // Flip a body byte (the 2-byte frame header stays valid).
                let at = 2 + usize::from(op) % sealed.len().saturating_sub(2).max(1);
                if let Some(byte) = sealed.get_mut(at) {
                    *byte ^= piece.first().copied().unwrap_or(1).max(1);
                }
                rx.handle_input(sealed.freeze(), now);
            }
            2 => {
                let mut raw = BytesMut::new();
                raw.extend_from_slice(&[0, piece.len() as u8]);
                raw.extend_from_slice(&piece);
                rx.handle_input(raw.freeze(), now);
            }
            _ => rx.handle_input(last.clone(), now),
        }
        while rx.poll_event().is_some() {}
    }
});
