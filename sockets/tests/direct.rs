//! The send fast path (issue 14): a whole message written by the socket's thread straight to
//! an idle tcp or ipc connection, instead of through the pipe and the I/O thread. What it must
//! never do: overtake a message queued before it, lose or cut one when the connection takes only
//! part, collide with the I/O thread's own writes (heartbeats), or outlive its connection.
//!
//! Each test runs on the backend the environment chooses; CI runs the socket tests again with
//! `ZERORING_BACKEND=epoll`. The tests wait only with bounded receives.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use zeroring::options::num;
use zeroring::{Context, Msg, Socket, SocketType, DONTWAIT, SNDMORE};

/// A receive or send that waits longer than this is a failure.
const STALL_MS: i32 = 20_000;

fn sock(ctx: &Context, t: SocketType) -> Socket {
    let s = ctx.socket(t).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(STALL_MS).unwrap();
    s.set_sndtimeo(STALL_MS).unwrap();
    s
}

fn bind_any(s: &Socket, transport: &str) -> String {
    match transport {
        "tcp" => s.bind("tcp://127.0.0.1:*").unwrap(),
        _ => {
            let dir = std::env::temp_dir().join(format!(
                "zr-direct-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            s.bind(&format!("ipc://{}/s", dir.display())).unwrap();
        }
    }
    s.get_last_endpoint().unwrap().unwrap()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn recv_bytes(s: &Socket) -> Vec<u8> {
    let mut m = Msg::new();
    s.recv(&mut m, 0).expect("a message within the stall limit");
    m.data().to_vec()
}

/// Request `i` and its reply, each checked.
fn round_trip(req: &Socket, rep: &Socket, i: u32) {
    req.send(format!("q{i}").as_bytes(), 0).unwrap();
    assert_eq!(recv_bytes(rep), format!("q{i}").as_bytes());
    rep.send(format!("a{i}").as_bytes(), 0).unwrap();
    assert_eq!(recv_bytes(req), format!("a{i}").as_bytes());
}

/// REQ/REP round trips: the connection is idle at every send, so the fast path carries the
/// requests and replies (counted in the sockets' stats), and every exchange is intact.
#[test]
fn request_reply_goes_direct_and_stays_correct() {
    for transport in ["tcp", "ipc"] {
        let ctx = Context::new();
        let rep = sock(&ctx, SocketType::Rep);
        let ep = bind_any(&rep, transport);
        let req = sock(&ctx, SocketType::Req);
        req.connect(&ep).unwrap();
        for i in 0..2_000u32 {
            round_trip(&req, &rep, i);
        }
        let (q, a) = (req.stats(), rep.stats());
        assert_eq!((q.sent, a.sent), (2_000, 2_000));
        assert!(
            q.sent_direct > 0 && a.sent_direct > 0,
            "{transport}: the fast path was never taken (REQ {}, REP {} of 2,000)",
            q.sent_direct,
            a.sent_direct
        );
    }
}

/// Multipart messages (always through the pipe) between single-part ones (direct whenever the
/// connection is idle and the sender has looked for input since its last direct write), with
/// the receiver sometimes caught up and sometimes behind: every message arrives whole and in
/// the order sent.
#[test]
fn direct_writes_never_overtake_queued_messages() {
    for transport in ["tcp", "ipc"] {
        let ctx = Context::new();
        let pull = sock(&ctx, SocketType::Dealer);
        let ep = bind_any(&pull, transport);
        let dealer = sock(&ctx, SocketType::Dealer);
        dealer.connect(&ep).unwrap();
        let (ack_tx, ack_rx) = mpsc::channel::<u32>();
        const N: u32 = 6_000;
        let receiver = std::thread::spawn(move || {
            let mut m = Msg::new();
            for i in 0..N {
                pull.recv(&mut m, 0).unwrap();
                if i % 3 == 0 {
                    assert!(m.more(), "{i}: first part of a two-part message");
                    assert_eq!(m.data(), format!("m{i}a").as_bytes());
                    pull.recv(&mut m, 0).unwrap();
                    assert!(!m.more());
                    assert_eq!(m.data(), format!("m{i}b").as_bytes());
                } else {
                    assert!(!m.more(), "{i}: a single part");
                    assert_eq!(m.data(), format!("s{i}").as_bytes(), "{i}: in order");
                }
                if i % 20 == 19 {
                    ack_tx.send(i).unwrap();
                }
            }
        });
        let mut m = Msg::new();
        for i in 0..N {
            if i % 3 == 0 {
                dealer.send(format!("m{i}a").as_bytes(), SNDMORE).unwrap();
                dealer.send(format!("m{i}b").as_bytes(), 0).unwrap();
            } else {
                // Looking for input (there is none) lets the next message go direct.
                assert!(dealer.recv(&mut m, DONTWAIT).is_err());
                dealer.send(format!("s{i}").as_bytes(), 0).unwrap();
            }
            // Now and then let the receiver catch up, so that the connection goes idle and
            // the next single part may go direct right behind a piped one.
            if i % 20 == 19 {
                let got = ack_rx.recv_timeout(Duration::from_secs(20)).unwrap();
                assert_eq!(got, i);
            }
        }
        receiver.join().unwrap();
        // Whether a given write goes direct depends on the I/O thread's timing; over 300
        // pauses some do.
        assert!(
            dealer.stats().sent_direct > 0,
            "{transport}: no single part went direct"
        );
    }
}

/// A connection with small buffers and a receiver that does not read yet: direct writes of
/// messages near the fast path's limit are taken in part, the I/O thread writes the rest first,
/// and once the receiver reads, every message is there, whole and in order.
#[test]
fn a_partly_taken_write_is_finished_by_the_io_thread() {
    let ctx = Context::new();
    let rx = sock(&ctx, SocketType::Dealer);
    rx.set_option(num::RCVBUF, &4096i32.to_ne_bytes()).unwrap();
    // The receiving I/O thread stops reading once one message waits: the kernel's buffers
    // then fill, and the sender's writes are taken in part.
    rx.set_option(num::RCVHWM, &1i32.to_ne_bytes()).unwrap();
    let ep = bind_any(&rx, "tcp");
    let tx = sock(&ctx, SocketType::Dealer);
    tx.set_option(num::SNDBUF, &4096i32.to_ne_bytes()).unwrap();
    tx.connect(&ep).unwrap();
    // Wait for the connection: one small message through.
    tx.send(b"hello", 0).unwrap();
    assert_eq!(recv_bytes(&rx), b"hello");
    const N: usize = 200;
    let body = |i: usize| vec![(i % 251) as u8; 7_000];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut m = Msg::new();
    for round in 0.. {
        assert!(Instant::now() < deadline, "no partial direct write in 60 s");
        // With the receiver idle, each round sends until the buffers are full; the receiver
        // then drains them. Looking for input before each send lets it go direct.
        for i in 0..N {
            assert!(tx.recv(&mut m, DONTWAIT).is_err());
            tx.send(&body(i)[..], 0).unwrap();
        }
        for i in 0..N {
            let got = recv_bytes(&rx);
            assert_eq!(got.len(), 7_000, "round {round}, message {i}: whole");
            assert!(
                got == body(i),
                "round {round}, message {i}: intact and in order"
            );
        }
        if tx.stats().sent_direct_partial > 0 {
            break;
        }
    }
    let st = tx.stats();
    assert!(st.sent_direct >= st.sent_direct_partial);
}

/// Heartbeats every millisecond (the I/O thread writes PINGs and PONGs on its own) while the
/// application writes directly: the connection stays up and every exchange is intact.
#[test]
fn heartbeats_and_direct_writes_share_the_connection() {
    let ctx = Context::new();
    let rep = sock(&ctx, SocketType::Rep);
    let req = sock(&ctx, SocketType::Req);
    for s in [&rep, &req] {
        s.set_option(num::HEARTBEAT_IVL, &1i32.to_ne_bytes())
            .unwrap();
        s.set_option(num::HEARTBEAT_TIMEOUT, &5_000i32.to_ne_bytes())
            .unwrap();
    }
    let ep = bind_any(&rep, "tcp");
    req.connect(&ep).unwrap();
    let start = Instant::now();
    let mut i = 0u32;
    // At least 200 ms of heartbeats, at least 2,000 round trips.
    while i < 2_000 || start.elapsed() < Duration::from_millis(200) {
        round_trip(&req, &rep, i);
        i += 1;
    }
    assert!(req.stats().sent_direct > 0);
    assert_eq!(
        req.stats().peers_detached,
        0,
        "the connection never dropped"
    );
}

/// The peer goes away and comes back on the same endpoint: the connecting DEALER's kept pipe
/// reconnects, the new connection opens the fast path again, and nothing sent after the
/// reconnect is lost or goes to the old connection. (An echo, so that the client receives
/// between sends: a sender that never receives writes directly only its first message.)
#[test]
fn the_fast_path_follows_a_reconnect() {
    let ctx = Context::new();
    let server = sock(&ctx, SocketType::Dealer);
    let ep = bind_any(&server, "tcp");
    let client = sock(&ctx, SocketType::Dealer);
    client
        .set_option(num::RECONNECT_IVL, &10i32.to_ne_bytes())
        .unwrap();
    client.connect(&ep).unwrap();
    let echo = |server: &Socket, body: &[u8]| {
        client.send(body, 0).unwrap();
        // Probes sent while the old connection was going away may arrive first.
        let got = loop {
            let got = recv_bytes(server);
            if got != b"probe" {
                break got;
            }
        };
        assert_eq!(got, body);
        server.send(&got[..], 0).unwrap();
        assert_eq!(recv_bytes(&client), body);
    };
    for i in 0..200 {
        echo(&server, format!("first{i}").as_bytes());
    }
    let before = client.stats().sent_direct;
    assert!(before > 0);
    drop(server);
    // The same port again, once the old socket has let it go.
    let deadline = Instant::now() + Duration::from_secs(20);
    let server = loop {
        let p = sock(&ctx, SocketType::Dealer);
        if p.bind(&ep).is_ok() {
            break p;
        }
        assert!(Instant::now() < deadline, "could not bind {ep} again");
        std::thread::yield_now();
    };
    // Until the client has seen the old connection end, what it writes may go into that
    // connection and be lost (as with any ZeroMQ socket whose peer vanishes): probe until one
    // message arrives on the new one.
    server.set_rcvtimeo(100).unwrap();
    let mut m = Msg::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no message reached the new connection"
        );
        client.send(b"probe", 0).unwrap();
        if server.recv(&mut m, 0).is_ok() {
            break;
        }
    }
    server.set_rcvtimeo(STALL_MS).unwrap();
    for i in 0..200 {
        echo(&server, format!("second{i}").as_bytes());
    }
    assert!(
        client.stats().sent_direct > before,
        "the new connection took direct writes too"
    );
}

/// PUSH never writes directly: the fast path is re-armed by receives, which a PUSH never
/// makes, so it would carry one message and cost every send of a stream a check.
#[test]
fn push_keeps_the_pipe() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    let ep = bind_any(&pull, "tcp");
    let push = sock(&ctx, SocketType::Push);
    push.connect(&ep).unwrap();
    for i in 0..100 {
        push.send(format!("{i}").as_bytes(), 0).unwrap();
        assert_eq!(recv_bytes(&pull), format!("{i}").as_bytes());
    }
    assert_eq!(push.stats().sent, 100);
    assert_eq!(push.stats().sent_direct, 0);
}
