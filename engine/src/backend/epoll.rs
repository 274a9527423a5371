//! The epoll fallback: the io_uring backend's completion-style contract over readiness.
//!
//! Every operation is first tried as a non-blocking syscall right away (speculative); only if
//! that would block does it wait for readiness. Completions have io_uring's shape: multishot
//! accept and receive report `more` until they end, a receive reads into the same buffer pool
//! and reports -ENOBUFS when it is dry. One read-side and one write-side operation may wait on
//! a descriptor at a time; a second one of the same side completes with -EBUSY.
//!
//! **Registration.** A descriptor is added to epoll once, edge-triggered for both directions,
//! the first time an operation waits on it, and stays registered while it is open: the kernel
//! drops the registration itself when the descriptor's file is closed. So a wait costs one
//! system call (`epoll_pwait2`), with no re-arming before it and no notifier or timer
//! descriptor to reset after it. (The `polling` crate, used before, spends four more per wait:
//! `timerfd_settime`, two `epoll_ctl` re-arms and a `read` of its notifier; at 64 KiB over tcp
//! that was 12 system calls per message on the receiving I/O thread instead of 4.)
//!
//! Edge-triggered readiness is only correct because of two rules kept here:
//! - an operation waits only after its syscall said EAGAIN (or, for a receive, read less than
//!   a buffer: the queue was empty then), so readiness that arrives later makes a new edge;
//! - an operation that stopped with work left (a burst bound reached) is tried again at the
//!   next wait without an edge (the `again` list), since no new edge may come for it.
//!
//! A descriptor number can be closed and reused for a new socket behind the backend's back;
//! each registration remembers the [`SharedFd`] it was made for (weakly: the allocation stays,
//! so its address cannot be taken by another), and a wait through a different one registers
//! anew.
//!
//! This module must never block: every syscall here is non-blocking.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Weak};
use std::time::Duration;

use slab::Slab;

use super::{split_key, BackendCounters, OpSlot, OpState, RawCompletion, SharedFd};
use crate::bufpool::BufPool;

/// Bound on syscalls per readiness event, so one busy descriptor cannot starve the others.
const BURST: usize = 16;

/// Events taken from the kernel per wait (more stay queued for the next one).
const EVENTS_PER_WAIT: usize = 256;

/// What every descriptor is registered for: both directions, edge-triggered, and the peer's
/// half-close (which ends a receive with 0).
const INTEREST: u32 = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
const READ_READY: u32 = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
const WRITE_READY: u32 = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;

struct FdEntry {
    read: Option<u64>,
    write: Option<u64>,
    /// The socket this registration was made for; `None` for a descriptor without a
    /// [`SharedFd`] (the thread's wakeup descriptor).
    owner: Option<Weak<OwnedFd>>,
}

impl FdEntry {
    /// Whether the registration was made for `shared` (the same open socket).
    fn is_for(&self, shared: Option<&SharedFd>) -> bool {
        match (&self.owner, shared) {
            // The weak reference keeps the allocation, so an equal address is the same Arc.
            (Some(w), Some(s)) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(s)),
            (None, None) => true,
            _ => false,
        }
    }
}

pub(crate) struct EpollBackend {
    epfd: OwnedFd,
    fds: HashMap<RawFd, FdEntry>,
    /// Completions waiting to be handed out.
    ready: Vec<RawCompletion>,
    /// Waiting operations that stopped with work left: tried again after the next wait.
    again: Vec<(RawFd, u64)>,
    /// The same, taken while they run (kept for its allocation).
    again_now: Vec<(RawFd, u64)>,
    events: Vec<libc::epoll_event>,
    /// `epoll_pwait2` is missing (kernel before 5.11): waits round up to milliseconds.
    no_pwait2: bool,
    pub(crate) counters: BackendCounters,
}

enum Attempt {
    /// The operation ended (its final completion is queued).
    Done,
    /// It needs readiness to go on: its syscall would block.
    WouldBlock,
    /// It stopped at its burst bound with work perhaps left: try again without readiness.
    Yielded,
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

impl OpState {
    /// The shared descriptor the operation holds, if it holds one.
    fn shared_fd(&self) -> Option<&SharedFd> {
        match self {
            OpState::Accept { fd }
            | OpState::Recv { fd, .. }
            | OpState::RecvInto { fd, .. }
            | OpState::Connect { fd, .. } => Some(fd),
            OpState::Send(s) => Some(&s.fd),
            OpState::Close { .. } | OpState::Wake { .. } => None,
        }
    }
}

impl EpollBackend {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: plain epoll_create1; the result is checked.
        let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(EpollBackend {
            // SAFETY: a descriptor just created, owned by nobody else.
            epfd: unsafe { OwnedFd::from_raw_fd(raw) },
            fds: HashMap::new(),
            ready: Vec::new(),
            again: Vec::new(),
            again_now: Vec::new(),
            events: Vec::with_capacity(EVENTS_PER_WAIT),
            no_pwait2: false,
            counters: BackendCounters::default(),
        })
    }

    pub(crate) fn submit(&mut self, key: u64, op: &mut OpState, pool: &mut BufPool) {
        if let OpState::Close { fd, raw } = op {
            let res = match fd.take() {
                Some(owned) => {
                    *raw = owned.into_raw_fd();
                    // The close ends the registration in the kernel; forget it here too.
                    self.fds.remove(raw);
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
            Attempt::WouldBlock => {
                self.wait_for(key, op);
            }
            Attempt::Yielded => {
                if self.wait_for(key, op) {
                    self.again.push((op.raw_fd(), key));
                }
            }
        }
    }

    /// Registers `key` as the operation waiting on its descriptor's side, adding the
    /// descriptor to epoll if this socket is not registered yet. False when it cannot wait
    /// (its completion, with the error, is queued).
    fn wait_for(&mut self, key: u64, op: &OpState) -> bool {
        let fd = op.raw_fd();
        let shared = op.shared_fd();
        if !self.fds.get(&fd).is_some_and(|e| e.is_for(shared)) {
            if let Some(stale) = self.fds.remove(&fd) {
                // Its socket is closed (the number was reused): nothing can wait on it, since
                // a waiting operation keeps its socket open. Were one left, it ends with an
                // error rather than waiting forever on a registration that is gone.
                debug_assert!(stale.read.is_none() && stale.write.is_none());
                for k in [stale.read, stale.write].into_iter().flatten() {
                    push(&mut self.ready, k, -libc::EBADF, false, None);
                }
            }
            let interest = if shared.is_some() {
                INTEREST
            } else {
                (libc::EPOLLIN | libc::EPOLLET) as u32
            };
            if let Err(e) = self.register(fd, interest) {
                push(
                    &mut self.ready,
                    key,
                    -e.raw_os_error().unwrap_or(libc::EIO),
                    false,
                    None,
                );
                return false;
            }
            self.fds.insert(
                fd,
                FdEntry {
                    read: None,
                    write: None,
                    owner: shared.map(Arc::downgrade),
                },
            );
        }
        let Some(entry) = self.fds.get_mut(&fd) else {
            return false;
        };
        let slot = if op.wants_read() {
            &mut entry.read
        } else {
            &mut entry.write
        };
        match slot {
            Some(k) if *k != key => {
                push(&mut self.ready, key, -libc::EBUSY, false, None);
                false
            }
            _ => {
                *slot = Some(key);
                true
            }
        }
    }

    /// Adds `fd` to epoll (or updates it where the kernel still holds this very
    /// registration: a descriptor kept open elsewhere).
    fn register(&mut self, fd: RawFd, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        for op in [libc::EPOLL_CTL_ADD, libc::EPOLL_CTL_MOD] {
            // SAFETY: `ev` is a valid event for the call's duration; the descriptor is open
            // (the waiting operation holds it).
            if unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) } == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        Err(io::Error::from_raw_os_error(libc::EEXIST))
    }

    pub(crate) fn cancel(&mut self, key: u64, op: &mut OpState) {
        let fd = op.raw_fd();
        if let Some(entry) = self.fds.get_mut(&fd) {
            for slot in [&mut entry.read, &mut entry.write] {
                if *slot == Some(key) {
                    *slot = None;
                    push(&mut self.ready, key, -libc::ECANCELED, false, None);
                }
            }
        }
    }

    pub(crate) fn wait(
        &mut self,
        mut timeout: Option<Duration>,
        ops: &mut Slab<OpSlot>,
        pool: &mut BufPool,
        out: &mut Vec<RawCompletion>,
    ) -> io::Result<()> {
        if !self.ready.is_empty() || !self.again.is_empty() {
            timeout = Some(Duration::ZERO);
        }
        let n = self.epoll_wait(timeout)?;
        for i in 0..n {
            // A copy: the struct is packed on some targets.
            let ev = self.events[i];
            let (bits, fd) = (ev.events, ev.u64 as RawFd);
            let Some(entry) = self.fds.get(&fd) else {
                continue;
            };
            let (read, write) = (entry.read, entry.write);
            if bits & READ_READY != 0 {
                if let Some(key) = read {
                    self.progress(fd, key, ops, pool);
                }
            }
            if bits & WRITE_READY != 0 {
                if let Some(key) = write {
                    self.progress(fd, key, ops, pool);
                }
            }
        }
        let mut again = std::mem::replace(&mut self.again, std::mem::take(&mut self.again_now));
        for (fd, key) in again.drain(..) {
            let waiting = self
                .fds
                .get(&fd)
                .is_some_and(|e| e.read == Some(key) || e.write == Some(key));
            if waiting {
                self.progress(fd, key, ops, pool);
            }
        }
        self.again_now = again;
        out.append(&mut self.ready);
        Ok(())
    }

    /// One `epoll_pwait2` (or `epoll_wait` before Linux 5.11) into `events`; the number of
    /// events, 0 when a signal interrupted it.
    fn epoll_wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        self.events.clear();
        let cap = self.events.capacity().min(i32::MAX as usize) as i32;
        let epfd = self.epfd.as_raw_fd();
        let events = self.events.as_mut_ptr();
        let mut n = -1;
        if !self.no_pwait2 {
            let ts = timeout.map(|t| libc::timespec {
                tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: t.subsec_nanos() as libc::c_long,
            });
            let ts_ptr = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `events` has room for `cap` entries; the timespec (or null: no timeout)
            // lives for the call; no signal mask is given.
            n = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    epfd,
                    events,
                    cap,
                    ts_ptr,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            } as i32;
            if n < 0 && last_errno() == libc::ENOSYS {
                self.no_pwait2 = true;
            }
        }
        if self.no_pwait2 {
            let ms = timeout.map_or(-1, |t| {
                // Rounded up, so a short timeout does not turn into a busy poll.
                t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
            });
            // SAFETY: `events` has room for `cap` entries.
            n = unsafe { libc::epoll_wait(epfd, events, cap, ms) };
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        let n = (n as usize).min(self.events.capacity());
        // SAFETY: the kernel wrote `n` events (at most the capacity it was given).
        unsafe { self.events.set_len(n) };
        Ok(n)
    }

    /// Runs a waiting operation after readiness (or again after a burst); it stops waiting
    /// when it ended.
    fn progress(&mut self, fd: RawFd, key: u64, ops: &mut Slab<OpSlot>, pool: &mut BufPool) {
        let (index, gen) = split_key(key);
        let outcome = match ops.get_mut(index).filter(|s| s.gen == gen) {
            None => Attempt::Done,
            Some(slot) => {
                if let OpState::Wake { .. } = slot.state {
                    // The reactor consumes the wakeup; stay armed.
                    push(&mut self.ready, key, 1, true, None);
                    return;
                }
                attempt(key, &mut slot.state, pool, &mut self.ready)
            }
        };
        match outcome {
            Attempt::Done => {
                if let Some(entry) = self.fds.get_mut(&fd) {
                    if entry.read == Some(key) {
                        entry.read = None;
                    }
                    if entry.write == Some(key) {
                        entry.write = None;
                    }
                }
            }
            Attempt::WouldBlock => {}
            Attempt::Yielded => self.again.push((fd, key)),
        }
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
            Attempt::Yielded
        }
        OpState::Recv { fd, once } => {
            let rfd = std::os::fd::AsRawFd::as_raw_fd(&**fd);
            // A single-shot receive reads one buffer, at most `once_size` of it, as io_uring's
            // does.
            let (size, burst) = if *once {
                (pool.once_size(), 1)
            } else {
                (pool.buf_size(), BURST)
            };
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
                        // Less than asked for: the queue was empty then, so what comes later
                        // makes a new edge (no EAGAIN needed to know it).
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
            Attempt::Yielded
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
