//! What a [`Connection`](super::Connection) reports to its driver: the peer it learned in the
//! handshake, the events of its life, and why a send was refused.

use super::*;

/// What the handshake told us about the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub version: ZmtpVersion,
    /// From the `Socket-Type` property (or the 2.0 greeting).
    pub socket_type: Option<SocketType>,
    /// From the `Identity` property (or a 2.0 peer's first message).
    pub routing_id: Option<Bytes>,
    /// All ZMTP properties the peer sent.
    pub properties: Metadata,
    /// The ZAP handler's user id (becomes the `User-Id` message property).
    pub user_id: Option<Bytes>,
    /// The ZAP reply's metadata.
    pub zap_properties: Option<Metadata>,
}

impl PeerInfo {
    /// A message property as libzmq's `zmq_msg_gets` resolves it: ZMTP
    /// properties, then ZAP properties, then `User-Id`.
    pub fn property(&self, name: &str) -> Option<&Bytes> {
        self.properties
            .get(name)
            .or_else(|| self.zap_properties.as_ref().and_then(|m| m.get(name)))
            .or_else(|| {
                if name.eq_ignore_ascii_case(metadata::USER_ID) {
                    self.user_id.as_ref()
                } else {
                    None
                }
            })
    }
}

/// What the connection reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed (monitor: HANDSHAKE_SUCCEEDED; libzmq emits none
    /// for ZMTP 2.0 peers).
    HandshakeSucceeded(Box<PeerInfo>),
    /// The handshake failed; the connection is finished. The error's
    /// [`ZmtpError::handshake_failure`] is the monitor event.
    HandshakeFailed(ZmtpError),
    /// The mechanism needs a ZAP verdict: send the request's frames to the
    /// handler and give the reply to [`Connection::zap_reply`].
    ZapRequest(Box<ZapRequest>),
    /// One frame of an inbound message.
    Frame { body: Bytes, more: bool },
    /// A subscription (3.1 SUBSCRIBE, or a 3.0/2.0 `\x01topic` message to PUB/XPUB).
    Subscribe(Bytes),
    /// An unsubscription.
    Cancel(Bytes),
    /// RADIO/DISH JOIN.
    Join(Bytes),
    /// RADIO/DISH LEAVE.
    Leave(Bytes),
    /// The connection failed after the handshake; it is finished.
    Closed(ZmtpError),
}

/// Why an outbound frame was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameRefused {
    /// The handshake has not completed yet.
    NotReady,
    /// The connection is finished.
    Closed,
    /// The peer's protocol version cannot carry this (JOIN/LEAVE before 3.1).
    Unsupported,
}

impl FrameRefused {
    pub fn errno(self) -> Errno {
        match self {
            FrameRefused::NotReady => Errno::EAGAIN,
            FrameRefused::Closed => Errno::ENOTCONN,
            FrameRefused::Unsupported => Errno::ENOTSUP,
        }
    }
}

impl fmt::Display for FrameRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameRefused::NotReady => "the ZMTP handshake has not completed",
            FrameRefused::Closed => "the connection is closed",
            FrameRefused::Unsupported => "the peer's ZMTP version does not support this",
        })
    }
}

impl std::error::Error for FrameRefused {}
