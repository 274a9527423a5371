//! A NULL connection driven by arbitrary peer bytes (after a valid greeting, or
//! raw), with ZAP on or off and replies taken from the input: never panics,
//! and ends ready, failed, or waiting.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zeroring_transports::zmtp::greeting::{greeting_v3, MechanismName};
use zeroring_transports::zmtp::{Connection, ConnectionConfig, Event};
use zeroring_transports::SocketType;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let now = Instant::now();
    let mut cfg = ConnectionConfig::new(SocketType::from_raw(i32::from(ctl % 11)).unwrap_or(SocketType::Pair));
    if ctl & 0x10 != 0 {
        cfg.zap.domain = Bytes::from_static(b"global");
        cfg.zap.handler_available = ctl & 0x20 != 0;
        cfg.zap.enforce_domain = ctl & 0x40 != 0;
    }
    cfg.max_msg_size = if ctl & 0x80 != 0 { 64 } else { -1 };
    cfg.heartbeat.interval = Some(Duration::from_millis(10));
    let Ok(mut conn) = Connection::new(cfg, now) else { return };
    if ctl & 0x08 == 0 {
        let mut g = greeting_v3(MechanismName::Null, 0);
        g[11] = ctl & 1;
        conn.handle_input(Bytes::copy_from_slice(&g), now);
    }
    let half = rest.len() / 2;
    let (a, b) = rest.split_at(half);
    conn.handle_input(Bytes::copy_from_slice(a), now);
    let mut zap_frames: Vec<Bytes> = b.split(|&x| x == 0xFF).take(8).map(Bytes::copy_from_slice).collect();
    while let Some(e) = conn.poll_event() {
        if let Event::ZapRequest(_) = e {
            if zap_frames.len() == 7 {
                conn.zap_reply_frames(&zap_frames, now);
            } else {
                zap_frames.truncate(7);
                conn.zap_reply(zeroring_transports::zmtp::ZapReply::ok("u"), now);
            }
        }
    }
    conn.handle_input(Bytes::copy_from_slice(b), now);
    conn.handle_timeout(now + Duration::from_millis(20));
    let _ = conn.send_frame(Bytes::from_static(b"x"), false);
    while conn.poll_transmit().is_some() {}
    while conn.poll_event().is_some() {}
    conn.handle_eof(now);
});
