//! Everything that can go wrong on a ZMTP connection, and how each failure is
//! reported: the errno libzmq would set, and the monitor event (with its
//! `ZMQ_PROTOCOL_ERROR_*` value) libzmq would emit.
//!
//! Owns: error values and their mapping. Must never: carry `String`s built on the
//! hot path (all variants are plain data or `Bytes` slices of peer input).

use std::fmt;

use bytes::Bytes;

use crate::errno::Errno;
use crate::socket_type::SocketType;

/// `ZMQ_PROTOCOL_ERROR_*` values from libzmq's zmq.h (the value of a
/// `ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL` monitor event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ProtocolErrorCode {
    ZmtpUnspecified = 0x1000_0000,
    ZmtpUnexpectedCommand = 0x1000_0001,
    ZmtpInvalidSequence = 0x1000_0002,
    ZmtpKeyExchange = 0x1000_0003,
    ZmtpMalformedCommandUnspecified = 0x1000_0011,
    ZmtpMalformedCommandMessage = 0x1000_0012,
    ZmtpMalformedCommandHello = 0x1000_0013,
    ZmtpMalformedCommandInitiate = 0x1000_0014,
    ZmtpMalformedCommandError = 0x1000_0015,
    ZmtpMalformedCommandReady = 0x1000_0016,
    ZmtpMalformedCommandWelcome = 0x1000_0017,
    ZmtpInvalidMetadata = 0x1000_0018,
    ZmtpCryptographic = 0x1100_0001,
    ZmtpMechanismMismatch = 0x1100_0002,
    ZapUnspecified = 0x2000_0000,
    ZapMalformedReply = 0x2000_0001,
    ZapBadRequestId = 0x2000_0002,
    ZapBadVersion = 0x2000_0003,
    ZapInvalidStatusCode = 0x2000_0004,
    ZapInvalidMetadata = 0x2000_0005,
}

impl ProtocolErrorCode {
    /// The numeric value as zmq.h defines it.
    pub const fn value(self) -> u32 {
        self as u32
    }
}

/// Which command a "malformed command" error is about
/// (selects `ZMQ_PROTOCOL_ERROR_ZMTP_MALFORMED_COMMAND_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Unspecified,
    Message,
    Hello,
    Initiate,
    Error,
    Ready,
    Welcome,
}

/// Framing violations found by the frame decoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// One of the reserved flag bits 3..7 was set (`flags` is the whole byte).
    ReservedFlags { flags: u8 },
    /// A COMMAND frame with the MORE bit (commands are always single frames).
    CommandWithMore,
    /// The declared size exceeds MAXMSGSIZE (or the handshake limit); rejected
    /// before any allocation.
    TooLarge { size: u64, limit: u64 },
    /// The stream ended inside a frame.
    Truncated,
    /// Input was fed while the frame's body was lent to a receive
    /// ([`FrameDecoder::lend_body`](super::FrameDecoder::lend_body)): a driver's bug, refused
    /// rather than decoded out of order.
    InputWhileLent,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ReservedFlags { flags } => {
                write!(f, "frame flags 0x{flags:02x} set reserved bits")
            }
            FrameError::CommandWithMore => f.write_str("COMMAND frame with the MORE flag"),
            FrameError::TooLarge { size, limit } => {
                write!(
                    f,
                    "frame of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            FrameError::Truncated => f.write_str("stream ended inside a frame"),
            FrameError::InputWhileLent => {
                f.write_str("input arrived while the frame's body was lent to a receive")
            }
        }
    }
}

/// Errors in a ZAP reply (RFC 27), as libzmq's `zap_client_t` classifies them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ZapError {
    /// Not exactly 7 frames.
    MalformedReply,
    /// The first (delimiter) frame is not empty.
    Unspecified,
    /// The version frame is not "1.0".
    BadVersion,
    /// The request id does not match the request.
    BadRequestId,
    /// The status code is not 200/300/400/500.
    InvalidStatusCode,
    /// The metadata frame is not valid ZMTP property encoding.
    InvalidMetadata,
    /// The handler went away (closed its socket) without replying. libzmq's session sees its
    /// ZAP pipe terminate and fails the handshake with no detail and EPIPE.
    HandlerGone,
}

impl ZapError {
    /// The monitor value libzmq reports.
    pub const fn code(self) -> ProtocolErrorCode {
        match self {
            ZapError::MalformedReply => ProtocolErrorCode::ZapMalformedReply,
            ZapError::Unspecified => ProtocolErrorCode::ZapUnspecified,
            ZapError::BadVersion => ProtocolErrorCode::ZapBadVersion,
            ZapError::BadRequestId => ProtocolErrorCode::ZapBadRequestId,
            ZapError::InvalidStatusCode => ProtocolErrorCode::ZapInvalidStatusCode,
            ZapError::InvalidMetadata => ProtocolErrorCode::ZapInvalidMetadata,
            // Reported as a failure with no detail, not with a protocol code (see
            // `ZmtpError::handshake_failure`); the nearest code is kept for completeness.
            ZapError::HandlerGone => ProtocolErrorCode::ZapUnspecified,
        }
    }
}

/// The monitor event a failed handshake produces, as libzmq would emit it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandshakeFailure {
    /// `ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL` with a `ZMQ_PROTOCOL_ERROR_*` value.
    Protocol(ProtocolErrorCode),
    /// `ZMQ_EVENT_HANDSHAKE_FAILED_AUTH` with the ZAP status code (300, 400, 500).
    Auth(u16),
    /// `ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL` with an errno.
    NoDetail(Errno),
}

impl HandshakeFailure {
    /// The libzmq monitor event number (`ZMQ_EVENT_HANDSHAKE_FAILED_*`).
    pub const fn event(self) -> u16 {
        match self {
            HandshakeFailure::NoDetail(_) => 0x0800,
            HandshakeFailure::Protocol(_) => 0x2000,
            HandshakeFailure::Auth(_) => 0x4000,
        }
    }

    /// The event's value field.
    pub const fn value(self) -> u32 {
        match self {
            HandshakeFailure::Protocol(c) => c.value(),
            HandshakeFailure::Auth(s) => s as u32,
            HandshakeFailure::NoDetail(e) => e.0 as u32,
        }
    }
}

/// Why a ZMTP connection failed or was closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZmtpError {
    /// The peer speaks ZMTP 1.0 (unversioned, or revision 0): refused.
    UnsupportedVersion { revision: Option<u8> },
    /// The peer speaks ZMTP 2.0 but security (a non-NULL mechanism or a ZAP
    /// domain) is in use: libzmq refuses these too.
    LegacyPeerWithSecurity,
    /// The peer's greeting names another mechanism than ours.
    MechanismMismatch { peer: [u8; 20] },
    /// A framing violation.
    Frame(FrameError),
    /// A command that is not valid at this point (or a message frame during the
    /// handshake). `name` is the command name, empty for a message frame.
    UnexpectedCommand { name: Bytes },
    /// A command (or ZAP reply) arrived in a state where none is expected
    /// (libzmq reports ZMTP_UNSPECIFIED).
    OutOfSequence,
    /// A command's body does not parse.
    MalformedCommand { kind: CommandKind },
    /// A property list does not parse, where libzmq reports
    /// ZMTP_INVALID_METADATA (a PLAIN client reading READY).
    InvalidMetadata,
    /// A property list does not parse, where libzmq closes without a monitor
    /// event (NULL's READY, PLAIN's INITIATE).
    BadProperties,
    /// The peer's `Socket-Type` is not one we may talk to.
    SocketTypeMismatch { local: SocketType, peer: Bytes },
    /// The peer sent an ERROR command.
    PeerError { reason: Bytes },
    /// A malformed ZAP reply.
    Zap(ZapError),
    /// ZAP is required but no handler is bound at inproc://zeromq.zap.01.
    ZapUnavailable,
    /// CURVE: a box did not open (wrong key, forged or damaged data), a cookie did
    /// not match, or no randomness was available.
    Cryptographic,
    /// CURVE: a MESSAGE short nonce not above the previous one (a replay or reorder).
    InvalidSequence,
    /// CURVE: the INITIATE vouch does not name the client's short-term key.
    KeyExchange,
    /// Our ZAP handler refused the peer (status 300, 400 or 500).
    AuthFailed { status: u16 },
    /// HANDSHAKE_IVL elapsed before the handshake completed.
    HandshakeTimeout,
    /// HEARTBEAT_TIMEOUT elapsed after a PING with no traffic from the peer.
    HeartbeatTimeout,
    /// The peer's PING TTL elapsed with no traffic from the peer.
    HeartbeatTtlExpired,
    /// The peer closed the stream.
    ConnectionClosed,
    /// Reading the stream failed with this errno (ECONNRESET, ETIMEDOUT, …), which libzmq's
    /// engine passes on to the monitor as it is.
    ReadFailed(Errno),
}

impl From<FrameError> for ZmtpError {
    fn from(e: FrameError) -> Self {
        ZmtpError::Frame(e)
    }
}

impl From<ZapError> for ZmtpError {
    fn from(e: ZapError) -> Self {
        ZmtpError::Zap(e)
    }
}

impl ZmtpError {
    /// Whether libzmq's engine would end the connection with a *protocol* error (the peer
    /// broke ZMTP, named a socket type we may not talk to, sent ERROR, or failed its
    /// security), after which a connecting session does not reconnect; rather than a
    /// connection or timeout error (the peer closed, HANDSHAKE_IVL or a heartbeat ran out),
    /// after which it does.
    pub fn is_protocol_error(&self) -> bool {
        !matches!(
            self,
            ZmtpError::ConnectionClosed
                | ZmtpError::ReadFailed(_)
                | ZmtpError::Frame(FrameError::Truncated)
                | ZmtpError::HandshakeTimeout
                | ZmtpError::HeartbeatTimeout
                | ZmtpError::HeartbeatTtlExpired
                | ZmtpError::Zap(ZapError::HandlerGone)
        )
    }

    /// The errno libzmq leaves behind for this failure.
    pub fn errno(&self) -> Errno {
        match self {
            ZmtpError::Frame(FrameError::TooLarge { .. }) => Errno::EMSGSIZE,
            ZmtpError::Frame(FrameError::Truncated)
            | ZmtpError::ConnectionClosed
            | ZmtpError::Zap(ZapError::HandlerGone) => Errno::EPIPE,
            ZmtpError::ReadFailed(e) => *e,
            ZmtpError::SocketTypeMismatch { .. } => Errno::EINVAL,
            ZmtpError::ZapUnavailable => Errno::EFAULT,
            ZmtpError::HandshakeTimeout
            | ZmtpError::HeartbeatTimeout
            | ZmtpError::HeartbeatTtlExpired => Errno::ETIMEDOUT,
            _ => Errno::EPROTO,
        }
    }

    /// The HANDSHAKE_FAILED_* monitor event for this error when it happens during
    /// the handshake, or `None` where libzmq emits none (it then only reports
    /// DISCONNECTED).
    pub fn handshake_failure(&self) -> Option<HandshakeFailure> {
        use ProtocolErrorCode as P;
        Some(match self {
            // libzmq refuses old peers (when ZAP is in use) without an event.
            ZmtpError::UnsupportedVersion { .. } | ZmtpError::LegacyPeerWithSecurity => {
                return None
            }
            // libzmq accepts these framing violations; we refuse them and report
            // the unspecified ZMTP code so a monitor sees why.
            ZmtpError::OutOfSequence
            | ZmtpError::Frame(FrameError::ReservedFlags { .. })
            | ZmtpError::Frame(FrameError::CommandWithMore)
            | ZmtpError::Frame(FrameError::InputWhileLent) => {
                HandshakeFailure::Protocol(P::ZmtpUnspecified)
            }
            ZmtpError::MechanismMismatch { .. } => {
                HandshakeFailure::Protocol(P::ZmtpMechanismMismatch)
            }
            ZmtpError::Frame(FrameError::TooLarge { .. }) => return None,
            ZmtpError::Frame(FrameError::Truncated) | ZmtpError::ConnectionClosed => {
                HandshakeFailure::NoDetail(Errno::EPIPE)
            }
            ZmtpError::ReadFailed(e) => HandshakeFailure::NoDetail(*e),
            ZmtpError::UnexpectedCommand { .. } => {
                HandshakeFailure::Protocol(P::ZmtpUnexpectedCommand)
            }
            ZmtpError::MalformedCommand { kind } => HandshakeFailure::Protocol(match kind {
                CommandKind::Unspecified => P::ZmtpMalformedCommandUnspecified,
                CommandKind::Message => P::ZmtpMalformedCommandMessage,
                CommandKind::Hello => P::ZmtpMalformedCommandHello,
                CommandKind::Initiate => P::ZmtpMalformedCommandInitiate,
                CommandKind::Error => P::ZmtpMalformedCommandError,
                CommandKind::Ready => P::ZmtpMalformedCommandReady,
                CommandKind::Welcome => P::ZmtpMalformedCommandWelcome,
            }),
            ZmtpError::InvalidMetadata => HandshakeFailure::Protocol(P::ZmtpInvalidMetadata),
            ZmtpError::BadProperties => return None,
            // libzmq fails the handshake with EINVAL and no event.
            ZmtpError::SocketTypeMismatch { .. } => return None,
            ZmtpError::PeerError { reason } => match reason.as_ref() {
                // libzmq turns a ZAP status code in ERROR into an AUTH failure.
                [d @ b'3'..=b'5', b'0', b'0'] => HandshakeFailure::Auth(u16::from(d - b'0') * 100),
                _ => return None,
            },
            ZmtpError::Zap(ZapError::HandlerGone) => HandshakeFailure::NoDetail(Errno::EPIPE),
            ZmtpError::Zap(z) => HandshakeFailure::Protocol(z.code()),
            ZmtpError::ZapUnavailable => HandshakeFailure::NoDetail(Errno::EFAULT),
            ZmtpError::Cryptographic => HandshakeFailure::Protocol(P::ZmtpCryptographic),
            ZmtpError::InvalidSequence => HandshakeFailure::Protocol(P::ZmtpInvalidSequence),
            ZmtpError::KeyExchange => HandshakeFailure::Protocol(P::ZmtpKeyExchange),
            ZmtpError::AuthFailed { status } => HandshakeFailure::Auth(*status),
            ZmtpError::HandshakeTimeout
            | ZmtpError::HeartbeatTimeout
            | ZmtpError::HeartbeatTtlExpired => HandshakeFailure::NoDetail(Errno::ETIMEDOUT),
        })
    }

    /// The monitor event for this error when it ends a connection *after* the handshake:
    /// libzmq reports a CURVE MESSAGE that fails to decode as HANDSHAKE_FAILED_PROTOCOL even
    /// then. Every other late failure is only a DISCONNECTED.
    pub fn traffic_failure(&self) -> Option<HandshakeFailure> {
        match self {
            ZmtpError::Cryptographic
            | ZmtpError::InvalidSequence
            | ZmtpError::UnexpectedCommand { .. }
            | ZmtpError::MalformedCommand {
                kind: CommandKind::Message,
            } => self.handshake_failure(),
            _ => None,
        }
    }

    /// The reason text of the ERROR command we send before closing, if any.
    pub(crate) fn error_command_reason(&self) -> Option<&'static [u8]> {
        match self {
            ZmtpError::SocketTypeMismatch { .. } => Some(b"Invalid socket type"),
            _ => None,
        }
    }
}

impl fmt::Display for ZmtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZmtpError::UnsupportedVersion { revision: None } => {
                f.write_str("peer speaks unversioned ZMTP 1.0, which is not supported")
            }
            ZmtpError::UnsupportedVersion { revision: Some(r) } => {
                write!(
                    f,
                    "peer speaks ZMTP 1.0 (revision {r}), which is not supported"
                )
            }
            ZmtpError::LegacyPeerWithSecurity => f.write_str(
                "peer speaks ZMTP 2.0, which cannot be used with a security mechanism or ZAP",
            ),
            ZmtpError::MechanismMismatch { peer } => {
                let end = peer.iter().position(|&b| b == 0).unwrap_or(peer.len());
                let name = peer.get(..end).unwrap_or_default();
                write!(
                    f,
                    "security mechanism mismatch: peer uses {:?}",
                    String::from_utf8_lossy(name)
                )
            }
            ZmtpError::Frame(e) => write!(f, "framing error: {e}"),
            ZmtpError::UnexpectedCommand { name } if name.is_empty() => {
                f.write_str("message frame received during the handshake")
            }
            ZmtpError::UnexpectedCommand { name } => {
                write!(f, "unexpected command {:?}", String::from_utf8_lossy(name))
            }
            ZmtpError::OutOfSequence => f.write_str("command out of sequence"),
            ZmtpError::MalformedCommand { kind } => write!(f, "malformed {kind:?} command"),
            ZmtpError::InvalidMetadata | ZmtpError::BadProperties => {
                f.write_str("invalid metadata in READY/INITIATE")
            }
            ZmtpError::SocketTypeMismatch { local, peer } => write!(
                f,
                "socket type {local} cannot talk to peer socket type {:?}",
                String::from_utf8_lossy(peer)
            ),
            ZmtpError::PeerError { reason } => {
                write!(f, "peer sent ERROR: {:?}", String::from_utf8_lossy(reason))
            }
            ZmtpError::Zap(z) => write!(f, "ZAP reply error: {z:?}"),
            ZmtpError::ZapUnavailable => {
                f.write_str("ZAP is required but no ZAP handler is available")
            }
            ZmtpError::Cryptographic => f.write_str("CURVE cryptographic check failed"),
            ZmtpError::InvalidSequence => f.write_str("CURVE short nonce out of sequence"),
            ZmtpError::KeyExchange => f.write_str("CURVE vouch does not match the key exchange"),
            ZmtpError::AuthFailed { status } => {
                write!(f, "authentication failed (ZAP status {status})")
            }
            ZmtpError::HandshakeTimeout => f.write_str("handshake timed out"),
            ZmtpError::HeartbeatTimeout => f.write_str("heartbeat timed out"),
            ZmtpError::HeartbeatTtlExpired => f.write_str("peer heartbeat TTL expired"),
            ZmtpError::ConnectionClosed => f.write_str("connection closed by peer"),
            ZmtpError::ReadFailed(e) => write!(f, "reading the connection failed: {e}"),
        }
    }
}

impl std::error::Error for ZmtpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_zmq_h() {
        assert_eq!(ProtocolErrorCode::ZmtpUnspecified.value(), 0x1000_0000);
        assert_eq!(ProtocolErrorCode::ZmtpInvalidMetadata.value(), 0x1000_0018);
        assert_eq!(
            ProtocolErrorCode::ZmtpMechanismMismatch.value(),
            0x1100_0002
        );
        assert_eq!(ProtocolErrorCode::ZapInvalidMetadata.value(), 0x2000_0005);
    }

    #[test]
    fn peer_error_with_status_is_auth_failure() {
        let e = ZmtpError::PeerError {
            reason: Bytes::from_static(b"400"),
        };
        assert_eq!(e.handshake_failure(), Some(HandshakeFailure::Auth(400)));
        let e = ZmtpError::PeerError {
            reason: Bytes::from_static(b"nope"),
        };
        assert_eq!(e.handshake_failure(), None);
    }

    #[test]
    fn a_failed_read_reports_its_errno_as_libzmq() {
        let e = ZmtpError::ReadFailed(Errno(libc::ECONNRESET));
        assert_eq!(
            e.handshake_failure(),
            Some(HandshakeFailure::NoDetail(Errno(libc::ECONNRESET)))
        );
        assert_eq!(e.errno(), Errno(libc::ECONNRESET));
        assert!(!e.is_protocol_error(), "a connection error: reconnect");
    }
}
