//! The two I/O backends behind one completion-style interface.
//!
//! The reactor keeps every in-flight operation's state (its fd, address, buffers) in its own
//! slab and hands a backend `&mut OpState` to start it. A backend reports progress as
//! `RawCompletion`s shaped like io_uring CQEs (result or -errno, "more" flag, provided-buffer
//! id), so that everything above — partial-send continuation, multishot re-arming, buffer
//! leasing, dispatch — is written once for both backends.
//!
//! A backend must never free or move an operation's resources: the reactor drops them only
//! after the operation's final completion, which is what keeps dropped-but-in-flight buffers
//! alive for the kernel.

pub(crate) mod epoll;
pub(crate) mod uring;

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use slab::Slab;

use crate::bufpool::BufPool;
use crate::send_buf::SendBuf;

/// Which backend an engine should use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// io_uring when the kernel allows it, else epoll; `ZERORING_BACKEND` may force either.
    #[default]
    Auto,
    /// io_uring or fail.
    Uring,
    /// The epoll readiness fallback.
    Epoll,
}

impl BackendChoice {
    /// Applies the `ZERORING_BACKEND` environment variable (`uring`, `epoll`, or `auto`) to an
    /// `Auto` choice; an explicit choice in code wins.
    pub fn resolve(self) -> io::Result<BackendChoice> {
        self.resolve_with(std::env::var("ZERORING_BACKEND").ok().as_deref())
    }

    /// [`BackendChoice::resolve`] with the variable's value given (`None` = unset).
    pub fn resolve_with(self, env: Option<&str>) -> io::Result<BackendChoice> {
        if self != BackendChoice::Auto {
            return Ok(self);
        }
        match env {
            None | Some("") | Some("auto") => Ok(BackendChoice::Auto),
            Some("uring") | Some("io_uring") => Ok(BackendChoice::Uring),
            Some("epoll") => Ok(BackendChoice::Epoll),
            Some(other) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("ZERORING_BACKEND={other:?}: expected uring, epoll or auto"),
            )),
        }
    }
}

/// The backend a thread ended up with, and what it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendInfo {
    /// `"io_uring"` or `"epoll"`.
    pub kind: &'static str,
    /// Setup flags and features in use, e.g. `["SINGLE_ISSUER", "DEFER_TASKRUN", "EXT_ARG"]`.
    pub features: Vec<&'static str>,
    /// Why io_uring was not used, when the fallback was chosen automatically.
    pub fallback_reason: Option<String>,
}

impl fmt::Display for BackendInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if !self.features.is_empty() {
            write!(f, " [{}]", self.features.join(", "))?;
        }
        if let Some(reason) = &self.fallback_reason {
            write!(f, " (io_uring unavailable: {reason})")?;
        }
        Ok(())
    }
}

/// A shared, reference-counted file descriptor: every in-flight operation holds a clone, so the
/// descriptor cannot be closed (and its number reused) under an operation.
pub type SharedFd = Arc<OwnedFd>;

/// The most iovec entries one sendmsg carries (Linux's UIO_MAXIOV).
pub(crate) const MAX_IOV: usize = 1024;

/// A send in progress: the buffers not yet fully written, and the iovec array the kernel reads.
pub(crate) struct SendState {
    pub(crate) fd: SharedFd,
    pub(crate) bufs: Vec<SendBuf>,
    /// Index of the first buffer not fully sent, and bytes of it already sent.
    pub(crate) head: usize,
    pub(crate) head_off: usize,
    pub(crate) sent: usize,
    pub(crate) zero_copy: bool,
    /// For zero-copy sends: the result of the send CQE while its notification is pending.
    pub(crate) zc_result: Option<i32>,
    pub(crate) iov: Vec<libc::iovec>,
    pub(crate) msghdr: Box<libc::msghdr>,
}

/// The reusable part of a [`SendState`]: its iovec array and msghdr, kept by the reactor
/// between sends so that a send allocates nothing once warm.
pub(crate) struct SendSpare {
    iov: Vec<libc::iovec>,
    msghdr: Box<libc::msghdr>,
}

impl SendState {
    pub(crate) fn new(
        fd: SharedFd,
        bufs: Vec<SendBuf>,
        zero_copy: bool,
        spare: Option<SendSpare>,
    ) -> Self {
        let SendSpare {
            mut iov,
            mut msghdr,
        } = spare.unwrap_or_else(|| SendSpare {
            iov: Vec::new(),
            // SAFETY: msghdr is a plain C struct for which all-zero is a valid (empty) value.
            msghdr: Box::new(unsafe { std::mem::zeroed() }),
        });
        iov.clear();
        // SAFETY: as above; a reused msghdr starts from the empty value again.
        *msghdr = unsafe { std::mem::zeroed() };
        let mut s = SendState {
            fd,
            bufs,
            head: 0,
            head_off: 0,
            sent: 0,
            zero_copy,
            zc_result: None,
            iov,
            msghdr,
        };
        s.skip_empty();
        s
    }

    /// The buffers (for the completion), the descriptor, and what the next send may reuse.
    /// Only for a finished send: the kernel no longer reads the iovec array or msghdr.
    pub(crate) fn into_parts(self) -> (Vec<SendBuf>, SharedFd, SendSpare) {
        let SendState {
            bufs,
            fd,
            iov,
            msghdr,
            ..
        } = self;
        (bufs, fd, SendSpare { iov, msghdr })
    }

    fn skip_empty(&mut self) {
        while self.head < self.bufs.len() && self.bufs[self.head].len() == self.head_off {
            self.head += 1;
            self.head_off = 0;
        }
    }

    /// True when every byte has been written.
    pub(crate) fn done(&self) -> bool {
        self.head >= self.bufs.len()
    }

    /// Records that the kernel accepted `n` more bytes.
    pub(crate) fn advance(&mut self, mut n: usize) {
        self.sent += n;
        while n > 0 && self.head < self.bufs.len() {
            let left = self.bufs[self.head].len() - self.head_off;
            if n < left {
                self.head_off += n;
                n = 0;
            } else {
                n -= left;
                self.head += 1;
                self.head_off = 0;
            }
        }
        self.skip_empty();
    }

    /// Rebuilds the iovec array (and the msghdr pointing at it) for the unsent remainder.
    /// The pointers stay valid while `bufs` and `iov` are untouched, i.e. until the next
    /// completion of this operation.
    pub(crate) fn prepare(&mut self) -> (*const libc::iovec, usize) {
        self.iov.clear();
        for (i, b) in self.bufs[self.head..].iter().enumerate().take(MAX_IOV) {
            let off = if i == 0 { self.head_off } else { 0 };
            if b.len() > off {
                self.iov.push(libc::iovec {
                    iov_base: b[off..].as_ptr() as *mut libc::c_void,
                    iov_len: b.len() - off,
                });
            }
        }
        self.msghdr.msg_iov = self.iov.as_mut_ptr();
        self.msghdr.msg_iovlen = self.iov.len() as _;
        (self.iov.as_ptr(), self.iov.len())
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// What an in-flight operation owns until its final completion.
pub(crate) enum OpState {
    /// Multishot accept on a listening socket.
    Accept { fd: SharedFd },
    /// Connect of a non-blocking socket; the boxed address stays put while the kernel reads it.
    Connect {
        fd: SharedFd,
        addr: Box<socket2::SockAddr>,
        started: bool,
    },
    /// Receive into the provided-buffer pool: multishot, or one buffer's worth (`once`).
    Recv { fd: SharedFd, once: bool },
    /// Receive once into a caller's buffer (the reactor holds it until the completion).
    RecvInto {
        fd: SharedFd,
        buf: crate::body_pool::BodyBuf,
    },
    /// Send of a list of buffers, continued until all is written.
    Send(SendState),
    /// Close of a descriptor nobody else holds.
    Close { fd: Option<OwnedFd>, raw: RawFd },
    /// The thread's own wakeup descriptor (internal; never completes to a handler).
    Wake { fd: RawFd },
}

impl OpState {
    pub(crate) fn raw_fd(&self) -> RawFd {
        match self {
            OpState::Accept { fd }
            | OpState::Recv { fd, .. }
            | OpState::RecvInto { fd, .. }
            | OpState::Connect { fd, .. } => fd.as_raw_fd(),
            OpState::Send(s) => s.raw_fd(),
            OpState::Close { raw, .. } => *raw,
            OpState::Wake { fd } => *fd,
        }
    }

    /// True for operations that wait for readability (epoll interest).
    pub(crate) fn wants_read(&self) -> bool {
        matches!(
            self,
            OpState::Accept { .. }
                | OpState::Recv { .. }
                | OpState::RecvInto { .. }
                | OpState::Wake { .. }
        )
    }
}

/// An in-flight operation in the reactor's slab.
pub(crate) struct OpSlot {
    pub(crate) gen: u32,
    /// Handler key that receives the completions; `None` for internal operations.
    pub(crate) owner: Option<(u32, u32)>,
    pub(crate) state: OpState,
    pub(crate) cancelled: bool,
}

/// One completion, as io_uring would report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawCompletion {
    pub(crate) key: u64,
    /// Non-negative result, or a negated errno.
    pub(crate) res: i32,
    /// The operation stays armed and will complete again.
    pub(crate) more: bool,
    /// The provided buffer the data landed in.
    pub(crate) bid: Option<u16>,
    /// A zero-copy send's "buffers released" notification.
    pub(crate) notif: bool,
}

/// `user_data` of operations nobody waits for (cancel requests).
pub(crate) const IGNORED_KEY: u64 = u64::MAX;

pub(crate) fn op_key(index: usize, gen: u32) -> u64 {
    ((gen as u64) << 32) | index as u64
}

pub(crate) fn split_key(key: u64) -> (usize, u32) {
    ((key & 0xFFFF_FFFF) as usize, (key >> 32) as u32)
}

/// The backend in use on one thread.
pub(crate) enum Backend {
    Uring(Box<uring::UringBackend>),
    Epoll(epoll::EpollBackend),
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Uring(_) => "Backend::Uring",
            Backend::Epoll(_) => "Backend::Epoll",
        })
    }
}

/// Counters a backend bumps for conditions the caller never sees.
#[derive(Debug, Default)]
pub(crate) struct BackendCounters {
    pub(crate) cq_overflow: u64,
    pub(crate) ebusy_retries: u64,
    pub(crate) sq_full_flushes: u64,
    /// Zero-timeout polls that needed no io_uring_enter (nothing to submit, nothing deferred).
    pub(crate) enters_skipped: u64,
}

impl Backend {
    pub(crate) fn submit(&mut self, key: u64, op: &mut OpState, pool: &mut BufPool) {
        match self {
            Backend::Uring(b) => b.submit(key, op),
            Backend::Epoll(b) => b.submit(key, op, pool),
        }
    }

    pub(crate) fn cancel(&mut self, key: u64, op: &mut OpState) {
        match self {
            Backend::Uring(b) => b.cancel(key),
            Backend::Epoll(b) => b.cancel(key, op),
        }
    }

    /// Lends the pool's free buffers to the kernel (io_uring); no-op for epoll.
    pub(crate) fn provide(&mut self, pool: &mut BufPool) {
        if let Backend::Uring(b) = self {
            b.provide(pool);
        }
    }

    /// Waits up to `timeout` (None = until something happens) and appends completions.
    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        ops: &mut Slab<OpSlot>,
        pool: &mut BufPool,
        out: &mut Vec<RawCompletion>,
    ) -> io::Result<()> {
        match self {
            Backend::Uring(b) => b.wait(timeout, out),
            Backend::Epoll(b) => b.wait(timeout, ops, pool, out),
        }
    }

    pub(crate) fn counters(&self) -> &BackendCounters {
        match self {
            Backend::Uring(b) => &b.counters,
            Backend::Epoll(b) => &b.counters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(bufs: &[&'static [u8]]) -> SendState {
        let fd: SharedFd = Arc::new(OwnedFd::from(std::fs::File::open("/dev/null").unwrap()));
        SendState::new(
            fd,
            bufs.iter().map(|b| SendBuf::from(*b)).collect(),
            false,
            None,
        )
    }

    #[test]
    fn a_reused_spare_starts_empty() {
        let mut s = state(&[b"abc", b"de"]);
        s.prepare();
        let (_, fd, spare) = s.into_parts();
        let mut t = SendState::new(fd, vec![SendBuf::from(&b"xyz"[..])], false, Some(spare));
        let (_, n) = t.prepare();
        assert_eq!(
            n, 1,
            "the reused iovec array holds only the new send's buffers"
        );
        assert_eq!(t.msghdr.msg_iovlen as usize, 1);
    }

    #[test]
    fn partial_sends_advance_across_buffers_and_skip_empty_ones() {
        let mut s = state(&[b"", b"abc", b"", b"defg", b""]);
        let (_, n) = s.prepare();
        assert_eq!(n, 2);
        s.advance(2);
        s.prepare();
        assert_eq!(s.iov.len(), 2);
        assert_eq!(s.iov[0].iov_len, 1);
        s.advance(3);
        s.prepare();
        assert_eq!(s.iov.len(), 1);
        assert_eq!(s.iov[0].iov_len, 2);
        assert!(!s.done());
        s.advance(2);
        assert!(s.done());
        assert_eq!(s.sent, 7);
    }

    #[test]
    fn all_empty_is_done_at_once() {
        assert!(state(&[b"", b""]).done());
    }

    #[test]
    fn environment_refines_only_auto() {
        use BackendChoice::*;
        assert_eq!(Auto.resolve_with(None).unwrap(), Auto);
        assert_eq!(Auto.resolve_with(Some("epoll")).unwrap(), Epoll);
        assert_eq!(Auto.resolve_with(Some("uring")).unwrap(), Uring);
        assert_eq!(
            Uring.resolve_with(Some("epoll")).unwrap(),
            Uring,
            "code's explicit choice wins"
        );
        let e = Auto.resolve_with(Some("kqueue")).unwrap_err();
        assert!(e.to_string().contains("kqueue"), "{e}");
    }

    #[test]
    fn keys_round_trip() {
        let k = op_key(12345, 0xDEAD_BEEF);
        assert_eq!(split_key(k), (12345, 0xDEAD_BEEF));
        assert_ne!(k, IGNORED_KEY);
    }
}
