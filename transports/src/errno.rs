//! libzmq's errno vocabulary: the Linux OS values libzmq reports plus its own
//! `ZMQ_HAUSNUMERO`-based codes (EFSM, ENOCOMPATPROTO, ETERM, EMTHREAD).
//!
//! Owns: the numbers and their `zmq_strerror` texts. Must never: depend on a
//! particular platform's `errno` at run time; the values are the Linux ones, which
//! is what libzmq reports on Linux (the HAUSNUMERO fallbacks only apply where the OS
//! lacks a value, so they are provided as separate constants).

use std::fmt;

/// An errno value as libzmq reports it (`zmq_errno()`), on Linux.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(pub i32);

/// libzmq's base for its own error numbers.
pub const ZMQ_HAUSNUMERO: i32 = 156_384_712;

impl Errno {
    pub const EPERM: Errno = Errno(1);
    pub const ENOENT: Errno = Errno(2);
    pub const EINTR: Errno = Errno(4);
    pub const EBADF: Errno = Errno(9);
    pub const EAGAIN: Errno = Errno(11);
    pub const ENOMEM: Errno = Errno(12);
    pub const EACCES: Errno = Errno(13);
    pub const EFAULT: Errno = Errno(14);
    pub const ENODEV: Errno = Errno(19);
    pub const EINVAL: Errno = Errno(22);
    pub const EMFILE: Errno = Errno(24);
    pub const EPIPE: Errno = Errno(32);
    pub const ENAMETOOLONG: Errno = Errno(36);
    pub const EPROTO: Errno = Errno(71);
    pub const ENOTSOCK: Errno = Errno(88);
    pub const EMSGSIZE: Errno = Errno(90);
    pub const EPROTONOSUPPORT: Errno = Errno(93);
    pub const ENOTSUP: Errno = Errno(95);
    pub const EAFNOSUPPORT: Errno = Errno(97);
    pub const EADDRINUSE: Errno = Errno(98);
    pub const EADDRNOTAVAIL: Errno = Errno(99);
    pub const ENETDOWN: Errno = Errno(100);
    pub const ENETUNREACH: Errno = Errno(101);
    pub const ENETRESET: Errno = Errno(102);
    pub const ECONNABORTED: Errno = Errno(103);
    pub const ECONNRESET: Errno = Errno(104);
    pub const ENOBUFS: Errno = Errno(105);
    pub const ENOTCONN: Errno = Errno(107);
    pub const ETIMEDOUT: Errno = Errno(110);
    pub const ECONNREFUSED: Errno = Errno(111);
    pub const EHOSTUNREACH: Errno = Errno(113);
    pub const EINPROGRESS: Errno = Errno(115);

    /// Finite state machine is in the wrong state (e.g. REQ sending twice).
    pub const EFSM: Errno = Errno(ZMQ_HAUSNUMERO + 51);
    /// The protocol is not compatible with the socket type.
    pub const ENOCOMPATPROTO: Errno = Errno(ZMQ_HAUSNUMERO + 52);
    /// The context was terminated.
    pub const ETERM: Errno = Errno(ZMQ_HAUSNUMERO + 53);
    /// No I/O thread is available.
    pub const EMTHREAD: Errno = Errno(ZMQ_HAUSNUMERO + 54);

    /// The raw number.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The `ZMQ_HAUSNUMERO + n` value libzmq uses for this errno on a platform
    /// whose OS lacks it (Windows); `None` for codes every OS has.
    pub const fn hausnumero_fallback(self) -> Option<i32> {
        let n = match self.0 {
            95 => 1,
            93 => 2,
            105 => 3,
            100 => 4,
            98 => 5,
            99 => 6,
            111 => 7,
            115 => 8,
            88 => 9,
            90 => 10,
            97 => 11,
            101 => 12,
            103 => 13,
            104 => 14,
            107 => 15,
            110 => 16,
            113 => 17,
            102 => 18,
            _ => return None,
        };
        Some(ZMQ_HAUSNUMERO + n)
    }

    /// Maps a HAUSNUMERO-based value (as a Windows libzmq reports) or a Linux value
    /// back to the Linux vocabulary.
    pub const fn from_raw(raw: i32) -> Errno {
        let linux = match raw - ZMQ_HAUSNUMERO {
            1 => 95,
            2 => 93,
            3 => 105,
            4 => 100,
            5 => 98,
            6 => 99,
            7 => 111,
            8 => 115,
            9 => 88,
            10 => 90,
            11 => 97,
            12 => 101,
            13 => 103,
            14 => 104,
            15 => 107,
            16 => 110,
            17 => 113,
            18 => 102,
            _ => raw,
        };
        Errno(linux)
    }

    /// The symbolic name (`"EAGAIN"`), if known.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::EINTR => "EINTR",
            Errno::EBADF => "EBADF",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::EFAULT => "EFAULT",
            Errno::ENODEV => "ENODEV",
            Errno::EINVAL => "EINVAL",
            Errno::EMFILE => "EMFILE",
            Errno::EPIPE => "EPIPE",
            Errno::ENAMETOOLONG => "ENAMETOOLONG",
            Errno::EPROTO => "EPROTO",
            Errno::ENOTSOCK => "ENOTSOCK",
            Errno::EMSGSIZE => "EMSGSIZE",
            Errno::EPROTONOSUPPORT => "EPROTONOSUPPORT",
            Errno::ENOTSUP => "ENOTSUP",
            Errno::EAFNOSUPPORT => "EAFNOSUPPORT",
            Errno::EADDRINUSE => "EADDRINUSE",
            Errno::EADDRNOTAVAIL => "EADDRNOTAVAIL",
            Errno::ENETDOWN => "ENETDOWN",
            Errno::ENETUNREACH => "ENETUNREACH",
            Errno::ENETRESET => "ENETRESET",
            Errno::ECONNABORTED => "ECONNABORTED",
            Errno::ECONNRESET => "ECONNRESET",
            Errno::ENOBUFS => "ENOBUFS",
            Errno::ENOTCONN => "ENOTCONN",
            Errno::ETIMEDOUT => "ETIMEDOUT",
            Errno::ECONNREFUSED => "ECONNREFUSED",
            Errno::EHOSTUNREACH => "EHOSTUNREACH",
            Errno::EINPROGRESS => "EINPROGRESS",
            Errno::EFSM => "EFSM",
            Errno::ENOCOMPATPROTO => "ENOCOMPATPROTO",
            Errno::ETERM => "ETERM",
            Errno::EMTHREAD => "EMTHREAD",
            _ => return None,
        })
    }

    /// The text `zmq_strerror` gives (glibc's text for OS values).
    pub const fn strerror(self) -> &'static str {
        match self {
            Errno::EFSM => "Operation cannot be accomplished in current state",
            Errno::ENOCOMPATPROTO => "The protocol is not compatible with the socket type",
            Errno::ETERM => "Context was terminated",
            Errno::EMTHREAD => "No thread available",
            Errno::EPERM => "Operation not permitted",
            Errno::ENOENT => "No such file or directory",
            Errno::EINTR => "Interrupted system call",
            Errno::EBADF => "Bad file descriptor",
            Errno::EAGAIN => "Resource temporarily unavailable",
            Errno::ENOMEM => "Cannot allocate memory",
            Errno::EACCES => "Permission denied",
            Errno::EFAULT => "Bad address",
            Errno::ENODEV => "No such device",
            Errno::EINVAL => "Invalid argument",
            Errno::EMFILE => "Too many open files",
            Errno::EPIPE => "Broken pipe",
            Errno::ENAMETOOLONG => "File name too long",
            Errno::EPROTO => "Protocol error",
            Errno::ENOTSOCK => "Socket operation on non-socket",
            Errno::EMSGSIZE => "Message too long",
            Errno::EPROTONOSUPPORT => "Protocol not supported",
            Errno::ENOTSUP => "Operation not supported",
            Errno::EAFNOSUPPORT => "Address family not supported by protocol",
            Errno::EADDRINUSE => "Address already in use",
            Errno::EADDRNOTAVAIL => "Cannot assign requested address",
            Errno::ENETDOWN => "Network is down",
            Errno::ENETUNREACH => "Network is unreachable",
            Errno::ENETRESET => "Network dropped connection on reset",
            Errno::ECONNABORTED => "Software caused connection abort",
            Errno::ECONNRESET => "Connection reset by peer",
            Errno::ENOBUFS => "No buffer space available",
            Errno::ENOTCONN => "Transport endpoint is not connected",
            Errno::ETIMEDOUT => "Connection timed out",
            Errno::ECONNREFUSED => "Connection refused",
            Errno::EHOSTUNREACH => "No route to host",
            Errno::EINPROGRESS => "Operation now in progress",
            _ => "Unknown error",
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}"),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.strerror())
    }
}

impl From<Errno> for i32 {
    fn from(e: Errno) -> i32 {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hausnumero_values_match_zmq_h() {
        assert_eq!(Errno::EFSM.raw(), 156_384_763);
        assert_eq!(Errno::ENOCOMPATPROTO.raw(), 156_384_764);
        assert_eq!(Errno::ETERM.raw(), 156_384_765);
        assert_eq!(Errno::EMTHREAD.raw(), 156_384_766);
        assert_eq!(
            Errno::ENOTSUP.hausnumero_fallback(),
            Some(ZMQ_HAUSNUMERO + 1)
        );
        assert_eq!(Errno::from_raw(ZMQ_HAUSNUMERO + 17), Errno::EHOSTUNREACH);
        assert_eq!(Errno::from_raw(11), Errno::EAGAIN);
    }

    #[test]
    fn linux_values_match_libc() {
        for (ours, theirs) in [
            (Errno::EAGAIN, libc::EAGAIN),
            (Errno::EINVAL, libc::EINVAL),
            (Errno::ENAMETOOLONG, libc::ENAMETOOLONG),
            (Errno::EPROTONOSUPPORT, libc::EPROTONOSUPPORT),
            (Errno::EPROTO, libc::EPROTO),
            (Errno::EMSGSIZE, libc::EMSGSIZE),
            (Errno::EHOSTUNREACH, libc::EHOSTUNREACH),
            (Errno::ECONNREFUSED, libc::ECONNREFUSED),
            (Errno::ENODEV, libc::ENODEV),
            (Errno::ENOTSUP, libc::ENOTSUP),
            (Errno::EINPROGRESS, libc::EINPROGRESS),
            (Errno::ENETRESET, libc::ENETRESET),
        ] {
            assert_eq!(ours.raw(), theirs, "{ours:?}");
        }
    }

    #[test]
    fn strerror_efsm() {
        assert_eq!(
            Errno::EFSM.to_string(),
            "Operation cannot be accomplished in current state"
        );
    }
}
