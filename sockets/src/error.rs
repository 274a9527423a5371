//! The error type: one variant per libzmq errno value.
//!
//! Every fallible call returns [`Result`]. [`Error::errno`] gives the value libzmq's
//! `zmq_errno()` would (the OS value on Linux, libzmq's own `ZMQ_HAUSNUMERO`-based values for
//! EFSM, ENOCOMPATPROTO, ETERM and EMTHREAD), and `Display` prints `zmq_strerror`'s text, so a
//! future C ABI maps errors back without special cases.

use std::fmt;

use zeroring_transports::errno::Errno;

/// A zeroring error: exactly libzmq's errno vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Operation not permitted.
    EPERM,
    /// No such file or directory (e.g. disconnecting an endpoint that is not connected).
    ENOENT,
    /// Interrupted system call: a signal handler ran while a blocking send or recv waited.
    EINTR,
    /// Bad file descriptor.
    EBADF,
    /// Resource temporarily unavailable: a non-blocking call would block, or a timeout expired.
    EAGAIN,
    /// Cannot allocate memory.
    ENOMEM,
    /// Permission denied.
    EACCES,
    /// Bad address.
    EFAULT,
    /// No such device.
    ENODEV,
    /// Invalid argument: unknown option, wrong value size, malformed endpoint, …
    EINVAL,
    /// Too many open files (e.g. MAX_SOCKETS reached).
    EMFILE,
    /// Broken pipe.
    EPIPE,
    /// File name too long.
    ENAMETOOLONG,
    /// Protocol error.
    EPROTO,
    /// Socket operation on non-socket.
    ENOTSOCK,
    /// Message too long.
    EMSGSIZE,
    /// Protocol not supported (an unknown or not yet available transport).
    EPROTONOSUPPORT,
    /// Operation not supported by this socket type.
    ENOTSUP,
    /// Address family not supported.
    EAFNOSUPPORT,
    /// Address already in use.
    EADDRINUSE,
    /// Cannot assign requested address.
    EADDRNOTAVAIL,
    /// Network is down.
    ENETDOWN,
    /// Network is unreachable.
    ENETUNREACH,
    /// Network dropped connection on reset.
    ENETRESET,
    /// Software caused connection abort.
    ECONNABORTED,
    /// Connection reset by peer.
    ECONNRESET,
    /// No buffer space available.
    ENOBUFS,
    /// Transport endpoint is not connected.
    ENOTCONN,
    /// Connection timed out.
    ETIMEDOUT,
    /// Connection refused (e.g. inproc connect with nobody bound under IMMEDIATE rules).
    ECONNREFUSED,
    /// No route to host (ROUTER_MANDATORY and an unknown routing id).
    EHOSTUNREACH,
    /// Operation now in progress.
    EINPROGRESS,
    /// Operation cannot be accomplished in current state (REQ/REP sequence violated).
    EFSM,
    /// The protocol is not compatible with the socket type.
    ENOCOMPATPROTO,
    /// Context was terminated.
    ETERM,
    /// No thread available.
    EMTHREAD,
    /// Any other errno value (kept so that nothing is lost when mapping back).
    Other(i32),
}

/// `std::result::Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

const TABLE: [(Error, Errno); 36] = [
    (Error::EPERM, Errno::EPERM),
    (Error::ENOENT, Errno::ENOENT),
    (Error::EINTR, Errno::EINTR),
    (Error::EBADF, Errno::EBADF),
    (Error::EAGAIN, Errno::EAGAIN),
    (Error::ENOMEM, Errno::ENOMEM),
    (Error::EACCES, Errno::EACCES),
    (Error::EFAULT, Errno::EFAULT),
    (Error::ENODEV, Errno::ENODEV),
    (Error::EINVAL, Errno::EINVAL),
    (Error::EMFILE, Errno::EMFILE),
    (Error::EPIPE, Errno::EPIPE),
    (Error::ENAMETOOLONG, Errno::ENAMETOOLONG),
    (Error::EPROTO, Errno::EPROTO),
    (Error::ENOTSOCK, Errno::ENOTSOCK),
    (Error::EMSGSIZE, Errno::EMSGSIZE),
    (Error::EPROTONOSUPPORT, Errno::EPROTONOSUPPORT),
    (Error::ENOTSUP, Errno::ENOTSUP),
    (Error::EAFNOSUPPORT, Errno::EAFNOSUPPORT),
    (Error::EADDRINUSE, Errno::EADDRINUSE),
    (Error::EADDRNOTAVAIL, Errno::EADDRNOTAVAIL),
    (Error::ENETDOWN, Errno::ENETDOWN),
    (Error::ENETUNREACH, Errno::ENETUNREACH),
    (Error::ENETRESET, Errno::ENETRESET),
    (Error::ECONNABORTED, Errno::ECONNABORTED),
    (Error::ECONNRESET, Errno::ECONNRESET),
    (Error::ENOBUFS, Errno::ENOBUFS),
    (Error::ENOTCONN, Errno::ENOTCONN),
    (Error::ETIMEDOUT, Errno::ETIMEDOUT),
    (Error::ECONNREFUSED, Errno::ECONNREFUSED),
    (Error::EHOSTUNREACH, Errno::EHOSTUNREACH),
    (Error::EINPROGRESS, Errno::EINPROGRESS),
    (Error::EFSM, Errno::EFSM),
    (Error::ENOCOMPATPROTO, Errno::ENOCOMPATPROTO),
    (Error::ETERM, Errno::ETERM),
    (Error::EMTHREAD, Errno::EMTHREAD),
];

impl Error {
    /// The transports-layer errno value of this error.
    pub fn to_errno(self) -> Errno {
        if let Error::Other(raw) = self {
            return Errno(raw);
        }
        TABLE
            .iter()
            .find(|(e, _)| *e == self)
            .map(|(_, n)| *n)
            .unwrap_or(Errno::EINVAL)
    }

    /// The errno value libzmq reports for this error (`zmq_errno()`).
    pub fn errno(self) -> i32 {
        self.to_errno().raw()
    }

    /// The error for an errno value; accepts both the OS values and libzmq's
    /// `ZMQ_HAUSNUMERO`-based fallbacks.
    pub fn from_errno(raw: i32) -> Error {
        let errno = Errno::from_raw(raw);
        TABLE
            .iter()
            .find(|(_, n)| *n == errno)
            .map(|(e, _)| *e)
            .unwrap_or(Error::Other(errno.raw()))
    }

    /// libzmq's symbolic name ("EAGAIN", "EFSM", …), when it has one.
    pub fn name(self) -> Option<&'static str> {
        self.to_errno().name()
    }
}

impl From<Errno> for Error {
    fn from(e: Errno) -> Self {
        Error::from_errno(e.raw())
    }
}

impl From<Error> for Errno {
    fn from(e: Error) -> Self {
        e.to_errno()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_errno().strerror())
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::other(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_variant() {
        for (e, n) in TABLE {
            assert_eq!(Error::from_errno(e.errno()), e);
            assert_eq!(e.errno(), n.raw());
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(Error::from_errno(9999), Error::Other(9999));
        assert_eq!(Error::Other(9999).errno(), 9999);
    }

    #[test]
    fn libzmq_texts_and_values() {
        assert_eq!(
            Error::EFSM.to_string(),
            "Operation cannot be accomplished in current state"
        );
        assert_eq!(Error::ETERM.errno(), 156_384_712 + 53);
        assert_eq!(Error::EAGAIN.errno(), 11);
        assert_eq!(Error::EHOSTUNREACH.errno(), 113);
        // libzmq's fallback value maps to the OS one.
        assert_eq!(Error::from_errno(156_384_712 + 17), Error::EHOSTUNREACH);
        assert_eq!(Error::EAGAIN.name(), Some("EAGAIN"));
    }
}
