//! The command mailbox of an I/O thread: many senders, one consumer.
//!
//! Owns: the queue of commands sent to one thread (attach a connection, activate a pipe,
//! terminate, …), its closing at shutdown, and waking the thread through its [`Signal`] when —
//! and only when — the thread has announced that it sleeps.
//!
//! Must never: block a sender for longer than an uncontended lock section (a push), make a
//! system call in `send` while the thread is awake, or interpret commands.
//!
//! # Why a mutex
//!
//! Commands are control traffic (a handful per connection lifetime, not per message), the queue
//! is drained in batches with one lock, and an uncontended lock costs about as much as the
//! compare-and-swap a lock-free MPSC list needs per push. A `Mutex<VecDeque>` is small, obviously
//! correct, checked by loom with its real semantics, and keeps FIFO order per sender and a
//! total order across senders. The data path (messages) goes through [`pipe`](crate::pipe)s.
//! An atomic length lets the consumer skip the lock when the mailbox is empty.
//!
//! # Wakeup protocol
//!
//! A sender pushes under the lock, then calls [`Signal::notify`]. The consuming thread, before
//! blocking, calls [`Signal::prepare_sleep`]: if a send's notify came first, it does not sleep;
//! otherwise that notify writes the eventfd. So a command is never left unseen while the thread
//! sleeps, and a send while the thread runs costs the lock and one atomic RMW.

use std::collections::VecDeque;
use std::fmt;

use crate::signal::Signal;
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering};

struct Queue<C> {
    commands: VecDeque<C>,
    closed: bool,
}

struct Inner<C> {
    queue: Mutex<Queue<C>>,
    /// Length of `queue.commands`, updated under the lock; read without it by the consumer.
    len: AtomicUsize,
    signal: std::sync::Arc<Signal>,
}

impl<C> Inner<C> {
    fn lock(&self) -> crate::sync::MutexGuard<'_, Queue<C>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The consuming side of a mailbox, owned by its I/O thread.
pub struct Mailbox<C> {
    inner: Arc<Inner<C>>,
}

/// A sending handle: cloneable, `Send + Sync` (for `C: Send`).
pub struct MailboxSender<C> {
    inner: Arc<Inner<C>>,
}

impl<C> Clone for MailboxSender<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<C: Send> Mailbox<C> {
    /// A mailbox that wakes its thread through `signal` (the thread's one wakeup signal, which
    /// its pipes may share).
    pub fn new(signal: std::sync::Arc<Signal>) -> Self {
        Self {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue {
                    commands: VecDeque::new(),
                    closed: false,
                }),
                len: AtomicUsize::new(0),
                signal,
            }),
        }
    }

    /// A new sending handle.
    pub fn sender(&self) -> MailboxSender<C> {
        MailboxSender {
            inner: self.inner.clone(),
        }
    }

    /// The signal this mailbox notifies.
    pub fn signal(&self) -> &std::sync::Arc<Signal> {
        &self.inner.signal
    }

    /// Takes the oldest command, if any. No lock when the mailbox is empty.
    pub fn try_recv(&self) -> Option<C> {
        if self.inner.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = self.inner.lock();
        let cmd = q.commands.pop_front();
        self.inner.len.store(q.commands.len(), Ordering::Release);
        cmd
    }

    /// Moves every queued command to `out` (in order) with one lock; returns how many. No lock
    /// when the mailbox is empty.
    pub fn drain(&self, out: &mut Vec<C>) -> usize {
        if self.inner.len.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let mut q = self.inner.lock();
        let n = q.commands.len();
        out.extend(q.commands.drain(..));
        self.inner.len.store(0, Ordering::Release);
        n
    }

    /// Commands queued now (a hint).
    #[inline]
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::Acquire)
    }

    /// Whether no command is queued now (a hint).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses further sends (they return the command back). Commands already queued stay
    /// drainable. Idempotent; also done by drop (which drops the queued commands).
    pub fn close(&self) {
        self.inner.lock().closed = true;
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }
}

impl<C: Send> MailboxSender<C> {
    /// Queues `cmd` and notifies the thread's signal (an eventfd write only if the thread has
    /// announced its sleep). Returns the command when the mailbox is closed.
    pub fn send(&self, cmd: C) -> Result<(), C> {
        {
            let mut q = self.inner.lock();
            if q.closed {
                return Err(cmd);
            }
            q.commands.push_back(cmd);
            self.inner.len.store(q.commands.len(), Ordering::Release);
        }
        self.inner.signal.notify();
        Ok(())
    }

    /// Whether the mailbox is closed (sends would fail).
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }
}

impl<C> Drop for Mailbox<C> {
    fn drop(&mut self) {
        let dropped = {
            let mut q = self.inner.lock();
            q.closed = true;
            self.inner.len.store(0, Ordering::Release);
            std::mem::take(&mut q.commands)
        };
        drop(dropped);
    }
}

impl<C> fmt::Debug for Mailbox<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("len", &self.inner.len.load(Ordering::Relaxed))
            .field("signal", &self.inner.signal)
            .finish()
    }
}

impl<C> fmt::Debug for MailboxSender<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailboxSender").finish_non_exhaustive()
    }
}
