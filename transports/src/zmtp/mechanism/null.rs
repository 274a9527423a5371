//! The NULL mechanism (RFC 37): each side sends READY with its properties; with
//! a ZAP domain set, the server side asks ZAP first (libzmq's behaviour: a
//! refusal sends ERROR with the status code, 300 closes silently). An accepted
//! connection sends its READY only after the peer's (`ready_after_peer`).
//!
//! Owns: NULL's handshake. Must never: accept a second READY/ERROR.

use bytes::Bytes;

use super::{
    accept_peer_properties, command_with_basic_properties, error_command, parse_error_command,
    zap_request, HandshakeContext, Mechanism, MechanismStatus, PeerState, ZapState,
};
use crate::zmtp::command::split;
use crate::zmtp::error::{ZapError, ZmtpError};
use crate::zmtp::greeting::MechanismName;
use crate::zmtp::metadata::Metadata;
use crate::zmtp::zap::{ZapReply, ZapRequest};

/// NULL, either side.
#[derive(Debug)]
pub struct NullMechanism {
    ctx: HandshakeContext,
    ready_sent: bool,
    error_sent: bool,
    ready_received: bool,
    zap: ZapState,
    peer: PeerState,
    failure: Option<ZmtpError>,
}

impl NullMechanism {
    pub fn new(ctx: HandshakeContext) -> Self {
        let mut failure = None;
        let zap = if ctx.zap.domain.is_empty() {
            ZapState::NotUsed
        } else if ctx.zap.handler_available {
            ZapState::Pending(Box::new(zap_request(&ctx, "NULL", Vec::new())))
        } else if ctx.zap.enforce_domain {
            failure = Some(ZmtpError::ZapUnavailable);
            ZapState::NotUsed
        } else {
            ZapState::NotUsed
        };
        NullMechanism {
            ctx,
            ready_sent: false,
            error_sent: false,
            ready_received: false,
            zap,
            peer: PeerState::default(),
            failure,
        }
    }
}

impl Mechanism for NullMechanism {
    fn name(&self) -> MechanismName {
        MechanismName::Null
    }

    fn next_command(&mut self) -> Option<Bytes> {
        if self.ready_sent || self.error_sent {
            return None;
        }
        match self.zap {
            ZapState::Pending(_) | ZapState::Waiting => None,
            ZapState::Done { status } if status != 200 => {
                self.error_sent = true;
                if status == 300 {
                    None
                } else {
                    Some(error_command(status.to_string().as_bytes()))
                }
            }
            _ if self.failure.is_some() => None,
            // An accepted connection answers the peer's READY (see `ready_after_peer`).
            _ if self.ctx.ready_after_peer && !self.ready_received => None,
            _ => {
                self.ready_sent = true;
                Some(command_with_basic_properties(b"\x05READY", &self.ctx))
            }
        }
    }

    fn process_command(&mut self, body: &Bytes) -> Result<(), ZmtpError> {
        // libzmq matches command prefixes; anything else is "unexpected".
        let name = || split(body).map(|(n, _)| n).unwrap_or_default();
        if self.ready_received {
            return Err(ZmtpError::UnexpectedCommand { name: name() });
        }
        if body.starts_with(b"\x05READY") {
            let data = body.slice(6..);
            self.peer.properties = accept_peer_properties(&self.ctx, &data, false)?;
            self.ready_received = true;
            Ok(())
        } else if body.starts_with(b"\x05ERROR") {
            Err(ZmtpError::PeerError {
                reason: parse_error_command(body)?,
            })
        } else {
            Err(ZmtpError::UnexpectedCommand { name: name() })
        }
    }

    fn poll_zap_request(&mut self) -> Option<ZapRequest> {
        self.zap.take_request()
    }

    fn awaiting_zap(&self) -> bool {
        self.zap.awaiting()
    }

    fn zap_reply(&mut self, reply: Result<ZapReply, ZapError>) -> Result<(), ZmtpError> {
        let status = self.zap.accept_reply(reply, &mut self.peer)?;
        if status != 200 {
            self.failure = Some(ZmtpError::AuthFailed { status });
        }
        Ok(())
    }

    fn status(&self) -> MechanismStatus {
        if let Some(f) = &self.failure {
            return MechanismStatus::Failed(f.clone());
        }
        if self.ready_sent && self.ready_received {
            MechanismStatus::Ready
        } else {
            MechanismStatus::Handshaking
        }
    }

    fn peer_properties(&self) -> &Metadata {
        &self.peer.properties
    }

    fn user_id(&self) -> Option<&Bytes> {
        self.peer.user_id.as_ref()
    }

    fn zap_properties(&self) -> Option<&Metadata> {
        self.peer.zap_properties.as_ref()
    }
}
