//! The reusable `Poller` (libzmq's draft zmq_poller): registration errors as libzmq's,
//! sockets and plain fds together, one or many events, and no lost wakeup across thousands
//! of messages sent from another thread (a lost one would show as a 10 s EAGAIN).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use zeroring::{Context, Error, Poller, Socket, SocketType, DONTWAIT, POLLERR, POLLIN, POLLOUT};

const TIMEOUT_MS: i64 = 10_000;
const IN: i16 = POLLIN as i16;
const OUT: i16 = POLLOUT as i16;

fn pair(ctx: &Context, name: &str) -> (Socket, Socket) {
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.bind(&format!("inproc://{name}")).unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.connect(&format!("inproc://{name}")).unwrap();
    (push, pull)
}

#[test]
fn registration_errors_are_libzmqs() {
    let ctx = Context::new();
    let (push, pull) = pair(&ctx, "reg");
    let mut p: Poller<'_, u32> = Poller::new();
    assert_eq!(p.wait(-1).unwrap_err(), Error::EFAULT, "empty, no limit");
    assert_eq!(p.wait(0).unwrap_err(), Error::EAGAIN, "empty, look once");
    p.add(&pull, 1, IN).unwrap();
    assert_eq!(p.add(&pull, 2, IN), Err(Error::EINVAL), "added twice");
    assert_eq!(p.modify(&push, IN), Err(Error::EINVAL), "never added");
    assert_eq!(p.remove(&push), Err(Error::EINVAL));
    assert_eq!(p.add_fd(-1, 3, IN), Err(Error::EBADF));
    assert_eq!(p.remove_fd(0), Err(Error::EINVAL));
    let mut out = Vec::new();
    assert_eq!(p.wait_all(&mut out, 0, 0), Err(Error::EINVAL));
    assert_eq!(p.wait(-2).unwrap_err(), Error::EINVAL);
    assert_eq!(p.size(), 1);
    p.remove(&pull).unwrap();
    assert_eq!(p.size(), 0);
}

#[test]
fn sockets_and_fds_report_one_or_many() {
    let ctx = Context::new();
    let (push_a, pull_a) = pair(&ctx, "many-a");
    let (push_b, pull_b) = pair(&ctx, "many-b");
    let (mut w, r) = UnixStream::pair().unwrap();
    let mut p = Poller::new();
    p.add(&pull_a, "a", IN).unwrap();
    p.add(&pull_b, "b", IN).unwrap();
    p.add_fd(r.as_raw_fd(), "fd", IN).unwrap();
    assert_eq!(p.wait(0).unwrap_err(), Error::EAGAIN);

    push_b.send("to b", 0).unwrap();
    let ev = p.wait(TIMEOUT_MS).unwrap();
    assert_eq!((ev.user_data, ev.events), ("b", IN));
    assert!(std::ptr::eq(ev.socket.unwrap(), &pull_b));
    assert_eq!(pull_b.recv_bytes(0).unwrap(), b"to b");

    w.write_all(b"x").unwrap();
    let ev = p.wait(TIMEOUT_MS).unwrap();
    assert_eq!(
        (ev.user_data, ev.fd, ev.socket.is_none()),
        ("fd", r.as_raw_fd(), true)
    );

    push_a.send("to a", 0).unwrap();
    push_b.send("to b", 0).unwrap();
    let mut out = Vec::new();
    assert_eq!(p.wait_all(&mut out, 8, TIMEOUT_MS).unwrap(), 3);
    let names: Vec<_> = out.iter().map(|e| e.user_data).collect();
    assert_eq!(names, ["a", "b", "fd"], "in the order added");
    assert_eq!(p.wait_all(&mut out, 2, 0).unwrap(), 2, "at most max");

    // Removed or switched off: not reported.
    p.remove(&pull_a).unwrap();
    p.modify_fd(r.as_raw_fd(), 0).unwrap();
    assert_eq!(p.wait_all(&mut out, 8, 0).unwrap(), 1);
    assert_eq!(out[0].user_data, "b");
    // A closed peer end is readable (EOF), reported as POLLIN, never POLLERR alone.
    p.modify_fd(r.as_raw_fd(), IN).unwrap();
    drop(w);
    p.remove(&pull_b).unwrap();
    let ev = p.wait(TIMEOUT_MS).unwrap();
    assert_ne!(ev.events & IN, 0);
    assert_eq!(ev.events & POLLERR, 0);
}

#[test]
fn pollout_follows_the_peer() {
    let ctx = Context::new();
    let push = ctx.socket(SocketType::Push).unwrap();
    let mut p = Poller::new();
    p.add(&push, (), OUT).unwrap();
    assert_eq!(
        p.wait(0).unwrap_err(),
        Error::EAGAIN,
        "no peer: not writable"
    );
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.bind("inproc://pollout").unwrap();
    push.connect("inproc://pollout").unwrap();
    let ev = p.wait(TIMEOUT_MS).unwrap();
    assert_eq!(ev.events, OUT);
    p.modify(&push, IN).unwrap();
    assert_eq!(p.wait(0).unwrap_err(), Error::EAGAIN, "a PUSH never reads");
}

#[test]
fn no_lost_wakeup_across_thousands_of_messages() {
    const N: usize = 5_000;
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvhwm(100).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ep = pull.get_last_endpoint().unwrap().unwrap();
    // The sender is libzmq, in another thread, over tcp.
    let sender = std::thread::spawn(move || {
        let z = zmq::Context::new();
        let push = z.socket(zmq::PUSH).unwrap();
        push.connect(&ep).unwrap();
        for i in 0..N {
            push.send(&(i as u32).to_le_bytes()[..], 0).unwrap();
        }
        push.set_linger(10_000).unwrap();
    });
    let mut p = Poller::new();
    p.add(&pull, 0u8, IN).unwrap();
    let mut got = 0usize;
    while got < N {
        let ev = p.wait(TIMEOUT_MS).expect("woken for every message");
        assert_eq!(ev.events, IN);
        // Drain: the poller is edge-triggered underneath, and must still wake next time.
        loop {
            match pull.recv_bytes(DONTWAIT) {
                Ok(m) => {
                    assert_eq!(m, (got as u32).to_le_bytes(), "in order");
                    got += 1;
                }
                Err(Error::EAGAIN) => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    sender.join().unwrap();
}
