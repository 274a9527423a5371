//! The sans-IO stream core driven by hand: two cores joined by an in-memory "wire" that the
//! test moves bytes across, with time passed in. No sockets, no threads, no clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zeroring_engine::pipe::{pipe, PipeConfig, PipeReader, PipeWriter};
use zeroring_engine::Msg;
use zeroring_transports::driver::{PipeEnds, SocketLink, Status, StreamCore};
use zeroring_transports::monitor::MonitorEvent;
use zeroring_transports::zmtp::{ConnectionConfig, HeartbeatConfig, PeerInfo, ZmtpError};
use zeroring_transports::SocketType;

/// The socket's ends of the pipes a link handed out, and the monitor events it saw.
#[derive(Default)]
struct TestLink {
    socket_ends: Mutex<Vec<(PipeWriter<Msg>, PipeReader<Msg>)>>,
    events: Mutex<Vec<MonitorEvent>>,
}

impl SocketLink for TestLink {
    fn attach(&self, _peer: &PeerInfo, _endpoint: &str, _key: Option<u64>) -> Option<PipeEnds> {
        let (to_socket, socket_reader) = pipe(PipeConfig::with_hwm(16));
        let (socket_writer, from_socket) = pipe(PipeConfig::with_hwm(16));
        self.socket_ends
            .lock()
            .unwrap()
            .push((socket_writer, socket_reader));
        Some(PipeEnds {
            to_socket,
            from_socket,
            handover: None,
        })
    }

    fn monitor(&self, event: MonitorEvent, _value: u32, _endpoint: &str) {
        self.events.lock().unwrap().push(event);
    }
}

fn core(t: SocketType, link: &Arc<TestLink>, now: Instant) -> StreamCore {
    let mut config = ConnectionConfig::new(t);
    config.heartbeat = HeartbeatConfig {
        interval: Some(Duration::from_millis(100)),
        ttl: Duration::ZERO,
        timeout: Some(Duration::from_millis(300)),
    };
    let link: Arc<dyn SocketLink> = link.clone();
    let mut c = StreamCore::new(config, link, "tcp://test".into(), 7, now).unwrap();
    c.start();
    c
}

/// Moves whatever `from` wants to send into `to`, completing the send.
fn carry(from: &mut StreamCore, to: &mut StreamCore, now: Instant) -> bool {
    assert_eq!(from.drive(), Status::Open);
    let Some(bufs) = from.poll_transmit(64) else {
        return false;
    };
    for b in bufs {
        to.handle_input(b, now);
    }
    from.handle_send_result(true);
    true
}

/// The socket of `link` sends `numbers`, one message each.
fn send_numbers(link: &TestLink, numbers: std::ops::Range<u32>) {
    let mut ends = link.socket_ends.lock().unwrap();
    for i in numbers {
        ends[0]
            .0
            .write(Msg::from_bytes(Bytes::copy_from_slice(&i.to_be_bytes())))
            .unwrap();
    }
    ends[0].0.flush();
}

/// What the socket of `link` can read now, as numbers.
fn read_numbers(link: &TestLink) -> Vec<u32> {
    let mut ends = link.socket_ends.lock().unwrap();
    let mut got = Vec::new();
    while let Ok(m) = ends[0].1.read() {
        got.push(u32::from_be_bytes(m.data().try_into().unwrap()));
    }
    got
}

fn handshake(a: &mut StreamCore, b: &mut StreamCore, now: Instant) {
    for _ in 0..10 {
        let moved = carry(a, b, now) | carry(b, a, now);
        if !moved && a.is_ready() && b.is_ready() {
            return;
        }
    }
    panic!("no handshake");
}

/// A PUSH core and a PULL core past their handshake, with their links.
fn connected_pair() -> (
    Instant,
    Arc<TestLink>,
    Arc<TestLink>,
    StreamCore,
    StreamCore,
) {
    let t0 = Instant::now();
    let (la, lb) = (Arc::new(TestLink::default()), Arc::new(TestLink::default()));
    let mut push = core(SocketType::Push, &la, t0);
    let mut pull = core(SocketType::Pull, &lb, t0);
    handshake(&mut push, &mut pull, t0);
    (t0, la, lb, push, pull)
}

#[test]
fn messages_cross_and_arrive_whole() {
    let (t0, la, lb, mut push, mut pull) = connected_pair();
    {
        let mut ends = la.socket_ends.lock().unwrap();
        let w = &mut ends[0].0;
        w.write(Msg::from("a").with_more(true)).unwrap();
        w.write(Msg::from("b")).unwrap();
        w.flush();
    }
    carry(&mut push, &mut pull, t0);
    assert_eq!(pull.drive(), Status::Open);
    let mut ends = lb.socket_ends.lock().unwrap();
    let r = &mut ends[0].1;
    let a = r.read().unwrap();
    assert_eq!((a.data(), a.more()), (&b"a"[..], true));
    assert_eq!(r.read().unwrap().data(), b"b");
}

/// A peer that dies with our send in flight (its window full, so the send never completes)
/// must not keep the connection: the heartbeat timeout ends it, send or no send.
#[test]
fn heartbeat_timeout_ends_a_stream_with_a_send_stuck_in_flight() {
    let (t0, la, _lb, mut push, _pull) = connected_pair();
    {
        let mut ends = la.socket_ends.lock().unwrap();
        ends[0]
            .0
            .write(Msg::from_bytes(Bytes::from(vec![7u8; 1000])))
            .unwrap();
        ends[0].0.flush();
    }
    assert_eq!(push.drive(), Status::Open);
    let stuck = push.poll_transmit(64);
    assert!(stuck.is_some(), "the message goes out as one send");
    // The peer is gone; the send never completes. Time passes: pings, then the timeout.
    let mut now = t0;
    let mut status = Status::Open;
    for _ in 0..20 {
        let Some(deadline) = push.poll_timeout() else {
            break;
        };
        now = deadline.max(now);
        push.handle_timeout(now);
        status = push.drive();
        if status == Status::Done {
            break;
        }
    }
    assert_eq!(
        status,
        Status::Done,
        "the stream outlived its heartbeat timeout"
    );
    assert!(now <= t0 + Duration::from_millis(100 + 300 + 1));
    assert_eq!(push.error(), Some(&ZmtpError::HeartbeatTimeout));
    assert!(la
        .events
        .lock()
        .unwrap()
        .contains(&MonitorEvent::Disconnected));
    // Its pipes were closed: the socket sees the peer leave.
    let ends = la.socket_ends.lock().unwrap();
    assert!(ends[0].0.is_reader_closed());
}

/// A full inbound pipe pauses reading; draining it to the low-water mark resumes, and bytes
/// received meanwhile are decoded then, in order.
#[test]
fn a_full_pipe_pauses_reading_until_the_socket_drains_it() {
    let (t0, la, lb, mut push, mut pull) = connected_pair();
    send_numbers(&la, 0..16);
    while carry(&mut push, &mut pull, t0) {}
    // The pull side's pipe (HWM 16) takes 16; more arrives while it is full.
    send_numbers(&la, 16..20);
    while carry(&mut push, &mut pull, t0) {}
    assert_eq!(pull.drive(), Status::Open);
    assert!(!pull.wants_recv(), "reading pauses while the pipe is full");
    let mut got = read_numbers(&lb);
    pull.pipe_writable(t0);
    assert_eq!(pull.drive(), Status::Open);
    assert!(
        pull.wants_recv(),
        "reading resumes once the socket drained the pipe"
    );
    got.extend(read_numbers(&lb));
    assert_eq!(got, (0..20).collect::<Vec<_>>());
}

/// A read that carries far more than the pipe takes stops decoding at the high-water mark: at
/// most one message waits decoded, the rest as bytes, and everything arrives in order as the
/// socket drains (the receive side moves each message once, into the pipe).
#[test]
fn a_read_larger_than_the_pipe_waits_as_bytes_not_messages() {
    let (t0, la, lb, mut push, mut pull) = connected_pair();
    // 60 rounds of 16 queued in the PUSH core's encoder, then carried as one batch of reads.
    for r in 0..60 {
        send_numbers(&la, r * 16..(r + 1) * 16);
        assert_eq!(push.drive(), Status::Open);
    }
    let bufs = push.poll_transmit(64).expect("a batch to send");
    let wire: usize = bufs.iter().map(|b| b.len()).sum();
    for b in bufs {
        pull.handle_input(b, t0);
    }
    push.handle_send_result(true);
    assert_eq!(pull.drive(), Status::Open);
    let (held, bytes) = pull.inbound_backlog();
    assert!(held <= 1, "{held} decoded messages wait beside a full pipe");
    // 16 in the pipe, at most one held: the other 943 or more wait as their 6 wire bytes.
    assert!(
        bytes >= 943 * 6 && bytes < wire,
        "{bytes} of {wire} bytes wait"
    );
    let mut got = Vec::new();
    for _ in 0..1000 {
        got.extend(read_numbers(&lb));
        if got.len() == 960 {
            break;
        }
        pull.pipe_writable(t0);
        assert!(pull.inbound_backlog().0 <= 1);
    }
    assert_eq!(got, (0..960).collect::<Vec<_>>());
    assert_eq!(pull.inbound_backlog(), (0, 0));
    assert_eq!(pull.drive(), Status::Open);
    assert!(pull.wants_recv());
}

/// The queue of a socket that closed is handed on at a disconnect while output is owed (the
/// lingering session reconnects and delivers it, as libzmq's does), and dropped when nothing
/// is owed.
#[test]
fn a_closed_sockets_owed_queue_survives_a_disconnect() {
    for owed in [true, false] {
        let t0 = Instant::now();
        let (la, lb) = (Arc::new(TestLink::default()), Arc::new(TestLink::default()));
        let mut push = core(SocketType::Push, &la, t0);
        push.keep_pipes(1, None);
        let mut pull = core(SocketType::Pull, &lb, t0);
        handshake(&mut push, &mut pull, t0);
        let (mut writer, reader) = la.socket_ends.lock().unwrap().remove(0);
        if owed {
            // More than the stream encodes ahead (256 KiB), so some stays in the pipe.
            for _ in 0..10 {
                writer.write(Msg::from(vec![7u8; 64 * 1024])).unwrap();
            }
        }
        // The socket closes, then the peer goes away.
        drop((writer, reader));
        push.handle_eof(t0);
        assert_eq!(push.drive(), Status::Done);
        let kept = push.take_kept();
        assert_eq!(kept.is_some(), owed, "owed {owed}");
        assert!(kept.is_none_or(|k| k.owes_output()));
    }
}
