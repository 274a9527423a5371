//! What real libzmq 4.3 does under the fault shapes where the simulator's checker was relaxed
//! (docs/simulation.md, "What the checker may not demand"): the guarantees the checker
//! demands must not exceed what ZeroMQ itself gives.
//!
//! 1. A PUSH that times a stalled connection out on heartbeats and reconnects cannot recall
//!    what it already wrote into the old connection; a PULL that has not noticed the stall
//!    reads those bytes when it ends, after what the new connection already delivered: order
//!    holds per connection, not across a reconnect. Reproduced over real TCP with a proxy that
//!    stalls one connection in both directions (the simulator's `hold`).
//! 2. An XPUB with XPUB_VERBOSE hands its application the subscriptions a connection
//!    delivered even when that connection ended before the application read them (followed by
//!    the unsubscription when the pipe goes): a subscription the application sees is no proof
//!    of a live subscriber.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A TCP proxy: every accepted connection is forwarded to `upstream`; connection `n` (counting
/// from 0) stalls in both directions while its hold flag is set, buffering what it reads
/// (as a network that holds segments), and delivers it in order once released.
struct StallingProxy {
    port: u16,
    accepted: Arc<AtomicUsize>,
    holds: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
}

impl StallingProxy {
    fn start(upstream: u16) -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let holds: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let (acc, hs) = (accepted.clone(), holds.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                let hold = Arc::new(AtomicBool::new(false));
                hs.lock().unwrap().push(hold.clone());
                acc.fetch_add(1, Ordering::SeqCst);
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let hold = hold.clone();
                    thread::spawn(move || forward(from, to, hold));
                }
            }
        });
        StallingProxy {
            port,
            accepted,
            holds,
        }
    }

    fn hold(&self, conn: usize, on: bool) {
        self.holds.lock().unwrap()[conn].store(on, Ordering::SeqCst);
    }
}

/// Copies `from` to `to`; while `hold` is set, buffers instead (nothing is lost, only late).
fn forward(mut from: TcpStream, mut to: TcpStream, hold: Arc<AtomicBool>) {
    from.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut eof = false;
    loop {
        if !eof {
            match from.read(&mut buf) {
                Ok(0) => eof = true,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => eof = true,
            }
        } else {
            thread::sleep(Duration::from_millis(5));
        }
        if !hold.load(Ordering::SeqCst) && !pending.is_empty() {
            if to.write_all(&pending).is_err() {
                return;
            }
            pending.clear();
        }
        if eof && pending.is_empty() {
            let _ = to.shutdown(Shutdown::Write);
            return;
        }
    }
}

fn recv_seq(sock: &zmq::Socket) -> u32 {
    let m = sock.recv_bytes(0).expect("a message within RCVTIMEO");
    u32::from_be_bytes(m[..4].try_into().unwrap())
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// libzmq PUSH (heartbeats 100/300 ms) → stalling proxy → libzmq PULL (no heartbeats, so it
/// does not notice the stall): messages the PUSH wrote into the connection it abandoned
/// arrive after messages it sent later on its next connection.
#[test]
fn libzmq_delivers_an_abandoned_connections_bytes_after_the_reconnect() {
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.set_rcvtimeo(5000).unwrap();
    pull.set_linger(0).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ep = pull.get_last_endpoint().unwrap().unwrap();
    let upstream: u16 = ep.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = StallingProxy::start(upstream);

    let push = ctx.socket(zmq::PUSH).unwrap();
    push.set_linger(0).unwrap();
    push.set_heartbeat_ivl(100).unwrap();
    push.set_heartbeat_timeout(300).unwrap();
    push.set_reconnect_ivl(50).unwrap();
    push.connect(&format!("tcp://127.0.0.1:{}", proxy.port))
        .unwrap();
    let send = |seq: u32| push.send(&seq.to_be_bytes()[..], 0).unwrap();

    // Connection 0 works.
    for seq in 0..10 {
        send(seq);
    }
    let first: Vec<u32> = (0..10).map(|_| recv_seq(&pull)).collect();
    assert_eq!(first, (0..10).collect::<Vec<_>>());

    // Stall connection 0 both ways; what PUSH sends now goes into it and stays there.
    proxy.hold(0, true);
    for seq in 10..20 {
        send(seq);
    }
    // PUSH times connection 0 out (no PONG) and reconnects: connection 1.
    wait_for("the reconnect", Duration::from_secs(5), || {
        proxy.accepted.load(Ordering::SeqCst) >= 2
    });
    thread::sleep(Duration::from_millis(300)); // its handshake
    for seq in 20..30 {
        send(seq);
    }
    let mut order: Vec<u32> = (0..10).map(|_| recv_seq(&pull)).collect();
    assert_eq!(
        order,
        (20..30).collect::<Vec<_>>(),
        "the new connection delivers first"
    );

    // The stall ends: PULL reads the abandoned connection's bytes, after 20..29.
    proxy.hold(0, false);
    order.extend((0..10).map(|_| recv_seq(&pull)));
    assert_eq!(
        order,
        (20..30).chain(10..20).collect::<Vec<_>>(),
        "libzmq delivers what was written into the abandoned connection late"
    );
}

/// An XPUB_VERBOSE application reads a subscription after the connection that carried it
/// ended (the monitor already said so), then the unsubscription when the pipe goes.
#[test]
fn libzmq_xpub_reports_a_dead_connections_subscription() {
    let ctx = zmq::Context::new();
    let xpub = ctx.socket(zmq::XPUB).unwrap();
    xpub.set_xpub_verbose(true).unwrap();
    xpub.set_linger(0).unwrap();
    xpub.set_rcvtimeo(5000).unwrap();
    xpub.bind("tcp://127.0.0.1:*").unwrap();
    let ep = xpub.get_last_endpoint().unwrap().unwrap();
    xpub.monitor(
        "inproc://xpub-mon",
        (zmq::SocketEvent::HANDSHAKE_SUCCEEDED as i32) | (zmq::SocketEvent::DISCONNECTED as i32),
    )
    .unwrap();
    let mon = ctx.socket(zmq::PAIR).unwrap();
    mon.set_rcvtimeo(5000).unwrap();
    mon.connect("inproc://xpub-mon").unwrap();
    let next_event = || {
        let frame = mon.recv_bytes(0).expect("a monitor event");
        let _addr = mon.recv_bytes(0).expect("its address");
        u16::from_le_bytes([frame[0], frame[1]])
    };

    {
        let sub = ctx.socket(zmq::SUB).unwrap();
        sub.set_linger(0).unwrap();
        sub.set_subscribe(b"A").unwrap();
        sub.connect(&ep).unwrap();
        assert_eq!(next_event(), zmq::SocketEvent::HANDSHAKE_SUCCEEDED as u16);
        // Let the subscription reach the XPUB's pipe; the application does not read it yet.
        thread::sleep(Duration::from_millis(200));
    } // the SUB closes: its connection ends
    assert_eq!(next_event(), zmq::SocketEvent::DISCONNECTED as u16);

    // Only now does the application read: the dead connection's subscription, then its end.
    assert_eq!(xpub.recv_bytes(0).unwrap(), b"\x01A");
    assert_eq!(xpub.recv_bytes(0).unwrap(), b"\x00A");
}
