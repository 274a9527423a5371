//! `zmq_poll`: wait on sockets and plain file descriptors at once.
//!
//! Built on the edge-triggered readiness contract of [`Socket::get_events`]: reading EVENTS
//! arms the socket's signal, so after a look that finds nothing, anything that changes makes
//! the signal's fd ([`Socket::get_fd`]) readable. One `poll(2)` then waits on every socket's fd
//! and every plain fd together; on wake the sockets are looked at again. Before that sleep a
//! call with a timeout looks again for a short while, yielding the CPU between looks, as a
//! blocking `recv` does ([`crate::socket::DEFAULT_SPIN`]): a reply that comes within a loopback
//! round trip then wakes no one.
//!
//! Owns: the `PollItem` vocabulary and the wait loop. Must never: report a socket ready that
//! EVENTS does not call ready, or sleep past a change that EVENTS would report.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::socket::{Socket, POLLIN, POLLOUT};

/// `ZMQ_POLLERR`: an error on a plain file descriptor (never set for a socket).
pub const POLLERR: i16 = 4;
/// `ZMQ_POLLPRI`: urgent data on a plain file descriptor.
pub const POLLPRI: i16 = 8;

/// What to wait for on one socket or file descriptor (`zmq_pollitem_t`).
#[derive(Debug)]
pub struct PollItem<'a> {
    socket: Option<&'a Socket>,
    fd: RawFd,
    events: i16,
    revents: i16,
}

impl<'a> PollItem<'a> {
    /// Waits for `events` ([`crate::POLLIN`] | [`crate::POLLOUT`]) on `socket`.
    pub fn from_socket(socket: &'a Socket, events: i16) -> Self {
        PollItem {
            socket: Some(socket),
            fd: -1,
            events,
            revents: 0,
        }
    }

    /// Waits for `events` (POLLIN, POLLOUT, [`POLLPRI`]; [`POLLERR`] is always reported) on a
    /// plain file descriptor.
    pub fn from_fd(fd: RawFd, events: i16) -> Self {
        PollItem {
            socket: None,
            fd,
            events,
            revents: 0,
        }
    }

    /// What happened at the last [`poll`].
    pub fn revents(&self) -> i16 {
        self.revents
    }

    /// Whether the last [`poll`] found it readable.
    pub fn is_readable(&self) -> bool {
        self.revents & POLLIN as i16 != 0
    }

    /// Whether the last [`poll`] found it writable.
    pub fn is_writable(&self) -> bool {
        self.revents & POLLOUT as i16 != 0
    }

    /// Whether the last [`poll`] found an error on the file descriptor.
    pub fn is_error(&self) -> bool {
        self.revents & POLLERR != 0
    }

    /// Changes what to wait for.
    pub fn set_events(&mut self, events: i16) {
        self.events = events;
    }
}

pub(crate) fn to_libc(events: i16) -> i16 {
    let mut e = 0;
    if events & POLLIN as i16 != 0 {
        e |= libc::POLLIN;
    }
    if events & POLLOUT as i16 != 0 {
        e |= libc::POLLOUT;
    }
    if events & POLLPRI != 0 {
        e |= libc::POLLPRI;
    }
    e
}

pub(crate) fn from_libc(revents: i16) -> i16 {
    let mut e = 0;
    if revents & (libc::POLLIN | libc::POLLHUP) != 0 {
        e |= POLLIN as i16;
    }
    if revents & libc::POLLOUT != 0 {
        e |= POLLOUT as i16;
    }
    if revents & libc::POLLPRI != 0 {
        e |= POLLPRI;
    }
    if revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        e |= POLLERR;
    }
    e
}

/// The most items a wait spins over: each look re-arms every socket (a `read(2)` of its
/// eventfd when it was armed), so over a large set one look costs more than the wake-up it
/// would save.
const SPIN_MAX_ITEMS: usize = 16;

/// Until when a wait of `timeout_ms` on `items` items looks again without sleeping
/// ([`spin_turn`]); `None` when it sleeps at once (a zero timeout needs no wait, the set is
/// larger than [`SPIN_MAX_ITEMS`], or the spin is off). The spin ends at the timeout too: the
/// waits' own deadline check returns then.
pub(crate) fn spin_deadline(timeout_ms: i64, items: usize) -> Option<Instant> {
    let spin = crate::socket::poll_spin();
    (timeout_ms != 0 && items <= SPIN_MAX_ITEMS && !spin.is_zero()).then(|| Instant::now() + spin)
}

/// Whether the next look is still within the spin: then it yields the CPU first (to the I/O
/// thread that will make a socket ready, when it waits for this core) and the look does not
/// wait.
pub(crate) fn spin_turn(until: Option<Instant>) -> bool {
    if until.is_some_and(|t| Instant::now() < t) {
        zeroring_engine::sync::yield_cpu();
        true
    } else {
        false
    }
}

/// `zmq_poll`: waits until at least one item has one of its events, or `timeout_ms` passes
/// (−1: no limit; 0: look once). Returns how many items have events (their
/// [`PollItem::revents`]); 0 on timeout. Errors as libzmq's: [`Error::EINTR`] when a signal
/// interrupted the wait, [`Error::ETERM`] when a socket's context was terminated,
/// [`Error::EINVAL`] for a negative timeout other than −1.
///
/// ```
/// use zeroring::{poll, Context, PollItem, SocketType, POLLIN};
/// let ctx = Context::new();
/// let pull = ctx.socket(SocketType::Pull)?;
/// pull.bind("inproc://poll-doc")?;
/// let push = ctx.socket(SocketType::Push)?;
/// push.connect("inproc://poll-doc")?;
/// let mut items = [PollItem::from_socket(&pull, POLLIN as i16)];
/// assert_eq!(poll(&mut items, 0)?, 0);
/// push.send("hi", 0)?;
/// assert_eq!(poll(&mut items, 5_000)?, 1);
/// assert!(items[0].is_readable());
/// assert_eq!(poll(&mut items, -2), Err(zeroring::Error::EINVAL));
/// # Ok::<(), zeroring::Error>(())
/// ```
pub fn poll(items: &mut [PollItem<'_>], timeout_ms: i64) -> Result<usize> {
    if timeout_ms < -1 {
        return Err(Error::EINVAL);
    }
    let deadline =
        (timeout_ms >= 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
    let mut fds: Vec<libc::pollfd> = items
        .iter()
        .map(|item| match item.socket {
            Some(s) => libc::pollfd {
                fd: s.get_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            None => libc::pollfd {
                fd: item.fd,
                events: to_libc(item.events),
                revents: 0,
            },
        })
        .collect();
    let spin_until = spin_deadline(timeout_ms, items.len());
    let mut first = true;
    loop {
        // Sockets: EVENTS re-arms each one's fd before looking (see `Socket::get_events`).
        let mut sockets_ready = false;
        for item in items.iter_mut() {
            item.revents = match item.socket {
                Some(s) => (s.get_events()? as i16) & item.events & (POLLIN | POLLOUT) as i16,
                None => 0,
            };
            sockets_ready |= item.revents != 0;
        }
        // Plain fds are looked at by the same poll(2) that waits; the first look, any look
        // when a socket is ready already, and the looks of the spin do not wait.
        let wait_ms = if first || sockets_ready || spin_turn(spin_until) {
            0
        } else {
            match deadline {
                None => -1,
                Some(d) => crate::util::ms_until(d).min(i32::MAX as u128) as i32,
            }
        };
        // SAFETY: `fds` is a live, correctly sized array of pollfd for the call's duration.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
        if n < 0 {
            return Err(match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => Error::EINTR,
                _ => Error::EFAULT,
            });
        }
        for (item, pfd) in items.iter_mut().zip(fds.iter_mut()) {
            if item.socket.is_none() {
                item.revents = from_libc(pfd.revents) & (item.events | POLLERR);
            }
            pfd.revents = 0;
        }
        let ready = items.iter().filter(|i| i.revents != 0).count();
        if ready > 0 {
            return Ok(ready);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(0);
        }
        // Woken by a socket's fd (or the first look): look at the sockets again.
        first = false;
    }
}
