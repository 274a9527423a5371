//! CURVE at the socket level: zeroring ↔ zeroring over tcp and ipc, and zeroring ↔ libzmq
//! (the libzmq inside pyzmq's wheels, which has CURVE) in both roles, either side binding,
//! with and without ZAP, a wrong server key (fails before ZAP is asked) and a client key that
//! ZAP refuses. The key options' raw and Z85 forms are checked against libzmq's rules.
//!
//! The libzmq peer is `tests/peers/curve_peer.py`, run with `python3`. Without pyzmq these
//! tests skip with a message, except under CI (`CI` set), where they fail.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use zeroring::options::num;
use zeroring::transports::zmtp::ProtocolErrorCode;
use zeroring::{curve_keypair, curve_public, has, Context, CurveKeyPair, MonitorEvent, Socket};
use zeroring::{Error, SocketType};

const LIMIT_MS: i32 = 10_000;

fn zsock(ctx: &Context, t: SocketType) -> Socket {
    let s = ctx.socket(t).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(LIMIT_MS).unwrap();
    s.set_sndtimeo(LIMIT_MS).unwrap();
    s
}

/// The reading end of a socket monitor.
struct Monitor(Socket);

impl Monitor {
    fn new(ctx: &Context, s: &Socket, name: &str) -> Monitor {
        let ep = format!("inproc://monitor-curve-{name}");
        s.monitor(&ep, MonitorEvent::ALL).unwrap();
        let m = ctx.socket(SocketType::Pair).unwrap();
        m.connect(&ep).unwrap();
        Monitor(m)
    }

    /// Waits for `want`, returning its value; panics if it does not come.
    fn expect(&self, want: MonitorEvent) -> u32 {
        let deadline = Instant::now() + Duration::from_millis(LIMIT_MS as u64);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            self.0
                .set_rcvtimeo((left.as_millis() as i32).max(1))
                .unwrap();
            let Ok(parts) = self.0.recv_multipart(0) else {
                panic!("monitor event {want:?} never came");
            };
            let code = u16::from_le_bytes([parts[0][0], parts[0][1]]);
            let value = u32::from_le_bytes(parts[0][2..6].try_into().unwrap());
            if MonitorEvent::from_code(code) == Some(want) {
                return value;
            }
        }
    }
}

/// A zeroring ZAP handler admitting `allowed` (a raw client key) as "zuser"; counts requests.
fn zap_handler(
    ctx: &Context,
    allowed: [u8; 32],
) -> (
    std::thread::JoinHandle<()>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let rep = ctx.socket(SocketType::Rep).unwrap();
    rep.bind(zeroring::zap::ZAP_ENDPOINT).unwrap();
    rep.set_rcvtimeo(200).unwrap();
    rep.set_linger(0).unwrap();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let t = std::thread::spawn(move || {
        while Instant::now() < deadline {
            let req = match rep.recv_multipart(0) {
                Ok(r) => r,
                Err(Error::EAGAIN) => continue,
                Err(_) => break,
            };
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let ok = req.len() == 7 && req[5] == b"CURVE" && req[6..] == [allowed.to_vec()];
            let (code, user): (&[u8], &[u8]) = if ok {
                (b"200", b"zuser")
            } else {
                (b"400", b"")
            };
            let reply: Vec<&[u8]> = vec![b"1.0", &req[1], code, b"", user, b""];
            if rep.send_multipart(reply, 0).is_err() {
                break;
            }
        }
    });
    (t, count)
}

fn raw(z85_key: &str) -> [u8; 32] {
    let v = zeroring::transports::z85::decode(z85_key).unwrap();
    v.try_into().unwrap()
}

fn curve_server(ctx: &Context, keys: &CurveKeyPair) -> Socket {
    let s = zsock(ctx, SocketType::Rep);
    s.set_curve_server(true).unwrap();
    // Only the secret key: a server derives what it needs from it.
    s.set_curve_secretkey(keys.secret.as_bytes()).unwrap();
    s
}

fn curve_client(ctx: &Context, server_public: &str, keys: &CurveKeyPair) -> Socket {
    let s = zsock(ctx, SocketType::Req);
    s.set_curve_serverkey(server_public).unwrap();
    s.set_curve_publickey(&keys.public).unwrap();
    s.set_curve_secretkey(keys.secret.as_bytes()).unwrap();
    s
}

fn user_id(m: &zeroring::Msg) -> Option<Vec<u8>> {
    m.metadata()
        .and_then(|md| md.get("User-Id"))
        .map(|b| b.to_vec())
}

fn fresh_ipc(tag: &str) -> String {
    let p = std::env::temp_dir().join(format!("zeroring-curve-{}-{tag}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    format!("ipc://{}", p.display())
}

#[test]
fn key_options_take_raw_and_z85_and_read_back_as_asked() {
    let ctx = Context::new();
    let s = zsock(&ctx, SocketType::Dealer);
    let k = curve_keypair().unwrap();
    assert_eq!(curve_public(&k.secret).unwrap(), k.public);
    assert_eq!(k.public.len(), 40);
    assert!(has("curve"));
    assert_eq!(s.get_int_option(num::MECHANISM), 0);
    s.set_curve_publickey(&k.public).unwrap();
    assert_eq!(s.get_int_option(num::MECHANISM), 2);
    // 32 bytes → raw; 41 → Z85 + NUL; anything else → EINVAL.
    let r = s.get_curve_key(num::CURVE_PUBLICKEY, 32).unwrap();
    assert_eq!(&r[..], &raw(&k.public)[..]);
    let z = s.get_curve_key(num::CURVE_PUBLICKEY, 41).unwrap();
    assert_eq!(&z[..40], k.public.as_bytes());
    assert_eq!(z[40], 0);
    assert_eq!(
        s.get_curve_key(num::CURVE_PUBLICKEY, 40).err(),
        Some(Error::EINVAL)
    );
    // Raw in, Z85 out; Z85 + NUL (41 bytes) in.
    s.set_curve_secretkey(raw(&k.secret)).unwrap();
    let z = s.get_curve_key(num::CURVE_SECRETKEY, 41).unwrap();
    assert_eq!(&z[..40], k.secret.as_bytes());
    let mut with_nul = k.public.clone().into_bytes();
    with_nul.push(0);
    s.set_curve_serverkey(&with_nul).unwrap();
    assert_eq!(
        &s.get_curve_key(num::CURVE_SERVERKEY, 32).unwrap()[..],
        &raw(&k.public)[..]
    );
    // Wrong sizes and bad Z85 → EINVAL.
    assert_eq!(s.set_curve_publickey([0u8; 31]), Err(Error::EINVAL));
    assert_eq!(
        s.set_curve_publickey("~".repeat(40)),
        Err(Error::EINVAL),
        "not Z85"
    );
    // SERVERKEY makes a client; CURVE_SERVER reads back only while CURVE is the mechanism.
    assert!(!s.get_curve_server().unwrap());
    s.set_curve_server(true).unwrap();
    assert!(s.get_curve_server().unwrap());
    s.set_plain_server(true).unwrap();
    assert!(!s.get_curve_server().unwrap());
    assert_eq!(s.get_int_option(num::MECHANISM), 1);
}

trait IntOption {
    fn get_int_option(&self, option: i32) -> i32;
}

impl IntOption for Socket {
    fn get_int_option(&self, option: i32) -> i32 {
        i32::from_ne_bytes(self.get_option(option).unwrap().try_into().unwrap())
    }
}

#[test]
fn zeroring_to_zeroring_over_tcp_and_ipc_with_zap() {
    let ctx = Context::new();
    let server_keys = curve_keypair().unwrap();
    let client_keys = curve_keypair().unwrap();
    let (_h, zap_count) = zap_handler(&ctx, raw(&client_keys.public));
    for ep in ["tcp://127.0.0.1:*".to_string(), fresh_ipc("zz")] {
        let server = curve_server(&ctx, &server_keys);
        server.bind(&ep).unwrap();
        let endpoint = server.get_last_endpoint().unwrap().unwrap();
        let client = curve_client(&ctx, &server_keys.public, &client_keys);
        client.connect(&endpoint).unwrap();
        client.send_multipart(["part one", "part two"], 0).unwrap();
        let m = server.recv_msg(0).unwrap();
        assert_eq!(m.data(), b"part one");
        assert_eq!(user_id(&m).as_deref(), Some(&b"zuser"[..]));
        assert_eq!(server.recv_bytes(0).unwrap(), b"part two");
        server.send("reply", 0).unwrap();
        assert_eq!(client.recv_bytes(0).unwrap(), b"reply");
        // Single-part requests and replies: a plain connection would write them directly;
        // a sealed one never does (its frames must go through the encryption).
        for i in 0..50 {
            client.send(format!("q{i}").as_str(), 0).unwrap();
            assert_eq!(server.recv_bytes(0).unwrap(), format!("q{i}").as_bytes());
            server.send(format!("a{i}").as_str(), 0).unwrap();
            assert_eq!(client.recv_bytes(0).unwrap(), format!("a{i}").as_bytes());
        }
        assert_eq!(client.stats().sent_direct, 0, "CURVE: no direct write");
        assert_eq!(server.stats().sent_direct, 0, "CURVE: no direct write");
    }
    assert_eq!(zap_count.load(std::sync::atomic::Ordering::SeqCst), 2);

    // A client with the wrong server key: the server fails it as cryptographic, before ZAP.
    let server = curve_server(&ctx, &server_keys);
    let mon = Monitor::new(&ctx, &server, "wrongkey");
    server.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = server.get_last_endpoint().unwrap().unwrap();
    let other = curve_keypair().unwrap();
    let client = curve_client(&ctx, &other.public, &client_keys);
    client.connect(&endpoint).unwrap();
    assert_eq!(
        mon.expect(MonitorEvent::HandshakeFailedProtocol),
        ProtocolErrorCode::ZmtpCryptographic.value()
    );
    assert_eq!(zap_count.load(std::sync::atomic::Ordering::SeqCst), 2);

    // A client key the handler does not know: refused with 400 on both sides.
    let intruder_keys = curve_keypair().unwrap();
    let mon_server = Monitor::new(&ctx, &server, "intruder");
    let intruder = curve_client(&ctx, &server_keys.public, &intruder_keys);
    let mon_client = Monitor::new(&ctx, &intruder, "intruder-client");
    intruder.connect(&endpoint).unwrap();
    assert_eq!(mon_server.expect(MonitorEvent::HandshakeFailedAuth), 400);
    assert_eq!(mon_client.expect(MonitorEvent::HandshakeFailedAuth), 400);
}

#[test]
fn zeroring_to_zeroring_without_zap_handler() {
    // No handler, ZAP_ENFORCE_DOMAIN off: CURVE encrypts without authenticating.
    let ctx = Context::new();
    let server_keys = curve_keypair().unwrap();
    let client_keys = curve_keypair().unwrap();
    let server = curve_server(&ctx, &server_keys);
    server.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = server.get_last_endpoint().unwrap().unwrap();
    let client = curve_client(&ctx, &server_keys.public, &client_keys);
    client.connect(&endpoint).unwrap();
    let big = vec![7u8; 100_000];
    client.send(&big[..], 0).unwrap();
    let m = server.recv_msg(0).unwrap();
    assert_eq!(m.data(), &big[..]);
    assert_eq!(user_id(&m), None);
}

// ---------------------------------------------------------------------------------------
// Interop with libzmq's CURVE through pyzmq.

/// Whether a pyzmq with CURVE is there; under CI its absence is a failure.
fn pyzmq_available() -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import zmq, sys; sys.exit(0 if zmq.has('curve') else 1)",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("CI: python3 with pyzmq (with CURVE) is required for the CURVE interop tests");
        }
        eprintln!("SKIPPED: python3 with pyzmq (with CURVE) not found; pip install pyzmq");
    }
    ok
}

/// A running pyzmq peer; killed and reaped on drop.
struct PyPeer {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl PyPeer {
    fn spawn(
        mode: &str,
        endpoint: &str,
        server: &CurveKeyPair,
        client: &CurveKeyPair,
        zap: Option<&str>,
    ) -> PyPeer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/curve_peer.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args([
                mode,
                endpoint,
                &server.public,
                server.secret.as_str(),
                &client.public,
                client.secret.as_str(),
                zap.unwrap_or("none"),
            ])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("python3");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = PyPeer { child, lines };
        p.expect("KEYS OK");
        p
    }

    /// The rest of the next line starting with `prefix` (other lines are skipped).
    fn expect(&mut self, prefix: &str) -> String {
        // Longer than the peer's own 60 s, so that a peer that gives up has printed its
        // record of monitor events ("DONE [...]") by the time this fails.
        let deadline = Instant::now() + Duration::from_secs(70);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l[prefix.len()..].trim().to_string(),
                Ok(l) => seen.push(l),
                Err(_) => panic!(
                    "the pyzmq peer never printed {prefix:?}; it printed {seen:?}; exit: {:?}",
                    self.child.try_wait()
                ),
            }
        }
    }
}

impl Drop for PyPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn libzmq_client_to_zeroring_server() {
    if !pyzmq_available() {
        return;
    }
    let ctx = Context::new();
    let server_keys = curve_keypair().unwrap();
    let client_keys = curve_keypair().unwrap();
    // Without ZAP, zeroring binding over tcp.
    let server = curve_server(&ctx, &server_keys);
    server.bind("tcp://127.0.0.1:*").unwrap();
    let ep = server.get_last_endpoint().unwrap().unwrap();
    let mut py = PyPeer::spawn("client-connect", &ep, &server_keys, &client_keys, None);
    assert_eq!(server.recv_bytes(0).unwrap(), b"hello");
    server.send("from zeroring", 0).unwrap();
    assert_eq!(py.expect("REPLY"), "from zeroring");
    drop(server);

    // With ZAP, zeroring connecting to a binding libzmq client over ipc.
    let (_h, zap_count) = zap_handler(&ctx, raw(&client_keys.public));
    let ipc = fresh_ipc("py-client");
    let mut py = PyPeer::spawn("client-bind", &ipc, &server_keys, &client_keys, None);
    let bound = py.expect("ENDPOINT");
    let server = curve_server(&ctx, &server_keys);
    server.set_zap_domain("test").unwrap();
    server.connect(&bound).unwrap();
    let m = server.recv_msg(0).unwrap();
    assert_eq!(m.data(), b"hello");
    assert_eq!(user_id(&m).as_deref(), Some(&b"zuser"[..]));
    server.send("authenticated", 0).unwrap();
    assert_eq!(py.expect("REPLY"), "authenticated");
    assert_eq!(zap_count.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A libzmq client with the wrong server key fails before ZAP is asked.
    let server = curve_server(&ctx, &server_keys);
    let mon = Monitor::new(&ctx, &server, "py-wrong-key");
    server.bind("tcp://127.0.0.1:*").unwrap();
    let ep = server.get_last_endpoint().unwrap().unwrap();
    let other = curve_keypair().unwrap();
    // The client takes the other pair's public key as the server's.
    let _py = PyPeer::spawn("client-connect", &ep, &other, &client_keys, None);
    assert_eq!(
        mon.expect(MonitorEvent::HandshakeFailedProtocol),
        ProtocolErrorCode::ZmtpCryptographic.value()
    );
    assert_eq!(zap_count.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A libzmq client whose key ZAP refuses: 400 on our side, ERROR "400" on theirs.
    let intruder = curve_keypair().unwrap();
    let mon = Monitor::new(&ctx, &server, "py-intruder");
    let mut py = PyPeer::spawn("client-connect", &ep, &server_keys, &intruder, None);
    assert_eq!(mon.expect(MonitorEvent::HandshakeFailedAuth), 400);
    assert_eq!(py.expect("EVENT FAILED_AUTH"), "400 ZAP 0");
}

#[test]
fn zeroring_client_to_libzmq_server() {
    if !pyzmq_available() {
        return;
    }
    let ctx = Context::new();
    let server_keys = curve_keypair().unwrap();
    let client_keys = curve_keypair().unwrap();
    // libzmq binds tcp, with its own ZAP handler admitting our key as "pyuser".
    let mut py = PyPeer::spawn(
        "server-bind",
        "tcp://127.0.0.1:*",
        &server_keys,
        &client_keys,
        Some(&client_keys.public),
    );
    let ep = py.expect("ENDPOINT");
    let client = curve_client(&ctx, &server_keys.public, &client_keys);
    client.connect(&ep).unwrap();
    client.send("hi", 0).unwrap();
    assert_eq!(client.recv_string(0).unwrap().unwrap(), "echo:hi|pyuser");
    assert_eq!(py.expect("EVENT SUCCEEDED"), "0 ZAP 1");
    // The client first: left alive, it would go on reconnecting to the port the peer gives
    // up, which another test's listener may be given next.
    drop(client);
    drop(py);

    // libzmq connects to a binding zeroring client over ipc, without ZAP.
    let ipc = fresh_ipc("py-server");
    let client = curve_client(&ctx, &server_keys.public, &client_keys);
    client.bind(&ipc).unwrap();
    let _py = PyPeer::spawn("server-connect", &ipc, &server_keys, &client_keys, None);
    client.send("over ipc", 0).unwrap();
    assert_eq!(client.recv_string(0).unwrap().unwrap(), "echo:over ipc|");

    // Our key refused by libzmq's ZAP handler: it sends ERROR "400".
    let mut py = PyPeer::spawn(
        "server-bind",
        "tcp://127.0.0.1:*",
        &server_keys,
        &client_keys,
        Some(&server_keys.public),
    );
    let ep = py.expect("ENDPOINT");
    let client = curve_client(&ctx, &server_keys.public, &client_keys);
    let mon = Monitor::new(&ctx, &client, "zr-refused");
    client.connect(&ep).unwrap();
    assert_eq!(mon.expect(MonitorEvent::HandshakeFailedAuth), 400);
    assert_eq!(py.expect("EVENT FAILED_AUTH"), "400 ZAP 1");

    // A wrong server key: libzmq fails our HELLO as cryptographic, without asking ZAP.
    let other = curve_keypair().unwrap();
    let client = curve_client(&ctx, &other.public, &client_keys);
    client.connect(&ep).unwrap();
    let code = ProtocolErrorCode::ZmtpCryptographic.value();
    assert_eq!(py.expect("EVENT FAILED_PROTOCOL"), format!("{code} ZAP 1"));
}

/// A tcp relay that records what the listening side sends.
fn recording_relay(
    upstream: String,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    std::thread::JoinHandle<()>,
) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ep = format!("tcp://{}", listener.local_addr().unwrap());
    let recorded = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let rec = recorded.clone();
    let t = std::thread::spawn(move || {
        let (mut down, _) = listener.accept().unwrap();
        let mut up = std::net::TcpStream::connect(upstream.trim_start_matches("tcp://")).unwrap();
        let timeout = Some(Duration::from_secs(20));
        down.set_read_timeout(timeout).unwrap();
        up.set_read_timeout(timeout).unwrap();
        let (mut down2, mut up2) = (down.try_clone().unwrap(), up.try_clone().unwrap());
        let fwd = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n @ 1..) = down2.read(&mut buf) {
                if up2.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let mut buf = [0u8; 65536];
        while let Ok(n @ 1..) = up.read(&mut buf) {
            rec.lock().unwrap().extend_from_slice(&buf[..n]);
            if down.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = down.shutdown(std::net::Shutdown::Both);
        let _ = fwd.join();
    });
    (ep, recorded, t)
}

#[test]
fn libzmq_sends_message_as_an_ordinary_frame() {
    // What libzmq 4.3 puts on the wire after READY: every frame, the MORE-flagged
    // delimiter of a REP reply included, is a `\x07MESSAGE` box in a frame with no
    // flags; MORE and COMMAND travel inside the box.
    use zeroring::transports::zmtp::frame::FrameDecoder;
    if !pyzmq_available() {
        return;
    }
    let ctx = Context::new();
    let server_keys = curve_keypair().unwrap();
    let client_keys = curve_keypair().unwrap();
    let mut py = PyPeer::spawn(
        "server-bind",
        "tcp://127.0.0.1:*",
        &server_keys,
        &client_keys,
        None,
    );
    let upstream = py.expect("ENDPOINT");
    let (ep, recorded, relay) = recording_relay(upstream);
    let client = curve_client(&ctx, &server_keys.public, &client_keys);
    client.connect(&ep).unwrap();
    client.send("wire", 0).unwrap();
    assert_eq!(client.recv_string(0).unwrap().unwrap(), "echo:wire|");
    drop(client);
    drop(ctx);
    drop(py);
    relay.join().unwrap();
    let bytes = recorded.lock().unwrap().clone();
    let mut data = bytes::Bytes::from(bytes[64..].to_vec());
    let mut d = FrameDecoder::new(None);
    let mut frames = Vec::new();
    while let Ok(Some(f)) = d.decode(&mut data) {
        frames.push(f);
    }
    assert!(
        frames.len() >= 4,
        "WELCOME, READY and the reply's two frames"
    );
    assert!(frames[0].command && frames[0].body.starts_with(b"\x07WELCOME"));
    assert_eq!(frames[0].body.len(), 168);
    assert!(frames[1].command && frames[1].body.starts_with(b"\x05READY"));
    for f in &frames[2..] {
        assert!(!f.command && !f.more, "MESSAGE frame flags must be 0");
        assert!(f.body.starts_with(b"\x07MESSAGE"));
    }
    // Short nonces: READY used 1, the reply's frames 2 and 3.
    assert_eq!(&frames[1].body[6..14], &1u64.to_be_bytes());
    assert_eq!(&frames[2].body[8..16], &2u64.to_be_bytes());
    assert_eq!(&frames[3].body[8..16], &3u64.to_be_bytes());
}

#[test]
fn a_forged_message_after_the_handshake_is_reported_like_libzmq() {
    // libzmq emits HANDSHAKE_FAILED_PROTOCOL (ZMTP_CRYPTOGRAPHIC) for a MESSAGE box that does
    // not open, even after the handshake. The peer here is a sans-IO CURVE client on a plain
    // TcpStream, so it can forge one.
    use std::io::{Read, Write};
    use zeroring::transports::zmtp::mechanism::curve::CurveSecretKey;
    use zeroring::transports::zmtp::{Connection, ConnectionConfig, MechanismConfig};
    let ctx = Context::new();
    let server_keys = curve_keypair().unwrap();
    let client_keys = curve_keypair().unwrap();
    let server = curve_server(&ctx, &server_keys);
    let mon = Monitor::new(&ctx, &server, "forged");
    server.bind("tcp://127.0.0.1:*").unwrap();
    let ep = server.get_last_endpoint().unwrap().unwrap();
    let mut stream = std::net::TcpStream::connect(ep.trim_start_matches("tcp://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let now = Instant::now();
    let mut cfg = ConnectionConfig::new(SocketType::Req);
    cfg.mechanism = MechanismConfig::CurveClient {
        public: raw(&client_keys.public),
        secret: CurveSecretKey::from_bytes(raw(&client_keys.secret)),
        server: raw(&server_keys.public),
    };
    let mut conn = Connection::new(cfg, now).unwrap();
    let mut buf = [0u8; 4096];
    while !conn.is_ready() {
        assert!(!conn.is_closed(), "handshake failed");
        while let Some(out) = conn.poll_transmit() {
            stream.write_all(&out).unwrap();
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "server closed during the handshake");
        conn.handle_input(bytes::Bytes::copy_from_slice(&buf[..n]), now);
    }
    mon.expect(MonitorEvent::HandshakeSucceeded);
    conn.send_frame(bytes::Bytes::from_static(b"forged"), false)
        .unwrap();
    let mut forged = Vec::new();
    while let Some(out) = conn.poll_transmit() {
        forged.extend_from_slice(&out);
    }
    *forged.last_mut().unwrap() ^= 0x55;
    stream.write_all(&forged).unwrap();
    assert_eq!(
        mon.expect(MonitorEvent::HandshakeFailedProtocol),
        ProtocolErrorCode::ZmtpCryptographic.value()
    );
    mon.expect(MonitorEvent::Disconnected);
}

/// The same CURVE client bytes, sent to a libzmq CURVE server (pyzmq) and to a zeroring
/// sans-IO CURVE server with the same key: both must report the same monitor event.
#[test]
fn libzmq_and_zeroring_report_the_same_curve_handshake_failures() {
    use std::io::Write;
    use zeroring::transports::zmtp::greeting::{greeting_v3, MechanismName};
    use zeroring::transports::zmtp::mechanism::curve::CurveSecretKey;
    use zeroring::transports::zmtp::{Connection, ConnectionConfig, Event, MechanismConfig};
    if !pyzmq_available() {
        return;
    }
    let server_keys = curve_keypair().unwrap();
    let client_keys = curve_keypair().unwrap();
    let mut py = PyPeer::spawn(
        "server-bind",
        "tcp://127.0.0.1:*",
        &server_keys,
        &client_keys,
        None,
    );
    let ep = py.expect("ENDPOINT");
    let now = Instant::now();
    // A real HELLO for this server key, from a sans-IO client.
    let hello = {
        let mut cfg = ConnectionConfig::new(SocketType::Req);
        cfg.mechanism = MechanismConfig::CurveClient {
            public: raw(&client_keys.public),
            secret: CurveSecretKey::from_bytes(raw(&client_keys.secret)),
            server: raw(&server_keys.public),
        };
        let mut c = Connection::new(cfg, now).unwrap();
        c.handle_input(
            bytes::Bytes::copy_from_slice(&greeting_v3(MechanismName::Curve, 0)),
            now,
        );
        let mut out = Vec::new();
        while let Some(chunk) = c.poll_transmit() {
            out.extend_from_slice(&chunk);
        }
        // Greeting (64), then the HELLO command frame (flags, size, 200 bytes).
        out[64 + 2..].to_vec()
    };
    assert_eq!(hello.len(), 200);
    let command = |body: &[u8]| {
        let mut f = if body.len() < 256 {
            vec![0x04, body.len() as u8]
        } else {
            let mut f = vec![0x06];
            f.extend_from_slice(&(body.len() as u64).to_be_bytes());
            f
        };
        f.extend_from_slice(body);
        f
    };
    let mut short_initiate = b"\x08INITIATE".to_vec();
    short_initiate.resize(200, 0);
    let mut forged_initiate = b"\x08INITIATE".to_vec();
    forged_initiate.resize(300, 0x42);
    let mut bad_version = hello.clone();
    bad_version[6] = 2;
    let mut bad_box = hello.clone();
    bad_box[150] ^= 1;
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("short HELLO", vec![hello[..199].to_vec()]),
        ("HELLO version 2.0", vec![bad_version]),
        ("HELLO box for another key", vec![bad_box]),
        ("READY first", vec![b"\x05READY".to_vec()]),
        ("short INITIATE", vec![hello.clone(), short_initiate]),
        ("forged cookie", vec![hello.clone(), forged_initiate]),
    ];
    let names = [
        (MonitorEvent::HandshakeFailedProtocol, "FAILED_PROTOCOL"),
        (MonitorEvent::HandshakeFailedAuth, "FAILED_AUTH"),
        (MonitorEvent::HandshakeFailedNoDetail, "FAILED_NO_DETAIL"),
    ];
    for (what, commands) in cases {
        let mut wire = greeting_v3(MechanismName::Curve, 0).to_vec();
        for c in &commands {
            wire.extend_from_slice(&command(c));
        }
        // libzmq's verdict. A real client sends INITIATE only after WELCOME (libzmq
        // answers a pipelined one with ZMTP_UNSPECIFIED): wait for greeting + WELCOME.
        let mut stream = std::net::TcpStream::connect(ep.trim_start_matches("tcp://")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut head = greeting_v3(MechanismName::Curve, 0).to_vec();
        head.extend_from_slice(&command(&commands[0]));
        stream.write_all(&head).unwrap();
        if let Some(next) = commands.get(1) {
            let mut got = vec![0u8; 64 + 2 + 168];
            std::io::Read::read_exact(&mut stream, &mut got).unwrap();
            assert_eq!(&got[66..74], b"\x07WELCOME");
            stream.write_all(&command(next)).unwrap();
        }
        let theirs = py.expect("EVENT");
        drop(stream);
        // Ours, on the same bytes.
        let mut cfg = ConnectionConfig::new(SocketType::Rep);
        cfg.mechanism = MechanismConfig::CurveServer {
            secret: CurveSecretKey::from_bytes(raw(&server_keys.secret)),
        };
        let mut s = Connection::new(cfg, now).unwrap();
        s.handle_input(bytes::Bytes::from(wire), now);
        let err = std::iter::from_fn(|| s.poll_event())
            .find_map(|e| match e {
                Event::HandshakeFailed(e) => Some(e),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{what}: zeroring did not fail"));
        let f = err.handshake_failure().expect("a monitor event");
        let ev = MonitorEvent::from_code(f.event()).unwrap();
        let name = names.iter().find(|(e, _)| *e == ev).unwrap().1;
        assert_eq!(
            theirs,
            format!("{name} {} ZAP 0", f.value()),
            "{what}: libzmq vs zeroring"
        );
    }
}

/// Accepts one connection, waiting at most `limit` (a blocking accept on a helper thread).
fn accept_within(l: &std::net::TcpListener, limit: Duration) -> Option<std::net::TcpStream> {
    let l = l.try_clone().ok()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(l.accept().map(|(s, _)| s));
    });
    rx.recv_timeout(limit).ok()?.ok()
}

/// The same server bytes, sent to a libzmq CURVE client (pyzmq, one per case) and to a
/// zeroring sans-IO CURVE client: both must report the same event.
#[test]
fn libzmq_and_zeroring_clients_report_the_same_failures() {
    use std::io::{Read, Write};
    use zeroring::transports::zmtp::greeting::{greeting_v3, MechanismName};
    use zeroring::transports::zmtp::mechanism::curve::CurveSecretKey;
    use zeroring::transports::zmtp::{Connection, ConnectionConfig, Event, MechanismConfig};
    if !pyzmq_available() {
        return;
    }
    let server_keys = curve_keypair().unwrap();
    let client_keys = curve_keypair().unwrap();
    let command = |body: &[u8]| {
        let mut f = vec![0x04, body.len() as u8];
        f.extend_from_slice(body);
        f
    };
    let mut forged_welcome = b"\x07WELCOME".to_vec();
    forged_welcome.resize(168, 0x42);
    let mut short_welcome = b"\x07WELCOME".to_vec();
    short_welcome.resize(100, 0);
    let mut ready = b"\x05READY".to_vec();
    ready.resize(40, 7);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("forged WELCOME", forged_welcome),
        ("short WELCOME", short_welcome),
        ("ERROR 400", b"\x05ERROR\x03400".to_vec()),
        ("READY before WELCOME", ready),
        ("short READY", b"\x05READY\0\0\0\0\0\0\0\x01".to_vec()),
        ("unknown command", b"\x04PING\0\0".to_vec()),
        ("malformed ERROR", b"\x05ERROR\x09400".to_vec()),
    ];
    let names = [
        (MonitorEvent::HandshakeFailedProtocol, "FAILED_PROTOCOL"),
        (MonitorEvent::HandshakeFailedAuth, "FAILED_AUTH"),
        (MonitorEvent::HandshakeFailedNoDetail, "FAILED_NO_DETAIL"),
    ];
    let now = Instant::now();
    for (i, (what, body)) in (1u8..).zip(cases) {
        println!("case: {what}"); // shown if this case fails
        let mut wire = greeting_v3(MechanismName::Curve, 0).to_vec();
        wire.extend_from_slice(&command(&body));
        // A listener of its own on a loopback address of its own (all of 127.0.0.0/8 is
        // loopback): only this case's peer can reach it. On 127.0.0.1, a client of another
        // test reconnecting to a port just given up, or an earlier case's peer, could be
        // accepted in its place and leave the peer unanswered.
        let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::new(127, 0, 1, i), 0))
            .expect("a loopback address besides 127.0.0.1");
        let ep = format!("tcp://{}", listener.local_addr().unwrap());
        // libzmq's verdict: a fresh client (libzmq does not reconnect after a protocol
        // error) connects, sends greeting + HELLO and gets our bytes.
        let mut py = PyPeer::spawn("client-connect", &ep, &server_keys, &client_keys, None);
        let mut stream = accept_within(&listener, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{what}: libzmq did not connect"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // libzmq sends its HELLO only once it has our whole greeting.
        stream.write_all(&wire[..64]).unwrap();
        let mut got = vec![0u8; 64 + 2 + 200];
        stream.read_exact(&mut got).unwrap();
        assert_eq!(&got[66..72], b"\x05HELLO");
        stream.write_all(&wire[64..]).unwrap();
        let theirs = py.expect("EVENT");
        drop(stream);
        // Ours.
        let mut cfg = ConnectionConfig::new(SocketType::Req);
        cfg.mechanism = MechanismConfig::CurveClient {
            public: raw(&client_keys.public),
            secret: CurveSecretKey::from_bytes(raw(&client_keys.secret)),
            server: raw(&server_keys.public),
        };
        let mut c = Connection::new(cfg, now).unwrap();
        c.handle_input(bytes::Bytes::from(wire), now);
        let err = std::iter::from_fn(|| c.poll_event())
            .find_map(|e| match e {
                Event::HandshakeFailed(e) => Some(e),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{what}: zeroring did not fail"));
        let f = err.handshake_failure().expect("a monitor event");
        let ev = MonitorEvent::from_code(f.event()).unwrap();
        let name = names.iter().find(|(e, _)| *e == ev).unwrap().1;
        assert_eq!(
            theirs,
            format!("{name} {} ZAP 0", f.value()),
            "{what}: libzmq vs zeroring"
        );
    }
}
