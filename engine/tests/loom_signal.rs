//! loom models of the wakeup signal. Under loom the eventfd is a token behind a loom mutex and
//! condvar: an untimed block on it that is never released is reported by loom as a deadlock,
//! i.e. a lost wakeup; a timed block models a timeout that expires at once.
#![cfg(loom)]

mod loom_common;

use std::sync::Arc;
use std::time::Duration;

use loom::thread;
use zeroring_engine::signal::Signal;

use loom_common::model;

/// (5) notify racing the external-wait protocol (prepare_sleep / block on fd / after_wake):
/// the waiter never blocks past a notification, two notifies give one wakeup, and no eventfd
/// token is left behind once the waiter is awake and the notifiers are done.
#[test]
fn notify_vs_prepare_sleep() {
    model(|| {
        let s = Arc::new(Signal::new().unwrap());
        let n1 = {
            let s = s.clone();
            thread::spawn(move || s.notify())
        };
        let n2 = {
            let s = s.clone();
            thread::spawn(move || s.notify())
        };
        let mut wakeups = 0;
        if s.prepare_sleep() {
            assert!(s.poll_fd(None));
            assert!(s.after_wake());
        }
        wakeups += 1;
        n1.join().unwrap();
        n2.join().unwrap();
        // Both notifies may have landed after the waiter woke: then one is pending now.
        let pending = s.clear();
        assert!(wakeups + pending as usize <= 2);
        assert!(
            !s.poll_fd(Some(Duration::ZERO)),
            "eventfd written more than once per sleep"
        );
    });
}

/// (5b) A blocking `wait` (no timeout, spin 0 and a spin budget) always returns `true` when a
/// notify races it.
#[test]
fn wait_vs_notify() {
    for spin in [Duration::ZERO, Duration::from_nanos(1)] {
        model(move || {
            let s = Arc::new(Signal::new().unwrap());
            let t = {
                let s = s.clone();
                thread::spawn(move || s.notify())
            };
            assert!(s.wait(None, spin));
            t.join().unwrap();
            assert!(!s.is_notified());
        });
    }
}

/// (5c) A timed `wait` racing a notify either returns `true` or leaves the notification
/// pending: a timeout never swallows a notification.
#[test]
fn timed_wait_never_swallows_a_notify() {
    model(|| {
        let s = Arc::new(Signal::new().unwrap());
        let t = {
            let s = s.clone();
            thread::spawn(move || s.notify())
        };
        let woke = s.wait(Some(Duration::from_millis(1)), Duration::ZERO);
        t.join().unwrap();
        assert!(
            woke ^ s.is_notified(),
            "woke={woke}, pending={}",
            s.is_notified()
        );
        // A stale token (notifier wrote after the timeout) may be left; the next sleep copes.
        if !woke {
            assert!(s.wait(None, Duration::ZERO));
        }
    });
}

/// (5d) The edge-triggered fd contract: after `rearm`, a notify racing it is either consumed by
/// it (returns true) or makes the eventfd readable — an external poller never sleeps through
/// it; and a second `rearm` leaves no token behind.
#[test]
fn rearm_vs_notify() {
    model(|| {
        let s = Arc::new(Signal::new().unwrap());
        let t = {
            let s = s.clone();
            thread::spawn(move || s.notify())
        };
        if !s.rearm() {
            // Nothing seen yet: the notify must reach the poller.
            assert!(s.poll_fd(None), "a notify after rearm left the fd silent");
        }
        t.join().unwrap();
        s.rearm();
        assert!(
            !s.poll_fd(Some(Duration::ZERO)),
            "a stale token survived rearm"
        );
    });
}
