//! Wakes an I/O thread owes to sleeping threads, made at the end of its turn instead of at once.
//!
//! Owns: a per-thread list of notify targets whose waiter was asleep when a pipe notified it,
//! and the switch that makes [`crate::pipe`]'s notifications use it. Only an I/O thread turns
//! it on, around the work of one turn of its loop ([`begin`], [`flush`]).
//!
//! Why: the system call that wakes a sleeping thread (an eventfd write) hands the CPU over when
//! the woken thread shares this one's core — the scheduler runs it at once — so an I/O thread
//! that fills a socket's pipe from several completions in one turn was switched out after the
//! first, and the application read a third of the messages per wake-up
//! (docs/performance.md, "Wakes at the end of the I/O thread's turn"). What a waiter looks at
//! is not delayed: the notification itself (its flag, the pipe recorded as readable) is made
//! at once ([`Notify::notify_lazy`](crate::pipe::Notify::notify_lazy)), so a waiter that spins sees it; only the system call for
//! one that sleeps waits for the turn's end.
//!
//! Must never: keep a wake past the end of the turn that owes it (the I/O thread calls
//! [`flush`] before it can block or yield); make one twice; be on where nothing flushes it (it
//! is off on every thread until [`begin`]). Not built under loom, whose models call
//! [`Notify::notify_lazy`](crate::pipe::Notify::notify_lazy) and [`Notify::wake_owed`](crate::pipe::Notify::wake_owed) themselves.

use std::cell::{Cell, RefCell};

use crate::pipe::NotifyHandle;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static OWED: RefCell<Vec<NotifyHandle>> = const { RefCell::new(Vec::new()) };
}

/// Turns deferral on for this thread, until [`flush`].
pub fn begin() {
    ON.with(|on| on.set(true));
}

/// Turns deferral off for this thread and makes every wake it owes, in the order owed.
pub fn flush() {
    ON.with(|on| on.set(false));
    if OWED.with(|o| o.borrow().is_empty()) {
        return;
    }
    // Taken out of the cell first, so that no wake runs with the list borrowed.
    let mut owed = OWED.with(|o| std::mem::take(&mut *o.borrow_mut()));
    for n in owed.drain(..) {
        n.wake_owed();
    }
    // The list's capacity is kept for the next turn.
    OWED.with(|o| *o.borrow_mut() = owed);
}

/// Notifies `n`: at once when this thread defers nothing, else by [`Notify::notify_lazy`](crate::pipe::Notify::notify_lazy),
/// keeping `n` for [`flush`] when that leaves a wake owed.
#[inline]
pub(crate) fn notify(n: &NotifyHandle) {
    if ON.with(Cell::get) {
        if n.notify_lazy() {
            OWED.with(|o| o.borrow_mut().push(n.clone()));
        }
        return;
    }
    n.notify();
}

/// Whether this thread defers wakes now (for tests).
#[cfg(test)]
fn is_on() -> bool {
    ON.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::pipe::Notify;

    /// Counts what it is asked to do; owes a wake when `asleep`.
    #[derive(Default)]
    struct Probe {
        asleep: bool,
        notified: AtomicUsize,
        woken: AtomicUsize,
    }

    impl Notify for Probe {
        fn notify(&self) {
            self.notified.fetch_add(1, Ordering::Relaxed);
            if self.asleep {
                self.woken.fetch_add(1, Ordering::Relaxed);
            }
        }
        fn notify_lazy(&self) -> bool {
            self.notified.fetch_add(1, Ordering::Relaxed);
            self.asleep
        }
        fn wake_owed(&self) {
            self.woken.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn off_by_default_a_notify_wakes_at_once() {
        assert!(!is_on());
        let p = Arc::new(Probe {
            asleep: true,
            ..Probe::default()
        });
        let h: NotifyHandle = p.clone();
        notify(&h);
        assert_eq!(p.notified.load(Ordering::Relaxed), 1);
        assert_eq!(p.woken.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn on_a_sleeper_is_notified_at_once_and_woken_at_the_flush() {
        let sleeper = Arc::new(Probe {
            asleep: true,
            ..Probe::default()
        });
        let awake = Arc::new(Probe::default());
        let (hs, ha): (NotifyHandle, NotifyHandle) = (sleeper.clone(), awake.clone());
        begin();
        notify(&hs);
        notify(&ha);
        // The flag is set at once; the sleeper's wake waits for the flush.
        assert_eq!(sleeper.notified.load(Ordering::Relaxed), 1);
        assert_eq!(awake.notified.load(Ordering::Relaxed), 1);
        assert_eq!(sleeper.woken.load(Ordering::Relaxed), 0);
        flush();
        assert!(!is_on());
        assert_eq!(sleeper.woken.load(Ordering::Relaxed), 1);
        assert_eq!(awake.woken.load(Ordering::Relaxed), 0);
        // Nothing is kept past the flush: a second one wakes no one again.
        flush();
        assert_eq!(sleeper.woken.load(Ordering::Relaxed), 1);
        assert_eq!(Arc::strong_count(&sleeper), 2);
    }
}
