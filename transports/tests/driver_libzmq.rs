//! The stream driver on the engine, against real libzmq 4.3 (the `zmq` crate builds it from
//! source): both directions over tcp and ipc, message shapes, subscriptions, reconnect,
//! back-pressure, and bad peers. The "socket" side here is a test [`SocketLink`] that hands
//! the pipes to the test thread.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zeroring_engine::pipe::{pipe, PipeConfig, PipeReader, PipeWriter, ReadError};
use zeroring_engine::signal::Signal;
use zeroring_engine::{Engine, EngineConfig, IoThreadHandle, Msg};
use zeroring_transports::driver::{
    self, BindAddr, ConnectTarget, PipeEnds, SocketLink, TransportOptions, ZapResponder,
};
use zeroring_transports::monitor::MonitorEvent;
use zeroring_transports::zmtp::{
    ConnectionConfig, MechanismConfig, PeerInfo, ZapReply, ZapRequest,
};
use zeroring_transports::SocketType;

const LIMIT: Duration = Duration::from_secs(20);

/// The socket's side of one attached connection.
struct Side {
    reader: PipeReader<Msg>,
    writer: PipeWriter<Msg>,
    signal: Arc<Signal>,
    peer: PeerInfo,
}

impl Side {
    fn recv(&mut self) -> Msg {
        let deadline = Instant::now() + LIMIT;
        loop {
            match self.reader.read() {
                Ok(m) => return m,
                Err(ReadError::Empty) => {
                    let left = deadline
                        .checked_duration_since(Instant::now())
                        .expect("timed out waiting for a message");
                    self.signal.wait(Some(left), Duration::ZERO);
                }
                Err(ReadError::Closed) => panic!("pipe closed while waiting for a message"),
            }
        }
    }

    fn recv_parts(&mut self) -> Vec<Bytes> {
        let mut parts = Vec::new();
        loop {
            let m = self.recv();
            let more = m.more();
            parts.push(m.into_bytes());
            if !more {
                return parts;
            }
        }
    }

    /// Waits until the connection lets go of this pipe.
    fn wait_closed(&mut self) {
        let deadline = Instant::now() + LIMIT;
        loop {
            match self.reader.read() {
                Ok(_) => {}
                Err(ReadError::Closed) => return,
                Err(ReadError::Empty) => {
                    let left = deadline
                        .checked_duration_since(Instant::now())
                        .expect("timed out waiting for the pipe to close");
                    self.signal.wait(Some(left), Duration::ZERO);
                }
            }
        }
    }

    fn send(&mut self, parts: &[&[u8]]) {
        for (i, p) in parts.iter().enumerate() {
            let m = Msg::copy_from_slice(p).with_more(i + 1 < parts.len());
            assert!(
                self.writer.write(m).is_ok(),
                "pipe to the connection refused a write"
            );
        }
        self.writer.flush();
    }
}

struct TestLink {
    attached: Mutex<mpsc::Sender<Side>>,
    hwm: usize,
    events: Mutex<mpsc::Sender<(MonitorEvent, u32, String)>>,
}

impl SocketLink for TestLink {
    fn attach(&self, peer: &PeerInfo, _endpoint: &str, _key: Option<u64>) -> Option<PipeEnds> {
        let (to_socket, reader) = pipe(PipeConfig::with_hwm(self.hwm));
        let (writer, from_socket) = pipe(PipeConfig::with_hwm(self.hwm));
        let signal = Arc::new(Signal::new().unwrap());
        let mut side = Side {
            reader,
            writer,
            signal: signal.clone(),
            peer: peer.clone(),
        };
        side.reader.set_notify(Some(signal));
        self.attached.lock().unwrap().send(side).ok()?;
        Some(PipeEnds {
            to_socket,
            from_socket,
            handover: None,
        })
    }

    fn attach_raw(
        &self,
        _endpoint: &str,
        _key: Option<u64>,
        _metadata: Option<Arc<zeroring_engine::MsgMetadata>>,
    ) -> Option<PipeEnds> {
        let peer = PeerInfo {
            version: zeroring_transports::zmtp::ZmtpVersion::V3_1,
            socket_type: None,
            routing_id: None,
            properties: Default::default(),
            user_id: None,
            zap_properties: None,
        };
        self.attach(&peer, _endpoint, None)
    }

    fn monitor(&self, event: MonitorEvent, value: u32, endpoint: &str) {
        let _ = self
            .events
            .lock()
            .unwrap()
            .send((event, value, endpoint.to_string()));
    }

    /// A ZAP handler that admits admin/secret as user "boss", and answers from another thread
    /// (as a real handler socket would).
    fn zap(&self, request: ZapRequest, respond: ZapResponder) {
        std::thread::spawn(move || {
            let creds = &request.credentials;
            let ok = request.mechanism == "PLAIN"
                && creds.len() == 2
                && &creds[0][..] == b"admin"
                && &creds[1][..] == b"secret";
            let mut reply = if ok {
                ZapReply::ok("boss")
            } else {
                ZapReply::deny(400)
            };
            reply.request_id = request.request_id.clone();
            respond(Ok(reply));
        });
    }
}

struct Fixture {
    engine: Engine,
    threads: Arc<[IoThreadHandle]>,
    link: Arc<TestLink>,
    attached: mpsc::Receiver<Side>,
    events: mpsc::Receiver<(MonitorEvent, u32, String)>,
}

impl Fixture {
    fn new(hwm: usize) -> Fixture {
        let engine = Engine::start(EngineConfig {
            io_threads: 2,
            ..EngineConfig::default()
        })
        .unwrap();
        let threads: Arc<[IoThreadHandle]> = engine.threads().to_vec().into();
        let (atx, attached) = mpsc::channel();
        let (etx, events) = mpsc::channel();
        let link = Arc::new(TestLink {
            attached: Mutex::new(atx),
            hwm,
            events: Mutex::new(etx),
        });
        Fixture {
            engine,
            threads,
            link,
            attached,
            events,
        }
    }

    fn bind(
        &self,
        socket_type: SocketType,
        addr: BindAddr,
        config: impl FnOnce(&mut ConnectionConfig),
    ) -> driver::ListenerHandle {
        let mut c = ConnectionConfig::new(socket_type);
        config(&mut c);
        driver::bind(
            self.threads.clone(),
            addr,
            TransportOptions::default(),
            c,
            self.link.clone(),
        )
        .unwrap()
    }

    fn connect(
        &self,
        socket_type: SocketType,
        endpoint: &str,
        opts: TransportOptions,
    ) -> driver::ConnectHandle {
        let addr: std::net::SocketAddr = endpoint.trim_start_matches("tcp://").parse().unwrap();
        let target = ConnectTarget {
            endpoint: endpoint.to_string(),
            addr: addr.into(),
            tcp: true,
            source: None,
            resolve: None,
        };
        driver::connect(
            &self.threads,
            target,
            opts,
            ConnectionConfig::new(socket_type),
            self.link.clone(),
        )
        .unwrap()
    }

    fn next_side(&self) -> Side {
        self.attached
            .recv_timeout(LIMIT)
            .expect("no connection attached")
    }

    /// Waits for monitor event `want`, returning its value.
    fn expect_event(&self, want: MonitorEvent) -> u32 {
        let deadline = Instant::now() + LIMIT;
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_default();
            match self.events.recv_timeout(left) {
                Ok((ev, value, _)) if ev == want => return value,
                Ok(_) => {}
                Err(_) => panic!("monitor event {want:?} never came"),
            }
        }
    }
}

fn zsock(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(LIMIT.as_millis() as i32).unwrap();
    s.set_sndtimeo(LIMIT.as_millis() as i32).unwrap();
    s
}

fn shapes() -> Vec<Vec<Vec<u8>>> {
    vec![
        vec![b"hello".to_vec()],
        vec![vec![]],
        vec![b"a".to_vec(), vec![], b"ccc".to_vec()],
        vec![vec![1u8; 255]],
        vec![vec![2u8; 256]],
        vec![(0..16u32 << 20).map(|i| (i % 253) as u8).collect()],
        vec![b"last".to_vec()],
    ]
}

fn ipc_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("zeroring-drv-{}-{tag}.sock", std::process::id()))
}

#[test]
fn libzmq_push_to_our_pull_over_tcp_and_ipc() {
    let fx = Fixture::new(1000);
    let ctx = zmq::Context::new();
    let path = ipc_path("pull");
    let _ = std::fs::remove_file(&path);
    let tcp = fx.bind(
        SocketType::Pull,
        BindAddr::Tcp("127.0.0.1:0".parse().unwrap()),
        |_| {},
    );
    let ipc = fx.bind(SocketType::Pull, BindAddr::Ipc(path.clone()), |_| {});
    assert!(
        tcp.endpoint().starts_with("tcp://127.0.0.1:") && !tcp.endpoint().ends_with(":0"),
        "{}",
        tcp.endpoint()
    );
    for endpoint in [tcp.endpoint().to_string(), ipc.endpoint().to_string()] {
        let push = zsock(&ctx, zmq::PUSH);
        push.connect(&endpoint).unwrap();
        for msg in shapes() {
            push.send_multipart(&msg, 0).unwrap();
        }
        let mut side = fx.next_side();
        assert_eq!(side.peer.socket_type, Some(SocketType::Push));
        for (i, want) in shapes().into_iter().enumerate() {
            let m = side.recv();
            if i == 0 {
                // The properties ride on the first part after the handshake; the socket's end
                // of the pipe applies them to the rest (sockets/src/pattern/mod.rs).
                assert_eq!(
                    m.metadata()
                        .and_then(|md| md.get("Socket-Type"))
                        .map(|b| &b[..]),
                    Some(&b"PUSH"[..]),
                    "the first part carries the peer's properties"
                );
            }
            let mut got = vec![m.clone().into_bytes()];
            if m.more() {
                got.extend(side.recv_parts());
            }
            assert_eq!(got.len(), want.len(), "{endpoint}: part count");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    g[..] == w[..],
                    "{endpoint}: part of {} bytes differs",
                    w.len()
                );
            }
        }
        drop(push);
        side.wait_closed();
    }
    tcp.stop();
    ipc.stop();
    fx.expect_event(MonitorEvent::Closed);
    fx.engine.shutdown();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn our_push_connects_to_libzmq_pull_and_survives_its_restart() {
    let fx = Fixture::new(1000);
    let ctx = zmq::Context::new();
    let pull = zsock(&ctx, zmq::PULL);
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = pull.get_last_endpoint().unwrap().unwrap();
    let opts = TransportOptions {
        reconnect_ivl: Some(Duration::from_millis(10)),
        ..TransportOptions::default()
    };
    let handle = fx.connect(SocketType::Push, &endpoint, opts);
    fx.expect_event(MonitorEvent::Connected);
    let mut side = fx.next_side();
    assert_eq!(side.peer.socket_type, Some(SocketType::Pull));
    for msg in shapes() {
        let parts: Vec<&[u8]> = msg.iter().map(|p| &p[..]).collect();
        side.send(&parts);
    }
    for want in shapes() {
        let got = pull.recv_multipart(0).unwrap();
        assert!(got == want, "libzmq received different parts");
    }

    // The libzmq side goes away and comes back on the same port: we reconnect by ourselves,
    // and the pipe survives (libzmq's connecting session keeps it): what the socket queues
    // meanwhile is delivered after the reconnect, and nothing is attached anew.
    drop(pull);
    fx.expect_event(MonitorEvent::Disconnected);
    fx.expect_event(MonitorEvent::ConnectRetried);
    side.send(&[b"queued while away"]);
    let pull = zsock(&ctx, zmq::PULL);
    let deadline = Instant::now() + LIMIT;
    while let Err(e) = pull.bind(&endpoint) {
        // libzmq frees the port on its I/O thread shortly after the drop.
        assert!(Instant::now() < deadline, "port never freed: {e}");
        std::thread::yield_now();
    }
    assert_eq!(pull.recv_bytes(0).unwrap(), b"queued while away");
    side.send(&[b"after restart"]);
    assert_eq!(pull.recv_bytes(0).unwrap(), b"after restart");
    assert!(
        fx.attached.try_recv().is_err(),
        "the kept pipe is reused, not replaced"
    );
    handle.stop();
    side.wait_closed();
    fx.engine.shutdown();
}

#[test]
fn subscriptions_cross_in_both_directions() {
    let fx = Fixture::new(1000);
    let ctx = zmq::Context::new();

    // libzmq SUB → our PUB: its SUBSCRIBE arrives as `\x01topic`, and it gets what matches.
    let listener = fx.bind(
        SocketType::Pub,
        BindAddr::Tcp("127.0.0.1:0".parse().unwrap()),
        |_| {},
    );
    let sub = zsock(&ctx, zmq::SUB);
    sub.set_subscribe(b"weather").unwrap();
    sub.connect(listener.endpoint()).unwrap();
    let mut side = fx.next_side();
    assert_eq!(&side.recv().into_bytes()[..], b"\x01weather");
    side.send(&[b"weather sunny"]);
    assert_eq!(sub.recv_bytes(0).unwrap(), b"weather sunny");
    sub.set_unsubscribe(b"weather").unwrap();
    assert_eq!(&side.recv().into_bytes()[..], b"\x00weather");

    // Our SUB → libzmq PUB: a `\x01A` message becomes a SUBSCRIBE the PUB filters by.
    let publisher = zsock(&ctx, zmq::PUB);
    publisher.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = publisher.get_last_endpoint().unwrap().unwrap();
    let _h = fx.connect(SocketType::Sub, &endpoint, TransportOptions::default());
    let mut side = fx.next_side();
    side.send(&[b"\x01A"]);
    // Publish until the subscription has reached the PUB (it travels asynchronously).
    let deadline = Instant::now() + LIMIT;
    let first = loop {
        publisher.send("B-skip", 0).unwrap();
        publisher.send("A-hit", 0).unwrap();
        if side.reader.len_hint() > 0 {
            break side.recv();
        }
        assert!(Instant::now() < deadline, "subscription never took effect");
        side.signal
            .wait(Some(Duration::from_millis(5)), Duration::ZERO);
    };
    assert_eq!(&first.into_bytes()[..], b"A-hit");
    listener.stop();
    fx.engine.shutdown();
}

#[test]
fn full_inbound_pipe_pauses_reading_and_loses_nothing() {
    let hwm = 16;
    let fx = Fixture::new(hwm);
    let ctx = zmq::Context::new();
    let listener = fx.bind(
        SocketType::Pull,
        BindAddr::Tcp("127.0.0.1:0".parse().unwrap()),
        |_| {},
    );
    let push = zsock(&ctx, zmq::PUSH);
    push.set_sndhwm(0).unwrap();
    push.connect(listener.endpoint()).unwrap();
    let total = 20_000u32;
    for i in 0..total {
        push.send(&i.to_be_bytes()[..], 0).unwrap();
    }
    let mut side = fx.next_side();
    let mut max_queued = 0;
    for i in 0..total {
        max_queued = max_queued.max(side.reader.len_hint());
        let m = side.recv();
        assert_eq!(
            u32::from_be_bytes(m.data().try_into().unwrap()),
            i,
            "order kept"
        );
    }
    // The driver never pushes past the pipe's HWM: what it decoded beyond waits in the driver
    // (at most one receive buffer), the rest stays in the kernel (TCP flow control).
    assert!(
        max_queued <= hwm + 1,
        "pipe held {max_queued} messages with HWM {hwm}"
    );
    listener.stop();
    fx.engine.shutdown();
}

fn wait_eof(s: &mut TcpStream) {
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("peer was not disconnected: {e}"),
        }
    }
}

#[test]
fn bad_peers_are_dropped_and_good_ones_go_on() {
    let fx = Fixture::new(1000);
    let ctx = zmq::Context::new();
    let listener = fx.bind(
        SocketType::Pull,
        BindAddr::Tcp("127.0.0.1:0".parse().unwrap()),
        |c| {
            c.handshake_ivl = Some(Duration::from_millis(200));
            c.max_msg_size = 1000;
        },
    );
    let addr = listener.endpoint().trim_start_matches("tcp://").to_string();

    // Garbage instead of a greeting.
    let mut garbage = TcpStream::connect(&addr).unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_eof(&mut garbage);

    // A peer that stalls mid-greeting is cut off by HANDSHAKE_IVL.
    let mut stall = TcpStream::connect(&addr).unwrap();
    stall
        .write_all(&[0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F])
        .unwrap();
    wait_eof(&mut stall);

    // A libzmq peer sending a frame over MAXMSGSIZE loses its connection; messages before it
    // arrived.
    let push = zsock(&ctx, zmq::PUSH);
    push.connect(listener.endpoint()).unwrap();
    push.send("small", 0).unwrap();
    push.send(vec![0u8; 5000], 0).unwrap();
    let mut side = fx.next_side();
    assert_eq!(side.recv().data(), b"small");
    side.wait_closed();
    fx.expect_event(MonitorEvent::Disconnected);
    drop(push);

    // The listener is unharmed.
    let good = zsock(&ctx, zmq::PUSH);
    good.connect(listener.endpoint()).unwrap();
    good.send("still here", 0).unwrap();
    let mut side = fx.next_side();
    assert_eq!(side.recv().data(), b"still here");
    listener.stop();
    fx.engine.shutdown();
}

#[test]
fn stream_type_carries_raw_bytes_both_ways() {
    let fx = Fixture::new(1000);
    // Accepted raw peer.
    let listener = fx.bind(
        SocketType::Stream,
        BindAddr::Tcp("127.0.0.1:0".parse().unwrap()),
        |_| {},
    );
    let mut client = TcpStream::connect(listener.endpoint().trim_start_matches("tcp://")).unwrap();
    client.set_read_timeout(Some(LIMIT)).unwrap();
    let mut side = fx.next_side();
    client.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut got = Vec::new();
    while got.len() < 18 {
        got.extend_from_slice(side.recv().data());
    }
    assert_eq!(&got[..], b"GET / HTTP/1.0\r\n\r\n");
    side.send(&[b"HTTP/1.0 200 OK\r\n\r\n"]);
    let mut reply = [0u8; 19];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"HTTP/1.0 200 OK\r\n\r\n");
    // An empty message closes the connection.
    side.send(&[b""]);
    wait_eof(&mut client);
    side.wait_closed();

    // Connecting raw peer.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("tcp://{}", server.local_addr().unwrap());
    let _h = fx.connect(SocketType::Stream, &endpoint, TransportOptions::default());
    let (mut peer, _) = server.accept().unwrap();
    peer.set_read_timeout(Some(LIMIT)).unwrap();
    let mut side = fx.next_side();
    side.send(&[b"ping"]);
    let mut buf = [0u8; 4];
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    peer.write_all(b"pong").unwrap();
    assert_eq!(side.recv().data(), b"pong");
    listener.stop();
    fx.engine.shutdown();
}

#[test]
fn plain_server_asks_zap_and_applies_its_verdict() {
    let fx = Fixture::new(1000);
    let ctx = zmq::Context::new();
    let listener = fx.bind(
        SocketType::Pull,
        BindAddr::Tcp("127.0.0.1:0".parse().unwrap()),
        |c| {
            c.mechanism = MechanismConfig::PlainServer;
            c.zap.handler_available = true;
        },
    );

    // Admitted: the messages carry the handler's user id.
    let push = zsock(&ctx, zmq::PUSH);
    push.set_plain_username(Some("admin")).unwrap();
    push.set_plain_password(Some("secret")).unwrap();
    push.connect(listener.endpoint()).unwrap();
    push.send("authenticated", 0).unwrap();
    let mut side = fx.next_side();
    let m = side.recv();
    assert_eq!(m.data(), b"authenticated");
    assert_eq!(
        m.metadata()
            .and_then(|md| md.get("User-Id"))
            .map(|b| &b[..]),
        Some(&b"boss"[..])
    );
    assert_eq!(side.peer.user_id.as_deref(), Some(&b"boss"[..]));

    // Refused: the monitor reports the ZAP status, and nothing is attached.
    let intruder = zsock(&ctx, zmq::PUSH);
    intruder.set_plain_username(Some("admin")).unwrap();
    intruder.set_plain_password(Some("guess")).unwrap();
    intruder.connect(listener.endpoint()).unwrap();
    assert_eq!(fx.expect_event(MonitorEvent::HandshakeFailedAuth), 400);
    assert!(
        fx.attached.try_recv().is_err(),
        "a refused peer must not reach the socket"
    );
    listener.stop();
    fx.engine.shutdown();
}

#[test]
fn connecting_pub_gets_the_subscriptions_of_a_bound_sub() {
    let fx = Fixture::new(1000);
    let ctx = zmq::Context::new();
    let sub = zsock(&ctx, zmq::SUB);
    sub.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = sub.get_last_endpoint().unwrap().unwrap();
    let _h = fx.connect(SocketType::Pub, &endpoint, TransportOptions::default());
    sub.set_subscribe(b"A").unwrap();
    let mut side = fx.next_side();
    // libzmq attaches an accepted pipe (and sends its subscriptions down it) only while its
    // application thread is inside a call on that socket: keep it busy until ours arrives.
    let deadline = Instant::now() + LIMIT;
    while side.reader.len_hint() == 0 {
        assert!(Instant::now() < deadline, "the SUBSCRIBE never arrived");
        let _ = sub.get_events();
        side.signal
            .wait(Some(Duration::from_millis(5)), Duration::ZERO);
    }
    assert_eq!(&side.recv().into_bytes()[..], b"\x01A");
    side.send(&[b"A-hit"]);
    assert_eq!(sub.recv_bytes(0).unwrap(), b"A-hit");
}

/// `connect` does not wait for its I/O thread (libzmq's zmq_connect only sends a command): with
/// every I/O thread held busy it still returns, and a stop sent before the thread has spawned
/// the session (so before the handle knows the session's id) follows the spawn through the
/// thread's FIFO command queue and ends it: the threads' handlers return to what they were.
#[test]
fn connect_returns_before_its_thread_runs_and_an_early_stop_ends_the_session() {
    let fx = Fixture::new(1000);
    let ctx = zmq::Context::new();
    let pull = zsock(&ctx, zmq::PULL);
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = pull.get_last_endpoint().unwrap().unwrap();
    let handlers = || fx.threads.iter().map(|t| t.load()).sum::<usize>();
    let before = handlers();
    // Hold every I/O thread inside a command until released.
    let gates: Vec<_> = fx
        .threads
        .iter()
        .map(|t| {
            let (tx, rx) = mpsc::channel::<()>();
            let (held_tx, held) = mpsc::channel::<()>();
            t.execute(move |_cx| {
                held_tx.send(()).unwrap();
                let _ = rx.recv_timeout(LIMIT);
            })
            .unwrap();
            held.recv_timeout(LIMIT)
                .expect("the thread took the command");
            tx
        })
        .collect();
    let handle = fx.connect(SocketType::Push, &endpoint, TransportOptions::default());
    handle.stop();
    drop(gates);
    // Runs a no-op on the session's thread and waits for it: everything queued before it on
    // that thread has run.
    let barrier = || {
        let (tx, rx) = mpsc::channel::<()>();
        handle
            .thread()
            .execute(move |_cx| tx.send(()).unwrap())
            .unwrap();
        rx.recv_timeout(LIMIT).expect("the thread ran the barrier");
    };
    barrier(); // the spawn and the early stop's forwarding ran
    barrier(); // the stop itself was delivered
    let deadline = Instant::now() + LIMIT;
    while handlers() != before {
        // A lost stop would leave the session connected to the PULL for good.
        assert!(Instant::now() < deadline, "the stopped session never ended");
        std::thread::yield_now();
    }
    fx.engine.shutdown();
}
