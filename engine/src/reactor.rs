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

use std::fmt;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use slab::Slab;

use crate::backend::{
    op_key, split_key, Backend, OpSlot, OpState, RawCompletion, SendSpare, SendState, SharedFd,
    IGNORED_KEY,
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

/// Transient accept errors after which accepting goes on (libzmq retries these too).
fn accept_error_is_transient(errno: i32) -> bool {
    matches!(
        errno,
        libc::ECONNABORTED
            | libc::EMFILE
            | libc::ENFILE
            | libc::ENOBUFS
            | libc::ENOMEM
            | libc::EPROTO
            | libc::EINTR
            | libc::EAGAIN
    )
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

    fn resubmit(&mut self, index: usize) {
        let slot = &mut self.ops[index];
        let key = op_key(index, slot.gen);
        self.backend.submit(key, &mut slot.state, &mut self.pool);
    }

    /// Turns one backend completion into handler callbacks.
    pub(crate) fn complete(&mut self, rc: RawCompletion) {
        if rc.key == IGNORED_KEY {
            return;
        }
        let (index, gen) = split_key(rc.key);
        let Some(slot) = self.ops.get_mut(index).filter(|s| s.gen == gen) else {
            // Stale (already finished) operation: just keep the buffer.
            if let Some(bid) = rc.bid {
                self.pool.put_free(bid);
            }
            return;
        };
        self.stats.completions.fetch_add(1, Ordering::Relaxed);
        let cancelled = slot.cancelled;
        let owner = slot.owner.map(|(key, gen)| HandlerId { key, gen });
        let op = OpId(rc.key);
        match &mut slot.state {
            OpState::Wake { .. } => {
                self.wake_fired = true;
                if !rc.more && !cancelled {
                    self.resubmit(index);
                } else if !rc.more {
                    self.finish(index);
                }
            }
            OpState::Recv { once, .. } => {
                let once = *once;
                if rc.res == -libc::ENOBUFS {
                    if let Some(bid) = rc.bid {
                        self.pool.put_free(bid);
                    }
                    if !cancelled {
                        self.stats.recv_starved.fetch_add(1, Ordering::Relaxed);
                        self.starved.push(rc.key);
                        return;
                    }
                    if rc.more {
                        return;
                    }
                    // A cancelled receive that found no buffer read nothing: it ends as
                    // cancelled. Reported as ENOBUFS, its owner took it for a failed
                    // connection and closed it (the stream cancels its receive whenever its
                    // pipe fills up, which is exactly when the pool runs dry under load).
                    self.finish_with(
                        index,
                        owner,
                        op,
                        Completion::Received(Err(io::Error::from_raw_os_error(libc::ECANCELED))),
                    );
                    return;
                }
                if rc.res > 0 {
                    let len = rc.res as usize;
                    let bid = match rc.bid {
                        Some(bid) if len <= self.pool.buf_size() && bid < self.pool.count() => bid,
                        _ => {
                            self.finish_with(
                                index,
                                owner,
                                op,
                                Completion::Received(Err(io::Error::other(
                                    "receive without a valid provided buffer",
                                ))),
                            );
                            return;
                        }
                    };
                    // A multishot receive the kernel ended on its own is re-armed; a single-shot
                    // one ends with its one completion.
                    if !rc.more && !cancelled && !once {
                        self.resubmit(index);
                    }
                    let ended = !rc.more && (cancelled || once);
                    if ended {
                        self.finish(index);
                    }
                    // SAFETY: `bid < count` and `len <= size`, so the range lies inside the
                    // pool's allocation, which lives as long as `self.pool`. The kernel (or the
                    // epoll backend's read) filled it and handed it over with this completion;
                    // the buffer is neither free nor lent to the kernel until `put_free` below,
                    // so nothing writes it while the handler reads the slice, and the slice's
                    // lifetime ends with the `deliver` call (`Completion` borrows it).
                    let data = unsafe { std::slice::from_raw_parts(self.pool.addr(bid), len) };
                    self.deliver(owner, op, Completion::Received(Ok(data)), !ended);
                    // The receive pool is a landing zone: the bytes were decoded or copied out.
                    self.pool.put_free(bid);
                    return;
                }
                let result = if rc.res == 0 {
                    Ok(&[][..])
                } else {
                    Err(io::Error::from_raw_os_error(-rc.res))
                };
                if rc.more {
                    // Not expected from either backend; keep the operation and report.
                    self.deliver(owner, op, Completion::Received(result), true);
                    return;
                }
                self.finish_with(index, owner, op, Completion::Received(result));
            }
            OpState::Accept { .. } => {
                if rc.res >= 0 {
                    // SAFETY: a successful accept's result is a new descriptor we now own.
                    let fd = unsafe { OwnedFd::from_raw_fd(rc.res) };
                    if !rc.more && !cancelled {
                        self.resubmit(index);
                    }
                    let ended = !rc.more && cancelled;
                    if ended {
                        self.finish(index);
                    }
                    self.deliver(owner, op, Completion::Accepted(Ok(fd)), !ended);
                    return;
                }
                let err = io::Error::from_raw_os_error(-rc.res);
                if !cancelled && accept_error_is_transient(-rc.res) {
                    if !rc.more {
                        self.resubmit(index);
                    }
                    self.deliver(owner, op, Completion::Accepted(Err(err)), true);
                    return;
                }
                if rc.more {
                    self.deliver(owner, op, Completion::Accepted(Err(err)), true);
                } else {
                    self.finish_with(index, owner, op, Completion::Accepted(Err(err)));
                }
            }
            OpState::Connect { .. } => {
                let result = if rc.res >= 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(-rc.res))
                };
                self.finish_with(index, owner, op, Completion::Connected(result));
            }
            OpState::RecvInto { .. } => {
                let Some(OpState::RecvInto { fd, mut buf }) = self.take(index) else {
                    return;
                };
                // Release the descriptor before the handler runs, so it may close it.
                drop(fd);
                let result = match rc.res {
                    n if n > 0 => {
                        // SAFETY: the kernel (or the epoll backend's recv) wrote `n` bytes at
                        // the spare pointer the operation was given, asked for at most
                        // `remaining()` bytes; the buffer was not touched since (the reactor
                        // held it). `assume_written` clamps to `remaining()` regardless.
                        unsafe { buf.assume_written(n as usize) };
                        Ok(n as usize)
                    }
                    0 => Ok(0),
                    e => Err(io::Error::from_raw_os_error(-e)),
                };
                self.deliver(owner, op, Completion::ReceivedInto { result, buf }, false);
            }
            OpState::Send(s) => {
                let res = if s.zero_copy {
                    if rc.notif {
                        s.zc_result.take().unwrap_or(0)
                    } else if rc.more {
                        // The send's result; its buffers stay in use until the notification.
                        s.zc_result = Some(rc.res);
                        return;
                    } else {
                        rc.res
                    }
                } else {
                    rc.res
                };
                if res >= 0 {
                    s.advance(res as usize);
                    if !s.done() && !cancelled && res > 0 {
                        self.resubmit(index);
                        return;
                    }
                }
                let Some(OpState::Send(s)) = self.take(index) else {
                    return;
                };
                let result = if res < 0 {
                    Err(io::Error::from_raw_os_error(-res))
                } else if s.done() {
                    Ok(s.sent)
                } else if cancelled {
                    Err(io::Error::from_raw_os_error(libc::ECANCELED))
                } else {
                    Err(io::Error::from(io::ErrorKind::WriteZero))
                };
                // Release the descriptor before the handler runs, so it may close it.
                let (bufs, fd, spare) = s.into_parts();
                drop(fd);
                if self.send_spares.len() < MAX_SEND_SPARES {
                    self.send_spares.push(spare);
                }
                self.deliver(owner, op, Completion::Sent { result, bufs }, false);
            }
            OpState::Close { .. } => {
                let result = if rc.res >= 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(-rc.res))
                };
                self.finish_with(index, owner, op, Completion::Closed(result));
            }
        }
    }

    fn take(&mut self, index: usize) -> Option<OpState> {
        let slot = self.ops.try_remove(index)?;
        if slot.owner.is_none() {
            self.internal_ops -= 1;
        }
        Some(slot.state)
    }

    fn finish(&mut self, index: usize) {
        drop(self.take(index));
    }

    fn finish_with(
        &mut self,
        index: usize,
        owner: Option<HandlerId>,
        op: OpId,
        completion: Completion<'_>,
    ) {
        self.finish(index);
        self.deliver(owner, op, completion, false);
    }

    fn deliver(
        &mut self,
        owner: Option<HandlerId>,
        op: OpId,
        completion: Completion<'_>,
        more: bool,
    ) {
        if let Some(owner) = owner {
            self.dispatch(owner, |h, cx| h.on_completion(cx, op, completion, more));
        }
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
mod tests {
    use super::*;
    use crate::backend::BackendChoice;
    use crate::bufpool::BufPoolConfig;
    use crate::io_thread::test_core;
    use bytes::Bytes;
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    /// Bytes whose owner records when it is dropped.
    struct Tracked {
        data: Vec<u8>,
        dropped: Arc<AtomicBool>,
    }

    impl AsRef<[u8]> for Tracked {
        fn as_ref(&self) -> &[u8] {
            &self.data
        }
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    struct SendOnce {
        fd: SharedFd,
        bufs: Option<Vec<SendBuf>>,
    }

    impl Handler for SendOnce {
        fn on_start(&mut self, cx: &mut Cx<'_>) {
            let bufs = self.bufs.take().unwrap();
            cx.submit(Op::Send {
                fd: self.fd.clone(),
                bufs,
                zero_copy: false,
            });
            // Gone before the send can possibly have finished.
            cx.close();
        }
        fn on_completion(&mut self, _: &mut Cx<'_>, _: OpId, _: Completion<'_>, _: bool) {
            unreachable!("a closed handler gets no completions");
        }
    }

    /// Runs the core's completion loop until no operation is in flight (bounded: ~10 s).
    fn drive_until_idle(core: &mut Core) {
        let mut out = Vec::new();
        for _ in 0..1000 {
            if core.total_ops() == 0 {
                return;
            }
            core.wait(Some(Duration::from_millis(10)), &mut out)
                .unwrap();
            core.take_synthetic(&mut out);
            for rc in out.drain(..) {
                core.complete(rc);
            }
        }
    }

    fn choices() -> Vec<BackendChoice> {
        match std::env::var("ZERORING_BACKEND").as_deref() {
            Ok("epoll") => vec![BackendChoice::Epoll],
            _ => vec![BackendChoice::Uring, BackendChoice::Epoll],
        }
    }

    #[test]
    fn in_flight_send_keeps_its_buffer_after_its_handler_is_gone() {
        for choice in choices() {
            let (mut core, _mailbox) = test_core(
                choice,
                BufPoolConfig {
                    count: 8,
                    size: 4096,
                },
            );
            let (a, mut b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let dropped = Arc::new(AtomicBool::new(false));
            let pattern: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
            let bytes = Bytes::from_owner(Tracked {
                data: pattern.clone(),
                dropped: dropped.clone(),
            });
            core.spawn(Box::new(SendOnce {
                fd: Arc::new(a.into()),
                bufs: Some(vec![SendBuf::from(bytes)]),
            }));

            // The handler is gone and its send cancelled, but not finished: the buffer lives.
            assert_eq!(
                core.total_ops(),
                1,
                "{choice:?}: the send's slot outlives its handler"
            );
            assert!(
                !dropped.load(Ordering::SeqCst),
                "{choice:?}: buffer freed while in flight"
            );

            drive_until_idle(&mut core);
            assert_eq!(
                core.total_ops(),
                0,
                "{choice:?}: cancelled send never completed"
            );
            assert!(
                dropped.load(Ordering::SeqCst),
                "{choice:?}: buffer leaked after the final completion"
            );

            // Whatever the kernel took before the cancel must be the real bytes.
            b.set_nonblocking(true).unwrap();
            let mut got = Vec::new();
            let mut chunk = vec![0u8; 1 << 16];
            loop {
                match b.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(
                got.len() < pattern.len(),
                "{choice:?}: socket buffer should not hold 8 MiB"
            );
            assert_eq!(
                &got[..],
                &pattern[..got.len()],
                "{choice:?}: sent bytes corrupted"
            );
        }
    }

    /// Receives; cancels its receive on the first data (as a stream does when its pipe fills
    /// up) and records what the receive ended with.
    struct CancelOnFirstData {
        fd: SharedFd,
        got: usize,
        ended: Arc<std::sync::Mutex<Option<Option<i32>>>>,
    }

    impl Handler for CancelOnFirstData {
        fn on_start(&mut self, cx: &mut Cx<'_>) {
            cx.submit(Op::Recv {
                fd: self.fd.clone(),
            });
        }
        fn on_completion(&mut self, cx: &mut Cx<'_>, op: OpId, c: Completion<'_>, more: bool) {
            let Completion::Received(result) = c else {
                return;
            };
            match result {
                Ok(data) if !data.is_empty() => {
                    if self.got == 0 {
                        cx.cancel(op);
                    }
                    self.got += data.len();
                }
                Ok(_) => *self.ended.lock().unwrap() = Some(None),
                Err(e) => *self.ended.lock().unwrap() = Some(e.raw_os_error()),
            }
            if !more {
                cx.close();
            }
        }
    }

    /// The pool has one buffer and four buffers' worth of data wait: the receive fills the
    /// one buffer, and its next attempt finds none (ENOBUFS) in the same batch of
    /// completions, after its owner cancelled it on the first data. It must end as cancelled:
    /// reported as ENOBUFS, a stream took it for a failed connection and closed it, losing
    /// what the peer had sent (the fan-in stall of 100 connections, docs/performance.md).
    #[test]
    fn a_cancelled_receive_that_runs_out_of_buffers_ends_as_cancelled() {
        use std::io::Write;
        for choice in choices() {
            let (mut core, _mailbox) = test_core(
                choice,
                BufPoolConfig {
                    count: 1,
                    size: 1024,
                },
            );
            let (a, mut b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            b.write_all(&[7u8; 4096]).unwrap();
            let ended = Arc::new(std::sync::Mutex::new(None));
            core.spawn(Box::new(CancelOnFirstData {
                fd: Arc::new(a.into()),
                got: 0,
                ended: ended.clone(),
            }));
            drive_until_idle(&mut core);
            assert_eq!(core.total_ops(), 0, "{choice:?}: the receive never ended");
            let ended = *ended.lock().unwrap();
            assert_eq!(
                ended,
                Some(Some(libc::ECANCELED)),
                "{choice:?}: a cancelled receive must end as cancelled (None: it never ended \
                 for its owner; Some(None): as end of stream; Some(Some(e)): with errno e)"
            );
        }
    }

    struct RecvThenClose {
        fd: SharedFd,
    }

    impl Handler for RecvThenClose {
        fn on_start(&mut self, cx: &mut Cx<'_>) {
            cx.submit(Op::Recv {
                fd: self.fd.clone(),
            });
            cx.close();
        }
        fn on_completion(&mut self, _: &mut Cx<'_>, _: OpId, _: Completion<'_>, _: bool) {
            unreachable!("a closed handler gets no completions");
        }
    }

    #[test]
    fn receive_of_a_closed_handler_ends_and_returns_every_buffer() {
        for choice in choices() {
            let (mut core, _mailbox) = test_core(
                choice,
                BufPoolConfig {
                    count: 4,
                    size: 1024,
                },
            );
            let (a, _b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            core.spawn(Box::new(RecvThenClose {
                fd: Arc::new(a.into()),
            }));
            drive_until_idle(&mut core);
            assert_eq!(
                core.total_ops(),
                0,
                "{choice:?}: cancelled receive never completed"
            );
        }
    }
}
