//! ZMQ_EVENTS and the socket's fd, as libzmq's ZMQ_FD contract has them: edge-triggered —
//! after EVENTS says "nothing", the fd becomes readable when something changes. A poll loop
//! that checks EVENTS, then blocks in poll(2) on the fd, must never sleep through a message.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use zeroring::{Context, Socket, SocketType, POLLIN};

use crate::common::*;

/// Blocks in poll(2) on `fd` for at most `ms`; whether it became readable.
fn poll_readable(fd: i32, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd on the stack, for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n >= 0 {
            return n == 1 && p.revents & libc::POLLIN != 0;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

/// The loop every event-loop integration runs: EVENTS, then the fd, then EVENTS again. The
/// sender is told to send only after EVENTS said "nothing" (the race in issue 13: the
/// message arrives between the check and the poll). Returns how long the poll loop took.
fn poll_loop_sees_message(rx: &Socket, send: impl FnOnce() + Send + 'static) -> Duration {
    let fd = rx.signal().fd();
    assert_eq!(rx.get_events().unwrap() & POLLIN, 0, "nothing queued yet");
    let (go, wait) = mpsc::channel::<()>();
    let sender = thread::spawn(move || {
        wait.recv().unwrap();
        send();
    });
    let start = Instant::now();
    go.send(()).unwrap();
    // Generous: a lost wakeup shows as the whole 10 s.
    let deadline = start + Duration::from_secs(10);
    loop {
        if rx.get_events().unwrap() & POLLIN != 0 {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "EVENTS never showed POLLIN");
        poll_readable(fd, left.as_millis() as i32);
    }
    let took = start.elapsed();
    sender.join().unwrap();
    assert_eq!(rx.recv_bytes(zeroring::DONTWAIT).unwrap(), b"late");
    took
}

#[test]
fn events_then_fd_never_misses_a_message_tcp() {
    for _ in 0..20 {
        let ctx = Context::new();
        let pull = bound(&ctx, SocketType::Pull, "tcp://127.0.0.1:*");
        let ep = pull.get_last_endpoint().unwrap().unwrap();
        let push = connected(&ctx, SocketType::Push, &ep);
        // Make sure the connection is up, so the pipe EVENTS looks at is the real one.
        push.send("warm", 0).unwrap();
        assert_eq!(pull.recv_bytes(0).unwrap(), b"warm");
        let took = poll_loop_sees_message(&pull, move || push.send("late", 0).unwrap());
        assert!(took < Duration::from_secs(5), "woken after {took:?}");
    }
}

#[test]
fn events_then_fd_never_misses_a_message_inproc() {
    for i in 0..50 {
        let ctx = Context::new();
        let ep = format!("inproc://readiness-{i}");
        let pull = bound(&ctx, SocketType::Pull, &ep);
        let push = connected(&ctx, SocketType::Push, &ep);
        let took = poll_loop_sees_message(&pull, move || push.send("late", 0).unwrap());
        assert!(took < Duration::from_secs(5), "woken after {took:?}");
    }
}

#[test]
fn events_then_fd_sees_a_late_reply_on_req_and_dealer() {
    for t in [SocketType::Dealer, SocketType::Pair] {
        let ctx = Context::new();
        let a = bound(&ctx, t, "tcp://127.0.0.1:*");
        let ep = a.get_last_endpoint().unwrap().unwrap();
        let peer_type = if t == SocketType::Pair {
            SocketType::Pair
        } else {
            SocketType::Dealer
        };
        let b = connected(&ctx, peer_type, &ep);
        b.send("warm", 0).unwrap();
        assert_eq!(a.recv_bytes(0).unwrap(), b"warm");
        let took = poll_loop_sees_message(&a, move || b.send("late", 0).unwrap());
        assert!(took < Duration::from_secs(5), "{t:?}: woken after {took:?}");
    }
}

#[test]
fn zmq_fd_is_the_signal_fd_and_read_only() {
    let ctx = Context::new();
    let s = ctx.socket(SocketType::Pull).unwrap();
    let fd = s.get_fd();
    assert!(fd >= 0);
    assert_eq!(
        s.get_option(zeroring::options::num::FD).unwrap(),
        fd.to_ne_bytes()
    );
    assert_eq!(
        s.set_option(zeroring::options::num::FD, &1i32.to_ne_bytes()),
        Err(zeroring::Error::EINVAL)
    );
}

/// A poller that waits on ZMQ_FD before it ever reads ZMQ_EVENTS wakes when a peer attaches or
/// a message comes, as with libzmq's mailbox fd (here it slept through both): the fd is armed
/// when it is first handed out, and readable at once if something happened before. A fresh
/// socket's fd is not readable, as libzmq's is not.
#[test]
fn the_fd_wakes_a_poller_that_never_read_events() {
    let ctx = Context::new();
    for (i, transport) in ["inproc", "tcp"].into_iter().enumerate() {
        for fd_first in [true, false] {
            let pull = sock(&ctx, SocketType::Pull);
            let mut fd = None;
            if fd_first {
                fd = Some(pull.get_fd());
                assert!(
                    !poll_readable(pull.get_fd(), 0),
                    "{transport}: readable at once"
                );
            }
            let ep = if transport == "inproc" {
                let ep = format!("inproc://fd-armed-{i}-{fd_first}");
                pull.bind(&ep).unwrap();
                ep
            } else {
                pull.bind("tcp://127.0.0.1:*").unwrap();
                pull.get_last_endpoint().unwrap().unwrap()
            };
            let push = connected(&ctx, SocketType::Push, &ep);
            push.send("wake", 0).unwrap();
            if !fd_first {
                // Everything has happened (the message may still be on its way over tcp).
                eventually(|| pull.peer_count() == 1);
            }
            let fd = fd.unwrap_or_else(|| pull.get_fd());
            // The first wake may be the peer's arrival; then, EVENTS read, the fd is re-armed
            // for the message (the usual edge-triggered loop).
            for wake in 0.. {
                assert!(
                    poll_readable(fd, TIMEOUT_MS),
                    "{transport}, fd first {fd_first}: the fd never became readable (wake {wake})"
                );
                if pull.get_events().unwrap() & POLLIN != 0 {
                    break;
                }
                assert!(
                    wake < 10,
                    "{transport}: woken {wake} times without a message"
                );
            }
            assert_eq!(recv_str(&pull), "wake");
        }
    }
}
