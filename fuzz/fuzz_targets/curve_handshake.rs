//! A CURVE client or server talking to a real CURVE peer of the other role for a
//! chosen number of round trips, then fed arbitrary bytes: either raw, or the
//! real peer's next output with input bytes XORed in (valid framing, broken
//! boxes, lengths and nonces). ZAP verdicts come from the input. Never panics.
#![no_main]

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zeroring_transports::zmtp::greeting::{greeting_v3, MechanismName};
use zeroring_transports::zmtp::mechanism::curve::{keypair, CurveSecretKey};
use zeroring_transports::zmtp::{Connection, ConnectionConfig, Event, MechanismConfig, ZapReply};
use zeroring_transports::SocketType;

fn drain(c: &mut Connection) -> BytesMut {
    let mut out = BytesMut::new();
    while let Some(chunk) = c.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    out
}

fn answer_zap(c: &mut Connection, status: u16, now: Instant) {
    while let Some(e) = c.poll_event() {
        if let Event::ZapRequest(_) = e {
            let mut r = ZapReply::ok("user");
            r.status_code = status;
            c.zap_reply(r, now);
        }
    }
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
    let client = MechanismConfig::CurveClient {
        public: cpub,
        secret: csec,
        server: spub,
    };
    let server = MechanismConfig::CurveServer { secret: ssec };
    let fuzz_server = ctl & 0x10 != 0;
    let (mine, theirs) = if fuzz_server {
        (server, client)
    } else {
        (client, server)
    };
    let mut cfg = ConnectionConfig::new(SocketType::Dealer);
    cfg.mechanism = mine;
    cfg.zap.handler_available = ctl & 0x20 != 0;
    cfg.zap.enforce_domain = ctl & 0x40 != 0;
    let mut peer_cfg = ConnectionConfig::new(SocketType::Router);
    peer_cfg.mechanism = theirs;
    let (Ok(mut conn), Ok(mut peer)) = (Connection::new(cfg, now), Connection::new(peer_cfg, now))
    else {
        return;
    };
    let status = [200, 300, 400, 500][usize::from(ctl >> 6)];
    // Real round trips before the input takes over (0: only a valid greeting).
    let rounds = usize::from(ctl & 0x03);
    if rounds == 0 {
        conn.handle_input(
            Bytes::copy_from_slice(&greeting_v3(MechanismName::Curve, 0)),
            now,
        );
    }
    for _ in 0..rounds {
        let a = drain(&mut conn).freeze();
        peer.handle_input(a, now);
        answer_zap(&mut peer, 200, now);
        let b = drain(&mut peer).freeze();
        conn.handle_input(b, now);
        answer_zap(&mut conn, status, now);
    }
    let input = if ctl & 0x08 != 0 {
        // The real peer's next bytes, with the input XORed in.
        peer.handle_input(drain(&mut conn).freeze(), now);
        let mut next = drain(&mut peer);
        if !next.is_empty() {
            let len = next.len();
            for (i, b) in rest.iter().enumerate() {
                next[i % len] ^= b;
            }
        }
        next.freeze()
    } else {
        Bytes::copy_from_slice(rest)
    };
    let chunk = usize::from(ctl % 7) * 37 + 1;
    for piece in input.chunks(chunk) {
        conn.handle_input(Bytes::copy_from_slice(piece), now);
        answer_zap(&mut conn, status, now);
    }
    while conn.poll_transmit().is_some() {}
});
