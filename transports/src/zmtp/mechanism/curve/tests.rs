use super::*;
use crate::socket_type::SocketType;
use crate::zmtp::mechanism::ZapSettings;

fn ctx(t: SocketType) -> HandshakeContext {
    HandshakeContext {
        socket_type: t,
        routing_id: Bytes::new(),
        app_metadata: Metadata::new(),
        zap: ZapSettings::default(),
        peer_address: Bytes::new(),
        ready_after_peer: false,
    }
}

fn pair() -> (CurveClient, CurveServer) {
    let (spub, ssec) = keypair().unwrap();
    let (cpub, csec) = keypair().unwrap();
    (
        CurveClient::new(ctx(SocketType::Dealer), cpub, csec, spub),
        CurveServer::new(ctx(SocketType::Router), ssec),
    )
}

fn code(e: &ZmtpError) -> Option<crate::zmtp::error::HandshakeFailure> {
    e.handshake_failure()
}

#[test]
fn handshake_sizes_and_cookie_key_lifetime() {
    let (mut c, mut s) = pair();
    let hello = c.next_command().unwrap();
    assert_eq!(hello.len(), HELLO_LEN);
    assert_eq!(&hello[6..8], &[1, 0]);
    assert!(hello[8..80].iter().all(|&b| b == 0));
    assert_eq!(&hello[112..120], &1u64.to_be_bytes());
    s.process_command(&hello).unwrap();
    assert!(s.cookie_key.is_none());
    let welcome = s.next_command().unwrap();
    assert_eq!(welcome.len(), WELCOME_LEN);
    assert!(s.cookie_key.is_some());
    c.process_command(&welcome).unwrap();
    let initiate = c.next_command().unwrap();
    assert!(initiate.len() >= INITIATE_MIN_LEN);
    assert_eq!(&initiate[105..113], &2u64.to_be_bytes());
    s.process_command(&initiate).unwrap();
    // The cookie key is forgotten once INITIATE is in.
    assert!(s.cookie_key.is_none());
    let ready = s.next_command().unwrap();
    assert!(ready.len() >= READY_MIN_LEN);
    assert_eq!(&ready[6..14], &1u64.to_be_bytes());
    c.process_command(&ready).unwrap();
    assert_eq!(c.status(), MechanismStatus::Ready);
    assert_eq!(s.status(), MechanismStatus::Ready);
    assert_eq!(
        c.peer_properties().get("Socket-Type").unwrap(),
        &Bytes::from_static(b"ROUTER")
    );
}

#[test]
fn a_replayed_initiate_cannot_reuse_the_cookie() {
    // A second server instance given the same INITIATE has no cookie key for it; the
    // same instance refuses a second INITIATE (out of sequence).
    let (mut c, mut s) = pair();
    let hello = c.next_command().unwrap();
    s.process_command(&hello).unwrap();
    let welcome = s.next_command().unwrap();
    c.process_command(&welcome).unwrap();
    let initiate = c.next_command().unwrap();
    s.process_command(&initiate).unwrap();
    assert_eq!(
        s.process_command(&initiate).unwrap_err(),
        ZmtpError::OutOfSequence
    );
    // A fresh server with the same long-term key, replayed HELLO then INITIATE.
    let mut s2 = CurveServer::new(ctx(SocketType::Router), s.secret.clone());
    s2.process_command(&hello).unwrap();
    s2.next_command().unwrap();
    assert_eq!(
        s2.process_command(&initiate).unwrap_err(),
        ZmtpError::Cryptographic
    );
}

#[test]
fn malformed_hellos_as_libzmq_reports_them() {
    use crate::zmtp::error::{HandshakeFailure as H, ProtocolErrorCode as P};
    let (mut c, _) = pair();
    let hello = c.next_command().unwrap();
    let mut bad_version = hello.to_vec();
    bad_version[6] = 2;
    let cases: Vec<(Vec<u8>, H)> = vec![
        (
            hello[..199].to_vec(),
            H::Protocol(P::ZmtpMalformedCommandHello),
        ),
        (bad_version, H::Protocol(P::ZmtpMalformedCommandHello)),
        (b"\x05READY".to_vec(), H::Protocol(P::ZmtpUnexpectedCommand)),
        (
            b"\x09".to_vec(),
            H::Protocol(P::ZmtpMalformedCommandUnspecified),
        ),
    ];
    for (body, want) in cases {
        let (_, mut s) = pair();
        let e = s.process_command(&Bytes::from(body)).unwrap_err();
        assert_eq!(code(&e), Some(want));
        assert!(matches!(s.status(), MechanismStatus::Failed(_)));
    }
    // A WELCOME of the wrong size is cryptographic for libzmq's client.
    let (mut c, _) = pair();
    c.next_command().unwrap();
    let e = c
        .process_command(&Bytes::from_static(b"\x07WELCOME"))
        .unwrap_err();
    assert_eq!(e, ZmtpError::Cryptographic);
}

#[test]
fn secret_key_equality_and_derivation() {
    let (public, secret) = keypair().unwrap();
    assert_eq!(secret.public_key(), public);
    assert_eq!(secret.clone(), secret);
    assert_ne!(CurveSecretKey::from_bytes([1; 32]), secret);
}
