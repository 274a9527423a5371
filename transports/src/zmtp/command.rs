//! ZMTP commands that are not mechanism-specific: READY, ERROR, SUBSCRIBE,
//! CANCEL, PING, PONG, JOIN, LEAVE (mechanism commands such as PLAIN's HELLO live
//! with their mechanism).
//!
//! Owns: command body parsing (zero-copy) and encoding. Must never: panic on a
//! short or lying body. Command names are compared exactly, as libzmq does.

use bytes::{Bytes, BytesMut};

use super::encoder::Encoder;
use super::error::{CommandKind, ZmtpError};
use super::metadata::Metadata;

/// Longest PING context a PONG carries back (ZMTP 3.1).
pub const MAX_PING_CONTEXT: usize = 16;

/// A parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Ready(Metadata),
    Error {
        reason: Bytes,
    },
    Subscribe(Bytes),
    Cancel(Bytes),
    /// `ttl` in deciseconds; `context` is 0..=16 bytes in well-formed PINGs.
    Ping {
        ttl: u16,
        context: Bytes,
    },
    Pong {
        context: Bytes,
    },
    Join(Bytes),
    Leave(Bytes),
    /// Any other command (mechanism commands, or unknown ones to be ignored).
    Other {
        name: Bytes,
        data: Bytes,
    },
}

/// Splits a command frame body into name and data.
pub fn split(body: &Bytes) -> Result<(Bytes, Bytes), ZmtpError> {
    let malformed = ZmtpError::MalformedCommand {
        kind: CommandKind::Unspecified,
    };
    let name_len = usize::from(*body.first().ok_or(malformed.clone())?);
    if body.len() < 1 + name_len {
        return Err(malformed);
    }
    Ok((body.slice(1..1 + name_len), body.slice(1 + name_len..)))
}

impl Command {
    /// Parses a command frame body.
    pub fn parse(body: &Bytes) -> Result<Command, ZmtpError> {
        let (name, data) = split(body)?;
        Ok(match &name[..] {
            b"READY" => {
                Command::Ready(Metadata::parse(&data).map_err(|_| ZmtpError::InvalidMetadata)?)
            }
            b"ERROR" => {
                let malformed = ZmtpError::MalformedCommand {
                    kind: CommandKind::Error,
                };
                let len = usize::from(*data.first().ok_or(malformed.clone())?);
                if data.len() < 1 + len {
                    return Err(malformed);
                }
                Command::Error {
                    reason: data.slice(1..1 + len),
                }
            }
            b"SUBSCRIBE" => Command::Subscribe(data),
            b"CANCEL" => Command::Cancel(data),
            b"PING" => {
                // libzmq reads two TTL bytes whatever the size; a shorter PING is
                // taken as TTL 0 with no context rather than read out of bounds.
                if data.len() < 2 {
                    Command::Ping {
                        ttl: 0,
                        context: Bytes::new(),
                    }
                } else {
                    Command::Ping {
                        ttl: u16::from_be_bytes([data[0], data[1]]),
                        context: data.slice(2..),
                    }
                }
            }
            b"PONG" => Command::Pong { context: data },
            b"JOIN" => Command::Join(data),
            b"LEAVE" => Command::Leave(data),
            _ => Command::Other { name, data },
        })
    }

    /// Encodes the command as one frame.
    pub fn encode(&self, enc: &mut Encoder) {
        match self {
            Command::Ready(m) => {
                let mut buf = BytesMut::with_capacity(m.encoded_len());
                m.encode(&mut buf);
                enc.command(b"READY", &[&buf]);
            }
            Command::Error { reason } => {
                let reason = reason.get(..reason.len().min(255)).unwrap_or_default();
                enc.command(b"ERROR", &[&[reason.len() as u8], reason]);
            }
            Command::Subscribe(t) => enc.frame_with_prefix(false, true, b"\x09SUBSCRIBE", t),
            Command::Cancel(t) => enc.frame_with_prefix(false, true, b"\x06CANCEL", t),
            Command::Ping { ttl, context } => enc.command(b"PING", &[&ttl.to_be_bytes(), context]),
            Command::Pong { context } => enc.command(b"PONG", &[context]),
            Command::Join(g) => enc.frame_with_prefix(false, true, b"\x04JOIN", g),
            Command::Leave(g) => enc.frame_with_prefix(false, true, b"\x05LEAVE", g),
            Command::Other { name, data } => enc.command(name, &[data]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zmtp::frame::FrameDecoder;
    use proptest::prelude::*;

    fn round_trip(c: &Command) -> Command {
        let mut enc = Encoder::new(0);
        c.encode(&mut enc);
        let mut wire = BytesMut::new();
        while let Some(x) = enc.next_chunk() {
            wire.extend_from_slice(&x);
        }
        let mut wire = wire.freeze();
        let f = FrameDecoder::new(None).decode(&mut wire).unwrap().unwrap();
        assert!(f.command && !f.more);
        Command::parse(&f.body).unwrap()
    }

    #[test]
    fn known_wire_forms() {
        let mut enc = Encoder::default();
        Command::Subscribe(Bytes::from_static(b"A")).encode(&mut enc);
        assert_eq!(&enc.next_chunk().unwrap()[..], b"\x04\x0b\x09SUBSCRIBEA");
        Command::Error {
            reason: Bytes::from_static(b"400"),
        }
        .encode(&mut enc);
        assert_eq!(&enc.next_chunk().unwrap()[..], b"\x04\x0a\x05ERROR\x03400");
    }

    #[test]
    fn malformed() {
        assert!(matches!(
            Command::parse(&Bytes::new()),
            Err(ZmtpError::MalformedCommand { .. })
        ));
        assert!(matches!(
            Command::parse(&Bytes::from_static(b"\x05REA")),
            Err(ZmtpError::MalformedCommand { .. })
        ));
        assert_eq!(
            Command::parse(&Bytes::from_static(b"\x05ERROR\x05ab")),
            Err(ZmtpError::MalformedCommand {
                kind: CommandKind::Error
            })
        );
        assert_eq!(
            Command::parse(&Bytes::from_static(b"\x05READY\x01")),
            Err(ZmtpError::InvalidMetadata)
        );
        assert_eq!(
            Command::parse(&Bytes::from_static(b"\x04PING")).unwrap(),
            Command::Ping {
                ttl: 0,
                context: Bytes::new()
            }
        );
    }

    fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
    }

    proptest! {
        #[test]
        fn commands_round_trip(topic in bytes(300), ctx in bytes(17), ttl in any::<u16>(), reason in bytes(255),
                               props in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 1..10), bytes(20)), 0..4)) {
            let mut m = Metadata::new();
            for (n, v) in props {
                m.push(n, v).unwrap();
            }
            for c in [
                Command::Ready(m.clone()),
                Command::Error { reason: reason.clone() },
                Command::Subscribe(topic.clone()),
                Command::Cancel(topic.clone()),
                Command::Ping { ttl, context: ctx.clone() },
                Command::Pong { context: ctx.clone() },
                Command::Join(topic.clone()),
                Command::Leave(topic.clone()),
            ] {
                prop_assert_eq!(round_trip(&c), c);
            }
        }
    }
}
