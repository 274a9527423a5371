//! Signals as libzmq handles them (issue 15): a blocking send or recv interrupted by a signal
//! returns EINTR at once, losing nothing, and zeroring's own threads block every signal so
//! that handlers run on application threads. Its own test binary: signal handlers are
//! process-wide. Signals are aimed at one thread (`pthread_kill`) so the tests are
//! deterministic in a multi-threaded test process; where a process-directed signal lands is
//! checked in `signal_routing.rs`, which owns its threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Once};
use std::time::{Duration, Instant};

use zeroring::{Context, Error, SocketType, DONTWAIT};

const LIMIT_MS: i32 = 10_000;

static HANDLED: AtomicUsize = AtomicUsize::new(0);
extern "C" fn count(_: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

/// Installs `handler` for `sig` without SA_RESTART (the case libzmq documents EINTR for).
fn install(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask is a valid argument;
    // the handlers only touch atomics (async-signal-safe).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
}

fn install_all() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        install(libc::SIGUSR1, count);
        install(libc::SIGUSR2, count);
    });
}

/// Runs `blocked` on a new thread and signals that thread with `sig` every few ms until it
/// returns (a signal that lands before the thread sleeps is absorbed; a later one interrupts
/// the sleep). Returns what `blocked` returned.
fn interrupt<T: Send + 'static>(
    sig: libc::c_int,
    blocked: impl FnOnce() -> T + Send + 'static,
) -> T {
    install_all();
    let (tid_tx, tid_rx) = mpsc::channel();
    let (res_tx, res_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        // SAFETY: pthread_self has no preconditions.
        tid_tx.send(unsafe { libc::pthread_self() }).unwrap();
        res_tx.send(blocked()).unwrap();
        // Stay alive until no more signals are aimed at this thread.
        let _ = go_rx.recv();
    });
    let tid = tid_rx.recv().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let result = loop {
        // SAFETY: the thread is alive until `go_tx` sends, below.
        unsafe { libc::pthread_kill(tid, sig) };
        match res_rx.recv_timeout(Duration::from_millis(20)) {
            Ok(r) => break r,
            Err(_) => assert!(Instant::now() < deadline, "the blocked call never returned"),
        }
    };
    go_tx.send(()).unwrap();
    t.join().unwrap();
    result
}

#[test]
fn a_signal_interrupts_a_blocking_recv_with_eintr() {
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_linger(0).unwrap();
    // Bounded only so that a failure cannot hang the suite; the signal comes long before.
    pull.set_rcvtimeo(LIMIT_MS).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ep = pull.get_last_endpoint().unwrap().unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_linger(0).unwrap();
    push.connect(&ep).unwrap();
    let start = Instant::now();
    let (result, pull) = interrupt(libc::SIGUSR1, move || {
        let r = pull.recv_bytes(0);
        (r, pull)
    });
    assert_eq!(result, Err(Error::EINTR));
    assert!(start.elapsed() < Duration::from_millis(LIMIT_MS as u64 / 2));
    assert!(HANDLED.load(Ordering::SeqCst) > 0);
    // Nothing is lost: the socket still works, and the message sent after the interruption
    // is the next one received.
    push.send("after", 0).unwrap();
    assert_eq!(pull.recv_bytes(0).unwrap(), b"after");
    assert_eq!(pull.recv_bytes(DONTWAIT), Err(Error::EAGAIN));
}

#[test]
fn a_signal_interrupts_a_blocking_send_with_eintr_and_nothing_is_half_sent() {
    let ctx = Context::new();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_linger(0).unwrap();
    push.set_sndtimeo(LIMIT_MS).unwrap();
    // No peer: a PUSH send blocks until one comes.
    push.bind("tcp://127.0.0.1:*").unwrap();
    let ep = push.get_last_endpoint().unwrap().unwrap();
    let start = Instant::now();
    let (result, push) = interrupt(libc::SIGUSR2, move || {
        let r = push.send("interrupted", 0);
        (r, push)
    });
    assert_eq!(result, Err(Error::EINTR));
    assert!(start.elapsed() < Duration::from_millis(LIMIT_MS as u64 / 2));
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_linger(0).unwrap();
    pull.set_rcvtimeo(LIMIT_MS).unwrap();
    pull.connect(&ep).unwrap();
    push.send("next", 0).unwrap();
    assert_eq!(pull.recv_bytes(0).unwrap(), b"next");
    assert_eq!(pull.recv_bytes(DONTWAIT), Err(Error::EAGAIN));
}

/// The signal mask of every thread of this process whose name starts with `prefix`.
fn masks_of(prefix: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let dir = task.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        let comm = comm.trim().to_string();
        if !comm.starts_with(prefix) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(dir.join("status")) else {
            continue;
        };
        let blk = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap();
        out.push((comm, blk));
    }
    out
}

#[test]
fn zeroring_threads_block_every_signal() {
    let ctx = Context::new();
    // Make the I/O threads exist.
    let s = ctx.socket(SocketType::Pull).unwrap();
    s.set_linger(0).unwrap();
    s.bind("tcp://127.0.0.1:*").unwrap();
    let masks = masks_of("zeroring-");
    assert!(
        !masks.is_empty(),
        "zeroring's I/O threads are named zeroring-io-N"
    );
    // Bits 1..=31 are the standard signals (SIGKILL and SIGSTOP cannot be blocked and read 0).
    let unblockable = (1u64 << (libc::SIGKILL - 1)) | (1u64 << (libc::SIGSTOP - 1));
    let standard = (1u64 << 31) - 1;
    for (name, blk) in masks {
        assert_eq!(
            blk & standard,
            standard & !unblockable,
            "{name} blocks every signal (SigBlk {blk:#x})"
        );
    }
}

/// libzmq's behaviour that the tests above copy: EINTR from a blocking recv and send.
#[test]
fn libzmq_returns_eintr_from_blocking_calls() {
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.set_linger(0).unwrap();
    pull.set_rcvtimeo(LIMIT_MS).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let (result, _pull) = interrupt(libc::SIGUSR1, move || (pull.recv_bytes(0), pull));
    assert_eq!(result, Err(zmq::Error::EINTR));
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.set_linger(0).unwrap();
    push.set_sndtimeo(LIMIT_MS).unwrap();
    push.bind("tcp://127.0.0.1:*").unwrap();
    let (result, _push) = interrupt(libc::SIGUSR2, move || (push.send("x", 0), push));
    assert_eq!(result, Err(zmq::Error::EINTR));
}

#[test]
fn a_signal_interrupts_a_poll_with_eintr() {
    // zmq_poll: EINTR when a signal arrives before any item is ready, as libzmq's.
    let r = interrupt(libc::SIGUSR1, || {
        let ctx = Context::new();
        let pull = ctx.socket(SocketType::Pull).unwrap();
        pull.set_linger(0).unwrap();
        pull.bind("inproc://poll-eintr").unwrap();
        let mut items = [zeroring::PollItem::from_socket(
            &pull,
            zeroring::POLLIN as i16,
        )];
        zeroring::poll(&mut items, 30_000)
    });
    assert_eq!(r, Err(Error::EINTR));
}
