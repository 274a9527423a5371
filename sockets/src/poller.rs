//! A reusable poller in the style of libzmq's draft `zmq_poller_*`: a set of sockets and plain
//! file descriptors, each with the events wanted and a user value, that is waited on again
//! and again, reporting one event ([`Poller::wait`]) or many ([`Poller::wait_all`]).
//!
//! Waiting is [`crate::poll`](fn@crate::poll)'s: reading a socket's EVENTS arms its readiness signal, and one
//! `poll(2)` sleeps on every socket's signal fd and every plain fd together; no busy-waiting.
//! The `pollfd` array is kept between waits and rebuilt only after the set changed.
//!
//! Owns: the registered set and its bookkeeping. Must never: report an event that the socket's
//! EVENTS (or the fd's `poll(2)`) does not report, or sleep past one that it would.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::poll::{from_libc, to_libc, POLLERR};
use crate::socket::{Socket, POLLIN, POLLOUT};

/// What one registered item is.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Socket(&'a Socket),
    Fd(RawFd),
}

impl Target<'_> {
    fn same(&self, other: &Target<'_>) -> bool {
        match (self, other) {
            (Target::Socket(a), Target::Socket(b)) => std::ptr::eq(*a, *b),
            (Target::Fd(a), Target::Fd(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Debug)]
struct Item<'a, T> {
    target: Target<'a>,
    events: i16,
    data: T,
}

/// One event reported by [`Poller::wait`] / [`Poller::wait_all`] (`zmq_poller_event_t`).
#[derive(Debug, Clone)]
pub struct PollerEvent<'a, T> {
    /// The socket, when the item is a socket.
    pub socket: Option<&'a Socket>,
    /// The file descriptor, when the item is a plain fd (−1 for a socket).
    pub fd: RawFd,
    /// The value given when the item was added.
    pub user_data: T,
    /// What happened: [`crate::POLLIN`], [`crate::POLLOUT`], [`crate::POLLPRI`], [`POLLERR`].
    pub events: i16,
}

/// A reusable set of sockets and file descriptors to wait on (`zmq_poller_t`).
///
/// ```
/// use zeroring::{Context, Error, Poller, SocketType, POLLIN};
///
/// let ctx = Context::new();
/// let pull = ctx.socket(SocketType::Pull)?;
/// pull.bind("inproc://poller-doc")?;
/// let push = ctx.socket(SocketType::Push)?;
/// push.connect("inproc://poller-doc")?;
/// let mut poller = Poller::new();
/// poller.add(&pull, "pull", POLLIN as i16)?;
/// assert_eq!(poller.wait(0).unwrap_err(), Error::EAGAIN); // nothing yet
/// push.send("hi", 0)?;
/// let ev = poller.wait(5_000)?;
/// assert_eq!(ev.user_data, "pull");
/// assert_eq!(pull.recv_bytes(0)?, b"hi");
/// # Ok::<(), zeroring::Error>(())
/// ```
#[derive(Debug)]
pub struct Poller<'a, T> {
    items: Vec<Item<'a, T>>,
    fds: Vec<libc::pollfd>,
    dirty: bool,
}

impl<T> Default for Poller<'_, T> {
    fn default() -> Self {
        Poller {
            items: Vec::new(),
            fds: Vec::new(),
            dirty: false,
        }
    }
}

impl<'a, T: Clone> Poller<'a, T> {
    /// An empty poller (`zmq_poller_new`).
    pub fn new() -> Self {
        Self::default()
    }

    /// How many items are registered (`zmq_poller_size`).
    pub fn size(&self) -> usize {
        self.items.len()
    }

    fn find(&self, target: &Target<'_>) -> Option<usize> {
        self.items.iter().position(|i| i.target.same(target))
    }

    fn insert(&mut self, target: Target<'a>, data: T, events: i16) -> Result<()> {
        if self.find(&target).is_some() {
            return Err(Error::EINVAL);
        }
        self.items.push(Item {
            target,
            events,
            data,
        });
        self.dirty = true;
        Ok(())
    }

    fn change(&mut self, target: Target<'_>, events: i16) -> Result<()> {
        let i = self.find(&target).ok_or(Error::EINVAL)?;
        self.items[i].events = events;
        self.dirty = true;
        Ok(())
    }

    fn take(&mut self, target: Target<'_>) -> Result<()> {
        let i = self.find(&target).ok_or(Error::EINVAL)?;
        self.items.remove(i);
        self.dirty = true;
        Ok(())
    }

    /// Adds `socket`, waiting for `events` (POLLIN | POLLOUT), reported with `data`
    /// (`zmq_poller_add`). A socket already added → EINVAL.
    pub fn add(&mut self, socket: &'a Socket, data: T, events: i16) -> Result<()> {
        self.insert(Target::Socket(socket), data, events)
    }

    /// Changes what to wait for on `socket` (`zmq_poller_modify`); EINVAL if not added.
    pub fn modify(&mut self, socket: &Socket, events: i16) -> Result<()> {
        self.change(Target::Socket(socket), events)
    }

    /// Removes `socket` (`zmq_poller_remove`); EINVAL if not added.
    pub fn remove(&mut self, socket: &Socket) -> Result<()> {
        self.take(Target::Socket(socket))
    }

    /// Adds a plain file descriptor, waiting for `events` (POLLIN, POLLOUT,
    /// [`crate::POLLPRI`]; [`POLLERR`] is always reported) (`zmq_poller_add_fd`). A negative
    /// fd → EBADF, one already added → EINVAL, as libzmq.
    pub fn add_fd(&mut self, fd: RawFd, data: T, events: i16) -> Result<()> {
        if fd < 0 {
            return Err(Error::EBADF);
        }
        self.insert(Target::Fd(fd), data, events)
    }

    /// Changes what to wait for on `fd` (`zmq_poller_modify_fd`); EINVAL if not added.
    pub fn modify_fd(&mut self, fd: RawFd, events: i16) -> Result<()> {
        self.change(Target::Fd(fd), events)
    }

    /// Removes `fd` (`zmq_poller_remove_fd`); EINVAL if not added.
    pub fn remove_fd(&mut self, fd: RawFd) -> Result<()> {
        self.take(Target::Fd(fd))
    }

    /// Waits for one event (`zmq_poller_wait`): the first ready item in the order added.
    /// `timeout_ms` −1 waits without limit, 0 looks once. EAGAIN when the time passes with
    /// nothing ready, EFAULT when waiting without limit on an empty poller (it could never
    /// return), EINTR / ETERM as [`crate::poll`](fn@crate::poll).
    pub fn wait(&mut self, timeout_ms: i64) -> Result<PollerEvent<'a, T>> {
        let mut out = Vec::with_capacity(1);
        self.wait_all(&mut out, 1, timeout_ms)?;
        out.pop().ok_or(Error::EAGAIN)
    }

    /// Waits for events (`zmq_poller_wait_all`): clears `out`, then fills it with up to `max`
    /// ready items, in the order added; returns how many. Errors as [`Poller::wait`];
    /// `max` 0 → EINVAL.
    pub fn wait_all(
        &mut self,
        out: &mut Vec<PollerEvent<'a, T>>,
        max: usize,
        timeout_ms: i64,
    ) -> Result<usize> {
        out.clear();
        if max == 0 || timeout_ms < -1 {
            return Err(Error::EINVAL);
        }
        if self.items.is_empty() && timeout_ms == -1 {
            return Err(Error::EFAULT);
        }
        if self.dirty {
            self.rebuild();
        }
        let deadline =
            (timeout_ms >= 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
        let spin_until = crate::poll::spin_deadline(timeout_ms, self.items.len());
        let mut first = true;
        loop {
            let mut sockets_ready = false;
            for item in &self.items {
                if let Target::Socket(s) = item.target {
                    // Reading EVENTS re-arms the socket's fd for the sleep below.
                    let wanted = item.events & (POLLIN | POLLOUT) as i16;
                    if wanted != 0 && s.get_events()? as i16 & wanted != 0 {
                        sockets_ready = true;
                    }
                }
            }
            let wait_ms = if first || sockets_ready || crate::poll::spin_turn(spin_until) {
                0
            } else {
                match deadline {
                    None => -1,
                    Some(d) => crate::util::ms_until(d).min(i32::MAX as u128) as i32,
                }
            };
            // SAFETY: `fds` is a live, correctly sized array of pollfd for the call's duration
            // (an empty one with a null-safe pointer: poll(2) then only sleeps).
            let n = unsafe {
                libc::poll(
                    self.fds.as_mut_ptr(),
                    self.fds.len() as libc::nfds_t,
                    wait_ms,
                )
            };
            if n < 0 {
                return Err(match std::io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) => Error::EINTR,
                    _ => Error::EFAULT,
                });
            }
            for (item, pfd) in self.items.iter().zip(self.fds.iter_mut()) {
                if out.len() >= max {
                    break;
                }
                let events = match item.target {
                    Target::Socket(s) => {
                        let wanted = item.events & (POLLIN | POLLOUT) as i16;
                        if wanted == 0 {
                            0
                        } else {
                            s.get_events()? as i16 & wanted
                        }
                    }
                    Target::Fd(_) => from_libc(pfd.revents) & (item.events | POLLERR),
                };
                if events != 0 {
                    out.push(PollerEvent {
                        socket: match item.target {
                            Target::Socket(s) => Some(s),
                            Target::Fd(_) => None,
                        },
                        fd: match item.target {
                            Target::Socket(_) => -1,
                            Target::Fd(fd) => fd,
                        },
                        user_data: item.data.clone(),
                        events,
                    });
                }
            }
            for pfd in &mut self.fds {
                pfd.revents = 0;
            }
            if !out.is_empty() {
                return Ok(out.len());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::EAGAIN);
            }
            first = false;
        }
    }

    fn rebuild(&mut self) {
        self.fds.clear();
        for item in &self.items {
            self.fds.push(match item.target {
                // A socket wakes the wait through its signal fd, whatever it waits for; one
                // that waits for nothing is left out (poll(2) skips negative fds).
                Target::Socket(s) => libc::pollfd {
                    fd: if item.events & (POLLIN | POLLOUT) as i16 != 0 {
                        s.get_fd()
                    } else {
                        -1
                    },
                    events: libc::POLLIN,
                    revents: 0,
                },
                Target::Fd(fd) => libc::pollfd {
                    fd,
                    events: to_libc(item.events),
                    revents: 0,
                },
            });
        }
        self.dirty = false;
    }
}
