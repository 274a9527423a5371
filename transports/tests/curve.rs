//! CURVE between two sans-IO connections: the handshake with and without ZAP,
//! a wrong server key, ZAP refusals, traffic in both directions, and the
//! tampering, replay and reordering of MESSAGE frames.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use zeroring_transports::zmtp::frame::FrameDecoder;
use zeroring_transports::zmtp::mechanism::curve::{keypair, CurveSecretKey};
use zeroring_transports::zmtp::{
    Connection, ConnectionConfig, Event, HandshakeFailure, MechanismConfig, ProtocolErrorCode,
    ZapReply, ZapRequest, ZapSettings, ZmtpError,
};
use zeroring_transports::SocketType;

fn drain_out(c: &mut Connection) -> Bytes {
    let mut out = BytesMut::new();
    while let Some(chunk) = c.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    out.freeze()
}

fn drain_events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Moves bytes both ways until neither side has output, answering ZAP with `zap`.
fn pump(
    a: &mut Connection,
    b: &mut Connection,
    now: Instant,
    zap: &mut dyn FnMut(&ZapRequest) -> ZapReply,
) -> (Vec<Event>, Vec<Event>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    loop {
        let x = drain_out(a);
        let y = drain_out(b);
        if !x.is_empty() {
            b.handle_input(x, now);
        }
        if !y.is_empty() {
            a.handle_input(y, now);
        }
        let mut progressed = false;
        for (c, ev) in [(&mut *a, &mut ea), (&mut *b, &mut eb)] {
            for e in drain_events(c) {
                progressed = true;
                if let Event::ZapRequest(req) = &e {
                    c.zap_reply(zap(req), now);
                }
                ev.push(e);
            }
        }
        if !progressed && a.pending_transmit_bytes() == 0 && b.pending_transmit_bytes() == 0 {
            return (ea, eb);
        }
    }
}

fn no_zap(_: &ZapRequest) -> ZapReply {
    panic!("unexpected ZAP request")
}

fn succeeded(events: &[Event]) -> &zeroring_transports::zmtp::PeerInfo {
    events
        .iter()
        .find_map(|e| match e {
            Event::HandshakeSucceeded(p) => Some(&**p),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no HandshakeSucceeded in {events:?}"))
}

fn failed(events: &[Event]) -> &ZmtpError {
    events
        .iter()
        .find_map(|e| match e {
            Event::HandshakeFailed(err) | Event::Closed(err) => Some(err),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no failure in {events:?}"))
}

struct Keys {
    server_public: [u8; 32],
    server_secret: CurveSecretKey,
    client_public: [u8; 32],
    client_secret: CurveSecretKey,
}

fn keys() -> Keys {
    let (server_public, server_secret) = keypair().unwrap();
    let (client_public, client_secret) = keypair().unwrap();
    Keys {
        server_public,
        server_secret,
        client_public,
        client_secret,
    }
}

fn configs(k: &Keys, server_key: [u8; 32], zap: ZapSettings) -> (Connection, Connection) {
    let now = Instant::now();
    let mut c = ConnectionConfig::new(SocketType::Dealer);
    c.routing_id = Bytes::from_static(b"client-id");
    c.metadata
        .push(Bytes::from_static(b"X-Hello"), Bytes::from_static(b"world"))
        .unwrap();
    c.mechanism = MechanismConfig::CurveClient {
        public: k.client_public,
        secret: k.client_secret.clone(),
        server: server_key,
    };
    let mut s = ConnectionConfig::new(SocketType::Router);
    s.mechanism = MechanismConfig::CurveServer {
        secret: k.server_secret.clone(),
    };
    s.zap = zap;
    s.peer_address = Bytes::from_static(b"127.0.0.1");
    (
        Connection::new(c, now).unwrap(),
        Connection::new(s, now).unwrap(),
    )
}

fn with_handler() -> ZapSettings {
    ZapSettings {
        domain: Bytes::from_static(b"test"),
        enforce_domain: false,
        handler_available: true,
    }
}

#[test]
fn handshake_without_zap_and_traffic_both_ways() {
    let k = keys();
    let now = Instant::now();
    let (mut c, mut s) = configs(&k, k.server_public, ZapSettings::default());
    let (ec, es) = pump(&mut c, &mut s, now, &mut no_zap);
    assert_eq!(succeeded(&ec).socket_type, Some(SocketType::Router));
    let ps = succeeded(&es);
    assert_eq!(ps.socket_type, Some(SocketType::Dealer));
    assert_eq!(ps.routing_id.as_deref(), Some(&b"client-id"[..]));
    assert_eq!(ps.property("X-Hello").unwrap(), "world");

    c.send_message([Bytes::from_static(b"one"), Bytes::from_static(b"two")])
        .unwrap();
    s.send_message([Bytes::from_static(b"back")]).unwrap();
    let (ec, es) = pump(&mut c, &mut s, now, &mut no_zap);
    let frames = |ev: &[Event]| {
        ev.iter()
            .filter_map(|e| match e {
                Event::Frame { body, more } => Some((body.clone(), *more)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        frames(&es),
        vec![
            (Bytes::from_static(b"one"), true),
            (Bytes::from_static(b"two"), false)
        ]
    );
    assert_eq!(frames(&ec), vec![(Bytes::from_static(b"back"), false)]);
}

#[test]
fn zap_gets_the_client_key_and_sets_user_id() {
    let k = keys();
    let now = Instant::now();
    let (mut c, mut s) = configs(&k, k.server_public, with_handler());
    let client_public = k.client_public;
    let mut asked = 0;
    let mut zap = |req: &ZapRequest| {
        asked += 1;
        assert_eq!(req.mechanism, "CURVE");
        assert_eq!(req.domain, "test");
        assert_eq!(
            req.credentials,
            vec![Bytes::copy_from_slice(&client_public)]
        );
        let mut r = ZapReply::ok("curve-user");
        r.metadata
            .push(Bytes::from_static(b"X-Role"), Bytes::from_static(b"admin"))
            .unwrap();
        r
    };
    let (ec, es) = pump(&mut c, &mut s, now, &mut zap);
    assert_eq!(asked, 1);
    succeeded(&ec);
    let ps = succeeded(&es);
    assert_eq!(ps.property("User-Id").unwrap(), "curve-user");
    assert_eq!(ps.property("X-Role").unwrap(), "admin");
}

#[test]
fn zap_refusals() {
    let k = keys();
    let now = Instant::now();
    for status in [300u16, 400, 500] {
        let (mut c, mut s) = configs(&k, k.server_public, with_handler());
        let (ec, es) = pump(&mut c, &mut s, now, &mut |_| ZapReply::deny(status));
        assert_eq!(failed(&es), &ZmtpError::AuthFailed { status });
        assert_eq!(
            failed(&es).handshake_failure(),
            Some(HandshakeFailure::Auth(status))
        );
        if status == 300 {
            // No ERROR: the client only sees the stream end.
            assert!(!ec.iter().any(|e| matches!(e, Event::HandshakeFailed(_))));
        } else {
            assert_eq!(
                failed(&ec).handshake_failure(),
                Some(HandshakeFailure::Auth(status))
            );
        }
    }
}

#[test]
fn wrong_server_key_fails_before_zap() {
    let k = keys();
    let (other, _) = keypair().unwrap();
    let now = Instant::now();
    let (mut c, mut s) = configs(&k, other, with_handler());
    let (_, es) = pump(&mut c, &mut s, now, &mut no_zap);
    assert_eq!(failed(&es), &ZmtpError::Cryptographic);
    assert_eq!(
        failed(&es).handshake_failure(),
        Some(HandshakeFailure::Protocol(
            ProtocolErrorCode::ZmtpCryptographic
        ))
    );
}

#[test]
fn enforced_domain_without_handler_fails() {
    let k = keys();
    let now = Instant::now();
    let zap = ZapSettings {
        domain: Bytes::from_static(b"x"),
        enforce_domain: true,
        handler_available: false,
    };
    let (mut c, mut s) = configs(&k, k.server_public, zap);
    let (_, es) = pump(&mut c, &mut s, now, &mut no_zap);
    assert_eq!(failed(&es), &ZmtpError::ZapUnavailable);
}

/// Splits a byte stream into whole ZMTP frames (the 64-byte greeting first).
fn frames_of(stream: &[u8]) -> Vec<Bytes> {
    let mut data = Bytes::copy_from_slice(stream.get(64..).unwrap_or_default());
    let mut d = FrameDecoder::new(None);
    let mut out = Vec::new();
    let mut start = 0;
    let total = data.len();
    while let Ok(Some(_)) = d.decode(&mut data) {
        let end = total - data.len();
        out.push(Bytes::copy_from_slice(&stream[64 + start..64 + end]));
        start = end;
    }
    out
}

/// A ready client/server pair and the raw bytes of client frames sent after it.
fn ready_pair_and_client_frames(n: usize) -> (Connection, Vec<Bytes>) {
    let k = keys();
    let now = Instant::now();
    let (mut c, mut s) = configs(&k, k.server_public, ZapSettings::default());
    let mut client_bytes = BytesMut::new();
    // Handshake by hand, keeping what the client sends.
    loop {
        let x = drain_out(&mut c);
        let y = drain_out(&mut s);
        if x.is_empty() && y.is_empty() {
            break;
        }
        client_bytes.extend_from_slice(&x);
        s.handle_input(x, now);
        c.handle_input(y, now);
    }
    assert!(c.is_ready() && s.is_ready());
    let handshake_frames = frames_of(&client_bytes).len();
    for i in 0..n {
        c.send_message([Bytes::from(format!("m{i}"))]).unwrap();
        client_bytes.extend_from_slice(&drain_out(&mut c));
    }
    let all = frames_of(&client_bytes);
    drain_events(&mut s);
    (s, all[handshake_frames..].to_vec())
}

#[test]
fn message_is_an_ordinary_frame_as_libzmq_sends_it() {
    let (_, frames) = ready_pair_and_client_frames(1);
    let f = &frames[0];
    // Flags 0 (no COMMAND, no MORE), short size, "\x07MESSAGE", nonce 3 (HELLO 1, INITIATE 2).
    assert_eq!(f[0], 0);
    assert_eq!(&f[2..10], b"\x07MESSAGE");
    assert_eq!(&f[10..18], &3u64.to_be_bytes());
    assert_eq!(f.len(), 2 + 16 + 16 + 1 + 2);
}

#[test]
fn replayed_message_is_invalid_sequence() {
    let (mut s, frames) = ready_pair_and_client_frames(2);
    let now = Instant::now();
    s.handle_input(frames[0].clone(), now);
    s.handle_input(frames[0].clone(), now);
    let ev = drain_events(&mut s);
    assert!(matches!(&ev[0], Event::Frame { body, .. } if body == "m0"));
    assert_eq!(failed(&ev), &ZmtpError::InvalidSequence);
}

#[test]
fn reordered_message_is_invalid_sequence() {
    let (mut s, frames) = ready_pair_and_client_frames(2);
    let now = Instant::now();
    s.handle_input(frames[1].clone(), now);
    s.handle_input(frames[0].clone(), now);
    let ev = drain_events(&mut s);
    assert!(matches!(&ev[0], Event::Frame { body, .. } if body == "m1"));
    assert_eq!(failed(&ev), &ZmtpError::InvalidSequence);
}

#[test]
fn tampered_message_is_cryptographic() {
    let (mut s, frames) = ready_pair_and_client_frames(1);
    let mut f = frames[0].to_vec();
    let last = f.len() - 1;
    f[last] ^= 1;
    s.handle_input(Bytes::from(f), Instant::now());
    let ev = drain_events(&mut s);
    assert_eq!(failed(&ev), &ZmtpError::Cryptographic);
}

#[test]
fn short_message_is_malformed() {
    let (mut s, _) = ready_pair_and_client_frames(0);
    let mut f = vec![0u8, 20];
    f.extend_from_slice(b"\x07MESSAGE");
    f.extend_from_slice(&9u64.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    s.handle_input(Bytes::from(f), Instant::now());
    let ev = drain_events(&mut s);
    assert_eq!(
        failed(&ev).handshake_failure(),
        Some(HandshakeFailure::Protocol(
            ProtocolErrorCode::ZmtpMalformedCommandMessage
        ))
    );
}

#[test]
fn secret_keys_do_not_print() {
    let (_, secret) = keypair().unwrap();
    assert_eq!(format!("{secret:?}"), "CurveSecretKey(..)");
}

#[test]
fn heartbeats_travel_boxed() {
    // PING and PONG are commands, so they go through MESSAGE boxes too; a PONG that the
    // pinger could not open would end the connection.
    use std::time::Duration;
    use zeroring_transports::zmtp::HeartbeatConfig;
    let k = keys();
    let t0 = Instant::now();
    let mut c = ConnectionConfig::new(SocketType::Dealer);
    c.mechanism = MechanismConfig::CurveClient {
        public: k.client_public,
        secret: k.client_secret.clone(),
        server: k.server_public,
    };
    c.heartbeat = HeartbeatConfig {
        interval: Some(Duration::from_millis(100)),
        ttl: Duration::ZERO,
        timeout: Some(Duration::from_millis(300)),
    };
    let mut s = ConnectionConfig::new(SocketType::Router);
    s.mechanism = MechanismConfig::CurveServer {
        secret: k.server_secret.clone(),
    };
    let (mut c, mut s) = (
        Connection::new(c, t0).unwrap(),
        Connection::new(s, t0).unwrap(),
    );
    pump(&mut c, &mut s, t0, &mut no_zap);
    assert!(c.is_ready() && s.is_ready());
    for step in 1..=10u64 {
        let now = t0 + Duration::from_millis(100 * step);
        c.handle_timeout(now);
        let ping = drain_out(&mut c);
        assert!(
            ping.len() > 2 && &ping[2..10] == b"\x07MESSAGE",
            "PING boxed"
        );
        s.handle_input(ping, now);
        let pong = drain_out(&mut s);
        assert!(&pong[2..10] == b"\x07MESSAGE", "PONG boxed");
        c.handle_input(pong, now);
        let ev: Vec<_> = drain_events(&mut c)
            .into_iter()
            .chain(drain_events(&mut s))
            .collect();
        assert!(ev.is_empty(), "{ev:?}");
    }
    assert!(c.is_ready() && s.is_ready());
}
