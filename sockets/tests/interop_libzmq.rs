//! The interop matrix: every compatible socket-type pair with real libzmq 4.3 on the other
//! side, each pair with zeroring playing either type, either side binding, over tcp and ipc.
//! Message shapes: multipart, 0 bytes, the 255/256-byte frame-length boundary, 16 MiB.

use std::time::{Duration, Instant};

use zeroring::{Context, SocketType};

const LIMIT_MS: i32 = 20_000;

/// One end of a pair, whichever library it is.
trait End {
    fn bind(&self, t: Transport) -> String;
    fn connect(&self, endpoint: &str);
    fn send(&self, parts: &[Vec<u8>]);
    fn recv(&self) -> Vec<Vec<u8>>;
    /// None when nothing arrives within `ms`.
    fn try_recv(&self, ms: i32) -> Option<Vec<Vec<u8>>>;
    fn subscribe(&self, topic: &[u8]);
    fn unsubscribe(&self, topic: &[u8]);
    fn set_routing_id(&self, id: &[u8]);
    fn lib(&self) -> &'static str;
    /// Lets the library process pending commands. Both libraries attach a new connection's
    /// pipe only inside an API call on the socket (a SUB sends its subscriptions then).
    fn poke(&self) {}
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Tcp,
    Ipc,
}

fn ipc_endpoint() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("zeroring-interop-{}-{n}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    format!("ipc://{}", p.display())
}

struct Zr(zeroring::Socket);

impl End for Zr {
    fn bind(&self, t: Transport) -> String {
        let ep = match t {
            Transport::Tcp => "tcp://127.0.0.1:*".to_string(),
            Transport::Ipc => ipc_endpoint(),
        };
        self.0.bind(&ep).unwrap();
        self.0.get_last_endpoint().unwrap().unwrap()
    }
    fn connect(&self, endpoint: &str) {
        self.0.connect(endpoint).unwrap();
    }
    fn send(&self, parts: &[Vec<u8>]) {
        self.0
            .send_multipart(parts.iter().map(|p| p.as_slice()), 0)
            .unwrap();
    }
    fn recv(&self) -> Vec<Vec<u8>> {
        self.0.recv_multipart(0).unwrap()
    }
    fn try_recv(&self, ms: i32) -> Option<Vec<Vec<u8>>> {
        self.0.set_rcvtimeo(ms).unwrap();
        let r = self.0.recv_multipart(0).ok();
        self.0.set_rcvtimeo(LIMIT_MS).unwrap();
        r
    }
    fn subscribe(&self, topic: &[u8]) {
        self.0.set_subscribe(topic).unwrap();
    }
    fn unsubscribe(&self, topic: &[u8]) {
        self.0.set_unsubscribe(topic).unwrap();
    }
    fn set_routing_id(&self, id: &[u8]) {
        self.0.set_routing_id(id).unwrap();
    }
    fn lib(&self) -> &'static str {
        "zeroring"
    }
    fn poke(&self) {
        let _ = self.0.get_events();
    }
}

struct Lz(zmq::Socket);

impl End for Lz {
    fn bind(&self, t: Transport) -> String {
        let ep = match t {
            Transport::Tcp => "tcp://127.0.0.1:*".to_string(),
            Transport::Ipc => ipc_endpoint(),
        };
        self.0.bind(&ep).unwrap();
        self.0.get_last_endpoint().unwrap().unwrap()
    }
    fn connect(&self, endpoint: &str) {
        self.0.connect(endpoint).unwrap();
    }
    fn send(&self, parts: &[Vec<u8>]) {
        self.0.send_multipart(parts, 0).unwrap();
    }
    fn recv(&self) -> Vec<Vec<u8>> {
        self.0.recv_multipart(0).unwrap()
    }
    fn try_recv(&self, ms: i32) -> Option<Vec<Vec<u8>>> {
        self.0.set_rcvtimeo(ms).unwrap();
        let r = self.0.recv_multipart(0).ok();
        self.0.set_rcvtimeo(LIMIT_MS).unwrap();
        r
    }
    fn subscribe(&self, topic: &[u8]) {
        self.0.set_subscribe(topic).unwrap();
    }
    fn unsubscribe(&self, topic: &[u8]) {
        self.0.set_unsubscribe(topic).unwrap();
    }
    fn set_routing_id(&self, id: &[u8]) {
        self.0.set_identity(id).unwrap();
    }
    fn poke(&self) {
        let _ = self.0.get_events();
    }
    fn lib(&self) -> &'static str {
        "libzmq"
    }
}

fn zr(ctx: &Context, t: SocketType) -> Box<dyn End> {
    let s = ctx.socket(t).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(LIMIT_MS).unwrap();
    s.set_sndtimeo(LIMIT_MS).unwrap();
    Box::new(Zr(s))
}

fn lz(ctx: &zmq::Context, t: SocketType) -> Box<dyn End> {
    let kind = match t {
        SocketType::Pair => zmq::PAIR,
        SocketType::Pub => zmq::PUB,
        SocketType::Sub => zmq::SUB,
        SocketType::Req => zmq::REQ,
        SocketType::Rep => zmq::REP,
        SocketType::Dealer => zmq::DEALER,
        SocketType::Router => zmq::ROUTER,
        SocketType::Pull => zmq::PULL,
        SocketType::Push => zmq::PUSH,
        SocketType::XPub => zmq::XPUB,
        SocketType::XSub => zmq::XSUB,
        other => panic!("{other:?} is not in the matrix"),
    };
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(LIMIT_MS).unwrap();
    s.set_sndtimeo(LIMIT_MS).unwrap();
    Box::new(Lz(s))
}

fn shapes() -> Vec<Vec<Vec<u8>>> {
    static BIG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let big = BIG.get_or_init(|| (0..16u32 << 20).map(|i| (i % 251) as u8).collect());
    vec![
        vec![b"hello".to_vec()],
        vec![vec![]],
        vec![b"a".to_vec(), vec![], b"ccc".to_vec()],
        vec![vec![1u8; 255], vec![2u8; 256]],
        vec![big.clone()],
    ]
}

/// Sends every shape from `a` to `b`, checking each arrives whole and in order.
fn one_way(a: &dyn End, b: &dyn End, prefix: &[Vec<u8>], strip: usize) {
    for shape in shapes() {
        let mut msg = prefix.to_vec();
        msg.extend(shape.iter().cloned());
        a.send(&msg);
        let got = b.recv();
        assert_eq!(
            got.len(),
            shape.len() + strip,
            "{} → {}: part count",
            a.lib(),
            b.lib()
        );
        assert!(
            got[strip..] == shape[..],
            "{} → {}: parts differ",
            a.lib(),
            b.lib()
        );
    }
}

/// The exchange that proves a pair works, by pattern.
fn exchange(a_type: SocketType, a: &dyn End, b_type: SocketType, b: &dyn End) {
    use SocketType::*;
    match (a_type, b_type) {
        (Pair, Pair) | (Dealer, Dealer) => {
            one_way(a, b, &[], 0);
            one_way(b, a, &[], 0);
        }
        (Push, Pull) => one_way(a, b, &[], 0),
        (Req, Rep) => {
            for shape in shapes() {
                a.send(&shape);
                let got = b.recv();
                assert!(got == shape, "{} REQ → {} REP", a.lib(), b.lib());
                b.send(&got);
                assert!(a.recv() == shape, "reply to REQ");
            }
        }
        (Req, Router) => {
            for shape in shapes() {
                a.send(&shape);
                let got = b.recv();
                assert!(
                    got.len() == shape.len() + 2 && got[1].is_empty() && got[2..] == shape[..],
                    "ROUTER sees [id, \"\", body]"
                );
                b.send(&got);
                assert!(a.recv() == shape);
            }
        }
        (Dealer, Rep) => {
            for shape in shapes() {
                let mut msg = vec![vec![]];
                msg.extend(shape.iter().cloned());
                a.send(&msg);
                let got = b.recv();
                assert!(got == shape, "REP strips the empty delimiter");
                b.send(&got);
                assert!(a.recv() == msg, "DEALER gets [\"\", reply]");
            }
        }
        (Dealer, Router) => {
            for shape in shapes() {
                a.send(&shape);
                let got = b.recv();
                assert!(got.len() == shape.len() + 1 && got[1..] == shape[..]);
                b.send(&got);
                assert!(a.recv() == shape, "ROUTER routes the reply back by id");
            }
        }
        (Router, Router) => {
            // Both ids were set before connecting; the connecting side (a) sends first once
            // the connection is up (ROUTER drops messages for unknown peers, so retry).
            let deadline = Instant::now() + Duration::from_millis(LIMIT_MS as u64);
            loop {
                a.send(&[b"B".to_vec(), b"ping".to_vec()]);
                if let Some(got) = b.try_recv(50) {
                    assert_eq!(got, vec![b"A".to_vec(), b"ping".to_vec()]);
                    break;
                }
                assert!(Instant::now() < deadline, "ROUTER-ROUTER never connected");
            }
            one_way(b, a, &[b"A".to_vec()], 1);
        }
        (Pub | XPub, Sub | XSub) => {
            let xsub = b_type == XSub;
            let xpub = a_type == XPub;
            if xsub {
                b.send(&[b"\x01A".to_vec()]);
            } else {
                b.subscribe(b"A");
            }
            if xpub {
                let deadline = Instant::now() + Duration::from_millis(LIMIT_MS as u64);
                let got = loop {
                    b.poke();
                    if let Some(m) = a.try_recv(10) {
                        break m;
                    }
                    assert!(Instant::now() < deadline, "XPUB never saw the subscription");
                };
                assert_eq!(got, vec![b"\x01A".to_vec()], "XPUB sees the subscription");
            }
            // The subscription travels asynchronously: publish until it has arrived.
            let deadline = Instant::now() + Duration::from_millis(LIMIT_MS as u64);
            loop {
                b.poke();
                a.send(&[b"B-skip".to_vec()]);
                a.send(&[b"A-first".to_vec()]);
                if let Some(got) = b.try_recv(20) {
                    assert_eq!(
                        got,
                        vec![b"A-first".to_vec()],
                        "only subscribed topics arrive"
                    );
                    break;
                }
                assert!(Instant::now() < deadline, "subscription never took effect");
            }
            while b.try_recv(50).is_some() {}
            for shape in shapes() {
                let mut msg = vec![b"A".to_vec()];
                msg.extend(shape.iter().cloned());
                a.send(&[b"B-skip".to_vec()]);
                a.send(&msg);
                assert!(
                    b.recv() == msg,
                    "{} → {}: published message",
                    a.lib(),
                    b.lib()
                );
            }
            if xsub {
                b.send(&[b"\x00A".to_vec()]);
            } else {
                b.unsubscribe(b"A");
            }
            if xpub {
                b.poke();
                assert_eq!(a.recv(), vec![b"\x00A".to_vec()], "XPUB sees the cancel");
            }
        }
        other => panic!("{other:?} is not a matrix pair"),
    }
}

/// Runs pair (a_type, b_type) with zeroring as `zr_side` ("a" or "b"), `binder` binding.
fn case(a_type: SocketType, b_type: SocketType, zr_is_a: bool, a_binds: bool, t: Transport) {
    let zctx = Context::new();
    let lctx = zmq::Context::new();
    let (a, b) = if zr_is_a {
        (zr(&zctx, a_type), lz(&lctx, b_type))
    } else {
        (lz(&lctx, a_type), zr(&zctx, b_type))
    };
    if a_type == SocketType::Router && b_type == SocketType::Router {
        a.set_routing_id(b"A");
        b.set_routing_id(b"B");
    }
    if a_binds {
        let ep = a.bind(t);
        b.connect(&ep);
    } else {
        let ep = b.bind(t);
        a.connect(&ep);
    }
    exchange(a_type, &*a, b_type, &*b);
}

fn matrix_for(a_type: SocketType, b_type: SocketType) {
    for t in [Transport::Tcp, Transport::Ipc] {
        for zr_is_a in [true, false] {
            for a_binds in [true, false] {
                case(a_type, b_type, zr_is_a, a_binds, t);
            }
        }
    }
}

#[test]
fn pair_pair() {
    matrix_for(SocketType::Pair, SocketType::Pair);
}

#[test]
fn push_pull() {
    matrix_for(SocketType::Push, SocketType::Pull);
}

#[test]
fn pub_sub() {
    matrix_for(SocketType::Pub, SocketType::Sub);
}

#[test]
fn xpub_xsub() {
    matrix_for(SocketType::XPub, SocketType::XSub);
}

#[test]
fn pub_xsub() {
    matrix_for(SocketType::Pub, SocketType::XSub);
}

#[test]
fn xpub_sub() {
    matrix_for(SocketType::XPub, SocketType::Sub);
}

#[test]
fn req_rep() {
    matrix_for(SocketType::Req, SocketType::Rep);
}

#[test]
fn req_router() {
    matrix_for(SocketType::Req, SocketType::Router);
}

#[test]
fn dealer_rep() {
    matrix_for(SocketType::Dealer, SocketType::Rep);
}

#[test]
fn dealer_router() {
    matrix_for(SocketType::Dealer, SocketType::Router);
}

#[test]
fn dealer_dealer() {
    matrix_for(SocketType::Dealer, SocketType::Dealer);
}

#[test]
fn router_router() {
    matrix_for(SocketType::Router, SocketType::Router);
}
