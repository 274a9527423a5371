//! Two sans-IO connections talking to each other: handshakes, traffic,
//! heartbeats, failures, and byte-split invariance.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use zeroring_transports::zmtp::{
    greeting::{greeting_v3, MechanismName},
    Connection, ConnectionConfig, Event, HandshakeFailure, MechanismConfig, ProtocolErrorCode,
    ZapReply, ZapSettings, ZmtpError, ZmtpVersion,
};
use zeroring_transports::{Errno, SocketType};

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

/// Moves bytes both ways until neither side has output; answers ZAP requests
/// with `zap`. Returns (events of a, events of b, bytes b sent to a).
fn pump(
    a: &mut Connection,
    b: &mut Connection,
    now: Instant,
    zap: &mut dyn FnMut(&zeroring_transports::zmtp::ZapRequest) -> ZapReply,
) -> (Vec<Event>, Vec<Event>, Vec<u8>) {
    let (mut ea, mut eb, mut b_to_a) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let x = drain_out(a);
        let y = drain_out(b);
        if !x.is_empty() {
            b.handle_input(x, now);
        }
        if !y.is_empty() {
            b_to_a.extend_from_slice(&y);
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
            return (ea, eb, b_to_a);
        }
    }
}

fn no_zap(_: &zeroring_transports::zmtp::ZapRequest) -> ZapReply {
    panic!("unexpected ZAP request")
}

fn cfg(t: SocketType) -> ConnectionConfig {
    ConnectionConfig::new(t)
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

#[test]
fn null_handshake_and_traffic() {
    let now = Instant::now();
    let mut dealer_cfg = cfg(SocketType::Dealer);
    dealer_cfg.routing_id = Bytes::from_static(b"dealer-1");
    dealer_cfg
        .metadata
        .push_app_property("X-Color:blue")
        .unwrap();
    let mut a = Connection::new(dealer_cfg, now).unwrap();
    let mut b = Connection::new(cfg(SocketType::Router), now).unwrap();
    let (ea, eb, _) = pump(&mut a, &mut b, now, &mut no_zap);
    let pa = succeeded(&ea);
    let pb = succeeded(&eb);
    assert_eq!(pa.version, ZmtpVersion::V3_1);
    assert_eq!(pa.socket_type, Some(SocketType::Router));
    assert_eq!(pb.socket_type, Some(SocketType::Dealer));
    assert_eq!(pb.routing_id.as_deref(), Some(&b"dealer-1"[..]));
    assert_eq!(pb.property("x-color").unwrap(), "blue");
    assert!(a.is_ready() && b.is_ready());

    let big = Bytes::from(vec![7u8; 100_000]);
    a.send_message([Bytes::from_static(b"hello"), big.clone()])
        .unwrap();
    let (_, eb, _) = pump(&mut a, &mut b, now, &mut no_zap);
    assert_eq!(
        eb,
        vec![
            Event::Frame {
                body: Bytes::from_static(b"hello"),
                more: true
            },
            Event::Frame {
                body: big,
                more: false
            },
        ]
    );
}

fn plain_pair(now: Instant, status: u16) -> (Connection, Connection, Vec<Event>, Vec<Event>) {
    let mut client_cfg = cfg(SocketType::Req);
    client_cfg.mechanism = MechanismConfig::PlainClient {
        username: Bytes::from_static(b"admin"),
        password: Bytes::from_static(b"secret"),
    };
    let mut server_cfg = cfg(SocketType::Rep);
    server_cfg.mechanism = MechanismConfig::PlainServer;
    server_cfg.zap = ZapSettings {
        domain: Bytes::from_static(b"global"),
        enforce_domain: false,
        handler_available: true,
    };
    server_cfg.peer_address = Bytes::from_static(b"127.0.0.1");
    let mut c = Connection::new(client_cfg, now).unwrap();
    let mut s = Connection::new(server_cfg, now).unwrap();
    let mut zap = |req: &zeroring_transports::zmtp::ZapRequest| {
        assert_eq!(req.mechanism, "PLAIN");
        assert_eq!(req.domain, "global");
        assert_eq!(req.address, "127.0.0.1");
        assert_eq!(
            req.credentials,
            vec![Bytes::from_static(b"admin"), Bytes::from_static(b"secret")]
        );
        let frames = req.frames();
        assert_eq!(frames.len(), 9);
        if status == 200 {
            ZapReply::ok("admin-user")
        } else {
            ZapReply::deny(status)
        }
    };
    let (ec, es, _) = pump(&mut c, &mut s, now, &mut zap);
    (c, s, ec, es)
}

#[test]
fn plain_handshake_with_zap() {
    let now = Instant::now();
    let (mut c, mut s, ec, es) = plain_pair(now, 200);
    assert_eq!(succeeded(&ec).socket_type, Some(SocketType::Rep));
    let ps = succeeded(&es);
    assert_eq!(ps.user_id.as_deref(), Some(&b"admin-user"[..]));
    assert_eq!(ps.property("User-Id").unwrap(), "admin-user");
    c.send_message([Bytes::new(), Bytes::from_static(b"req")])
        .unwrap();
    let (_, es, _) = pump(&mut c, &mut s, now, &mut no_zap);
    assert_eq!(es.len(), 2);
}

#[test]
fn plain_denied() {
    let now = Instant::now();
    let (_, _, ec, es) = plain_pair(now, 400);
    assert_eq!(failed(&es), &ZmtpError::AuthFailed { status: 400 });
    assert_eq!(
        failed(&es).handshake_failure(),
        Some(HandshakeFailure::Auth(400))
    );
    let e = failed(&ec);
    assert_eq!(
        e,
        &ZmtpError::PeerError {
            reason: Bytes::from_static(b"400")
        }
    );
    assert_eq!(e.handshake_failure(), Some(HandshakeFailure::Auth(400)));
    // 300: the server closes without an ERROR.
    let (c, _, ec, es) = plain_pair(now, 300);
    assert_eq!(failed(&es), &ZmtpError::AuthFailed { status: 300 });
    assert!(!ec.iter().any(|e| matches!(e, Event::HandshakeFailed(_))));
    assert!(!c.is_ready());
}

#[test]
fn plain_server_needs_a_zap_handler() {
    let now = Instant::now();
    let mut client_cfg = cfg(SocketType::Dealer);
    client_cfg.mechanism = MechanismConfig::PlainClient {
        username: Bytes::from_static(b"u"),
        password: Bytes::from_static(b"p"),
    };
    let mut server_cfg = cfg(SocketType::Dealer);
    server_cfg.mechanism = MechanismConfig::PlainServer;
    let mut c = Connection::new(client_cfg, now).unwrap();
    let mut s = Connection::new(server_cfg, now).unwrap();
    let (_, es, _) = pump(&mut c, &mut s, now, &mut no_zap);
    assert_eq!(failed(&es), &ZmtpError::ZapUnavailable);
    assert_eq!(
        failed(&es).handshake_failure(),
        Some(HandshakeFailure::NoDetail(Errno::EFAULT))
    );
}

#[test]
fn null_with_zap_domain_asks_zap() {
    let now = Instant::now();
    let mut s_cfg = cfg(SocketType::Pull);
    s_cfg.zap = ZapSettings {
        domain: Bytes::from_static(b"dom"),
        enforce_domain: false,
        handler_available: true,
    };
    let mut s = Connection::new(s_cfg, now).unwrap();
    let mut c = Connection::new(cfg(SocketType::Push), now).unwrap();
    let mut asked = 0;
    let (ec, es, _) = pump(&mut c, &mut s, now, &mut |req| {
        asked += 1;
        assert_eq!(req.mechanism, "NULL");
        assert!(req.credentials.is_empty());
        ZapReply::deny(500)
    });
    assert_eq!(asked, 1);
    assert_eq!(failed(&es), &ZmtpError::AuthFailed { status: 500 });
    assert_eq!(
        failed(&ec).handshake_failure(),
        Some(HandshakeFailure::Auth(500))
    );
}

#[test]
fn mechanism_mismatch() {
    let now = Instant::now();
    let mut c_cfg = cfg(SocketType::Dealer);
    c_cfg.mechanism = MechanismConfig::PlainClient {
        username: Bytes::new(),
        password: Bytes::new(),
    };
    let mut c = Connection::new(c_cfg, now).unwrap();
    let mut s = Connection::new(cfg(SocketType::Dealer), now).unwrap();
    let (ec, es, _) = pump(&mut c, &mut s, now, &mut no_zap);
    for e in [failed(&ec), failed(&es)] {
        assert!(matches!(e, ZmtpError::MechanismMismatch { .. }));
        assert_eq!(
            e.handshake_failure(),
            Some(HandshakeFailure::Protocol(
                ProtocolErrorCode::ZmtpMechanismMismatch
            ))
        );
    }
}

#[test]
fn socket_type_mismatch_sends_error() {
    let now = Instant::now();
    let mut c = Connection::new(cfg(SocketType::Push), now).unwrap();
    let mut s = Connection::new(cfg(SocketType::Push), now).unwrap();
    let (ec, es, b_to_a) = pump(&mut c, &mut s, now, &mut no_zap);
    assert!(matches!(failed(&ec), ZmtpError::SocketTypeMismatch { .. }));
    assert!(matches!(failed(&es), ZmtpError::SocketTypeMismatch { .. }));
    let needle = b"\x05ERROR\x13Invalid socket type";
    assert!(b_to_a.windows(needle.len()).any(|w| w == needle));
}

/// Feeds `transcript` to a fresh connection built by `make`, split at `cut`.
fn replay(
    make: &dyn Fn() -> Connection,
    transcript: &[u8],
    cuts: &[usize],
    now: Instant,
) -> Vec<Event> {
    let mut c = make();
    let mut prev = 0;
    for &cut in cuts.iter().chain(std::iter::once(&transcript.len())) {
        c.handle_input(Bytes::copy_from_slice(&transcript[prev..cut]), now);
        prev = cut;
    }
    drain_events(&mut c)
}

#[test]
fn every_byte_split_of_a_handshake_gives_the_same_result() {
    let now = Instant::now();
    for plain in [false, true] {
        let make_client = move || {
            let mut c = cfg(SocketType::Dealer);
            c.routing_id = Bytes::from_static(b"id");
            if plain {
                c.mechanism = MechanismConfig::PlainClient {
                    username: Bytes::from_static(b"user"),
                    password: Bytes::from_static(b"pw"),
                };
            }
            Connection::new(c, now).unwrap()
        };
        let mut server_cfg = cfg(SocketType::Router);
        if plain {
            server_cfg.mechanism = MechanismConfig::PlainServer;
            server_cfg.zap.handler_available = true;
        }
        let mut a = make_client();
        let mut b = Connection::new(server_cfg, now).unwrap();
        let (ea, _, _) = pump(&mut a, &mut b, now, &mut |_| ZapReply::ok("u"));
        b.send_message([Bytes::from_static(b"id"), Bytes::from_static(b"payload")])
            .unwrap();
        let (ea2, _, _) = pump(&mut a, &mut b, now, &mut no_zap);
        let reference: Vec<Event> = ea.into_iter().chain(ea2).collect();
        // Rebuild the transcript b -> a by replaying the same exchange.
        let mut a = make_client();
        let mut server_cfg = cfg(SocketType::Router);
        if plain {
            server_cfg.mechanism = MechanismConfig::PlainServer;
            server_cfg.zap.handler_available = true;
        }
        let mut b = Connection::new(server_cfg, now).unwrap();
        let (_, _, mut transcript) = pump(&mut a, &mut b, now, &mut |_| ZapReply::ok("u"));
        b.send_message([Bytes::from_static(b"id"), Bytes::from_static(b"payload")])
            .unwrap();
        let (_, _, t2) = pump(&mut a, &mut b, now, &mut no_zap);
        transcript.extend_from_slice(&t2);
        assert_eq!(replay(&make_client, &transcript, &[], now), reference);
        for cut in 0..=transcript.len() {
            assert_eq!(
                replay(&make_client, &transcript, &[cut], now),
                reference,
                "cut at {cut}"
            );
        }
        // Byte by byte.
        let all: Vec<usize> = (1..transcript.len()).collect();
        assert_eq!(replay(&make_client, &transcript, &all, now), reference);
    }
}

#[test]
fn heartbeats() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut a_cfg = cfg(SocketType::Pair);
    a_cfg.heartbeat.interval = Some(ms(100));
    a_cfg.heartbeat.ttl = ms(500);
    a_cfg.heartbeat.timeout = Some(ms(50));
    let mut a = Connection::new(a_cfg, t0).unwrap();
    let mut b = Connection::new(cfg(SocketType::Pair), t0).unwrap();
    pump(&mut a, &mut b, t0, &mut no_zap);
    assert_eq!(a.poll_timeout(), Some(t0 + ms(100)));
    // PING goes out, b answers PONG (no context), nobody times out.
    a.handle_timeout(t0 + ms(100));
    let ping = drain_out(&mut a);
    assert_eq!(&ping[..], b"\x04\x07\x04PING\x00\x05");
    b.handle_input(ping, t0 + ms(100));
    let pong = drain_out(&mut b);
    assert_eq!(&pong[..], b"\x04\x05\x04PONG");
    assert_eq!(b.poll_timeout(), Some(t0 + ms(600)), "peer TTL timer");
    a.handle_input(pong, t0 + ms(120));
    assert_eq!(a.poll_timeout(), Some(t0 + ms(200)));
    // Next PING unanswered: HEARTBEAT_TIMEOUT closes a.
    a.handle_timeout(t0 + ms(200));
    let _ = drain_out(&mut a);
    assert_eq!(a.poll_timeout(), Some(t0 + ms(250)));
    a.handle_timeout(t0 + ms(250));
    assert_eq!(failed(&drain_events(&mut a)), &ZmtpError::HeartbeatTimeout);
    // b saw nothing after the PING: the TTL closes it.
    b.handle_timeout(t0 + ms(600));
    let eb = drain_events(&mut b);
    assert_eq!(failed(&eb), &ZmtpError::HeartbeatTtlExpired);
    assert!(matches!(eb.last(), Some(Event::Closed(_))));
}

#[test]
fn pong_echoes_at_most_16_bytes_of_context() {
    let now = Instant::now();
    let mut a = Connection::new(cfg(SocketType::Pair), now).unwrap();
    let mut b = Connection::new(cfg(SocketType::Pair), now).unwrap();
    pump(&mut a, &mut b, now, &mut no_zap);
    let mut ping = b"\x04\x1a\x04PING\x00\x00".to_vec();
    ping.extend_from_slice(b"0123456789abcdefXYZ");
    a.handle_input(Bytes::from(ping), now);
    assert_eq!(&drain_out(&mut a)[..], b"\x04\x15\x04PONG0123456789abcdef");
}

#[test]
fn handshake_timeout() {
    let t0 = Instant::now();
    let mut c_cfg = cfg(SocketType::Req);
    c_cfg.handshake_ivl = Some(Duration::from_millis(300));
    let mut c = Connection::new(c_cfg, t0).unwrap();
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_millis(300)));
    c.handle_timeout(t0 + Duration::from_millis(299));
    assert!(!c.is_closed());
    c.handle_timeout(t0 + Duration::from_millis(300));
    let e = drain_events(&mut c);
    assert_eq!(e, vec![Event::HandshakeFailed(ZmtpError::HandshakeTimeout)]);
    assert_eq!(c.poll_timeout(), None);
}

fn ready_body(socket_type: &str) -> Vec<u8> {
    let mut body = b"\x05READY\x0bSocket-Type".to_vec();
    body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    body.extend_from_slice(socket_type.as_bytes());
    body
}

fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![flags, body.len() as u8];
    f.extend_from_slice(body);
    f
}

#[test]
fn zmtp30_peer_subscriptions_are_messages() {
    let now = Instant::now();
    // We are XPUB; the peer is a 3.0 SUB.
    let mut x = Connection::new(cfg(SocketType::XPub), now).unwrap();
    let mut peer = greeting_v3(MechanismName::Null, 0).to_vec();
    peer[11] = 0;
    peer.extend(frame(0x04, &ready_body("SUB")));
    peer.extend(frame(0x00, b"\x01news"));
    peer.extend(frame(0x00, b"\x00news"));
    x.handle_input(Bytes::from(peer), now);
    let ev = drain_events(&mut x);
    assert_eq!(succeeded(&ev).version, ZmtpVersion::V3_0);
    assert_eq!(ev[1], Event::Subscribe(Bytes::from_static(b"news")));
    assert_eq!(ev[2], Event::Cancel(Bytes::from_static(b"news")));

    // We are SUB; to a 3.0 XPUB our subscription is a message.
    let mut s = Connection::new(cfg(SocketType::Sub), now).unwrap();
    let mut peer = greeting_v3(MechanismName::Null, 0).to_vec();
    peer[11] = 0;
    peer.extend(frame(0x04, &ready_body("XPUB")));
    s.handle_input(Bytes::from(peer), now);
    drain_out(&mut s);
    s.send_subscribe(&Bytes::from_static(b"A")).unwrap();
    assert_eq!(&drain_out(&mut s)[..], b"\x00\x02\x01A");
    assert_eq!(
        s.send_join(&Bytes::from_static(b"g")),
        Err(zeroring_transports::zmtp::FrameRefused::Unsupported)
    );
}

#[test]
fn zmtp31_subscribe_commands() {
    let now = Instant::now();
    let mut sub = Connection::new(cfg(SocketType::Sub), now).unwrap();
    let mut publ = Connection::new(cfg(SocketType::Pub), now).unwrap();
    pump(&mut sub, &mut publ, now, &mut no_zap);
    sub.send_subscribe(&Bytes::from_static(b"A")).unwrap();
    sub.send_subscribe(&Bytes::from_static(b"A")).unwrap();
    sub.send_cancel(&Bytes::from_static(b"A")).unwrap();
    let (_, ep, _) = pump(&mut sub, &mut publ, now, &mut no_zap);
    assert_eq!(
        ep,
        vec![
            Event::Subscribe(Bytes::from_static(b"A")),
            Event::Subscribe(Bytes::from_static(b"A")),
            Event::Cancel(Bytes::from_static(b"A")),
        ]
    );
}

#[test]
fn zmtp20_peer() {
    let now = Instant::now();
    let mut c_cfg = cfg(SocketType::Dealer);
    c_cfg.routing_id = Bytes::from_static(b"me");
    let mut c = Connection::new(c_cfg, now).unwrap();
    assert_eq!(
        &drain_out(&mut c)[..],
        &[0xFF, 0, 0, 0, 0, 0, 0, 0, 3, 0x7F]
    );
    let mut peer = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 1, 6];
    peer.extend(frame(0x00, b"peer-id"));
    peer.extend(frame(0x00, b"hi"));
    c.handle_input(Bytes::from(peer), now);
    assert_eq!(&drain_out(&mut c)[..], b"\x03\x05\x00\x02me");
    let ev = drain_events(&mut c);
    let p = succeeded(&ev);
    assert_eq!(p.version, ZmtpVersion::V2_0);
    assert_eq!(p.socket_type, Some(SocketType::Router));
    assert_eq!(p.routing_id.as_deref(), Some(&b"peer-id"[..]));
    assert_eq!(
        ev[1],
        Event::Frame {
            body: Bytes::from_static(b"hi"),
            more: false
        }
    );
    // With PLAIN, 2.0 peers are refused.
    let mut p_cfg = cfg(SocketType::Dealer);
    p_cfg.mechanism = MechanismConfig::PlainServer;
    let mut c = Connection::new(p_cfg, now).unwrap();
    c.handle_input(
        Bytes::from_static(&[0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 1, 6]),
        now,
    );
    assert_eq!(
        failed(&drain_events(&mut c)),
        &ZmtpError::LegacyPeerWithSecurity
    );
}

#[test]
fn zmtp10_is_refused() {
    let now = Instant::now();
    let mut c = Connection::new(cfg(SocketType::Dealer), now).unwrap();
    c.handle_input(Bytes::from_static(b"\x06\x00hello"), now);
    let e = failed(&drain_events(&mut c)).clone();
    assert_eq!(e, ZmtpError::UnsupportedVersion { revision: None });
    assert!(e.to_string().contains("ZMTP 1.0"));
    assert!(c.is_closed());
}

#[test]
fn oversized_frame_is_refused_before_allocation() {
    let now = Instant::now();
    let mut a_cfg = cfg(SocketType::Pair);
    a_cfg.max_msg_size = 100;
    let mut a = Connection::new(a_cfg, now).unwrap();
    let mut b = Connection::new(cfg(SocketType::Pair), now).unwrap();
    pump(&mut a, &mut b, now, &mut no_zap);
    let mut wire = vec![0x02];
    wire.extend_from_slice(&(1u64 << 60).to_be_bytes());
    a.handle_input(Bytes::from(wire), now);
    let e = failed(&drain_events(&mut a)).clone();
    assert_eq!(e.errno(), Errno::EMSGSIZE);
    assert!(a.send_frame(Bytes::new(), false).is_err());
}

#[test]
fn message_frame_during_handshake_is_unexpected() {
    let now = Instant::now();
    let mut c = Connection::new(cfg(SocketType::Dealer), now).unwrap();
    let mut peer = greeting_v3(MechanismName::Null, 0).to_vec();
    peer.extend(frame(0x00, b"data"));
    c.handle_input(Bytes::from(peer), now);
    let e = failed(&drain_events(&mut c)).clone();
    assert_eq!(
        e.handshake_failure(),
        Some(HandshakeFailure::Protocol(
            ProtocolErrorCode::ZmtpUnexpectedCommand
        ))
    );
}

#[test]
fn eof_during_handshake() {
    let now = Instant::now();
    let mut c = Connection::new(cfg(SocketType::Dealer), now).unwrap();
    c.handle_eof(now);
    let e = failed(&drain_events(&mut c)).clone();
    assert_eq!(
        e.handshake_failure(),
        Some(HandshakeFailure::NoDetail(Errno::EPIPE))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_peer_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), plain_server in any::<bool>(), valid_greeting in any::<bool>()) {
        let now = Instant::now();
        let mut c = cfg(SocketType::Dealer);
        if plain_server {
            c.mechanism = MechanismConfig::PlainServer;
            c.zap.handler_available = true;
        }
        let mut conn = Connection::new(c, now).unwrap();
        if valid_greeting {
            let mech = if plain_server { MechanismName::Plain } else { MechanismName::Null };
            conn.handle_input(Bytes::copy_from_slice(&greeting_v3(mech, 0)), now);
        }
        conn.handle_input(Bytes::from(data), now);
        while let Some(e) = conn.poll_event() {
            if let Event::ZapRequest(_) = e {
                conn.zap_reply(ZapReply::ok("x"), now);
            }
        }
        conn.handle_timeout(now + Duration::from_secs(60));
        let _ = drain_out(&mut conn);
    }
}

/// An accepted connection (`ready_after_peer`) sends its NULL READY only once the peer's has
/// arrived: until then the peer cannot finish its handshake or send a message, so the
/// listener's handshake cap may end the connection without dropping one. Against a peer that
/// sends READY at once (libzmq's and every ZMTP peer's NULL) the handshake completes.
#[test]
fn an_accepted_null_connection_sends_ready_only_after_the_peers() {
    let now = Instant::now();
    let mut server_cfg = cfg(SocketType::Pull);
    server_cfg.ready_after_peer = true;
    let mut s = Connection::new(server_cfg, now).unwrap();
    // The peer's greeting alone: the server answers with its greeting and nothing more.
    s.handle_input(
        Bytes::copy_from_slice(&greeting_v3(MechanismName::Null, 0)),
        now,
    );
    let out = drain_out(&mut s);
    assert_eq!(
        out.len(),
        64,
        "only the greeting before the peer's READY: {out:?}"
    );
    assert!(!s.is_ready());
    // The peer's READY: the server's READY follows, and its handshake is done.
    s.handle_input(Bytes::from(frame(0x04, &ready_body("PUSH"))), now);
    let out = drain_out(&mut s);
    assert!(out.starts_with(b"\x04"), "a command frame: {out:?}");
    assert_eq!(&out[2..8], b"\x05READY");
    assert!(s.is_ready());
    assert_eq!(
        succeeded(&drain_events(&mut s)).socket_type,
        Some(SocketType::Push)
    );

    // Two connections, the accepting one waiting on the other: both complete.
    let mut c = Connection::new(cfg(SocketType::Push), now).unwrap();
    let mut server_cfg = cfg(SocketType::Pull);
    server_cfg.ready_after_peer = true;
    let mut s = Connection::new(server_cfg, now).unwrap();
    let (ec, es, _) = pump(&mut c, &mut s, now, &mut no_zap);
    succeeded(&ec);
    succeeded(&es);
    assert!(c.is_ready() && s.is_ready());
}
