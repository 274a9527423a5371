//! ZMQ_RECONNECT_STOP and the monitor events around a connection that ends before (or, for a
//! raw STREAM connection, without) a handshake, as libzmq 4.3.5 reports them (compared with
//! pyzmq's libzmq 4.3.5 by hand; its stream_engine_base_t::error and tcp_connecter_t):
//! - CONN_REFUSED: the refused attempt's descriptor is closed (CLOSED) and nothing follows; the
//!   socket forgets the endpoint (a later disconnect of it is ENOENT);
//! - HANDSHAKE_FAILED: HANDSHAKE_FAILED_NO_DETAIL, DISCONNECTED, and nothing follows (no
//!   CLOSED: no connecter closes anything); the endpoint stays;
//! - a raw (STREAM) connection's end is reported as HANDSHAKE_FAILED_NO_DETAIL then
//!   DISCONNECTED, on both sides (with the failed read's errno: ECONNRESET for a reset), and
//!   HANDSHAKE_FAILED stops a STREAM connecter too.

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use zeroring::options::num;
use zeroring::MonitorEvent::{
    self, Closed, ConnectDelayed, ConnectRetried, Connected, Disconnected, HandshakeFailedNoDetail,
};
use zeroring::{Context, Error, Socket, SocketType, DONTWAIT, POLLOUT};

const TIMEOUT_MS: i32 = 10_000;

/// The reading end of a socket monitor.
struct Monitor(Socket);

impl Monitor {
    fn new(ctx: &Context, s: &Socket, name: &str) -> Monitor {
        let ep = format!("inproc://monitor-reconnect-stop-{name}");
        s.monitor(&ep, MonitorEvent::ALL).unwrap();
        let m = ctx.socket(SocketType::Pair).unwrap();
        m.set_rcvtimeo(TIMEOUT_MS).unwrap();
        m.connect(&ep).unwrap();
        Monitor(m)
    }

    /// The next event and its value; panics if none comes in time.
    fn next(&self) -> (MonitorEvent, u32) {
        let parts = self.0.recv_multipart(0).expect("a monitor event in time");
        let code = u16::from_le_bytes([parts[0][0], parts[0][1]]);
        let value = u32::from_le_bytes(parts[0][2..6].try_into().unwrap());
        (MonitorEvent::from_code(code).unwrap(), value)
    }

    /// Events up to and including `last`.
    fn until(&self, last: MonitorEvent) -> Vec<MonitorEvent> {
        let mut seen = Vec::new();
        loop {
            let (ev, _) = self.next();
            seen.push(ev);
            if ev == last {
                return seen;
            }
        }
    }

    /// Every event within `ms` (to show that nothing more comes: the session gave up).
    fn quiet_for(&self, ms: i32) -> Vec<MonitorEvent> {
        self.0.set_rcvtimeo(ms).unwrap();
        let mut seen = Vec::new();
        while let Ok(parts) = self.0.recv_multipart(0) {
            let code = u16::from_le_bytes([parts[0][0], parts[0][1]]);
            seen.push(MonitorEvent::from_code(code).unwrap());
        }
        self.0.set_rcvtimeo(TIMEOUT_MS).unwrap();
        seen
    }
}

fn free_port() -> u16 {
    // Bound then closed: nobody listens there. (Were another process to take the port
    // meanwhile, the test would fail, never pass wrongly.)
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn connecter(ctx: &Context, kind: SocketType, stop: i32, ivl: i32) -> Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    s.set_reconnect_ivl(ivl).unwrap();
    s.set_option(num::RECONNECT_STOP, &stop.to_ne_bytes())
        .unwrap();
    s
}

#[test]
fn conn_refused_gives_up_and_the_socket_forgets_the_endpoint() {
    let ctx = Context::new();
    for stop in [0i32, 1] {
        let d = connecter(&ctx, SocketType::Dealer, stop, 10);
        let mon = Monitor::new(&ctx, &d, &format!("refused-{stop}"));
        let ep = format!("tcp://127.0.0.1:{}", free_port());
        d.connect(&ep).unwrap();
        // Either way the refused attempt's descriptor is closed first.
        assert_eq!(mon.until(Closed), [ConnectDelayed, Closed]);
        if stop == 0 {
            assert_eq!(mon.next().0, ConnectRetried);
            assert_eq!(d.disconnect(&ep), Ok(()), "still connecting");
        } else {
            // libzmq's connecter has its socket term_endpoint the endpoint before it closes
            // the descriptor; so does this one, so no wait is needed here.
            assert_eq!(d.disconnect(&ep), Err(Error::ENOENT), "forgotten");
            // Thirty reconnect intervals without another attempt: it gave up.
            assert_eq!(mon.quiet_for(300), [], "nothing after giving up");
        }
    }
}

/// A server that accepts and hangs up at once, as one that does not speak ZMTP might.
fn hang_up_server(connections: usize) -> (String, std::thread::JoinHandle<()>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", server.local_addr().unwrap());
    let closer = std::thread::spawn(move || {
        for _ in 0..connections {
            let (c, _) = server.accept().unwrap();
            drop(c);
        }
    });
    (addr, closer)
}

#[test]
fn handshake_failed_gives_up_without_closed_and_keeps_the_endpoint() {
    let ctx = Context::new();
    for stop in [0i32, 2] {
        // The retrying socket comes back once more: its second connection is accepted too.
        let (ep, closer) = hang_up_server(if stop == 0 { 2 } else { 1 });
        let d = connecter(&ctx, SocketType::Dealer, stop, 10);
        let mon = Monitor::new(&ctx, &d, &format!("handshake-{stop}"));
        d.connect(&ep).unwrap();
        assert_eq!(
            mon.until(Disconnected),
            [
                ConnectDelayed,
                Connected,
                HandshakeFailedNoDetail,
                Disconnected
            ]
        );
        if stop == 0 {
            assert_eq!(mon.next().0, ConnectRetried);
            assert_eq!(mon.until(Connected), [ConnectDelayed, Connected]);
        } else {
            // No CLOSED (the engine ended, no connecter closed anything), no retry.
            assert_eq!(mon.quiet_for(300), [], "nothing after giving up");
            // The session's pipe went with it: the socket's first look says so, as libzmq's
            // getsockopt, which always takes in its commands (only a send may skip them for
            // a millisecond).
            assert_eq!(d.get_events().unwrap() & POLLOUT, 0, "no peer to send to");
            assert_eq!(d.send("x", DONTWAIT), Err(Error::EAGAIN));
        }
        closer.join().unwrap();
        assert_eq!(
            d.disconnect(&ep),
            Ok(()),
            "the endpoint stays, as in libzmq"
        );
    }
}

#[test]
fn a_stream_connection_ends_as_a_failed_handshake_on_both_sides() {
    let ctx = Context::new();
    // Accepted: the peer closes.
    let st = ctx.socket(SocketType::Stream).unwrap();
    st.set_linger(0).unwrap();
    let mon = Monitor::new(&ctx, &st, "stream-accepted");
    st.bind("tcp://127.0.0.1:*").unwrap();
    let ep = st.get_last_endpoint().unwrap().unwrap();
    let peer = std::net::TcpStream::connect(ep.trim_start_matches("tcp://")).unwrap();
    let hello = st.recv_multipart(0).unwrap();
    assert!(hello[1].is_empty(), "the connect notification");
    drop(peer);
    let bye = st.recv_multipart(0).unwrap();
    assert!(bye[1].is_empty(), "the disconnect notification");
    let seen = mon.until(Disconnected);
    assert_eq!(
        seen[seen.len() - 2..],
        [HandshakeFailedNoDetail, Disconnected]
    );
    // A peer that resets the connection: the read's errno, as libzmq reports it.
    let peer = std::net::TcpStream::connect(ep.trim_start_matches("tcp://")).unwrap();
    let hello = st.recv_multipart(0).unwrap();
    assert!(hello[1].is_empty());
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    assert!(st.recv_multipart(0).unwrap()[1].is_empty());
    let (ev, errno) = loop {
        let (ev, errno) = mon.next();
        if ev == HandshakeFailedNoDetail {
            break (ev, errno);
        }
    };
    assert_eq!(
        (ev, errno),
        (HandshakeFailedNoDetail, libc::ECONNRESET as u32)
    );
    assert_eq!(mon.next().0, Disconnected);

    // Connecting, without and with RECONNECT_STOP_HANDSHAKE_FAILED.
    for stop in [0i32, 2] {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let ep = format!("tcp://{}", server.local_addr().unwrap());
        let s = connecter(&ctx, SocketType::Stream, stop, 10);
        let mon = Monitor::new(&ctx, &s, &format!("stream-connecting-{stop}"));
        s.connect(&ep).unwrap();
        let (c, _) = server.accept().unwrap();
        assert_eq!(mon.until(Connected), [ConnectDelayed, Connected]);
        drop(c);
        let (ev, errno) = mon.next();
        assert_eq!((ev, errno), (HandshakeFailedNoDetail, libc::EPIPE as u32));
        assert_eq!(mon.next().0, Disconnected);
        if stop == 0 {
            assert_eq!(mon.next().0, ConnectRetried);
            let (mut again, _) = server.accept().unwrap();
            assert_eq!(mon.until(Connected), [ConnectDelayed, Connected]);
            // It is a live raw connection again: what the socket sends arrives as it is.
            // Notices: the first connection's connect and disconnect, then the new one's.
            let mut notice = Vec::new();
            for _ in 0..3 {
                notice = s.recv_multipart(0).unwrap();
                assert!(notice[1].is_empty());
            }
            s.send_multipart([&notice[0][..], b"hi"], 0).unwrap();
            let mut got = [0u8; 2];
            again
                .set_read_timeout(Some(Duration::from_millis(TIMEOUT_MS as u64)))
                .unwrap();
            again.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"hi");
        } else {
            assert_eq!(mon.quiet_for(300), [], "no retry");
        }
    }
}

/// libzmq 4.3.5's ipc connecter does not look at CONN_REFUSED: a refused connect to a stale
/// socket file is retried whatever RECONNECT_STOP says, and the endpoint stays.
#[test]
fn conn_refused_does_not_stop_an_ipc_connecter() {
    let ctx = Context::new();
    let dir = std::env::temp_dir().join(format!("zeroring-reconnect-stop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stale.sock");
    let _ = std::fs::remove_file(&path);
    // A socket file nobody listens on: connecting to it is refused.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let ep = format!("ipc://{}", path.display());
    let d = connecter(&ctx, SocketType::Push, 1, 10);
    let mon = Monitor::new(&ctx, &d, "ipc-refused");
    d.connect(&ep).unwrap();
    assert_eq!(mon.until(ConnectRetried), [Closed, ConnectRetried]);
    assert_eq!(d.disconnect(&ep), Ok(()), "the endpoint stays");
    let _ = std::fs::remove_dir_all(&dir);
}
