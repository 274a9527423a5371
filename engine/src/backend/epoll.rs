//! The epoll fallback: the io_uring backend's completion-style contract over readiness.
//!
//! Every operation is first tried as a non-blocking syscall right away (speculative); only if
//! that would block does the descriptor get epoll interest (via the `polling` crate, one-shot
//! mode, re-armed before each wait). Completions have io_uring's shape: multishot accept and
//! receive report `more` until they end, a receive reads into the same buffer pool and reports
//! -ENOBUFS when it is dry. One read-side and one write-side operation may wait on a descriptor
//! at a time; a second one of the same side completes with -EBUSY.
//!
//! This module must never block: every syscall here is non-blocking.

use std::collections::HashMap;
use std::io;
use std::os::fd::{BorrowedFd, IntoRawFd, RawFd};
use std::time::Duration;

use polling::{Event, Events, Poller};
use slab::Slab;

use super::{split_key, BackendCounters, OpSlot, OpState, RawCompletion};
use crate::bufpool::BufPool;

/// Bound on syscalls per readiness event, so one busy descriptor cannot starve the others.
const BURST: usize = 16;

#[derive(Default)]
struct FdEntry {
    read: Option<u64>,
    write: Option<u64>,
    registered: bool,
}

pub(crate) struct EpollBackend {
    poller: Poller,
    fds: HashMap<RawFd, FdEntry>,
    dirty: Vec<RawFd>,
    ready: Vec<RawCompletion>,
    events: Events,
    /// The events of the last wait, copied out of `events` (reused: no allocation per wait).
    fired: Vec<Event>,
    pub(crate) counters: BackendCounters,
}

enum Attempt {
    /// The operation ended (its final completion is queued).
    Done,
    /// It needs readiness to go on.
    WouldBlock,
}

fn last_errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn push(out: &mut Vec<RawCompletion>, key: u64, res: i32, more: bool, bid: Option<u16>) {
    out.push(RawCompletion {
        key,
        res,
        more,
        bid,
        notif: false,
    });
}

impl EpollBackend {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(EpollBackend {
            poller: Poller::new()?,
            fds: HashMap::new(),
            dirty: Vec::new(),
            ready: Vec::new(),
            events: Events::new(),
            fired: Vec::new(),
            counters: BackendCounters::default(),
        })
    }

    pub(crate) fn submit(&mut self, key: u64, op: &mut OpState, pool: &mut BufPool) {
        if let OpState::Close { fd, raw } = op {
            let res = match fd.take() {
                Some(owned) => {
                    *raw = owned.into_raw_fd();
                    // SAFETY: we own `raw` (just taken out of its OwnedFd) and close it once.
                    if unsafe { libc::close(*raw) } == 0 {
                        0
                    } else {
                        -last_errno()
                    }
                }
                None => -libc::EBADF,
            };
            push(&mut self.ready, key, res, false, None);
            return;
        }
        if matches!(op, OpState::Wake { .. }) {
            self.wait_for(key, op);
            return;
        }
        match attempt(key, op, pool, &mut self.ready) {
            Attempt::Done => {}
            Attempt::WouldBlock => self.wait_for(key, op),
        }
    }

    /// Registers `key` as the operation waiting on its descriptor's side.
    fn wait_for(&mut self, key: u64, op: &OpState) {
        let fd = op.raw_fd();
        let entry = self.fds.entry(fd).or_default();
        let slot = if op.wants_read() {
            &mut entry.read
        } else {
            &mut entry.write
        };
        match slot {
            Some(k) if *k != key => push(&mut self.ready, key, -libc::EBUSY, false, None),
            _ => {
                *slot = Some(key);
                self.dirty.push(fd);
            }
        }
    }

    pub(crate) fn cancel(&mut self, key: u64, op: &mut OpState) {
        let fd = op.raw_fd();
        if let Some(entry) = self.fds.get_mut(&fd) {
            for slot in [&mut entry.read, &mut entry.write] {
                if *slot == Some(key) {
                    *slot = None;
                    push(&mut self.ready, key, -libc::ECANCELED, false, None);
                    self.dirty.push(fd);
                }
            }
        }
        self.release_if_idle(fd);
    }

    /// Forgets a descriptor nothing waits on any more, *now*, while the operation that just
    /// ended still keeps it open. Deferring this to the next re-arm is wrong: the reactor may
    /// close the descriptor first, and the kernel may hand the same number to a new socket,
    /// whose operations would then find a stale registration.
    fn release_if_idle(&mut self, fd: RawFd) {
        let idle = self
            .fds
            .get(&fd)
            .is_some_and(|e| e.read.is_none() && e.write.is_none());
        if !idle {
            return;
        }
        if let Some(entry) = self.fds.remove(&fd) {
            if entry.registered {
                // SAFETY: the descriptor is still open: the operation that used it has not
                // been dropped by the reactor yet (see above).
                let _ = self.poller.delete(unsafe { BorrowedFd::borrow_raw(fd) });
            }
        }
    }

    /// Brings epoll's interest in line with what waits on each changed descriptor. A failure
    /// for one descriptor ends the operations waiting on it (with the error) and never stops
    /// the others from being armed.
    fn rearm(&mut self) {
        // Taken and put back (emptied) so the list keeps its allocation.
        let mut dirty = std::mem::take(&mut self.dirty);
        for fd in dirty.drain(..) {
            if let Err(e) = self.rearm_one(fd) {
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                if let Some(entry) = self.fds.remove(&fd) {
                    for key in [entry.read, entry.write].into_iter().flatten() {
                        push(&mut self.ready, key, -errno, false, None);
                    }
                }
            }
        }
        // `rearm_one` marks nothing, so the emptied list goes back as it is.
        debug_assert!(self.dirty.is_empty());
        self.dirty = dirty;
    }

    fn rearm_one(&mut self, fd: RawFd) -> io::Result<()> {
        let Some(entry) = self.fds.get_mut(&fd) else {
            return Ok(());
        };
        // SAFETY: the descriptor is open: every waiting operation holds a reference to it
        // (SharedFd) or, for the wakeup descriptor, the thread's Signal outlives the backend;
        // idle descriptors were released while still open (`release_if_idle`).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        if entry.read.is_none() && entry.write.is_none() {
            if entry.registered {
                let _ = self.poller.delete(borrowed);
            }
            self.fds.remove(&fd);
            return Ok(());
        }
        let interest = Event::new(fd as usize, entry.read.is_some(), entry.write.is_some());
        if entry.registered {
            match self.poller.modify(borrowed, interest) {
                Ok(()) => return Ok(()),
                // Not known to epoll (closed and reused behind our back): register anew.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        // SAFETY: the descriptor stays open while registered (see above) and is deleted
        // from the poller before its last waiting operation ends.
        unsafe { self.poller.add(fd, interest)? };
        entry.registered = true;
        Ok(())
    }

    pub(crate) fn wait(
        &mut self,
        mut timeout: Option<Duration>,
        ops: &mut Slab<OpSlot>,
        pool: &mut BufPool,
        out: &mut Vec<RawCompletion>,
    ) -> io::Result<()> {
        if !self.ready.is_empty() {
            timeout = Some(Duration::ZERO);
        }
        self.rearm();
        if !self.ready.is_empty() {
            timeout = Some(Duration::ZERO);
        }
        self.events.clear();
        match self.poller.wait(&mut self.events, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let mut fired = std::mem::take(&mut self.fired);
        fired.extend(self.events.iter());
        for ev in fired.drain(..) {
            let fd = ev.key as RawFd;
            let Some(entry) = self.fds.get_mut(&fd) else {
                continue;
            };
            let (read, write) = (entry.read, entry.write);
            // One-shot: the descriptor is disarmed now; re-arm whatever still waits.
            self.dirty.push(fd);
            if ev.readable {
                if let Some(key) = read {
                    if self.progress(key, ops, pool) {
                        self.clear_side(fd, key);
                    }
                }
            }
            if ev.writable {
                if let Some(key) = write {
                    if self.progress(key, ops, pool) {
                        self.clear_side(fd, key);
                    }
                }
            }
        }
        self.fired = fired;
        out.append(&mut self.ready);
        Ok(())
    }

    /// Runs a waiting operation after readiness; true when it ended.
    fn progress(&mut self, key: u64, ops: &mut Slab<OpSlot>, pool: &mut BufPool) -> bool {
        let (index, gen) = split_key(key);
        let Some(slot) = ops.get_mut(index).filter(|s| s.gen == gen) else {
            return true;
        };
        if let OpState::Wake { .. } = slot.state {
            // The reactor consumes the wakeup; stay armed.
            push(&mut self.ready, key, 1, true, None);
            return false;
        }
        matches!(
            attempt(key, &mut slot.state, pool, &mut self.ready),
            Attempt::Done
        )
    }

    fn clear_side(&mut self, fd: RawFd, key: u64) {
        if let Some(entry) = self.fds.get_mut(&fd) {
            if entry.read == Some(key) {
                entry.read = None;
            }
            if entry.write == Some(key) {
                entry.write = None;
            }
        }
        self.release_if_idle(fd);
    }
}

/// The outcome of one syscall of a single-completion operation (`n` bytes, or -1 with errno
/// set): its completion pushed and `Done`, `WouldBlock` to wait for readiness, or `None` to
/// try again at once (EINTR).
fn single_result(n: isize, key: u64, out: &mut Vec<RawCompletion>) -> Option<Attempt> {
    if n >= 0 {
        push(out, key, n as i32, false, None);
        return Some(Attempt::Done);
    }
    match last_errno() {
        libc::EAGAIN => Some(Attempt::WouldBlock),
        libc::EINTR => None,
        e => {
            push(out, key, -e, false, None);
            Some(Attempt::Done)
        }
    }
}

/// Tries the syscall(s) of `op` without blocking, queueing what completed.
fn attempt(
    key: u64,
    op: &mut OpState,
    pool: &mut BufPool,
    out: &mut Vec<RawCompletion>,
) -> Attempt {
    match op {
        OpState::Accept { fd } => {
            let lfd = std::os::fd::AsRawFd::as_raw_fd(&**fd);
            for _ in 0..BURST {
                // SAFETY: plain accept4 on an open listening descriptor, no address wanted.
                let nfd = unsafe {
                    libc::accept4(
                        lfd,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    )
                };
                if nfd >= 0 {
                    push(out, key, nfd, true, None);
                    continue;
                }
                match last_errno() {
                    libc::EAGAIN => return Attempt::WouldBlock,
                    libc::EINTR => continue,
                    e => {
                        push(out, key, -e, false, None);
                        return Attempt::Done;
                    }
                }
            }
            Attempt::WouldBlock
        }
        OpState::Recv { fd, once } => {
            let rfd = std::os::fd::AsRawFd::as_raw_fd(&**fd);
            let size = pool.buf_size();
            // A single-shot receive reads one buffer, as io_uring's does.
            let burst = if *once { 1 } else { BURST };
            for _ in 0..burst {
                let Some(bid) = pool.take_free() else {
                    push(out, key, -libc::ENOBUFS, false, None);
                    return Attempt::Done;
                };
                // SAFETY: `bid` is free and owned by this thread, so its `size` bytes are ours
                // to write; recv writes at most `size` bytes.
                let n = unsafe {
                    libc::recv(
                        rfd,
                        pool.addr(bid) as *mut libc::c_void,
                        size,
                        libc::MSG_DONTWAIT,
                    )
                };
                if n > 0 {
                    if *once {
                        push(out, key, n as i32, false, Some(bid));
                        return Attempt::Done;
                    }
                    push(out, key, n as i32, true, Some(bid));
                    if (n as usize) < size {
                        // Probably drained: let readiness tell us rather than paying an EAGAIN.
                        return Attempt::WouldBlock;
                    }
                    continue;
                }
                pool.put_free(bid);
                if n == 0 {
                    push(out, key, 0, false, None);
                    return Attempt::Done;
                }
                match last_errno() {
                    libc::EAGAIN => return Attempt::WouldBlock,
                    libc::EINTR => continue,
                    e => {
                        push(out, key, -e, false, None);
                        return Attempt::Done;
                    }
                }
            }
            Attempt::WouldBlock
        }
        OpState::RecvInto { fd, buf } => {
            let rfd = std::os::fd::AsRawFd::as_raw_fd(&**fd);
            loop {
                // SAFETY: the buffer's `remaining()` bytes from `spare_ptr()` are its own to
                // write, and the reactor holds the buffer until this operation's completion.
                let n = unsafe {
                    libc::recv(
                        rfd,
                        buf.spare_ptr() as *mut libc::c_void,
                        buf.remaining(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if let Some(attempt) = single_result(n, key, out) {
                    return attempt;
                }
            }
        }
        OpState::Connect { fd, addr, started } => {
            let cfd = std::os::fd::AsRawFd::as_raw_fd(&**fd);
            if !*started {
                *started = true;
                // SAFETY: addr points to a valid sockaddr of addr.len() bytes, kept alive in the op.
                let r = unsafe { libc::connect(cfd, addr.as_ptr(), addr.len()) };
                if r == 0 {
                    push(out, key, 0, false, None);
                    return Attempt::Done;
                }
                return match last_errno() {
                    libc::EINPROGRESS | libc::EINTR | libc::EAGAIN => Attempt::WouldBlock,
                    e => {
                        push(out, key, -e, false, None);
                        Attempt::Done
                    }
                };
            }
            let mut err: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: SO_ERROR writes one c_int into `err`; `len` says so.
            let r = unsafe {
                libc::getsockopt(
                    cfd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    &mut err as *mut _ as *mut libc::c_void,
                    &mut len,
                )
            };
            let res = if r != 0 { -last_errno() } else { -err };
            push(out, key, res, false, None);
            Attempt::Done
        }
        OpState::Send(s) => loop {
            s.prepare();
            // SAFETY: the msghdr points at the iovec array just rebuilt from the live buffers.
            let n = unsafe {
                libc::sendmsg(
                    s.raw_fd(),
                    &*s.msghdr,
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if let Some(attempt) = single_result(n, key, out) {
                return attempt;
            }
        },
        OpState::Close { .. } | OpState::Wake { .. } => Attempt::WouldBlock,
    }
}
