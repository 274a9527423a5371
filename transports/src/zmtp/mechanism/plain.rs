//! The PLAIN mechanism (RFC 24): client HELLO (username, password) → server
//! WELCOME (after ZAP says 200) → client INITIATE (properties) → server READY
//! (properties). Names are length-prefixed, as libzmq sends them.
//!
//! Owns: PLAIN's client and server handshakes. Must never: accept a command out
//! of its order, or proceed on the server side without a ZAP verdict.

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    accept_peer_properties, command_with_basic_properties, parse_error_command, zap_request,
    HandshakeContext, Mechanism, MechanismStatus, PeerState, ZapState,
};
use crate::zmtp::command::split;
use crate::zmtp::error::{CommandKind, ZapError, ZmtpError};
use crate::zmtp::greeting::MechanismName;
use crate::zmtp::metadata::Metadata;
use crate::zmtp::zap::{ZapReply, ZapRequest};

const HELLO: &[u8] = b"\x05HELLO";
const WELCOME: &[u8] = b"\x07WELCOME";
const INITIATE: &[u8] = b"\x08INITIATE";
const READY: &[u8] = b"\x05READY";
const ERROR: &[u8] = b"\x05ERROR";
/// libzmq's PLAIN ERROR prefix. libzmq writes it as the C string `"\x05ERROR"`,
/// whose greedy hex escape reads `\x05E` as one byte 0x5E (`^`): a libzmq PLAIN
/// server sends `^RROR` + reason, and a libzmq PLAIN client only recognises that
/// form (and only then reports HANDSHAKE_FAILED_AUTH). We send libzmq's form
/// and accept both.
pub const LIBZMQ_PLAIN_ERROR: &[u8] = b"^RROR";

/// Builds the ERROR body a PLAIN server sends, in libzmq's form.
pub fn libzmq_plain_error_command(reason: &[u8]) -> Bytes {
    let reason = reason.get(..reason.len().min(255)).unwrap_or_default();
    let mut b = BytesMut::with_capacity(LIBZMQ_PLAIN_ERROR.len() + 1 + reason.len());
    b.extend_from_slice(LIBZMQ_PLAIN_ERROR);
    b.put_u8(reason.len() as u8);
    b.extend_from_slice(reason);
    b.freeze()
}

/// Parses the reason of a libzmq-form PLAIN ERROR.
fn parse_libzmq_plain_error(body: &Bytes) -> Result<Bytes, ZmtpError> {
    let malformed = ZmtpError::MalformedCommand {
        kind: CommandKind::Error,
    };
    let start = LIBZMQ_PLAIN_ERROR.len();
    let len = usize::from(*body.get(start).ok_or(malformed.clone())?);
    body.get(start + 1..start + 1 + len).ok_or(malformed)?;
    Ok(body.slice(start + 1..start + 1 + len))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    SendingHello,
    WaitingWelcome,
    SendingInitiate,
    WaitingReady,
    Ready,
}

/// PLAIN, client side.
#[derive(Debug)]
pub struct PlainClient {
    ctx: HandshakeContext,
    username: Bytes,
    password: Bytes,
    state: ClientState,
    peer: PeerState,
}

impl PlainClient {
    /// `username` and `password` are at most 255 bytes each (longer ones are
    /// refused by [`crate::zmtp::connection::ConnectionConfig::validate`]).
    pub fn new(ctx: HandshakeContext, username: Bytes, password: Bytes) -> Self {
        PlainClient {
            ctx,
            username,
            password,
            state: ClientState::SendingHello,
            peer: PeerState::default(),
        }
    }
}

/// Builds a PLAIN HELLO body.
pub fn hello_command(username: &[u8], password: &[u8]) -> Bytes {
    let u = username.get(..username.len().min(255)).unwrap_or_default();
    let p = password.get(..password.len().min(255)).unwrap_or_default();
    let mut b = BytesMut::with_capacity(HELLO.len() + 2 + u.len() + p.len());
    b.extend_from_slice(HELLO);
    b.put_u8(u.len() as u8);
    b.extend_from_slice(u);
    b.put_u8(p.len() as u8);
    b.extend_from_slice(p);
    b.freeze()
}

impl Mechanism for PlainClient {
    fn name(&self) -> MechanismName {
        MechanismName::Plain
    }

    fn next_command(&mut self) -> Option<Bytes> {
        match self.state {
            ClientState::SendingHello => {
                self.state = ClientState::WaitingWelcome;
                Some(hello_command(&self.username, &self.password))
            }
            ClientState::SendingInitiate => {
                self.state = ClientState::WaitingReady;
                Some(command_with_basic_properties(INITIATE, &self.ctx))
            }
            _ => None,
        }
    }

    fn process_command(&mut self, body: &Bytes) -> Result<(), ZmtpError> {
        if body.starts_with(LIBZMQ_PLAIN_ERROR) {
            if !matches!(
                self.state,
                ClientState::WaitingWelcome | ClientState::WaitingReady
            ) {
                return Err(ZmtpError::UnexpectedCommand {
                    name: Bytes::from_static(LIBZMQ_PLAIN_ERROR),
                });
            }
            return Err(ZmtpError::PeerError {
                reason: parse_libzmq_plain_error(body)?,
            });
        }
        // libzmq matches command prefixes; anything else is "unexpected".
        let unexpected = || ZmtpError::UnexpectedCommand {
            name: split(body).map(|(n, _)| n).unwrap_or_default(),
        };
        if body.starts_with(WELCOME) {
            if self.state != ClientState::WaitingWelcome {
                return Err(unexpected());
            }
            if body.len() != WELCOME.len() {
                return Err(ZmtpError::MalformedCommand {
                    kind: CommandKind::Welcome,
                });
            }
            self.state = ClientState::SendingInitiate;
            Ok(())
        } else if body.starts_with(READY) {
            if self.state != ClientState::WaitingReady {
                return Err(unexpected());
            }
            let data = body.slice(READY.len()..);
            self.peer.properties = accept_peer_properties(&self.ctx, &data, true)?;
            self.state = ClientState::Ready;
            Ok(())
        } else if body.starts_with(ERROR) {
            if !matches!(
                self.state,
                ClientState::WaitingWelcome | ClientState::WaitingReady
            ) {
                return Err(unexpected());
            }
            Err(ZmtpError::PeerError {
                reason: parse_error_command(body)?,
            })
        } else {
            Err(unexpected())
        }
    }

    fn status(&self) -> MechanismStatus {
        if self.state == ClientState::Ready {
            MechanismStatus::Ready
        } else {
            MechanismStatus::Handshaking
        }
    }

    fn peer_properties(&self) -> &Metadata {
        &self.peer.properties
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerState {
    WaitingHello,
    WaitingZap,
    SendingWelcome,
    WaitingInitiate,
    SendingReady,
    Ready,
    SendingError { status: u16 },
    Failed,
}

/// PLAIN, server side. Every HELLO is checked by ZAP (libzmq: no handler, no
/// PLAIN server).
#[derive(Debug)]
pub struct PlainServer {
    ctx: HandshakeContext,
    state: ServerState,
    zap: ZapState,
    peer: PeerState,
    failure: Option<ZmtpError>,
}

impl PlainServer {
    pub fn new(ctx: HandshakeContext) -> Self {
        PlainServer {
            ctx,
            state: ServerState::WaitingHello,
            zap: ZapState::NotUsed,
            peer: PeerState::default(),
            failure: None,
        }
    }

    fn process_hello(&mut self, body: &Bytes) -> Result<(), ZmtpError> {
        // libzmq's check_basic_command_structure.
        let first = usize::from(*body.first().unwrap_or(&0));
        if body.len() <= 1 || body.len() <= first {
            return Err(ZmtpError::MalformedCommand {
                kind: CommandKind::Unspecified,
            });
        }
        if !body.starts_with(HELLO) {
            let name = split(body).map(|(n, _)| n).unwrap_or_default();
            return Err(ZmtpError::UnexpectedCommand { name });
        }
        let malformed = ZmtpError::MalformedCommand {
            kind: CommandKind::Hello,
        };
        let mut pos = HELLO.len();
        let ulen = usize::from(*body.get(pos).ok_or(malformed.clone())?);
        pos += 1;
        body.get(pos..pos + ulen).ok_or(malformed.clone())?;
        let username = body.slice(pos..pos + ulen);
        pos += ulen;
        let plen = usize::from(*body.get(pos).ok_or(malformed.clone())?);
        pos += 1;
        if body.len() - pos != plen {
            return Err(malformed);
        }
        let password = body.slice(pos..);
        if !self.ctx.zap.handler_available {
            return Err(ZmtpError::ZapUnavailable);
        }
        self.zap = ZapState::Pending(Box::new(zap_request(
            &self.ctx,
            "PLAIN",
            vec![username, password],
        )));
        self.state = ServerState::WaitingZap;
        Ok(())
    }
}

impl Mechanism for PlainServer {
    fn name(&self) -> MechanismName {
        MechanismName::Plain
    }

    fn next_command(&mut self) -> Option<Bytes> {
        match self.state {
            ServerState::SendingWelcome => {
                self.state = ServerState::WaitingInitiate;
                Some(Bytes::from_static(WELCOME))
            }
            ServerState::SendingReady => {
                self.state = ServerState::Ready;
                Some(command_with_basic_properties(READY, &self.ctx))
            }
            ServerState::SendingError { status } => {
                self.state = ServerState::Failed;
                Some(libzmq_plain_error_command(status.to_string().as_bytes()))
            }
            _ => None,
        }
    }

    fn process_command(&mut self, body: &Bytes) -> Result<(), ZmtpError> {
        match self.state {
            ServerState::WaitingHello => self.process_hello(body),
            ServerState::WaitingInitiate => {
                if !body.starts_with(INITIATE) {
                    let name = split(body).map(|(n, _)| n).unwrap_or_default();
                    return Err(ZmtpError::UnexpectedCommand { name });
                }
                let data = body.slice(INITIATE.len()..);
                self.peer.properties = accept_peer_properties(&self.ctx, &data, false)?;
                self.state = ServerState::SendingReady;
                Ok(())
            }
            // libzmq reports ZMTP_UNSPECIFIED for a command in any other state.
            _ => Err(ZmtpError::OutOfSequence),
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
        match status {
            200 => self.state = ServerState::SendingWelcome,
            300 => {
                self.state = ServerState::Failed;
                self.failure = Some(ZmtpError::AuthFailed { status });
            }
            _ => {
                self.state = ServerState::SendingError { status };
                self.failure = Some(ZmtpError::AuthFailed { status });
            }
        }
        Ok(())
    }

    fn status(&self) -> MechanismStatus {
        if let Some(f) = &self.failure {
            return MechanismStatus::Failed(f.clone());
        }
        if self.state == ServerState::Ready {
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
