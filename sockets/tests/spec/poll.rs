//! `zmq_poll` as libzmq's man page has it: sockets and plain fds together, POLLIN/POLLOUT/
//! POLLERR, timeouts −1/0/ms, ETERM; EINTR is in `tests/signals.rs` (signal handlers are
//! process-wide).

use std::os::fd::RawFd;
use std::thread;
use std::time::{Duration, Instant};

use zeroring::{poll, Context, Error, PollItem, SocketType, DONTWAIT, POLLIN, POLLOUT};

use crate::common::*;

const IN: i16 = POLLIN as i16;
const OUT: i16 = POLLOUT as i16;

/// A pipe(2): (read end, write end).
fn os_pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    (fds[0], fds[1])
}

fn close(fd: RawFd) {
    // SAFETY: closes a descriptor this test opened and no longer uses.
    unsafe { libc::close(fd) };
}

#[test]
fn sockets_and_plain_fds_in_one_poll() {
    let ctx = Context::new();
    let a = bound(&ctx, SocketType::Pull, "inproc://poll-a");
    let b = bound(&ctx, SocketType::Pull, "inproc://poll-b");
    let pa = connected(&ctx, SocketType::Push, "inproc://poll-a");
    let pb = connected(&ctx, SocketType::Push, "inproc://poll-b");
    let (r, w) = os_pipe();
    {
        let mut items = [
            PollItem::from_socket(&a, IN),
            PollItem::from_socket(&b, IN),
            PollItem::from_fd(r, IN),
        ];
        assert_eq!(poll(&mut items, 0).unwrap(), 0, "nothing yet");
        pb.send("to b", 0).unwrap();
        assert_eq!(poll(&mut items, 10_000).unwrap(), 1);
        assert!(!items[0].is_readable() && items[1].is_readable() && !items[2].is_readable());
        assert_eq!(b.recv_bytes(0).unwrap(), b"to b");
        // SAFETY: writes one byte from a live buffer to the pipe's write end.
        assert_eq!(unsafe { libc::write(w, b"x".as_ptr().cast(), 1) }, 1);
        assert_eq!(poll(&mut items, 10_000).unwrap(), 1);
        assert!(items[2].is_readable());
        pa.send("to a", 0).unwrap();
        assert_eq!(poll(&mut items, 10_000).unwrap(), 2, "a and the pipe");
        assert!(items[0].is_readable() && items[2].is_readable());
    }
    close(r);
    close(w);
}

#[test]
fn pollout_and_a_timeout_that_runs_out() {
    let ctx = Context::new();
    let pull = bound(&ctx, SocketType::Pull, "inproc://poll-out");
    let push = connected(&ctx, SocketType::Push, "inproc://poll-out");
    let mut items = [
        PollItem::from_socket(&push, OUT),
        PollItem::from_socket(&pull, IN | OUT),
    ];
    assert_eq!(poll(&mut items, 0).unwrap(), 1, "PUSH with a peer can send");
    assert!(items[0].is_writable() && items[1].revents() == 0);
    let mut only_in = [PollItem::from_socket(&pull, IN)];
    let start = Instant::now();
    assert_eq!(poll(&mut only_in, 50).unwrap(), 0);
    assert!(
        start.elapsed() >= Duration::from_millis(45),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(poll(&mut only_in, -2), Err(Error::EINVAL));
}

#[test]
fn a_message_from_another_thread_ends_an_endless_poll() {
    let ctx = Context::new();
    let pull = bound(&ctx, SocketType::Pull, "tcp://127.0.0.1:*");
    let ep = pull.get_last_endpoint().unwrap().unwrap();
    let push = connected(&ctx, SocketType::Push, &ep);
    let t = thread::spawn(move || {
        push.send("wake", 0).unwrap();
        push
    });
    let mut items = [PollItem::from_socket(&pull, IN)];
    assert_eq!(poll(&mut items, -1).unwrap(), 1);
    assert_eq!(pull.recv_bytes(0).unwrap(), b"wake");
    drop(t.join().unwrap());
}

#[test]
fn thousands_of_messages_through_a_poll_loop_lose_no_wakeup() {
    // The loop event-loop integrations run: poll, drain with DONTWAIT until EAGAIN, poll.
    for endpoint in ["tcp://127.0.0.1:*", "inproc://poll-many"] {
        let ctx = Context::new();
        let pull = bound(&ctx, SocketType::Pull, endpoint);
        let ep = pull.get_last_endpoint().unwrap().unwrap();
        let push = connected(&ctx, SocketType::Push, &ep);
        const N: usize = 20_000;
        let sender = thread::spawn(move || {
            for i in 0..N {
                push.send(format!("{i}"), 0).unwrap();
            }
            push
        });
        let mut got = 0;
        let mut items = [PollItem::from_socket(&pull, IN)];
        while got < N {
            // Generous: a lost wakeup shows as a 10 s timeout.
            assert_eq!(
                poll(&mut items, 10_000).unwrap(),
                1,
                "{endpoint}: stuck at {got}"
            );
            loop {
                match pull.recv_bytes(DONTWAIT) {
                    Ok(m) => {
                        assert_eq!(m, got.to_string().as_bytes());
                        got += 1;
                    }
                    Err(Error::EAGAIN) => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        drop(sender.join().unwrap());
    }
}

#[test]
fn a_terminated_context_ends_a_poll_with_eterm() {
    let ctx = Context::new();
    let pull = bound(&ctx, SocketType::Pull, "inproc://poll-term");
    let poller = thread::spawn(move || {
        let mut items = [PollItem::from_socket(&pull, IN)];
        let r = poll(&mut items, 20_000);
        drop(pull);
        r
    });
    // Another thread shuts the context down while the poller waits.
    ctx.shutdown();
    assert_eq!(poller.join().unwrap(), Err(Error::ETERM));
}
