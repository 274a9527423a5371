//! PLAIN client or server driven by arbitrary peer bytes after a valid PLAIN
//! greeting; ZAP verdicts come from the input. Never panics.
#![no_main]

use std::time::Instant;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zeroring_transports::zmtp::greeting::{greeting_v3, MechanismName};
use zeroring_transports::zmtp::{Connection, ConnectionConfig, Event, MechanismConfig, ZapReply};
use zeroring_transports::SocketType;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else { return };
    let now = Instant::now();
    let mut cfg = ConnectionConfig::new(SocketType::from_raw(i32::from(ctl % 11)).unwrap_or(SocketType::Pair));
    if ctl & 0x10 != 0 {
        cfg.mechanism = MechanismConfig::PlainServer;
        cfg.zap.handler_available = ctl & 0x20 != 0;
    } else {
        cfg.mechanism = MechanismConfig::PlainClient {
            username: Bytes::from_static(b"admin"),
            password: Bytes::from_static(b"secret"),
        };
    }
    let Ok(mut conn) = Connection::new(cfg, now) else { return };
    if ctl & 0x08 == 0 {
        conn.handle_input(Bytes::copy_from_slice(&greeting_v3(MechanismName::Plain, 0)), now);
    }
    for (i, chunk) in rest.chunks(usize::from(ctl % 13) + 1).enumerate() {
        conn.handle_input(Bytes::copy_from_slice(chunk), now);
        while let Some(e) = conn.poll_event() {
            if let Event::ZapRequest(_) = e {
                let status = [200, 300, 400, 500, 201][i % 5];
                let mut r = ZapReply::ok("user");
                r.status_code = status;
                conn.zap_reply(r, now);
            }
        }
    }
    while conn.poll_transmit().is_some() {}
});
