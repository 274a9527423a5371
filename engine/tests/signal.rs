//! Ordinary (non-loom) tests of the wakeup signal and the mailbox. No sleeps are used as
//! synchronisation: threads meet through the signal itself or through `is_sleeping`.
#![cfg(not(loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use zeroring_engine::mailbox::Mailbox;
use zeroring_engine::signal::Signal;

fn fd_readable(s: &Signal) -> bool {
    s.poll_fd(Some(Duration::ZERO))
}

#[test]
fn wait_times_out_without_notify() {
    let s = Signal::new().unwrap();
    for spin in [Duration::ZERO, Duration::from_micros(50)] {
        let t0 = Instant::now();
        assert!(!s.wait(Some(Duration::from_millis(20)), spin));
        assert!(t0.elapsed() >= Duration::from_millis(20));
        assert!(!s.is_sleeping());
    }
    assert!(!s.wait(Some(Duration::ZERO), Duration::ZERO));
}

#[test]
fn wait_returns_pending_notify_at_once() {
    let s = Signal::new().unwrap();
    s.notify();
    assert!(s.is_notified());
    assert!(s.wait(Some(Duration::from_secs(10)), Duration::ZERO));
    assert!(!s.is_notified());
}

#[test]
fn notifies_coalesce() {
    let s = Signal::new().unwrap();
    s.notify();
    s.notify();
    s.notify();
    assert!(s.wait(None, Duration::ZERO));
    assert!(!s.wait(Some(Duration::from_millis(1)), Duration::ZERO));
}

#[test]
fn notify_while_awake_makes_no_eventfd_write() {
    let s = Signal::new().unwrap();
    s.notify();
    assert!(!fd_readable(&s));
    assert!(!s.prepare_sleep(), "pending notification: do not sleep");
    assert!(!s.is_notified(), "prepare_sleep consumed it");
    assert!(!s.is_sleeping());
    assert!(!fd_readable(&s));
}

#[test]
fn prepare_sleep_then_notify_makes_fd_readable_once() {
    let s = Signal::new().unwrap();
    assert!(s.prepare_sleep());
    assert!(s.is_sleeping());
    assert!(!fd_readable(&s));
    s.notify();
    assert!(fd_readable(&s));
    s.notify(); // coalesces: no second write needed
    assert!(s.after_wake());
    assert!(!fd_readable(&s), "after_wake drains the eventfd");
    assert!(!s.is_sleeping());
    assert!(!s.is_notified());
    // A sleep without notify: after_wake reports false.
    assert!(s.prepare_sleep());
    assert!(!s.after_wake());
    // fd() is a real descriptor.
    assert!(s.fd() >= 0);
}

/// `end_sleep` leaves the eventfd to the poller that reports it: the token written by a
/// notifier that saw the sleep stays readable until `drain_fd`, and a sleep that ended by
/// I/O (no notify) leaves nothing to drain.
#[test]
fn end_sleep_leaves_the_token_for_the_reported_drain() {
    let s = Signal::new().unwrap();
    assert!(s.prepare_sleep());
    assert!(!s.end_sleep(), "woken by something else: not notified");
    assert!(!fd_readable(&s), "and nothing was written");
    assert!(!s.is_sleeping());
    assert!(s.prepare_sleep());
    s.notify();
    assert!(s.end_sleep());
    assert!(!s.is_notified() && !s.is_sleeping());
    assert!(fd_readable(&s), "the token waits for the poller's report");
    assert!(s.drain_fd());
    assert!(!fd_readable(&s));
    // Awake: a notify sets the flag only, no write.
    s.notify();
    assert!(!fd_readable(&s));
    assert!(s.clear());
}

#[test]
fn clear_consumes() {
    let s = Signal::new().unwrap();
    assert!(!s.clear());
    s.notify();
    assert!(s.clear());
    assert!(!s.clear());
}

/// The notifier waits until the waiter is really asleep in poll(2), so the eventfd path is
/// exercised (not only the flag).
#[test]
fn notify_wakes_a_thread_asleep_in_poll() {
    let s = Arc::new(Signal::new().unwrap());
    for _ in 0..200 {
        let s2 = s.clone();
        let t = thread::spawn(move || s2.wait(Some(Duration::from_secs(30)), Duration::ZERO));
        while !s.is_sleeping() {
            thread::yield_now();
        }
        s.notify();
        assert!(t.join().unwrap());
    }
}

#[test]
fn ping_pong() {
    for spin in [Duration::ZERO, Duration::from_micros(100)] {
        let a = Arc::new(Signal::new().unwrap());
        let b = Arc::new(Signal::new().unwrap());
        let (a2, b2) = (a.clone(), b.clone());
        const N: usize = 20_000;
        let t = thread::spawn(move || {
            for _ in 0..N {
                assert!(b2.wait(None, spin));
                a2.notify();
            }
        });
        for _ in 0..N {
            b.notify();
            assert!(a.wait(Some(Duration::from_secs(30)), spin));
        }
        t.join().unwrap();
    }
}

#[test]
fn mailbox_fifo_and_drain() {
    let s = Arc::new(Signal::new().unwrap());
    let mb = Mailbox::new(s.clone());
    assert!(mb.is_empty());
    assert_eq!(mb.try_recv(), None);
    let tx = mb.sender();
    for i in 0..10 {
        tx.send(i).unwrap();
    }
    assert_eq!(mb.len(), 10);
    assert!(s.is_notified());
    assert!(
        !fd_readable(&s),
        "sends while the thread is awake make no syscall"
    );
    assert_eq!(mb.try_recv(), Some(0));
    let mut out = Vec::new();
    assert_eq!(mb.drain(&mut out), 9);
    assert_eq!(out, (1..10).collect::<Vec<_>>());
    assert_eq!(mb.drain(&mut out), 0);
}

#[test]
fn mailbox_close_refuses_sends_and_keeps_queue() {
    let s = Arc::new(Signal::new().unwrap());
    let mb = Mailbox::new(s);
    let tx = mb.sender();
    tx.send("a").unwrap();
    mb.close();
    assert!(mb.is_closed() && tx.is_closed());
    assert_eq!(tx.send("b"), Err("b"));
    assert_eq!(mb.try_recv(), Some("a"));
}

#[test]
fn mailbox_drop_drops_commands_and_closes() {
    struct Cmd(Arc<AtomicUsize>);
    impl Drop for Cmd {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let mb = Mailbox::new(Arc::new(Signal::new().unwrap()));
    let tx = mb.sender();
    for _ in 0..5 {
        assert!(tx.send(Cmd(drops.clone())).is_ok());
    }
    drop(mb);
    assert_eq!(drops.load(Ordering::SeqCst), 5);
    assert!(tx.send(Cmd(drops.clone())).is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 6);
}

/// An I/O-thread-shaped consumer (prepare_sleep / poll / after_wake) and four senders.
#[test]
fn mailbox_many_senders_sleeping_consumer() {
    const SENDERS: u64 = 4;
    const PER: u64 = 20_000;
    let s = Arc::new(Signal::new().unwrap());
    let mb = Mailbox::new(s.clone());
    let threads: Vec<_> = (0..SENDERS)
        .map(|k| {
            let tx = mb.sender();
            thread::spawn(move || {
                for i in 0..PER {
                    tx.send((k, i)).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0u64; SENDERS as usize];
    let mut buf = Vec::new();
    let mut total = 0;
    let mut sleeps = 0;
    while total < SENDERS * PER {
        s.clear();
        buf.clear();
        mb.drain(&mut buf);
        for &(k, i) in &buf {
            assert_eq!(next[k as usize], i, "per-sender FIFO");
            next[k as usize] += 1;
            total += 1;
        }
        if buf.is_empty() && s.prepare_sleep() {
            sleeps += 1;
            assert!(s.poll_fd(Some(Duration::from_secs(30))), "lost wakeup");
            s.after_wake();
        }
    }
    for t in threads {
        t.join().unwrap();
    }
    assert!(sleeps <= SENDERS * PER);
}

extern "C" fn note_signal(_: libc::c_int) {}

/// Signals `tid` with SIGUSR1 (handler installed without SA_RESTART) every few ms until `done`.
fn keep_signalling(tid: libc::pthread_t, done: &std::sync::mpsc::Receiver<()>) {
    // SAFETY: a zeroed sigaction with a valid, empty handler and an empty mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = note_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // SAFETY: the waiting thread outlives this loop (it is joined after `done`).
        unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
        if done.recv_timeout(Duration::from_millis(10)).is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "the wait never ended");
    }
}

#[test]
fn a_handled_signal_interrupts_an_interruptible_wait_only() {
    use zeroring_engine::signal::Wake;
    let s = Arc::new(Signal::new().unwrap());
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let s2 = s.clone();
    let t = thread::spawn(move || {
        // SAFETY: pthread_self has no preconditions.
        tid_tx.send(unsafe { libc::pthread_self() }).unwrap();
        let woke = s2.wait_interruptible(Some(Duration::from_secs(20)), Duration::ZERO);
        done_tx.send(()).unwrap();
        // The plain wait goes on through signals until notified.
        let notified = s2.wait(Some(Duration::from_secs(20)), Duration::ZERO);
        (woke, notified)
    });
    let tid = tid_rx.recv().unwrap();
    keep_signalling(tid, &done_rx);
    // Signal the plain wait a few times, then notify it.
    while !s.is_sleeping() {
        thread::yield_now();
    }
    for _ in 0..5 {
        // SAFETY: the thread is alive until notified below and joined.
        unsafe { libc::pthread_kill(tid, libc::SIGUSR1) };
        thread::sleep(Duration::from_millis(2));
    }
    s.notify();
    let (woke, notified) = t.join().unwrap();
    assert_eq!(woke, Wake::Interrupted);
    assert!(
        notified,
        "the plain wait ignored the signals and saw the notify"
    );
}
