//! Who may write a connection's bytes to its socket: its I/O thread, or — while the I/O thread
//! has nothing to send — the application thread, which then writes a whole message itself
//! instead of queueing it and waking the I/O thread (the latency fast path of issue 14: one
//! thread hand-off less per message, two per request-reply round trip).
//!
//! One word per pipe pair: an owner (the I/O thread `IO`, the application `APP`, or nobody
//! `IDLE`), an `OPEN` bit (a connection is attached and may be written directly) and a `WANT`
//! bit (the I/O thread found the application writing and waits to be told when it is done).
//! Beside it, a slot only the owner touches: the connection (its descriptor), the I/O thread's
//! wake-up, and bytes the application could not write.
//!
//! The driving contract:
//! - The I/O side starts as the owner. It [`open`](Handover::open)s the hand-over once its
//!   connection may take direct writes, [`io_claim`](Handover::io_claim)s the word before it
//!   reads the socket's pipe or writes to the connection, takes the
//!   [`leftover`](Handover::take_leftover) first, and [`io_release`](Handover::io_release)s it
//!   only with nothing queued, nothing in flight and the pipe read to its end. When its
//!   connection ends it [`close`](Handover::close)s the hand-over (from any state).
//! - The application [`app_claim`](Handover::app_claim)s an open, idle word, checks that the
//!   pipe is read to its end (else it would overtake queued messages), writes, and ends its
//!   turn with [`AppTurn::finish`] or, when the connection took only part,
//!   [`AppTurn::hand_over`] with the rest, which the I/O thread writes before anything else.
//!   Either wakes the I/O thread when it asked (`WANT`); a hand-over always does.
//!
//! Must never: let two threads write the connection at once, let the application write while
//! the I/O side holds unsent bytes or unread messages, or lose the I/O thread's wake-up.
//! Modelled by loom (`engine/tests/loom_handover.rs`).

use crate::pipe::NotifyHandle;
use crate::sync::{AtomicUsize, Ordering, UnsafeCell};

const OWNER: usize = 0b11;
const IDLE: usize = 0;
const IO: usize = 1;
const APP: usize = 2;
/// The I/O side waits for the application's turn to end.
const WANT: usize = 0b100;
/// A connection is attached: the application may claim the word.
const OPEN: usize = 0b1000;

/// What only the owner touches.
struct Slot<C> {
    conn: Option<C>,
    notify: Option<NotifyHandle>,
    leftover: Option<bytes::Bytes>,
}

/// See the module documentation. `C` is the connection (the engine's shared descriptor).
pub struct Handover<C> {
    state: AtomicUsize,
    slot: UnsafeCell<Slot<C>>,
}

// SAFETY: the slot is accessed only by the word's owner (the protocol above; the owner changes
// with Acquire/Release on `state`), so sharing the hand-over shares no unsynchronised access.
unsafe impl<C: Send> Sync for Handover<C> {}
// SAFETY: as above; the slot's contents are Send.
unsafe impl<C: Send> Send for Handover<C> {}

impl<C> std::fmt::Debug for Handover<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handover")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish()
    }
}

impl<C> Default for Handover<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C> Handover<C> {
    /// A closed hand-over owned by the I/O side.
    pub fn new() -> Self {
        Handover {
            state: AtomicUsize::new(IO),
            slot: UnsafeCell::new(Slot {
                conn: None,
                notify: None,
                leftover: None,
            }),
        }
    }

    /// Runs `f` on the slot. Caller: the current owner of the word.
    fn with_slot<R>(&self, f: impl FnOnce(&mut Slot<C>) -> R) -> R {
        // SAFETY: only the owner calls this (every caller below holds the word), and the
        // owner changes only through Acquire/Release operations on `state`.
        self.slot.with_mut(|p| f(unsafe { &mut *p }))
    }

    /// Attaches `conn` (the I/O side, owning the word): from now on the application may write
    /// to it whenever the word is released; `notify` wakes the I/O side after a turn it waited
    /// for, or that left bytes behind.
    ///
    /// A previous connection's turn may still be ending (a reconnect racing the last direct
    /// write on the old connection): this waits for it, which takes one non-blocking write.
    pub fn open(&self, conn: C, notify: NotifyHandle) {
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s & OWNER == APP {
                // Only a turn on the closed connection can hold it: it ends by itself.
                crate::sync::spin_loop();
                continue;
            }
            debug_assert_eq!(s & OWNER, IO, "open by the owner");
            break;
        }
        self.with_slot(|slot| {
            slot.conn = Some(conn);
            slot.notify = Some(notify);
            slot.leftover = None;
        });
        self.state.store(IO | OPEN, Ordering::Release);
    }

    /// Detaches the connection (the I/O side, its connection ending), whoever owns the word:
    /// the application can no longer claim it. The I/O side owns it afterwards; the slot is
    /// emptied by whoever owns it now (so the descriptor closes when the last user lets go).
    pub fn close(&self) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & OPEN == 0 {
                return;
            }
            if s & OWNER == APP {
                // The application's turn empties the slot when it ends.
                match self.state.compare_exchange(
                    s,
                    s & !OPEN & !WANT,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return,
                    Err(now) => s = now,
                }
            } else {
                match self
                    .state
                    .compare_exchange(s, IO, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        self.with_slot(|slot| {
                            slot.conn = None;
                            slot.notify = None;
                            slot.leftover = None;
                        });
                        return;
                    }
                    Err(now) => s = now,
                }
            }
        }
    }

    /// The I/O side claims the word: `true` when it owns it now (it was idle, or already the
    /// I/O side's, also by a hand-over); `false` while the application writes — then the
    /// application's turn ends with a wake-up.
    pub fn io_claim(&self) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let next = match s & OWNER {
                IO => return true,
                IDLE => (s & !OWNER) | IO,
                _ if s & WANT != 0 => return false,
                _ => s | WANT,
            };
            match self
                .state
                .compare_exchange(s, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return next & OWNER == IO,
                Err(now) => s = now,
            }
        }
    }

    /// The I/O side lets go (owning it, with nothing to send, nothing in flight and the pipe
    /// read to its end): the application may write directly until the I/O side claims it
    /// again. Ignored when closed (the I/O side keeps it).
    pub fn io_release(&self) {
        let s = self.state.load(Ordering::Relaxed);
        debug_assert_eq!(s & OWNER, IO, "released by its owner");
        if s & OPEN != 0 {
            self.state.store(OPEN | IDLE, Ordering::Release);
        }
    }

    /// Bytes an application turn could not write (the I/O side, owning the word): they go to
    /// the connection before anything else.
    pub fn take_leftover(&self) -> Option<bytes::Bytes> {
        debug_assert_eq!(self.state.load(Ordering::Relaxed) & OWNER, IO);
        self.with_slot(|slot| slot.leftover.take())
    }

    /// Whether a connection is attached.
    pub fn is_open(&self) -> bool {
        self.state.load(Ordering::Relaxed) & OPEN != 0
    }

    /// The application claims an open, idle word: its turn to write the connection.
    #[inline]
    pub fn app_claim(&self) -> Option<AppTurn<'_, C>> {
        self.state
            .compare_exchange(
                OPEN | IDLE,
                OPEN | APP,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .ok()
            .map(|_| AppTurn { h: self })
    }
}

/// The application's turn (see [`Handover::app_claim`]); end it with [`AppTurn::finish`] or
/// [`AppTurn::hand_over`] (dropping it finishes).
pub struct AppTurn<'a, C> {
    h: &'a Handover<C>,
}

impl<C> std::fmt::Debug for AppTurn<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppTurn").finish_non_exhaustive()
    }
}

impl<C> AppTurn<'_, C> {
    /// The connection to write.
    pub fn conn(&self) -> Option<&C> {
        // SAFETY: the turn owns the word; the reference lives no longer than the turn.
        self.h.slot.with(|p| unsafe { (*p).conn.as_ref() })
    }

    /// Ends the turn, everything written (or nothing).
    pub fn finish(self) {
        self.end(None);
        std::mem::forget(self);
    }

    /// Ends the turn with `rest` unwritten: the I/O side owns the word from now on and writes
    /// `rest` first (it is woken for it).
    pub fn hand_over(self, rest: bytes::Bytes) {
        self.end(Some(rest));
        std::mem::forget(self);
    }

    fn end(&self, rest: Option<bytes::Bytes>) {
        let h = self.h;
        let handing = rest.is_some();
        // Whom to wake, read while the slot is ours.
        let notify = h.with_slot(|slot| {
            slot.leftover = rest;
            slot.notify.clone()
        });
        let mut s = h.state.load(Ordering::Relaxed);
        loop {
            if s & OPEN == 0 {
                // Closed during the turn: the connection is gone; empty the slot for the I/O
                // side, which owns the word from now on.
                drop(notify);
                h.with_slot(|slot| {
                    slot.conn = None;
                    slot.notify = None;
                    slot.leftover = None;
                });
                h.state.store(IO, Ordering::Release);
                return;
            }
            let next = if handing { OPEN | IO } else { OPEN | IDLE };
            match h
                .state
                .compare_exchange(s, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    if handing || s & WANT != 0 {
                        if let Some(n) = notify {
                            n.notify();
                        }
                    }
                    return;
                }
                Err(now) => s = now,
            }
        }
    }
}

impl<C> Drop for AppTurn<'_, C> {
    fn drop(&mut self) {
        // `finish`/`hand_over` end the turn and forget the guard; a guard dropped otherwise
        // (an unwinding caller) finishes.
        self.end(None);
    }
}
