//! The per-thread reactor: in-flight operations, handlers, timers, and completion dispatch.
//!
//! A [`Handler`] is a state machine living on one I/O thread (a listener, a connection). It
//! submits [`Op`]s through its [`Cx`] and receives [`Completion`]s, timer expiries and
//! cross-thread notifications. The reactor owns every operation's resources in a slab keyed by
//! index + generation (the io_uring `user_data`), and turns backend results into completions:
//! it continues partial sends until everything is written, re-arms multishot accept/receive
//! when the kernel ends them early, parks receives that ran out of buffers until buffers come
//! back, and lends a received buffer to its handler for the one callback (the buffer goes back
//! to the pool when the handler returns: nothing a socket keeps holds one).
//!
//! It must never free an operation's resources before its final completion, even when the
//! handler that asked for it is gone: that is what keeps in-flight buffers valid.

mod completion;

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use slab::Slab;

use crate::backend::{
    op_key, split_key, Backend, OpSlot, OpState, RawCompletion, SendSpare, SendState, SharedFd,
};
use crate::body_pool::BodyBuf;
use crate::bufpool::BufPool;
use crate::io_thread::{IoThreadHandle, ThreadStats};
use crate::send_buf::SendBuf;
use crate::timers::{TimerId, Timers};

/// An operation a handler asks its I/O thread to perform.
#[derive(Debug)]
pub enum Op {
    /// Accept connections on a listening socket until cancelled or failed (multishot).
    Accept {
        /// The listening socket.
        fd: SharedFd,
    },
    /// Connect a non-blocking socket to `addr`.
    Connect {
        /// The socket, created by the caller.
        fd: SharedFd,
        /// Where to connect.
        addr: socket2::SockAddr,
    },
    /// Receive into the thread's provided buffers until EOF, error or cancel (multishot).
    Recv {
        /// The connected socket.
        fd: SharedFd,
    },
    /// Receive once into one of the thread's provided buffers: a single completion (bytes,
    /// EOF, error or `ECANCELED`) with `more` false. The kernel reads no more than one buffer,
    /// and no more than [`RECV_ONCE_MAX`](crate::RECV_ONCE_MAX) bytes, for it, so a
    /// connection close to its high-water mark takes in at most that much past the point where
    /// it stops asking (a multishot receive goes on filling buffers until its cancel reaches
    /// the kernel).
    RecvOnce {
        /// The connected socket.
        fd: SharedFd,
    },
    /// Receive once straight into `buf`'s unwritten room (at most [`BodyBuf::remaining`]
    /// bytes, which must not be 0): a single completion,
    /// [`Completion::ReceivedInto`], which gives the buffer back with what arrived appended.
    /// For the rest of a large frame body whose size is known: the kernel copies it where the
    /// message keeps it, with no receive buffer and no copy between. The reactor holds the
    /// buffer until the final completion, so it outlives the kernel's writes whatever the
    /// handler does meanwhile.
    RecvInto {
        /// The connected socket.
        fd: SharedFd,
        /// Where the bytes go.
        buf: BodyBuf,
    },
    /// Write all of `bufs` (one syscall when it can, an iovec list for several buffers),
    /// continuing after partial writes; the buffers stay alive until the final completion.
    Send {
        /// The connected socket.
        fd: SharedFd,
        /// Bytes to write, in order.
        bufs: Vec<SendBuf>,
        /// Use `SEND_ZC` where the backend has it (worth it only for large bodies).
        zero_copy: bool,
    },
    /// Close a descriptor nobody else holds.
    Close {
        /// The descriptor; closed by the kernel (io_uring) or by close(2) (epoll).
        fd: OwnedFd,
    },
}

/// The outcome of an [`Op`]. `more` (passed beside it) says whether the operation goes on.
///
/// It lives for one [`Handler::on_completion`] call: received bytes are borrowed from the
/// I/O thread's receive buffer, which goes back to the pool (and to the kernel) as soon as the
/// handler returns — a handler copies what it keeps.
#[derive(Debug)]
pub enum Completion<'a> {
    /// A new connection (non-blocking, close-on-exec), or an accept error.
    Accepted(io::Result<OwnedFd>),
    /// The connect finished.
    Connected(io::Result<()>),
    /// Received bytes, borrowed from the thread's receive buffer for this call only; `Ok` of
    /// an empty slice at end of stream, or an error. Running out of buffers is never reported:
    /// the receive waits for buffers.
    Received(io::Result<&'a [u8]>),
    /// The end of an [`Op::RecvInto`]: bytes received into the buffer (`Ok(0)` at end of
    /// stream), or an error (`ECANCELED` after a cancel); the buffer comes back either way,
    /// with the bytes that did arrive counted in it.
    ReceivedInto {
        /// Bytes appended to `buf`, or the error.
        result: io::Result<usize>,
        /// The buffer of the operation.
        buf: BodyBuf,
    },
    /// All bytes written (the total), or the error that stopped it. The buffers come back.
    Sent {
        /// Total bytes written, or the error.
        result: io::Result<usize>,
        /// The buffers that were submitted.
        bufs: Vec<SendBuf>,
    },
    /// The close finished.
    Closed(io::Result<()>),
}

/// Identifies a submitted operation (for cancel, and to tell completions apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpId(u64);

/// Identifies a handler on its I/O thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandlerId {
    pub(crate) key: u32,
    pub(crate) gen: u32,
}

/// A state machine driven by one I/O thread. Every callback runs on that thread.
pub trait Handler: 'static {
    /// Called once, right after the handler is spawned.
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        let _ = cx;
    }
    /// An operation this handler submitted made progress or ended (`more == false`).
    fn on_completion(&mut self, cx: &mut Cx<'_>, op: OpId, completion: Completion<'_>, more: bool);
    /// A timer set with [`Cx::set_timer`] expired.
    fn on_timer(&mut self, cx: &mut Cx<'_>, timer: TimerId) {
        let _ = (cx, timer);
    }
    /// Another thread called [`IoThreadHandle::notify`] for this handler.
    fn on_notify(&mut self, cx: &mut Cx<'_>, token: u64) {
        let _ = (cx, token);
    }
    /// The engine is shutting down: cancel, flush or close. The default closes the handler
    /// (its operations are cancelled).
    fn on_shutdown(&mut self, cx: &mut Cx<'_>) {
        cx.close();
    }
}

struct HandlerSlot {
    gen: u32,
    /// Taken out while one of its callbacks runs.
    handler: Option<Box<dyn Handler>>,
}

/// Finished sends' iovec arrays kept for reuse, at most.
const MAX_SEND_SPARES: usize = 64;

/// Everything a thread's handlers share.
pub(crate) struct Core {
    pub(crate) backend: Backend,
    pub(crate) pool: BufPool,
    ops: Slab<OpSlot>,
    next_gen: u32,
    handlers: Slab<HandlerSlot>,
    pub(crate) timers: Timers<HandlerId>,
    /// Receives that ended with ENOBUFS, waiting for buffers to come back.
    starved: Vec<u64>,
    /// Completions made up by the reactor itself (cancel of a parked receive).
    synthetic: Vec<RawCompletion>,
    /// The iovec arrays and msghdrs of finished sends, for the next ones (no allocation per
    /// send once warm).
    send_spares: Vec<SendSpare>,
    internal_ops: usize,
    pub(crate) now: Instant,
    pub(crate) stats: Arc<ThreadStats>,
    pub(crate) handle: IoThreadHandle,
    pub(crate) shutting_down: bool,
    /// The thread's wakeup fd was reported readable since [`Core::take_wake_fired`].
    wake_fired: bool,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("backend", &self.backend)
            .field("ops", &self.ops.len())
            .field("handlers", &self.handlers.len())
            .finish()
    }
}

impl Core {
    pub(crate) fn new(
        backend: Backend,
        pool: BufPool,
        stats: Arc<ThreadStats>,
        handle: IoThreadHandle,
    ) -> Self {
        Core {
            backend,
            pool,
            ops: Slab::with_capacity(256),
            next_gen: 0,
            handlers: Slab::new(),
            timers: Timers::default(),
            starved: Vec::new(),
            synthetic: Vec::new(),
            send_spares: Vec::new(),
            internal_ops: 0,
            now: Instant::now(),
            stats,
            handle,
            shutting_down: false,
            wake_fired: false,
        }
    }

    fn submit_state(&mut self, owner: Option<HandlerId>, state: OpState) -> OpId {
        self.next_gen = self.next_gen.wrapping_add(1);
        let gen = self.next_gen;
        let entry = self.ops.vacant_entry();
        let key = op_key(entry.key(), gen);
        let slot = entry.insert(OpSlot {
            gen,
            owner: owner.map(|h| (h.key, h.gen)),
            state,
            cancelled: false,
        });
        if owner.is_none() {
            self.internal_ops += 1;
        }
        self.stats.ops_submitted.fetch_add(1, Ordering::Relaxed);
        self.backend.submit(key, &mut slot.state, &mut self.pool);
        OpId(key)
    }

    /// Whether the wakeup fd was reported readable since the last call (its token must then
    /// be drained).
    pub(crate) fn take_wake_fired(&mut self) -> bool {
        std::mem::take(&mut self.wake_fired)
    }

    /// Starts the thread's internal wakeup operation on `fd`.
    pub(crate) fn submit_wake(&mut self, fd: std::os::fd::RawFd) {
        self.submit_state(None, OpState::Wake { fd });
    }

    fn submit(&mut self, owner: HandlerId, op: Op) -> OpId {
        let state = match op {
            Op::Accept { fd } => OpState::Accept { fd },
            Op::Connect { fd, addr } => OpState::Connect {
                fd,
                addr: Box::new(addr),
                started: false,
            },
            Op::Recv { fd } => OpState::Recv { fd, once: false },
            Op::RecvOnce { fd } => OpState::Recv { fd, once: true },
            Op::RecvInto { fd, buf } => OpState::RecvInto { fd, buf },
            Op::Send {
                fd,
                bufs,
                zero_copy,
            } => {
                let zc = zero_copy && matches!(self.backend, Backend::Uring(_));
                OpState::Send(SendState::new(fd, bufs, zc, self.send_spares.pop()))
            }
            Op::Close { fd } => {
                let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
                OpState::Close { fd: Some(fd), raw }
            }
        };
        self.submit_state(Some(owner), state)
    }

    fn cancel(&mut self, id: OpId) {
        let (index, gen) = split_key(id.0);
        let Some(slot) = self.ops.get_mut(index).filter(|s| s.gen == gen) else {
            return;
        };
        if slot.cancelled || slot.owner.is_none() {
            return;
        }
        slot.cancelled = true;
        if let Some(pos) = self.starved.iter().position(|k| *k == id.0) {
            // Parked for buffers: the backend no longer has it, so end it here.
            self.starved.swap_remove(pos);
            self.synthetic.push(RawCompletion {
                key: id.0,
                res: -libc::ECANCELED,
                more: false,
                bid: None,
                notif: false,
            });
            return;
        }
        self.backend.cancel(id.0, &mut slot.state);
    }

    /// Cancels every operation (shutdown), internal ones included when `internal`.
    pub(crate) fn cancel_all(&mut self, internal: bool) {
        let keys: Vec<(u64, bool)> = self
            .ops
            .iter()
            .map(|(i, s)| (op_key(i, s.gen), s.owner.is_none()))
            .collect();
        for (key, is_internal) in keys {
            if is_internal {
                if internal {
                    let (index, _) = split_key(key);
                    self.ops[index].cancelled = true;
                    self.backend.cancel(key, &mut self.ops[index].state);
                }
            } else {
                self.cancel(OpId(key));
            }
        }
    }

    pub(crate) fn total_ops(&self) -> usize {
        self.ops.len()
    }

    /// Waits in the backend for completions (see `Backend::wait`).
    pub(crate) fn wait(
        &mut self,
        timeout: Option<std::time::Duration>,
        out: &mut Vec<RawCompletion>,
    ) -> io::Result<()> {
        self.backend
            .wait(timeout, &mut self.ops, &mut self.pool, out)
    }

    pub(crate) fn has_synthetic(&self) -> bool {
        !self.synthetic.is_empty()
    }

    pub(crate) fn take_synthetic(&mut self, out: &mut Vec<RawCompletion>) {
        out.append(&mut self.synthetic);
    }

    /// Lends the free buffers to the kernel and restarts receives that starved. Returns true
    /// when it did something. (Buffers come back on this thread as each receive completion is
    /// handled, so a starved receive is restarted on the next turn of the loop.)
    pub(crate) fn refill_buffers(&mut self) -> bool {
        if self.starved.is_empty() {
            self.backend.provide(&mut self.pool);
            return false;
        }
        if self.pool.free_len() == 0 {
            return false;
        }
        self.backend.provide(&mut self.pool);
        let starved = std::mem::take(&mut self.starved);
        for key in starved {
            let (index, gen) = split_key(key);
            if let Some(slot) = self.ops.get_mut(index).filter(|s| s.gen == gen) {
                self.stats.recv_rearmed.fetch_add(1, Ordering::Relaxed);
                self.backend.submit(key, &mut slot.state, &mut self.pool);
            }
        }
        true
    }

    /// Runs one callback of handler `id`, if it still exists.
    pub(crate) fn dispatch(
        &mut self,
        id: HandlerId,
        f: impl FnOnce(&mut dyn Handler, &mut Cx<'_>),
    ) {
        let Some(slot) = self
            .handlers
            .get_mut(id.key as usize)
            .filter(|s| s.gen == id.gen)
        else {
            return;
        };
        let Some(mut handler) = slot.handler.take() else {
            return;
        };
        let mut cx = Cx {
            core: self,
            me: Some(id),
            close: false,
        };
        f(&mut *handler, &mut cx);
        if cx.close {
            self.remove_handler(id);
        } else if let Some(slot) = self.handlers.get_mut(id.key as usize) {
            slot.handler = Some(handler);
        }
    }

    pub(crate) fn spawn(&mut self, handler: Box<dyn Handler>) -> HandlerId {
        self.next_gen = self.next_gen.wrapping_add(1);
        let gen = self.next_gen;
        let key = self.handlers.insert(HandlerSlot {
            gen,
            handler: Some(handler),
        }) as u32;
        let id = HandlerId { key, gen };
        self.stats
            .handlers
            .store(self.handlers.len(), Ordering::Relaxed);
        self.dispatch(id, |h, cx| h.on_start(cx));
        id
    }

    fn remove_handler(&mut self, id: HandlerId) {
        if self.handlers.get(id.key as usize).map(|s| s.gen) != Some(id.gen) {
            return;
        }
        self.handlers.remove(id.key as usize);
        self.stats
            .handlers
            .store(self.handlers.len(), Ordering::Relaxed);
        let owned: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, s)| s.owner == Some((id.key, id.gen)))
            .map(|(i, s)| op_key(i, s.gen))
            .collect();
        for key in owned {
            self.cancel(OpId(key));
        }
    }

    /// Asks every handler to shut down.
    pub(crate) fn shutdown_handlers(&mut self) {
        let ids: Vec<HandlerId> = self
            .handlers
            .iter()
            .map(|(k, s)| HandlerId {
                key: k as u32,
                gen: s.gen,
            })
            .collect();
        for id in ids {
            self.dispatch(id, |h, cx| h.on_shutdown(cx));
        }
    }

    /// Drops every handler (after shutdown).
    pub(crate) fn drop_handlers(&mut self) {
        self.handlers.clear();
        self.stats.handlers.store(0, Ordering::Relaxed);
    }

    /// Leaks the operations still in flight so the kernel can never write into freed memory.
    pub(crate) fn leak_in_flight(&mut self) -> usize {
        let n = self.ops.len();
        std::mem::forget(std::mem::take(&mut self.ops));
        n
    }
}

/// A handler's view of its thread during a callback.
pub struct Cx<'a> {
    core: &'a mut Core,
    me: Option<HandlerId>,
    close: bool,
}

impl fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cx")
            .field("me", &self.me)
            .field("thread", &self.core.handle.index())
            .finish()
    }
}

impl<'a> Cx<'a> {
    pub(crate) fn detached(core: &'a mut Core) -> Self {
        Cx {
            core,
            me: None,
            close: false,
        }
    }

    /// Starts an operation on behalf of the current handler.
    ///
    /// # Panics
    /// When called from a closure passed to [`IoThreadHandle::execute`] rather than from a
    /// handler callback (there is nobody to deliver the completion to).
    pub fn submit(&mut self, op: Op) -> OpId {
        let me = self.me.expect("Cx::submit outside a handler callback");
        self.core.submit(me, op)
    }

    /// Asks for an operation to end early. Its final completion still arrives (with
    /// `ECANCELED`, or its real result when it won the race).
    pub fn cancel(&mut self, op: OpId) {
        self.core.cancel(op);
    }

    /// Arms a timer that calls [`Handler::on_timer`] at `deadline`.
    ///
    /// # Panics
    /// Outside a handler callback.
    pub fn set_timer(&mut self, deadline: Instant) -> TimerId {
        let me = self.me.expect("Cx::set_timer outside a handler callback");
        self.core.timers.insert(deadline, me)
    }

    /// Disarms a timer; false if it already fired.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.core.timers.cancel(timer)
    }

    /// Adds a handler to this thread; its `on_start` runs before this returns.
    pub fn spawn(&mut self, handler: Box<dyn Handler>) -> HandlerId {
        self.core.spawn(handler)
    }

    /// Removes the current handler when this callback returns, cancelling its operations.
    pub fn close(&mut self) {
        self.close = true;
    }

    /// The current handler, if this is a handler callback.
    pub fn id(&self) -> Option<HandlerId> {
        self.me
    }

    /// The time the current loop iteration started.
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// A handle on this thread, for other threads to reach its handlers.
    pub fn handle(&self) -> &IoThreadHandle {
        &self.core.handle
    }

    /// Whether the engine is shutting down.
    pub fn shutting_down(&self) -> bool {
        self.core.shutting_down
    }
}

#[cfg(test)]
mod tests;
