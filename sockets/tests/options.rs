//! Socket options against libzmq 4.3's zmq_setsockopt / zmq_getsockopt pages: the table holds
//! every option the pages list (GSSAPI and VMCI answer EINVAL, as a libzmq built without
//! them), and each option whose effect shows on the wire or in the API is checked against a
//! real libzmq peer (the `zmq` crate) or libzmq's own answer.

use std::net::TcpListener;

use zeroring::options::{num, spec, Access, OPTIONS};
use zeroring::{Context, Error, SocketType, SNDMORE};

const TIMEOUT_MS: i32 = 10_000;

/// Every option name on libzmq 4.3.4's zmq_setsockopt.txt and zmq_getsockopt.txt (96 names,
/// IDENTITY and CONNECT_RID being old names of ROUTING_ID and CONNECT_ROUTING_ID).
const LIBZMQ_43: &[&str] = &[
    "AFFINITY",
    "BACKLOG",
    "BINDTODEVICE",
    "CONFLATE",
    "CONNECT_RID",
    "CONNECT_ROUTING_ID",
    "CONNECT_TIMEOUT",
    "CURVE_PUBLICKEY",
    "CURVE_SECRETKEY",
    "CURVE_SERVER",
    "CURVE_SERVERKEY",
    "DISCONNECT_MSG",
    "EVENTS",
    "FD",
    "GSSAPI_PLAINTEXT",
    "GSSAPI_PRINCIPAL",
    "GSSAPI_PRINCIPAL_NAMETYPE",
    "GSSAPI_SERVER",
    "GSSAPI_SERVICE_PRINCIPAL",
    "GSSAPI_SERVICE_PRINCIPAL_NAMETYPE",
    "HANDSHAKE_IVL",
    "HEARTBEAT_IVL",
    "HEARTBEAT_TIMEOUT",
    "HEARTBEAT_TTL",
    "HELLO_MSG",
    "IDENTITY",
    "IMMEDIATE",
    "INVERT_MATCHING",
    "IN_BATCH_SIZE",
    "IPC_FILTER_GID",
    "IPC_FILTER_PID",
    "IPC_FILTER_UID",
    "IPV4ONLY",
    "IPV6",
    "LAST_ENDPOINT",
    "LINGER",
    "MAXMSGSIZE",
    "MECHANISM",
    "METADATA",
    "MULTICAST_HOPS",
    "MULTICAST_LOOP",
    "MULTICAST_MAXTPDU",
    "ONLY_FIRST_SUBSCRIBE",
    "OUT_BATCH_SIZE",
    "PLAIN_PASSWORD",
    "PLAIN_SERVER",
    "PLAIN_USERNAME",
    "PRIORITY",
    "PROBE_ROUTER",
    "RATE",
    "RCVBUF",
    "RCVHWM",
    "RCVMORE",
    "RCVTIMEO",
    "RECONNECT_IVL",
    "RECONNECT_IVL_MAX",
    "RECONNECT_STOP",
    "RECOVERY_IVL",
    "REQ_CORRELATE",
    "REQ_RELAXED",
    "ROUTER_HANDOVER",
    "ROUTER_MANDATORY",
    "ROUTER_NOTIFY",
    "ROUTER_RAW",
    "ROUTING_ID",
    "SNDBUF",
    "SNDHWM",
    "SNDTIMEO",
    "SOCKS_PASSWORD",
    "SOCKS_PROXY",
    "SOCKS_USERNAME",
    "STREAM_NOTIFY",
    "SUBSCRIBE",
    "TCP_ACCEPT_FILTER",
    "TCP_KEEPALIVE",
    "TCP_KEEPALIVE_CNT",
    "TCP_KEEPALIVE_IDLE",
    "TCP_KEEPALIVE_INTVL",
    "TCP_MAXRT",
    "THREAD_SAFE",
    "TOS",
    "TYPE",
    "UNSUBSCRIBE",
    "USE_FD",
    "VMCI_BUFFER_MAX_SIZE",
    "VMCI_BUFFER_MIN_SIZE",
    "VMCI_BUFFER_SIZE",
    "VMCI_CONNECT_TIMEOUT",
    "XPUB_MANUAL",
    "XPUB_MANUAL_LAST_VALUE",
    "XPUB_NODROP",
    "XPUB_VERBOSE",
    "XPUB_VERBOSER",
    "XPUB_WELCOME_MSG",
    "ZAP_DOMAIN",
    "ZAP_ENFORCE_DOMAIN",
];

/// Options of optional libzmq builds zeroring does not have: EINVAL, as such a libzmq says.
const NOT_BUILT: &[&str] = &[
    "GSSAPI_PLAINTEXT",
    "GSSAPI_PRINCIPAL",
    "GSSAPI_PRINCIPAL_NAMETYPE",
    "GSSAPI_SERVER",
    "GSSAPI_SERVICE_PRINCIPAL",
    "GSSAPI_SERVICE_PRINCIPAL_NAMETYPE",
    "VMCI_BUFFER_MAX_SIZE",
    "VMCI_BUFFER_MIN_SIZE",
    "VMCI_BUFFER_SIZE",
    "VMCI_CONNECT_TIMEOUT",
];

fn table_has(name: &str) -> bool {
    let name = match name {
        "IDENTITY" => "ROUTING_ID",
        "CONNECT_RID" => "CONNECT_ROUTING_ID",
        n => n,
    };
    OPTIONS.iter().any(|s| s.name == name)
}

#[test]
fn the_table_holds_every_option_of_libzmq_43() {
    assert_eq!(LIBZMQ_43.len(), 96);
    let missing: Vec<_> = LIBZMQ_43
        .iter()
        .filter(|n| !NOT_BUILT.contains(n) && !table_has(n))
        .collect();
    assert!(missing.is_empty(), "missing from the table: {missing:?}");
    for n in NOT_BUILT {
        assert!(!table_has(n), "{n} is not built");
    }
    let have = LIBZMQ_43.iter().filter(|n| table_has(n)).count();
    println!(
        "options: {have} / {} of libzmq 4.3's list (the rest: GSSAPI, VMCI, not built)",
        LIBZMQ_43.len()
    );
    assert_eq!(have, 86);
    // Old names are the same numbers.
    assert_eq!(num::IDENTITY, num::ROUTING_ID);
    assert_eq!(num::CONNECT_RID, num::CONNECT_ROUTING_ID);
}

#[test]
fn numbers_match_libzmq() {
    // The new rows' numbers, as zmq.h (4.3.4, and 4.3.5 for BUSY_POLL and HICCUP_MSG).
    for (ours, theirs) in [
        (num::ROUTER_RAW, 41),
        (num::STREAM_NOTIFY, 73),
        (num::USE_FD, 89),
        (num::ROUTER_NOTIFY, 97),
        (num::SOCKS_USERNAME, 99),
        (num::IN_BATCH_SIZE, 101),
        (num::RECONNECT_STOP, 109),
        (num::HELLO_MSG, 110),
        (num::DISCONNECT_MSG, 111),
        (num::PRIORITY, 112),
        (num::BUSY_POLL, 113),
        (num::HICCUP_MSG, 114),
    ] {
        assert_eq!(ours, theirs, "{}", spec(ours).unwrap().name);
    }
}

#[test]
fn int_options_take_an_8_byte_value() {
    let ctx = Context::new();
    let s = ctx.socket(SocketType::Dealer).unwrap();
    s.set_option(num::LINGER, &5i64.to_ne_bytes()).unwrap();
    assert_eq!(s.get_linger().unwrap(), 5);
    s.set_option(num::IMMEDIATE, &1i64.to_ne_bytes()).unwrap();
    assert!(s.get_immediate().unwrap());
    assert_eq!(
        s.set_option(num::LINGER, &(1i64 << 40).to_ne_bytes()),
        Err(Error::EINVAL),
        "a value an int cannot hold"
    );
    assert_eq!(s.set_option(num::LINGER, &[0u8; 6]), Err(Error::EINVAL));
}

#[test]
fn stored_options_read_back_with_libzmq_defaults() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let s = ctx.socket(SocketType::Dealer).unwrap();
    let z = zctx.socket(zmq::DEALER).unwrap();
    let int = |n: i32| i32::from_ne_bytes(s.get_option(n).unwrap().try_into().unwrap());
    assert_eq!(int(num::THREAD_SAFE), 0);
    assert_eq!(int(num::USE_FD), -1);
    assert_eq!(int(num::MULTICAST_MAXTPDU), 1500);
    assert_eq!(int(num::IPV4ONLY), 1);
    assert_eq!(int(num::FD), s.get_fd());
    // IPV4ONLY is IPV6's negation, in libzmq and here.
    assert_eq!(s.get_ipv6().unwrap(), z.is_ipv6().unwrap());
    s.set_option(num::IPV4ONLY, &0i32.to_ne_bytes()).unwrap();
    z.set_ipv6(true).unwrap();
    assert_eq!(s.get_ipv6().unwrap(), z.is_ipv6().unwrap());
    assert_eq!(int(num::IPV4ONLY), 0);
    for n in [
        num::IN_BATCH_SIZE,
        num::OUT_BATCH_SIZE,
        num::PRIORITY,
        num::BUSY_POLL,
        num::RECONNECT_STOP,
        num::USE_FD,
        num::MULTICAST_MAXTPDU,
    ] {
        s.set_option(n, &3i32.to_ne_bytes()).unwrap();
        assert_eq!(int(n), 3, "{}", spec(n).unwrap().name);
    }
    s.set_option(num::SOCKS_PROXY, b"127.0.0.1:1080").unwrap();
    assert_eq!(s.get_option(num::SOCKS_PROXY).unwrap(), b"127.0.0.1:1080\0");
    // SOCKS_USERNAME and SOCKS_PASSWORD read back (libzmq's getsockopt answers both).
    for n in [num::SOCKS_USERNAME, num::SOCKS_PASSWORD] {
        s.set_option(n, b"someone").unwrap();
        assert_eq!(s.get_option(n).unwrap(), b"someone\0");
    }
    // Write-only options, as in libzmq.
    for n in [num::HELLO_MSG, num::HICCUP_MSG, num::TCP_ACCEPT_FILTER] {
        assert_eq!(spec(n).unwrap().access, Access::WriteOnly);
        assert_eq!(s.get_option(n), Err(Error::EINVAL));
    }
    // Type-restricted ones.
    assert_eq!(
        s.set_option(num::ROUTER_RAW, &1i32.to_ne_bytes()),
        Err(Error::EINVAL)
    );
    assert_eq!(
        s.set_option(num::STREAM_NOTIFY, &0i32.to_ne_bytes()),
        Err(Error::EINVAL)
    );
    assert_eq!(
        s.set_option(num::ROUTER_NOTIFY, &1i32.to_ne_bytes()),
        Err(Error::EINVAL)
    );
    let r = ctx.socket(SocketType::Router).unwrap();
    assert_eq!(
        r.set_option(num::ROUTER_NOTIFY, &4i32.to_ne_bytes()),
        Err(Error::EINVAL)
    );
}

#[test]
fn mechanism_follows_the_security_options_as_libzmq() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let s = ctx.socket(SocketType::Dealer).unwrap();
    let z = zctx.socket(zmq::DEALER).unwrap();
    let ours = |s: &zeroring::Socket| {
        i32::from_ne_bytes(s.get_option(num::MECHANISM).unwrap().try_into().unwrap())
    };
    let theirs = |z: &zmq::Socket| match z.get_mechanism().unwrap() {
        zmq::Mechanism::ZMQ_NULL => 0,
        zmq::Mechanism::ZMQ_PLAIN => 1,
        zmq::Mechanism::ZMQ_CURVE => 2,
        zmq::Mechanism::ZMQ_GSSAPI => 3,
    };
    assert_eq!(ours(&s), theirs(&z));
    s.set_plain_username("u").unwrap();
    z.set_plain_username(Some("u")).unwrap();
    assert_eq!((ours(&s), theirs(&z)), (1, 1));
    s.set_option(num::PLAIN_USERNAME, b"").unwrap();
    z.set_plain_username(None).unwrap(); // libzmq: a NULL value (ours: empty)
    assert_eq!(
        (ours(&s), theirs(&z)),
        (0, 0),
        "an empty name goes back to NULL"
    );
    // The vendored libzmq is built without CURVE (its setsockopt refuses the options), so
    // CURVE is checked against libzmq's options.cpp: CURVE_SERVER 1 → CURVE, 0 → NULL.
    s.set_option(num::CURVE_SERVER, &1i32.to_ne_bytes())
        .unwrap();
    assert_eq!(ours(&s), 2);
    s.set_option(num::CURVE_SERVER, &0i32.to_ne_bytes())
        .unwrap();
    assert_eq!(ours(&s), 0);
}

#[test]
fn pgm_and_epgm_are_not_built() {
    let ctx = Context::new();
    let s = ctx.socket(SocketType::Pub).unwrap();
    for ep in [
        "pgm://eth0;239.192.1.1:5555",
        "epgm://eth0;239.192.1.1:5555",
    ] {
        assert_eq!(s.bind(ep), Err(Error::EPROTONOSUPPORT));
        assert_eq!(s.connect(ep), Err(Error::EPROTONOSUPPORT));
    }
    assert!(!zeroring::has("pgm"));
    assert!(!zeroring::has("norm"));
    // The multicast options are stored all the same, as libzmq stores them.
    s.set_option(num::RATE, &200i32.to_ne_bytes()).unwrap();
    s.set_option(num::MULTICAST_LOOP, &0i32.to_ne_bytes())
        .unwrap();
    assert_eq!(s.get_option(num::RATE).unwrap(), 200i32.to_ne_bytes());
    assert_eq!(
        s.get_option(num::MULTICAST_LOOP).unwrap(),
        0i32.to_ne_bytes()
    );
}

fn router(ctx: &Context) -> zeroring::Socket {
    let r = ctx.socket(SocketType::Router).unwrap();
    r.set_rcvtimeo(TIMEOUT_MS).unwrap();
    r.set_linger(0).unwrap();
    r
}

fn libzmq_dealer(zctx: &zmq::Context, id: &[u8]) -> zmq::Socket {
    let d = zctx.socket(zmq::DEALER).unwrap();
    d.set_identity(id).unwrap();
    d.set_linger(0).unwrap();
    d.set_rcvtimeo(TIMEOUT_MS).unwrap();
    d
}

#[test]
fn router_notify_announces_a_libzmq_peer_arriving_and_leaving() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let r = router(&ctx);
    r.set_option(num::ROUTER_NOTIFY, &3i32.to_ne_bytes())
        .unwrap();
    assert_eq!(
        r.get_option(num::ROUTER_NOTIFY).unwrap(),
        3i32.to_ne_bytes()
    );
    r.bind("tcp://127.0.0.1:*").unwrap();
    let ep = r.get_last_endpoint().unwrap().unwrap();
    let d = libzmq_dealer(&zctx, b"peer");
    d.connect(&ep).unwrap();
    assert_eq!(
        r.recv_multipart(0).unwrap(),
        vec![b"peer".to_vec(), vec![]],
        "arrival"
    );
    d.send("x", 0).unwrap();
    assert_eq!(
        r.recv_multipart(0).unwrap(),
        vec![b"peer".to_vec(), b"x".to_vec()]
    );
    drop(d);
    assert_eq!(
        r.recv_multipart(0).unwrap(),
        vec![b"peer".to_vec(), vec![]],
        "departure"
    );
}

#[test]
fn router_notify_off_or_disconnect_only() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let r = router(&ctx);
    r.set_option(num::ROUTER_NOTIFY, &2i32.to_ne_bytes())
        .unwrap();
    r.bind("tcp://127.0.0.1:*").unwrap();
    let ep = r.get_last_endpoint().unwrap().unwrap();
    let d = libzmq_dealer(&zctx, b"p1");
    d.connect(&ep).unwrap();
    d.send("first", 0).unwrap();
    // No arrival notice: the first message is the peer's.
    assert_eq!(
        r.recv_multipart(0).unwrap(),
        vec![b"p1".to_vec(), b"first".to_vec()]
    );
    drop(d);
    assert_eq!(r.recv_multipart(0).unwrap(), vec![b"p1".to_vec(), vec![]]);
}

#[test]
fn disconnect_msg_arrives_from_a_lost_libzmq_peer() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let r = router(&ctx);
    r.set_option(num::DISCONNECT_MSG, b"bye").unwrap();
    r.bind("tcp://127.0.0.1:*").unwrap();
    let ep = r.get_last_endpoint().unwrap().unwrap();
    let d = libzmq_dealer(&zctx, b"gone");
    d.connect(&ep).unwrap();
    d.send("hi", 0).unwrap();
    assert_eq!(
        r.recv_multipart(0).unwrap(),
        vec![b"gone".to_vec(), b"hi".to_vec()]
    );
    drop(d);
    assert_eq!(
        r.recv_multipart(0).unwrap(),
        vec![b"gone".to_vec(), b"bye".to_vec()]
    );
}

#[test]
fn hello_msg_reaches_a_libzmq_router_first() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let z = zctx.socket(zmq::ROUTER).unwrap();
    z.set_rcvtimeo(TIMEOUT_MS).unwrap();
    z.set_linger(0).unwrap();
    z.bind("tcp://127.0.0.1:*").unwrap();
    let ep = z.get_last_endpoint().unwrap().unwrap();
    let d = ctx.socket(SocketType::Dealer).unwrap();
    d.set_linger(0).unwrap();
    d.set_routing_id(b"us").unwrap();
    d.set_option(num::HELLO_MSG, b"hello").unwrap();
    d.connect(&ep).unwrap();
    d.send("then this", 0).unwrap();
    assert_eq!(
        z.recv_multipart(0).unwrap(),
        vec![b"us".to_vec(), b"hello".to_vec()]
    );
    assert_eq!(
        z.recv_multipart(0).unwrap(),
        vec![b"us".to_vec(), b"then this".to_vec()]
    );
}

#[test]
fn connect_routing_id_names_a_tcp_peer_for_a_router() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let z = libzmq_dealer(&zctx, b"calls-itself-this");
    z.bind("tcp://127.0.0.1:*").unwrap();
    let ep = z.get_last_endpoint().unwrap().unwrap();
    let r = router(&ctx);
    r.set_option(num::ROUTER_NOTIFY, &1i32.to_ne_bytes())
        .unwrap();
    r.set_connect_routing_id(b"srv").unwrap();
    r.connect(&ep).unwrap();
    assert_eq!(r.recv_multipart(0).unwrap(), vec![b"srv".to_vec(), vec![]]);
    r.send("srv", SNDMORE).unwrap();
    r.send("hello", 0).unwrap();
    assert_eq!(z.recv_bytes(0).unwrap(), b"hello");
    // Consumed by that connect: a second peer gets its own id.
    let z2 = libzmq_dealer(&zctx, b"second");
    z2.bind("tcp://127.0.0.1:*").unwrap();
    r.connect(&z2.get_last_endpoint().unwrap().unwrap())
        .unwrap();
    assert_eq!(
        r.recv_multipart(0).unwrap(),
        vec![b"second".to_vec(), vec![]]
    );
}

#[test]
fn hello_msg_goes_out_again_on_every_reconnection() {
    let ctx = Context::new();
    let mut zctx = zmq::Context::new();
    let z = zctx.socket(zmq::ROUTER).unwrap();
    z.set_rcvtimeo(TIMEOUT_MS).unwrap();
    z.set_linger(0).unwrap();
    z.bind("tcp://127.0.0.1:*").unwrap();
    let ep = z.get_last_endpoint().unwrap().unwrap();
    let d = ctx.socket(SocketType::Dealer).unwrap();
    d.set_linger(0).unwrap();
    d.set_reconnect_ivl(20).unwrap();
    d.set_routing_id(b"us").unwrap();
    d.set_option(num::HELLO_MSG, b"hello").unwrap();
    d.connect(&ep).unwrap();
    assert_eq!(
        z.recv_multipart(0).unwrap(),
        vec![b"us".to_vec(), b"hello".to_vec()]
    );
    // A new libzmq ROUTER on the same port: terminating the first one's context closes its
    // listener for sure (libzmq closes sockets asynchronously).
    drop(z);
    zctx.destroy().unwrap();
    let zctx = zmq::Context::new();
    let z = zctx.socket(zmq::ROUTER).unwrap();
    z.set_rcvtimeo(TIMEOUT_MS).unwrap();
    z.set_linger(0).unwrap();
    z.bind(&ep).unwrap();
    assert_eq!(
        z.recv_multipart(0).unwrap(),
        vec![b"us".to_vec(), b"hello".to_vec()],
        "the reconnection starts with the hello too"
    );
}

#[test]
fn hello_msg_from_a_router_and_over_inproc() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let r = router(&ctx);
    r.set_option(num::HELLO_MSG, b"welcome").unwrap();
    r.bind("tcp://127.0.0.1:*").unwrap();
    let d = libzmq_dealer(&zctx, b"peer");
    d.connect(&r.get_last_endpoint().unwrap().unwrap()).unwrap();
    assert_eq!(d.recv_bytes(0).unwrap(), b"welcome");

    r.bind("inproc://hello-inproc").unwrap();
    let ours = ctx.socket(SocketType::Dealer).unwrap();
    ours.set_rcvtimeo(TIMEOUT_MS).unwrap();
    ours.set_option(num::HELLO_MSG, b"hi router").unwrap();
    ours.set_routing_id(b"inproc-peer").unwrap();
    ours.connect("inproc://hello-inproc").unwrap();
    // The binder attaches an inproc peer at its next call (then its hello goes out).
    assert_eq!(
        r.recv_multipart(0).unwrap(),
        vec![b"inproc-peer".to_vec(), b"hi router".to_vec()]
    );
    assert_eq!(ours.recv_bytes(0).unwrap(), b"welcome");
}

#[test]
fn use_fd_binds_on_a_listener_made_elsewhere() {
    use std::os::fd::AsRawFd;
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    // What systemd socket activation hands a program: a bound, listening socket.
    let made_elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = made_elsewhere.local_addr().unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvtimeo(TIMEOUT_MS).unwrap();
    pull.set_option(num::USE_FD, &made_elsewhere.as_raw_fd().to_ne_bytes())
        .unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    assert_eq!(
        pull.get_last_endpoint().unwrap().unwrap(),
        format!("tcp://{addr}"),
        "the endpoint is the descriptor's"
    );
    let push = zctx.socket(zmq::PUSH).unwrap();
    push.set_linger(0).unwrap();
    push.connect(&format!("tcp://{addr}")).unwrap();
    push.send("via the given fd", 0).unwrap();
    assert_eq!(pull.recv_bytes(0).unwrap(), b"via the given fd");
    // A descriptor that is not a socket of the endpoint's kind: refused.
    let s2 = ctx.socket(SocketType::Pull).unwrap();
    s2.set_option(num::USE_FD, &made_elsewhere.as_raw_fd().to_ne_bytes())
        .unwrap();
    assert!(s2.bind("ipc:///tmp/zeroring-use-fd-mismatch.sock").is_err());
}

/// ROUTER_RAW as libzmq 4.3 (4.3.4 and 4.3.5 alike, pyzmq's wheel seen): raw tcp with a
/// STREAM's notices — an empty message when a peer connects and when it leaves (libzmq 4.2
/// and older sent none).
#[test]
fn router_raw_speaks_raw_tcp_like_a_stream_with_its_notices() {
    use std::io::{Read, Write};
    let ctx = Context::new();
    let r = router(&ctx);
    r.set_option(num::ROUTER_RAW, &1i32.to_ne_bytes()).unwrap();
    r.bind("tcp://127.0.0.1:*").unwrap();
    let addr = r.get_last_endpoint().unwrap().unwrap();
    let mut client = std::net::TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    client.write_all(b"GET").unwrap();
    let hello = r.recv_multipart(0).unwrap();
    assert_eq!(hello[1], b"", "the connect notice first");
    let m = r.recv_multipart(0).unwrap();
    assert_eq!((&m[0], &m[1][..]), (&hello[0], &b"GET"[..]));
    r.send(&m[0][..], SNDMORE).unwrap();
    r.send("OK", 0).unwrap();
    let mut got = [0u8; 2];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"OK", "no ZMTP framing on the wire");
    r.send(&m[0][..], SNDMORE).unwrap();
    r.send("", 0).unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        client.read_to_end(&mut rest).unwrap(),
        0,
        "an empty body closes it"
    );
    // A peer that leaves is announced; option changes only while no peer is attached.
    let mut second = std::net::TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
    second.write_all(b"x").unwrap();
    let hello = r.recv_multipart(0).unwrap();
    assert_eq!(hello[1], b"");
    assert_eq!(r.recv_multipart(0).unwrap()[1], b"x");
    assert_eq!(
        r.set_option(num::ROUTER_RAW, &0i32.to_ne_bytes()),
        Err(Error::EINVAL)
    );
    drop(second);
    let bye = r.recv_multipart(0).unwrap();
    assert_eq!(
        (&bye[0], &bye[1][..]),
        (&hello[0], &b""[..]),
        "the disconnect notice"
    );
}

/// Whether a raw connection to `addr` is kept (the socket's ZMTP greeting arrives) or closed
/// at once (EOF before any byte).
fn kept(mut conn: impl std::io::Read) -> bool {
    let mut first = [0u8; 1];
    match conn.read(&mut first) {
        Ok(1) => {
            assert_eq!(first[0], 0xff, "a ZMTP greeting");
            true
        }
        Ok(_) => false,
        Err(e) => panic!("neither greeting nor EOF: {e}"),
    }
}

#[test]
fn tcp_accept_filter_keeps_only_the_networks_given() {
    let ctx = Context::new();
    let timeout = Some(std::time::Duration::from_secs(10));
    for (filters, admitted) in [
        (vec![], true),
        (vec!["10.0.0.0/8"], false),
        (vec!["10.0.0.0/8", "127.0.0.0/8"], true),
        (vec!["127.0.0.2"], false),
    ] {
        let pull = ctx.socket(SocketType::Pull).unwrap();
        pull.set_linger(0).unwrap();
        for f in &filters {
            pull.set_option(num::TCP_ACCEPT_FILTER, f.as_bytes())
                .unwrap();
        }
        pull.bind("tcp://127.0.0.1:*").unwrap();
        let ep = pull.get_last_endpoint().unwrap().unwrap();
        let c = std::net::TcpStream::connect(ep.trim_start_matches("tcp://")).unwrap();
        c.set_read_timeout(timeout).unwrap();
        assert_eq!(kept(c), admitted, "filters {filters:?}");
    }
    let pull = ctx.socket(SocketType::Pull).unwrap();
    assert_eq!(
        pull.set_option(num::TCP_ACCEPT_FILTER, b"10.0.0.0/40"),
        Err(Error::EINVAL)
    );
    // An empty value clears the list.
    pull.set_option(num::TCP_ACCEPT_FILTER, b"10.0.0.0/8")
        .unwrap();
    pull.set_option(num::TCP_ACCEPT_FILTER, b"").unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ep = pull.get_last_endpoint().unwrap().unwrap();
    let c = std::net::TcpStream::connect(ep.trim_start_matches("tcp://")).unwrap();
    c.set_read_timeout(timeout).unwrap();
    assert!(kept(c));
}

#[test]
fn ipc_filters_check_the_peers_credentials() {
    let ctx = Context::new();
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid() as i32, libc::getgid() as i32) };
    let pid = std::process::id() as i32;
    for (name, option, id, admitted) in [
        ("uid", num::IPC_FILTER_UID, uid, true),
        ("gid", num::IPC_FILTER_GID, gid, true),
        ("pid", num::IPC_FILTER_PID, pid, true),
        ("other-pid", num::IPC_FILTER_PID, pid.wrapping_add(1), false),
    ] {
        let path = std::env::temp_dir().join(format!(
            "zeroring-ipc-filter-{}-{name}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let pull = ctx.socket(SocketType::Pull).unwrap();
        pull.set_linger(0).unwrap();
        pull.set_option(option, &id.to_ne_bytes()).unwrap();
        pull.bind(&format!("ipc://{}", path.display())).unwrap();
        let c = std::os::unix::net::UnixStream::connect(&path).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        assert_eq!(kept(c), admitted, "{name}");
        drop(pull);
        let _ = std::fs::remove_file(&path);
    }
}

#[test]
fn hiccup_msg_tells_a_dealer_its_connection_was_replaced() {
    let ctx = Context::new();
    let mut zctx = zmq::Context::new();
    let z = zctx.socket(zmq::ROUTER).unwrap();
    z.set_rcvtimeo(TIMEOUT_MS).unwrap();
    z.set_linger(0).unwrap();
    z.bind("tcp://127.0.0.1:*").unwrap();
    let ep = z.get_last_endpoint().unwrap().unwrap();
    let d = ctx.socket(SocketType::Dealer).unwrap();
    d.set_linger(0).unwrap();
    d.set_rcvtimeo(TIMEOUT_MS).unwrap();
    d.set_reconnect_ivl(20).unwrap();
    d.set_routing_id(b"d").unwrap();
    d.set_option(num::HICCUP_MSG, b"hiccup").unwrap();
    d.connect(&ep).unwrap();
    d.send("one", 0).unwrap();
    let m = z.recv_multipart(0).unwrap();
    z.send_multipart([m[0].clone(), b"reply".to_vec()], 0)
        .unwrap();
    assert_eq!(
        d.recv_bytes(0).unwrap(),
        b"reply",
        "the first connection says nothing"
    );
    // A new libzmq ROUTER on the same port (the first context's term closes its listener).
    drop(z);
    zctx.destroy().unwrap();
    let zctx = zmq::Context::new();
    let z = zctx.socket(zmq::ROUTER).unwrap();
    z.set_rcvtimeo(TIMEOUT_MS).unwrap();
    z.set_linger(0).unwrap();
    z.bind(&ep).unwrap();
    assert_eq!(
        d.recv_bytes(0).unwrap(),
        b"hiccup",
        "the reconnection is announced"
    );
    d.send("two", 0).unwrap();
    assert_eq!(z.recv_multipart(0).unwrap()[1], b"two");
}

// ----- which values and socket types setsockopt takes, side by side with libzmq ------------

/// Every socket type, as zeroring's and as libzmq's.
const TYPES: [(SocketType, zmq::SocketType); 12] = [
    (SocketType::Pair, zmq::PAIR),
    (SocketType::Pub, zmq::PUB),
    (SocketType::Sub, zmq::SUB),
    (SocketType::Req, zmq::REQ),
    (SocketType::Rep, zmq::REP),
    (SocketType::Dealer, zmq::DEALER),
    (SocketType::Router, zmq::ROUTER),
    (SocketType::Pull, zmq::PULL),
    (SocketType::Push, zmq::PUSH),
    (SocketType::XPub, zmq::XPUB),
    (SocketType::XSub, zmq::XSUB),
    (SocketType::Stream, zmq::STREAM),
];

/// libzmq's answer to a raw `zmq_setsockopt`: taken or not.
fn libzmq_takes(s: &mut zmq::Socket, option: i32, value: &[u8]) -> bool {
    // SAFETY: a live libzmq socket; `value` is readable for its length.
    unsafe {
        zmq_sys::zmq_setsockopt(s.as_mut_ptr(), option, value.as_ptr().cast(), value.len()) == 0
    }
}

/// zmq_setsockopt takes and refuses what libzmq's does, for every socket type (CURVE_SERVER
/// left out: the `zmq` crate's libzmq is built without CURVE, which refuses it): each integer
/// option's range (libzmq's options.cpp: RATE > 0, BACKLOG >= 0, TCP_KEEPALIVE -1..1, …), the
/// flags each socket type takes (XSUB takes no SUBSCRIBE, REP takes ROUTER's flags, every type
/// takes INVERT_MATCHING), and the string options' length limits. The draft options zeroring
/// implements (HELLO_MSG, ROUTER_NOTIFY, …) are left out: a stable libzmq refuses them. The C
/// ABI's own leniencies (flags above 1, NULL against empty strings) are checked in
/// `capi/tests/abi.rs`.
#[test]
fn setsockopt_takes_what_libzmq_takes() {
    // Integer options, with values across each range's edges.
    const INTS: &[i32] = &[-2, -1, 0, 1, 2, 100];
    let int_options = [
        num::RATE,
        num::RECOVERY_IVL,
        num::SNDBUF,
        num::RCVBUF,
        num::LINGER,
        num::RECONNECT_IVL,
        num::BACKLOG,
        num::RECONNECT_IVL_MAX,
        num::SNDHWM,
        num::RCVHWM,
        num::MULTICAST_HOPS,
        num::RCVTIMEO,
        num::SNDTIMEO,
        num::IPV4ONLY,
        num::TCP_KEEPALIVE,
        num::TCP_KEEPALIVE_CNT,
        num::TCP_KEEPALIVE_IDLE,
        num::TCP_KEEPALIVE_INTVL,
        num::IMMEDIATE,
        num::IPV6,
        num::PLAIN_SERVER,
        num::CONFLATE,
        num::TOS,
        num::HANDSHAKE_IVL,
        num::HEARTBEAT_IVL,
        num::HEARTBEAT_TIMEOUT,
        num::CONNECT_TIMEOUT,
        num::TCP_MAXRT,
        num::MULTICAST_MAXTPDU,
        num::STREAM_NOTIFY,
    ];
    // The socket types' flags: libzmq takes any value >= 0 (the C ABI reads 2 as 1); 0 and 1
    // show which types take them.
    const FLAG_VALUES: &[i32] = &[-1, 0, 1];
    let flags = [
        num::ROUTER_RAW,
        num::ROUTER_MANDATORY,
        num::ROUTER_HANDOVER,
        num::PROBE_ROUTER,
        num::REQ_CORRELATE,
        num::REQ_RELAXED,
        num::XPUB_VERBOSE,
        num::XPUB_VERBOSER,
        num::XPUB_NODROP,
        num::XPUB_MANUAL,
    ];
    // String options, by length (an empty one is the C ABI's to judge: NULL or not).
    const LENGTHS: &[usize] = &[1, 16, 17, 255, 256];
    let strings = [
        num::ZAP_DOMAIN,
        num::PLAIN_USERNAME,
        num::PLAIN_PASSWORD,
        num::SOCKS_PROXY,
        num::SOCKS_USERNAME,
        num::SOCKS_PASSWORD,
        num::BINDTODEVICE,
        num::ROUTING_ID,
        num::SUBSCRIBE,
        num::UNSUBSCRIBE,
        num::XPUB_WELCOME_MSG,
    ];
    let ctx = Context::new();
    let lctx = zmq::Context::new();
    let mut differ = Vec::new();
    for (zt, lt) in TYPES {
        let int_cases = int_options
            .iter()
            .flat_map(|&o| INTS.iter().map(move |v| (o, v.to_ne_bytes().to_vec())));
        let flag_cases = flags.iter().flat_map(|&o| {
            FLAG_VALUES
                .iter()
                .map(move |v| (o, v.to_ne_bytes().to_vec()))
        });
        // INVERT_MATCHING: libzmq takes any value (the C ABI reads non-zero as 1).
        let invert = [0i32, 1].map(|v| (num::INVERT_MATCHING, v.to_ne_bytes().to_vec()));
        let string_cases = strings
            .iter()
            .flat_map(|&o| LENGTHS.iter().map(move |&n| (o, vec![b'x'; n])));
        let wide = [
            (num::MAXMSGSIZE, -2i64),
            (num::MAXMSGSIZE, -1),
            (num::MAXMSGSIZE, 0),
            (num::MAXMSGSIZE, 1 << 40),
        ]
        .map(|(o, v)| (o, v.to_ne_bytes().to_vec()));
        for (option, value) in int_cases
            .chain(flag_cases)
            .chain(invert)
            .chain(string_cases)
            .chain(wide)
        {
            // A fresh pair each time: some options change others (PLAIN_* the mechanism).
            let ours = ctx.socket(zt).unwrap();
            ours.set_linger(0).unwrap();
            let mut theirs = lctx.socket(lt).unwrap();
            theirs.set_linger(0).unwrap();
            let z = ours.set_option(option, &value).is_ok();
            let l = libzmq_takes(&mut theirs, option, &value);
            if z != l {
                let name = spec(option).map_or("?", |s| s.name);
                differ.push(format!(
                    "{zt:?} {name} {value:?}: zeroring {}, libzmq {}",
                    if z { "takes it" } else { "EINVAL" },
                    if l { "takes it" } else { "refuses" }
                ));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "{} differences:\n{}",
        differ.len(),
        differ.join("\n")
    );
}
