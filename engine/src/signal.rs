//! The readiness signal: one per socket (readable/writable/terminated) and one per I/O thread
//! (wakes it from its ring or poller).
//!
//! Owns: a level-style "something happened since you last looked" flag, the announcement that
//! the waiter is (about to be) asleep, and an eventfd that is written only when it is.
//!
//! Must never: make a system call in [`Signal::notify`] while the waiter is awake; lose a
//! notification that races with the waiter going to sleep; know what the notification means
//! (the waiter looks at its pipes, mailbox, flags after being woken).
//!
//! # Protocol
//!
//! One atomic word holds two bits: `NOTIFIED` (set by notifiers, consumed by the waiter) and
//! `SLEEPING` (set by the waiter before it blocks, cleared by the waiter after). A notifier does
//! one `fetch_or(NOTIFIED)`: if `NOTIFIED` was already set, the notifications coalesce and it is
//! done; if it was clear and `SLEEPING` set, this notifier alone writes the eventfd (the one
//! wakeup of this sleep). A waiter sets `SLEEPING` with one `fetch_or` too and sleeps only if
//! `NOTIFIED` was clear in the same atomic step, so a notify either precedes the announcement
//! (the waiter sees it and does not sleep) or follows it (the notifier sees `SLEEPING` and
//! writes the eventfd): no lost wakeup. Notifiers' effects before `notify` happen-before the
//! waiter's consumption of the flag (all accesses are RMWs with acquire-release).
//!
//! # Two ways to wait
//!
//! * An application thread blocks in [`Signal::wait`]: bounded spin that yields the CPU each
//!   turn, announce, re-check, then `poll(2)` on the eventfd.
//! * A thread that sleeps elsewhere (an I/O thread inside `io_uring_enter` or `epoll_wait`, or
//!   `zmq_poll` in `poll(2)`) watches [`Signal::fd`] and calls [`Signal::prepare_sleep`] before
//!   blocking and [`Signal::after_wake`] after.
//!
//! The eventfd may occasionally be readable without a pending notification (a notifier that saw
//! `SLEEPING` may write it after the waiter already woke by timeout); every consumer drains it
//! and re-checks the flag, so such a stale token costs one spurious wakeup, never a lost one.

use std::fmt;
use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::pipe::Notify;
use crate::sync::{AtomicUsize, Ordering};

const NOTIFIED: usize = 1;
const SLEEPING: usize = 2;

/// How [`Signal::wait_interruptible`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A notification came (and was consumed).
    Notified,
    /// The timeout passed without one.
    TimedOut,
    /// A signal handler ran on this thread while it was blocked.
    Interrupted,
}

/// Outcome of waiting for the eventfd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Poll {
    Readable,
    TimedOut,
    #[cfg_attr(loom, allow(dead_code))]
    Interrupted,
}

#[cfg(not(loom))]
mod fd {
    use super::Poll;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::time::Duration;

    /// A non-blocking eventfd.
    #[derive(Debug)]
    pub(super) struct EventFd(OwnedFd);

    impl EventFd {
        pub(super) fn new() -> io::Result<Self> {
            // SAFETY: plain system call; no pointers involved.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
            Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        pub(super) fn raw(&self) -> RawFd {
            self.0.as_raw_fd()
        }

        /// Makes the eventfd readable.
        pub(super) fn wake(&self) {
            let one: u64 = 1;
            loop {
                // SAFETY: writes 8 bytes from a live local `u64` to a descriptor we own.
                let n = unsafe { libc::write(self.raw(), (&one as *const u64).cast(), 8) };
                if n >= 0 {
                    return;
                }
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // EAGAIN: the counter is at its maximum, i.e. already readable.
                    _ => return,
                }
            }
        }

        /// Resets the eventfd to not readable; returns whether it was readable.
        pub(super) fn drain(&self) -> bool {
            let mut buf: u64 = 0;
            loop {
                // SAFETY: reads at most 8 bytes into a live local `u64`.
                let n = unsafe { libc::read(self.raw(), (&mut buf as *mut u64).cast(), 8) };
                if n >= 0 {
                    return true;
                }
                if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    return false;
                }
            }
        }

        /// Blocks until readable, or the timeout.
        pub(super) fn poll(&self, timeout: Option<Duration>) -> Poll {
            let mut pfd = libc::pollfd {
                fd: self.raw(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ts = timeout.map(|t| libc::timespec {
                tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                tv_nsec: t.subsec_nanos() as _,
            });
            let ts_ptr = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `pfd` is one live `pollfd`; `ts_ptr` is null or points to a live
            // `timespec`; a null signal mask leaves the mask unchanged.
            let n = unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, std::ptr::null()) };
            match n {
                0 => Poll::TimedOut,
                n if n > 0 => Poll::Readable,
                _ => Poll::Interrupted,
            }
        }
    }
}

#[cfg(loom)]
mod fd {
    //! Loom stand-in for the eventfd: a token under a mutex and a condvar. A timed poll models
    //! a timeout that expires at once; an untimed poll blocks (so that loom reports a lost
    //! wakeup as a deadlock).
    use super::Poll;
    use crate::sync::{Condvar, Mutex};
    use std::io;
    use std::time::Duration;

    #[derive(Debug)]
    pub(super) struct EventFd {
        token: Mutex<bool>,
        cv: Condvar,
    }

    impl EventFd {
        pub(super) fn new() -> io::Result<Self> {
            Ok(Self {
                token: Mutex::new(false),
                cv: Condvar::new(),
            })
        }

        pub(super) fn wake(&self) {
            *self.token.lock().unwrap() = true;
            self.cv.notify_all();
        }

        pub(super) fn drain(&self) -> bool {
            std::mem::replace(&mut *self.token.lock().unwrap(), false)
        }

        pub(super) fn poll(&self, timeout: Option<Duration>) -> Poll {
            let mut token = self.token.lock().unwrap();
            if timeout.is_some() {
                return if *token {
                    Poll::Readable
                } else {
                    Poll::TimedOut
                };
            }
            while !*token {
                token = self.cv.wait(token).unwrap();
            }
            Poll::Readable
        }
    }
}

/// A wakeup signal with an eventfd behind it. Share it with `std::sync::Arc`.
///
/// Any thread may [`notify`](Self::notify). One thread at a time is *the waiter*: it calls
/// [`wait`](Self::wait), or [`prepare_sleep`](Self::prepare_sleep) /
/// [`after_wake`](Self::after_wake), and [`clear`](Self::clear); two threads waiting on one
/// signal at once is a misuse (a notification wakes one of them, or neither after a timeout).
pub struct Signal {
    state: CachePadded<AtomicUsize>,
    fd: fd::EventFd,
}

impl Signal {
    /// Creates a signal, not notified.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            state: CachePadded::new(AtomicUsize::new(0)),
            fd: fd::EventFd::new()?,
        })
    }

    /// Records that something happened. One atomic RMW when the waiter is awake or a
    /// notification is already pending; writes the eventfd only when this call is the first
    /// since the waiter announced its sleep.
    #[inline]
    pub fn notify(&self) {
        let prev = self.state.fetch_or(NOTIFIED, Ordering::AcqRel);
        if prev & (NOTIFIED | SLEEPING) == SLEEPING {
            self.fd.wake();
        }
    }

    /// Whether a notification is pending (not consumed yet).
    #[inline]
    pub fn is_notified(&self) -> bool {
        self.state.load(Ordering::Acquire) & NOTIFIED != 0
    }

    /// Whether the waiter has announced its sleep and not yet woken (a hint, for tests and
    /// metrics).
    #[inline]
    pub fn is_sleeping(&self) -> bool {
        self.state.load(Ordering::Acquire) & SLEEPING != 0
    }

    /// Consumes a pending notification; returns whether there was one. The waiter calls it
    /// before looking at what the signal guards. Does not touch the eventfd.
    #[inline]
    pub fn clear(&self) -> bool {
        self.state.load(Ordering::Relaxed) & NOTIFIED != 0
            && self.state.fetch_and(!NOTIFIED, Ordering::AcqRel) & NOTIFIED != 0
    }

    /// Announces that the waiter is about to sleep outside this type (on [`fd`](Self::fd)).
    ///
    /// Returns `false` when a notification is pending: it is consumed, the waiter stays awake
    /// and must look at its work again. Returns `true` when the waiter may block: any
    /// `notify` from now on makes the eventfd readable. After the block, call
    /// [`after_wake`](Self::after_wake), whether it was woken or timed out.
    pub fn prepare_sleep(&self) -> bool {
        // SLEEPING may be set already: `rearm` leaves it set for an external poller.
        let prev = self.state.fetch_or(SLEEPING, Ordering::AcqRel);
        if prev & NOTIFIED != 0 {
            self.state
                .fetch_and(!(SLEEPING | NOTIFIED), Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Ends the sleep announced by [`prepare_sleep`](Self::prepare_sleep): consumes a pending
    /// notification, drains the eventfd, and returns whether the waiter was notified.
    pub fn after_wake(&self) -> bool {
        let prev = self
            .state
            .fetch_and(!(SLEEPING | NOTIFIED), Ordering::AcqRel);
        // A notifier that saw SLEEPING has written the eventfd or is about to: drain what is
        // there now (a write still in flight leaves a stale token, which consumers tolerate).
        self.fd.drain();
        prev & NOTIFIED != 0
    }

    /// Ends the sleep announced by [`prepare_sleep`](Self::prepare_sleep) without touching the
    /// eventfd: for a waiter whose poller reports the eventfd's readiness itself (the I/O
    /// thread's ring or epoll), which then calls [`drain_fd`](Self::drain_fd) only when that
    /// readiness was reported — a wake by I/O costs no `read(2)`. Every notifier that saw
    /// `SLEEPING` writes the eventfd, and every write is reported, so no token outlives the
    /// report that drains it. Returns whether the waiter was notified.
    pub fn end_sleep(&self) -> bool {
        let prev = self
            .state
            .fetch_and(!(SLEEPING | NOTIFIED), Ordering::AcqRel);
        prev & NOTIFIED != 0
    }

    /// Drains the eventfd (after its readiness was reported; see
    /// [`end_sleep`](Self::end_sleep)). Returns whether a token was there.
    pub fn drain_fd(&self) -> bool {
        self.fd.drain()
    }

    /// The edge-triggered fd contract (libzmq's ZMQ_FD with ZMQ_EVENTS): consumes what
    /// happened since the last call — a pending notification, and the eventfd's token — and
    /// leaves the eventfd **armed**: the first `notify` after this call makes it readable.
    /// The caller then looks at what the signal guards; if nothing is ready, a poller may block
    /// on [`fd`](Self::fd) without missing anything that happens from the call on. Returns
    /// whether a notification was pending.
    ///
    /// The arming lasts until the next `rearm`, [`after_wake`](Self::after_wake) or blocking
    /// [`wait`](Self::wait) (which may also be used after it).
    pub fn rearm(&self) -> bool {
        // One atomic step: NOTIFIED consumed and SLEEPING announced, so a notify either came
        // before (seen here) or finds SLEEPING and writes the eventfd.
        let prev = self.state.swap(SLEEPING, Ordering::AcqRel);
        if prev & SLEEPING != 0 {
            // Armed before: a notifier may have written the eventfd (or be about to; a token
            // that lands after this drain is a spurious wakeup, drained by the next call).
            self.fd.drain();
        }
        prev & NOTIFIED != 0
    }

    /// Arms the eventfd for an external poller that has not looked yet ([`rearm`](Self::rearm))
    /// and, when a notification was pending, makes the eventfd readable at once, so that the
    /// poller's first wait ends and it looks at what the signal guards. For a socket's ZMQ_FD,
    /// handed out for the first time: libzmq's fd is readable for whatever happened since the
    /// socket was made, ZMQ_EVENTS read or not. Returns whether a notification was pending.
    pub fn arm_for_poller(&self) -> bool {
        let pending = self.rearm();
        if pending {
            self.fd.wake();
        }
        pending
    }

    /// Blocks until the eventfd is readable or the timeout passes, without consuming anything:
    /// what an external poller does between [`prepare_sleep`](Self::prepare_sleep) and
    /// [`after_wake`](Self::after_wake). Returns whether it is readable.
    pub fn poll_fd(&self, timeout: Option<Duration>) -> bool {
        self.fd.poll(timeout) == Poll::Readable
    }

    /// Waits for a notification, consumes it and returns `true`; returns `false` after
    /// `timeout` (`None` = forever) without one.
    ///
    /// First spins for up to `spin` (may be zero) watching the flag with plain loads and
    /// yielding the CPU between looks (`sched_yield(2)`: a thread waiting to run on this core,
    /// such as the I/O thread that will notify, runs first; with none, the look comes again at
    /// once), then announces its sleep, re-checks, and blocks in `poll(2)` on the eventfd for
    /// the rest of the timeout.
    pub fn wait(&self, timeout: Option<Duration>, spin: Duration) -> bool {
        self.wait_inner(timeout, spin, false) == Wake::Notified
    }

    /// Like [`wait`](Self::wait), but a signal handled by this thread while it is blocked
    /// ends the wait with [`Wake::Interrupted`] (`poll(2)` failed with EINTR), as libzmq's
    /// blocking calls end with EINTR. A notification that raced with the signal wins.
    pub fn wait_interruptible(&self, timeout: Option<Duration>, spin: Duration) -> Wake {
        self.wait_inner(timeout, spin, true)
    }

    fn wait_inner(&self, timeout: Option<Duration>, spin: Duration, interruptible: bool) -> Wake {
        if self.clear() {
            return Wake::Notified;
        }
        #[cfg(not(loom))]
        let deadline = timeout.map(|t| Instant::now() + t);
        if !spin.is_zero() {
            #[cfg(not(loom))]
            {
                let start = Instant::now();
                let spin = timeout.map_or(spin, |t| spin.min(t));
                let mut n = 0u32;
                loop {
                    if self.state.load(Ordering::Relaxed) & NOTIFIED != 0 && self.clear() {
                        return Wake::Notified;
                    }
                    // Each turn gives the CPU away if another thread wants it: the notifier is
                    // often a thread of this process on this very core (its I/O thread), and a
                    // spin that kept the core would delay the event it waits for.
                    crate::sync::yield_cpu();
                    n = n.wrapping_add(1);
                    // Read the clock every 8 turns: a turn is a system call, so this is
                    // cheap and bounds the overshoot to a few microseconds.
                    if n % 8 == 0 && start.elapsed() >= spin {
                        break;
                    }
                }
            }
            #[cfg(loom)]
            {
                crate::sync::spin_loop();
                if self.clear() {
                    return Wake::Notified;
                }
            }
        }
        if !self.prepare_sleep() {
            return Wake::Notified;
        }
        let mut interrupted = false;
        loop {
            #[cfg(not(loom))]
            let remaining = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(r) if !r.is_zero() => Some(r),
                    _ => break,
                },
            };
            #[cfg(loom)]
            let remaining = timeout;
            match self.fd.poll(remaining) {
                Poll::Readable => {
                    if self.state.load(Ordering::Acquire) & NOTIFIED != 0 {
                        break;
                    }
                    // A stale token from an earlier sleep: drain it, then re-check, in this
                    // order (a notifier's token drained here was written after its fetch_or).
                    self.fd.drain();
                    if self.state.load(Ordering::Acquire) & NOTIFIED != 0 {
                        break;
                    }
                }
                Poll::TimedOut => break,
                Poll::Interrupted if interruptible => {
                    interrupted = true;
                    break;
                }
                Poll::Interrupted => {}
            }
        }
        match (self.after_wake(), interrupted) {
            (true, _) => Wake::Notified,
            (false, true) => Wake::Interrupted,
            (false, false) => Wake::TimedOut,
        }
    }

    /// The eventfd: readable after a `notify` that followed a successful
    /// [`prepare_sleep`](Self::prepare_sleep) (and, rarely, spuriously). Register it with a
    /// poller; never read it directly (use [`after_wake`](Self::after_wake)).
    ///
    /// Under loom there is no eventfd and this returns -1.
    pub fn fd(&self) -> std::os::fd::RawFd {
        #[cfg(not(loom))]
        return self.fd.raw();
        #[cfg(loom)]
        return -1;
    }
}

impl Notify for Signal {
    #[inline]
    fn notify(&self) {
        Signal::notify(self);
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("Signal")
            .field("notified", &(s & NOTIFIED != 0))
            .field("sleeping", &(s & SLEEPING != 0))
            .field("fd", &self.fd)
            .finish()
    }
}
