//! Differential test: the same peer bytes go to a libzmq socket (watched by a
//! monitor) and to our connection; the handshake verdict must match, event and
//! value (HANDSHAKE_SUCCEEDED, HANDSHAKE_FAILED_PROTOCOL + ZMQ_PROTOCOL_ERROR_*,
//! HANDSHAKE_FAILED_AUTH + status, or nothing before DISCONNECTED).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zeroring_transports::zmtp::greeting::{greeting_v3, MechanismName};
use zeroring_transports::zmtp::{
    Connection, ConnectionConfig, Event, FrameDecoder, MechanismConfig, ZapReply,
};
use zeroring_transports::SocketType;

const WAIT: Duration = Duration::from_secs(10);
const SUCCEEDED: u16 = 0x1000;
const DISCONNECTED: u16 = 0x0200;

type Verdict = Option<(u16, u32)>;

fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![flags, body.len() as u8];
    f.extend_from_slice(body);
    f
}

fn prop(name: &str, value: &[u8]) -> Vec<u8> {
    let mut p = vec![name.len() as u8];
    p.extend_from_slice(name.as_bytes());
    p.extend_from_slice(&(value.len() as u32).to_be_bytes());
    p.extend_from_slice(value);
    p
}

fn cmd(prefix: &[u8], rest: &[u8]) -> Vec<u8> {
    frame(0x04, &[prefix, rest].concat())
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// libzmq NULL DEALER, binding.
    Null,
    /// libzmq PLAIN server (REP), binding, with a ZAP handler that says 200.
    PlainServer,
    /// libzmq PLAIN client (DEALER), connecting to us.
    PlainClient,
}

fn greeting(mech: MechanismName) -> Vec<u8> {
    greeting_v3(mech, 0).to_vec()
}

/// Reads from `s` until the greeting and `frames` frames after it have arrived.
fn read_greeting_and_frames(s: &mut TcpStream, frames: usize) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + WAIT;
    loop {
        if got.len() >= 64 {
            let mut rest = Bytes::copy_from_slice(&got[64..]);
            let mut dec = FrameDecoder::new(None);
            let mut n = 0;
            while let Ok(Some(_)) = dec.decode(&mut rest) {
                n += 1;
            }
            if n >= frames {
                return;
            }
        }
        assert!(Instant::now() < deadline, "libzmq sent {got:?}");
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => return,
        }
    }
}

fn libzmq_verdict(role: Role, head: &[u8], wait_frames: usize, tail: &[u8]) -> Verdict {
    let mut ctx = zmq::Context::new();
    let mut zap_thread = None;
    let sock = match role {
        Role::Null => ctx.socket(zmq::DEALER).unwrap(),
        Role::PlainServer => {
            let handler = ctx.socket(zmq::REP).unwrap();
            handler.set_linger(0).unwrap();
            handler.set_rcvtimeo(WAIT.as_millis() as i32).unwrap();
            handler.bind("inproc://zeromq.zap.01").unwrap();
            zap_thread = Some(thread::spawn(move || {
                if let Ok(req) = handler.recv_multipart(0) {
                    let reply: Vec<&[u8]> = vec![b"1.0", &req[1], b"200", b"OK", b"user", b""];
                    let _ = handler.send_multipart(reply, 0);
                }
                drop(handler);
            }));
            let s = ctx.socket(zmq::REP).unwrap();
            s.set_plain_server(true).unwrap();
            s
        }
        Role::PlainClient => {
            let s = ctx.socket(zmq::DEALER).unwrap();
            s.set_plain_username(Some("admin")).unwrap();
            s.set_plain_password(Some("secret")).unwrap();
            s
        }
    };
    sock.set_linger(0).unwrap();
    sock.monitor("inproc://diff-monitor", zmq::SocketEvent::ALL as i32)
        .unwrap();
    let mon = ctx.socket(zmq::PAIR).unwrap();
    mon.set_rcvtimeo(WAIT.as_millis() as i32).unwrap();
    mon.connect("inproc://diff-monitor").unwrap();

    let mut stream = if role == Role::PlainClient {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        sock.connect(&format!("tcp://{}", listener.local_addr().unwrap()))
            .unwrap();
        listener.accept().unwrap().0
    } else {
        sock.bind("tcp://127.0.0.1:*").unwrap();
        let ep = sock.get_last_endpoint().unwrap().unwrap();
        TcpStream::connect(ep.trim_start_matches("tcp://")).unwrap()
    };
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(head).unwrap();
    // Let libzmq finish its greeting (and the commands it answers `head`
    // with) before the rest arrives, as a real peer would.
    read_greeting_and_frames(&mut stream, wait_frames);
    let _ = stream.write_all(tail);

    let verdict = loop {
        let ev = mon.recv_multipart(0).expect("no monitor event from libzmq");
        let event = u16::from_le_bytes([ev[0][0], ev[0][1]]);
        let value = u32::from_le_bytes([ev[0][2], ev[0][3], ev[0][4], ev[0][5]]);
        match event {
            0x0800 | SUCCEEDED | 0x2000 | 0x4000 => break Some((event, value)),
            DISCONNECTED => break None,
            _ => {}
        }
    };
    drop(stream);
    drop(mon);
    drop(sock);
    if let Some(t) = zap_thread {
        // Terminating the context wakes the handler's recv with ETERM.
        let _ = ctx.destroy();
        let _ = t.join();
    }
    verdict
}

fn our_verdict(role: Role, head: &[u8], tail: &[u8]) -> Verdict {
    let now = Instant::now();
    let cfg = match role {
        Role::Null => ConnectionConfig::new(SocketType::Dealer),
        Role::PlainServer => {
            let mut c = ConnectionConfig::new(SocketType::Rep);
            c.mechanism = MechanismConfig::PlainServer;
            c.zap.handler_available = true;
            c
        }
        Role::PlainClient => {
            let mut c = ConnectionConfig::new(SocketType::Dealer);
            c.mechanism = MechanismConfig::PlainClient {
                username: Bytes::from_static(b"admin"),
                password: Bytes::from_static(b"secret"),
            };
            c
        }
    };
    let mut conn = Connection::new(cfg, now).unwrap();
    conn.handle_input(Bytes::copy_from_slice(head), now);
    let mut early = Vec::new();
    while let Some(e) = conn.poll_event() {
        match e {
            Event::ZapRequest(_) => conn.zap_reply(ZapReply::ok("user"), now),
            other => early.push(other),
        }
    }
    conn.handle_input(Bytes::copy_from_slice(tail), now);
    let mut events = early.into_iter();
    loop {
        let next = events.next().or_else(|| conn.poll_event());
        match next {
            Some(Event::ZapRequest(_)) => conn.zap_reply(ZapReply::ok("user"), now),
            Some(Event::HandshakeSucceeded(_)) => return Some((SUCCEEDED, 0)),
            Some(Event::HandshakeFailed(e)) => {
                return e.handshake_failure().map(|f| (f.event(), f.value()))
            }
            Some(_) => {}
            None => panic!("no verdict from our connection"),
        }
    }
}

fn check(name: &str, role: Role, head: Vec<u8>, tail: Vec<u8>, expected: Verdict) {
    // libzmq answers a greeting with READY (NULL) or HELLO (PLAIN client); a
    // PLAIN server sends nothing until HELLO.
    let wait = if role == Role::PlainServer { 0 } else { 1 };
    check_staged(name, role, head, wait, tail, expected);
}

fn check_staged(
    name: &str,
    role: Role,
    head: Vec<u8>,
    wait_frames: usize,
    tail: Vec<u8>,
    expected: Verdict,
) {
    let theirs = libzmq_verdict(role, &head, wait_frames, &tail);
    let ours = our_verdict(role, &head, &tail);
    assert_eq!(theirs, expected, "{name}: libzmq's verdict changed");
    assert_eq!(ours, theirs, "{name}: we differ from libzmq");
    if std::env::var_os("DIFF_VERBOSE").is_some() {
        eprintln!("{name}: {theirs:x?}");
    }
}

const P: u16 = 0x2000;
const AUTH: u16 = 0x4000;

#[test]
fn null_verdicts_match_libzmq() {
    let g = greeting(MechanismName::Null);
    let ready = |t: &[u8]| cmd(b"\x05READY", &prop("Socket-Type", t));
    check(
        "valid READY",
        Role::Null,
        g.clone(),
        ready(b"ROUTER"),
        Some((SUCCEEDED, 0)),
    );
    check(
        "mechanism mismatch",
        Role::Null,
        greeting(MechanismName::Plain),
        vec![],
        Some((P, 0x1100_0002)),
    );
    check(
        "HELLO instead of READY",
        Role::Null,
        g.clone(),
        cmd(b"\x05HELLO", b"\x00\x00"),
        Some((P, 0x1000_0001)),
    );
    check(
        "message frame",
        Role::Null,
        g.clone(),
        frame(0, b"data"),
        Some((P, 0x1000_0001)),
    );
    check(
        "empty command",
        Role::Null,
        g.clone(),
        frame(0x04, b""),
        Some((P, 0x1000_0001)),
    );
    check(
        "malformed ERROR",
        Role::Null,
        g.clone(),
        cmd(b"\x05ERROR", b"\x09abc"),
        Some((P, 0x1000_0015)),
    );
    check(
        "ERROR 400",
        Role::Null,
        g.clone(),
        cmd(b"\x05ERROR", b"\x03400"),
        Some((AUTH, 400)),
    );
    check(
        "ERROR text",
        Role::Null,
        g.clone(),
        cmd(b"\x05ERROR", b"\x04nope"),
        None,
    );
    check(
        "socket type mismatch",
        Role::Null,
        g.clone(),
        ready(b"PUSH"),
        None,
    );
    check(
        "truncated metadata",
        Role::Null,
        g.clone(),
        cmd(b"\x05READY", b"\x0bSocket-Type\x00\x00"),
        None,
    );
}

#[test]
fn plain_server_verdicts_match_libzmq() {
    let g = greeting(MechanismName::Plain);
    let hello = cmd(b"\x05HELLO", b"\x05admin\x06secret");
    let initiate = cmd(b"\x08INITIATE", &prop("Socket-Type", b"REQ"));
    check_staged(
        "valid",
        Role::PlainServer,
        [g.clone(), hello.clone()].concat(),
        1,
        initiate.clone(),
        Some((SUCCEEDED, 0)),
    );
    check(
        "password length",
        Role::PlainServer,
        g.clone(),
        cmd(b"\x05HELLO", b"\x05admin\x07secret"),
        Some((P, 0x1000_0013)),
    );
    check(
        "short HELLO",
        Role::PlainServer,
        g.clone(),
        frame(0x04, b"\x05HELL"),
        Some((P, 0x1000_0011)),
    );
    check(
        "INITIATE first",
        Role::PlainServer,
        g.clone(),
        initiate,
        Some((P, 0x1000_0001)),
    );
    check(
        "mechanism mismatch",
        Role::PlainServer,
        greeting(MechanismName::Null),
        vec![],
        Some((P, 0x1100_0002)),
    );
}

#[test]
fn plain_client_verdicts_match_libzmq() {
    let g = greeting(MechanismName::Plain);
    let welcome = cmd(b"\x07WELCOME", b"");
    let ready = cmd(b"\x05READY", &prop("Socket-Type", b"ROUTER"));
    check(
        "valid",
        Role::PlainClient,
        g.clone(),
        [welcome.clone(), ready.clone()].concat(),
        Some((SUCCEEDED, 0)),
    );
    check(
        "WELCOME too long",
        Role::PlainClient,
        g.clone(),
        cmd(b"\x07WELCOME", b"x"),
        Some((P, 0x1000_0017)),
    );
    check(
        "READY first",
        Role::PlainClient,
        g.clone(),
        ready,
        Some((P, 0x1000_0001)),
    );
    check(
        "bad READY metadata",
        Role::PlainClient,
        g.clone(),
        [welcome.clone(), cmd(b"\x05READY", b"\x03ab")].concat(),
        Some((P, 0x1000_0018)),
    );
    check(
        "libzmq-form ERROR 500",
        Role::PlainClient,
        g.clone(),
        cmd(b"^RROR", b"\x03500"),
        Some((AUTH, 500)),
    );
}
