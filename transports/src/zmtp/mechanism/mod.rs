//! Security mechanisms: the handshake that runs after the greeting and ends in
//! READY, and (for CURVE, later) the per-frame transform of the traffic after it.
//!
//! Owns: the [`Mechanism`] trait every mechanism implements, the context a
//! handshake needs, and the helpers shared by all of them (basic properties,
//! the peer's metadata check). Must never: do I/O, or read a clock.
//!
//! The CURVE seam: a CURVE client/server implements [`Mechanism`] like NULL and
//! PLAIN do (its HELLO/WELCOME/INITIATE/READY in `next_command` /
//! `process_command`), and overrides [`Mechanism::seal`] / [`Mechanism::open`] to
//! box and unbox MESSAGE frames after the handshake. The connection calls those
//! on every frame, so nothing else changes.

pub mod curve;
pub mod null;
pub mod plain;

use std::fmt;

use bytes::{Bytes, BytesMut};

use super::error::{ZapError, ZmtpError};
use super::frame::Frame;
use super::greeting::MechanismName;
use super::metadata::{self, Metadata};
use super::zap::{ZapReply, ZapRequest};
use crate::socket_type::SocketType;

/// ZAP settings of the local socket.
#[derive(Clone, Debug, Default)]
pub struct ZapSettings {
    /// ZMQ_ZAP_DOMAIN. For NULL, ZAP is used only when this is not empty.
    pub domain: Bytes,
    /// ZMQ_ZAP_ENFORCE_DOMAIN: fail when ZAP is required but no handler exists.
    pub enforce_domain: bool,
    /// Whether a ZAP handler is bound at inproc://zeromq.zap.01 (the driver knows).
    pub handler_available: bool,
}

/// What a mechanism needs to know about the local socket.
#[derive(Clone, Debug)]
pub struct HandshakeContext {
    pub socket_type: SocketType,
    pub routing_id: Bytes,
    /// Application properties (ZMQ_METADATA), sent in READY/INITIATE.
    pub app_metadata: Metadata,
    pub zap: ZapSettings,
    /// The peer's address, for ZAP requests.
    pub peer_address: Bytes,
    /// NULL sends READY only after the peer's ([`ConnectionConfig::ready_after_peer`](crate::zmtp::ConnectionConfig::ready_after_peer)).
    pub ready_after_peer: bool,
}

/// Where a mechanism's handshake stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MechanismStatus {
    Handshaking,
    Ready,
    /// The handshake failed; commands still returned by `next_command` (an
    /// ERROR) should be sent before closing.
    Failed(ZmtpError),
}

/// A security mechanism (NULL, PLAIN, and later CURVE), client or server side.
pub trait Mechanism: fmt::Debug + Send {
    /// The name in the greeting.
    fn name(&self) -> MechanismName;

    /// The next handshake command to send (the frame body: name length, name,
    /// data), if one is due.
    fn next_command(&mut self) -> Option<Bytes>;

    /// Processes a handshake command frame body from the peer.
    fn process_command(&mut self, body: &Bytes) -> Result<(), ZmtpError>;

    /// A ZAP request to hand to the handler, once.
    fn poll_zap_request(&mut self) -> Option<ZapRequest> {
        None
    }

    /// Applies the handler's reply (or the reason it could not be parsed).
    fn zap_reply(&mut self, reply: Result<ZapReply, ZapError>) -> Result<(), ZmtpError> {
        let _ = reply;
        Err(ZmtpError::OutOfSequence)
    }

    /// Whether a ZAP reply is awaited.
    fn awaiting_zap(&self) -> bool {
        false
    }

    /// Handshake progress.
    fn status(&self) -> MechanismStatus;

    /// The peer's ZMTP properties (from READY or INITIATE).
    fn peer_properties(&self) -> &Metadata;

    /// The user id the ZAP handler assigned, if any.
    fn user_id(&self) -> Option<&Bytes> {
        None
    }

    /// Properties from the ZAP reply's metadata frame.
    fn zap_properties(&self) -> Option<&Metadata> {
        None
    }

    /// CURVE seam: whether traffic frames go through [`Mechanism::seal`] and
    /// [`Mechanism::open`] (false for NULL and PLAIN, which skip the calls).
    fn seals_traffic(&self) -> bool {
        false
    }

    /// CURVE seam: transforms an outbound frame after the handshake.
    fn seal(&mut self, frame: Frame) -> Result<Frame, ZmtpError> {
        Ok(frame)
    }

    /// CURVE seam: transforms an inbound frame after the handshake.
    fn open(&mut self, frame: Frame) -> Result<Frame, ZmtpError> {
        Ok(frame)
    }
}

/// Builds a command body `prefix` (e.g. `\x05READY`) + our basic properties:
/// Socket-Type, Identity (REQ/DEALER/ROUTER), then the application properties.
pub fn command_with_basic_properties(prefix: &[u8], ctx: &HandshakeContext) -> Bytes {
    let mut buf = BytesMut::with_capacity(prefix.len() + 64 + ctx.app_metadata.encoded_len());
    buf.extend_from_slice(prefix);
    metadata::encode_property(
        &mut buf,
        metadata::SOCKET_TYPE.as_bytes(),
        ctx.socket_type.name().as_bytes(),
    );
    if ctx.socket_type.sends_identity() {
        metadata::encode_property(&mut buf, metadata::IDENTITY.as_bytes(), &ctx.routing_id);
    }
    ctx.app_metadata.encode(&mut buf);
    buf.freeze()
}

/// Parses the peer's property list and checks its Socket-Type against ours
/// (as libzmq: an absent Socket-Type is not checked). `reported` selects the
/// error for a list that does not parse: [`ZmtpError::InvalidMetadata`] where
/// libzmq emits ZMTP_INVALID_METADATA, [`ZmtpError::BadProperties`] where it
/// closes silently.
pub fn accept_peer_properties(
    ctx: &HandshakeContext,
    data: &Bytes,
    reported: bool,
) -> Result<Metadata, ZmtpError> {
    let props = Metadata::parse(data).map_err(|_| {
        if reported {
            ZmtpError::InvalidMetadata
        } else {
            ZmtpError::BadProperties
        }
    })?;
    if let Some(peer_type) = props.get(metadata::SOCKET_TYPE) {
        let ok =
            SocketType::from_name(peer_type).is_some_and(|t| ctx.socket_type.is_compatible_with(t));
        if !ok {
            return Err(ZmtpError::SocketTypeMismatch {
                local: ctx.socket_type,
                peer: peer_type.clone(),
            });
        }
    }
    Ok(props)
}

/// The ERROR command body for `reason`.
pub fn error_command(reason: &[u8]) -> Bytes {
    let reason = reason.get(..reason.len().min(255)).unwrap_or_default();
    let mut b = BytesMut::with_capacity(7 + reason.len());
    b.extend_from_slice(b"\x05ERROR");
    b.extend_from_slice(&[reason.len() as u8]);
    b.extend_from_slice(reason);
    b.freeze()
}

/// Parses an ERROR command body (`\x05ERROR`, u8 length, reason).
pub fn parse_error_command(body: &Bytes) -> Result<Bytes, ZmtpError> {
    let malformed = ZmtpError::MalformedCommand {
        kind: super::error::CommandKind::Error,
    };
    let len = usize::from(*body.get(6).ok_or(malformed.clone())?);
    body.get(7..7 + len).ok_or(malformed)?;
    Ok(body.slice(7..7 + len))
}

/// ZAP progress shared by the server-side mechanisms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ZapState {
    /// No ZAP round trip (not required, or no handler and not enforced).
    NotUsed,
    /// A request is ready to be polled.
    Pending(Box<ZapRequest>),
    /// Waiting for the reply.
    Waiting,
    /// The reply was applied.
    Done { status: u16 },
}

impl ZapState {
    /// Hands out the pending request (once) and starts waiting for its reply.
    pub(crate) fn take_request(&mut self) -> Option<ZapRequest> {
        if !matches!(self, ZapState::Pending(_)) {
            return None;
        }
        match std::mem::replace(self, ZapState::Waiting) {
            ZapState::Pending(r) => Some(*r),
            _ => None,
        }
    }

    /// A request is pending or its reply is awaited.
    pub(crate) fn awaiting(&self) -> bool {
        matches!(self, ZapState::Pending(_) | ZapState::Waiting)
    }

    /// Checks and applies the handler's reply to `peer`; returns its status code. What the
    /// status means for the handshake is the mechanism's business.
    pub(crate) fn accept_reply(
        &mut self,
        reply: Result<ZapReply, ZapError>,
        peer: &mut PeerState,
    ) -> Result<u16, ZmtpError> {
        if *self != ZapState::Waiting {
            return Err(ZmtpError::OutOfSequence);
        }
        let reply = reply?;
        reply.validate()?;
        peer.apply_zap(&reply);
        *self = ZapState::Done {
            status: reply.status_code,
        };
        Ok(reply.status_code)
    }
}

/// The peer state every mechanism keeps.
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerState {
    pub properties: Metadata,
    pub user_id: Option<Bytes>,
    pub zap_properties: Option<Metadata>,
}

impl PeerState {
    pub fn apply_zap(&mut self, reply: &ZapReply) {
        if !reply.user_id.is_empty() {
            self.user_id = Some(reply.user_id.clone());
        }
        self.zap_properties = Some(reply.metadata.clone());
    }
}

pub(crate) fn zap_request(
    ctx: &HandshakeContext,
    mechanism: &'static str,
    credentials: Vec<Bytes>,
) -> ZapRequest {
    ZapRequest {
        request_id: Bytes::from_static(super::zap::REQUEST_ID),
        domain: ctx.zap.domain.clone(),
        address: ctx.peer_address.clone(),
        routing_id: ctx.routing_id.clone(),
        mechanism,
        credentials,
    }
}
