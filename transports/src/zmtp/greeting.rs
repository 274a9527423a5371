//! The ZMTP greeting exchange, sent and received the way libzmq does it: the
//! 10-byte signature first, the major version once the peer's signature is seen,
//! the rest once the peer's revision is known, so that a ZMTP 2.0 peer gets a
//! 2.0 greeting and a 1.0 peer is detected (and refused) early.
//!
//! Owns: greeting bytes and version selection. Must never: consume bytes past
//! the peer's greeting (they belong to the frame decoder), or trust the peer's
//! as-server bit (libzmq always sends 0 and ignores it).

use bytes::{Buf, Bytes};

use super::error::ZmtpError;
use crate::socket_type::SocketType;

/// Length of a ZMTP 3.x greeting.
pub const GREETING_LEN: usize = 64;
/// Length of the signature (0xFF, 8 padding bytes, 0x7F).
pub const SIGNATURE_LEN: usize = 10;
/// Length of a ZMTP 2.0 greeting (signature, revision, socket type).
pub const V2_GREETING_LEN: usize = 12;

/// The ZMTP version spoken on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ZmtpVersion {
    /// ZMTP 2.0 (libzmq 3.x): NULL only, routing id as the first message.
    V2_0,
    /// ZMTP 3.0: subscriptions travel as `\x01topic` / `\x00topic` messages.
    V3_0,
    /// ZMTP 3.1: SUBSCRIBE/CANCEL commands, PING/PONG.
    V3_1,
}

/// A security mechanism name as it appears in the greeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MechanismName {
    Null,
    Plain,
    Curve,
}

impl MechanismName {
    /// The name ("NULL", "PLAIN", "CURVE").
    pub const fn as_str(self) -> &'static str {
        match self {
            MechanismName::Null => "NULL",
            MechanismName::Plain => "PLAIN",
            MechanismName::Curve => "CURVE",
        }
    }

    /// The 20-byte NUL-padded greeting field.
    pub fn field(self) -> [u8; 20] {
        let mut f = [0u8; 20];
        let n = self.as_str().as_bytes();
        f[..n.len()].copy_from_slice(n);
        f
    }
}

/// What we learned from the peer's greeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerGreeting {
    pub version: ZmtpVersion,
    /// The raw mechanism field (3.x; all zero for 2.0).
    pub mechanism: [u8; 20],
    /// The peer's as-server bit (informational: libzmq ignores it).
    pub as_server: bool,
    /// The socket type number a 2.0 peer sends in its greeting.
    pub v2_socket_type: Option<u8>,
}

/// Our side of the greeting.
#[derive(Clone, Copy, Debug)]
pub struct LocalGreeting {
    pub mechanism: MechanismName,
    pub socket_type: SocketType,
    /// Length of our routing id (libzmq puts `len + 1` in the padding).
    pub routing_id_len: usize,
    /// Whether a ZMTP 2.0 peer is acceptable (NULL mechanism and no ZAP).
    pub allow_v2: bool,
}

/// The greeting exchange state machine.
#[derive(Debug)]
pub struct GreetingExchange {
    local: LocalGreeting,
    send: [u8; GREETING_LEN],
    /// Bytes of `send` that are due (may be handed out).
    send_due: usize,
    /// Bytes of `send` already handed out.
    send_taken: usize,
    recv: [u8; GREETING_LEN],
    have: usize,
    /// How many bytes the peer's greeting has (12 until a 3.x revision is seen).
    expect: usize,
}

impl GreetingExchange {
    /// Starts the exchange; the signature is due at once.
    pub fn new(local: LocalGreeting) -> Self {
        let mut send = [0u8; GREETING_LEN];
        send[0] = 0xFF;
        let pad = (local.routing_id_len as u64).saturating_add(1);
        send[1..9].copy_from_slice(&pad.to_be_bytes());
        send[9] = 0x7F;
        GreetingExchange {
            local,
            send,
            send_due: SIGNATURE_LEN,
            send_taken: 0,
            recv: [0; GREETING_LEN],
            have: 0,
            expect: V2_GREETING_LEN,
        }
    }

    /// The greeting bytes that became due since the last call.
    pub fn take_output(&mut self) -> &[u8] {
        let out = self
            .send
            .get(self.send_taken..self.send_due)
            .unwrap_or_default();
        self.send_taken = self.send_due;
        out
    }

    /// Feeds peer bytes, consuming only the greeting's. Returns the peer's
    /// greeting once complete.
    pub fn feed(&mut self, input: &mut Bytes) -> Result<Option<PeerGreeting>, ZmtpError> {
        let mut rest: &[u8] = input;
        let result = self.feed_slice(&mut rest);
        let used = input.len() - rest.len();
        input.advance(used);
        result
    }

    /// [`GreetingExchange::feed`] over a borrowed slice, which it advances past what it uses
    /// (the greeting is copied; nothing refers to `input` afterwards).
    pub fn feed_slice(&mut self, input: &mut &[u8]) -> Result<Option<PeerGreeting>, ZmtpError> {
        while self.have < self.expect {
            // Read up to the next decision point: byte 1, byte 10, byte 11, the end.
            let stop = match self.have {
                0 => 1,
                h if h < SIGNATURE_LEN => SIGNATURE_LEN,
                SIGNATURE_LEN => SIGNATURE_LEN + 1,
                _ => self.expect,
            };
            let take = (stop - self.have).min(input.len());
            if take == 0 {
                return Ok(None);
            }
            if let (Some(dst), Some(src)) = (
                self.recv.get_mut(self.have..self.have + take),
                input.get(..take),
            ) {
                dst.copy_from_slice(src);
            }
            input.advance(take);
            self.have += take;

            if self.recv[0] != 0xFF {
                return Err(ZmtpError::UnsupportedVersion { revision: None });
            }
            if self.have == SIGNATURE_LEN {
                if self.recv[9] & 0x01 == 0 {
                    return Err(ZmtpError::UnsupportedVersion { revision: None });
                }
                // Versioned peer: send our major version.
                self.send[SIGNATURE_LEN] = 3;
                self.send_due = SIGNATURE_LEN + 1;
            }
            if self.have == SIGNATURE_LEN + 1 {
                match self.recv[10] {
                    0 => return Err(ZmtpError::UnsupportedVersion { revision: Some(0) }),
                    1 => {
                        if !self.local.allow_v2 {
                            return Err(ZmtpError::LegacyPeerWithSecurity);
                        }
                        // ZMTP 2.0: the 12th byte is our socket type.
                        self.send[11] = self.local.socket_type.raw() as u8;
                        self.send_due = V2_GREETING_LEN;
                        self.expect = V2_GREETING_LEN;
                    }
                    _ => {
                        self.send[11] = 1; // minor: we speak 3.1
                        self.send[12..32].copy_from_slice(&self.local.mechanism.field());
                        self.send[32] = 0; // as-server: libzmq always sends 0
                        self.send_due = GREETING_LEN;
                        self.expect = GREETING_LEN;
                    }
                }
            }
        }
        let peer = if self.expect == V2_GREETING_LEN {
            PeerGreeting {
                version: ZmtpVersion::V2_0,
                mechanism: [0; 20],
                as_server: false,
                v2_socket_type: Some(self.recv[11]),
            }
        } else {
            let mut mechanism = [0u8; 20];
            mechanism.copy_from_slice(&self.recv[12..32]);
            PeerGreeting {
                version: if self.recv[11] == 0 {
                    ZmtpVersion::V3_0
                } else {
                    ZmtpVersion::V3_1
                },
                mechanism,
                as_server: self.recv[32] & 1 != 0,
                v2_socket_type: None,
            }
        };
        Ok(Some(peer))
    }

    /// Whether part, but not all, of the peer's greeting has arrived.
    pub fn is_partial(&self) -> bool {
        self.have > 0 && self.have < self.expect
    }

    /// Whether the peer's greeting is complete.
    pub fn is_done(&self) -> bool {
        self.have == self.expect
    }
}

/// Builds the full 64-byte ZMTP 3.1 greeting libzmq would send.
pub fn greeting_v3(mechanism: MechanismName, routing_id_len: usize) -> [u8; GREETING_LEN] {
    let mut g = [0u8; GREETING_LEN];
    g[0] = 0xFF;
    g[1..9].copy_from_slice(&(routing_id_len as u64).saturating_add(1).to_be_bytes());
    g[9] = 0x7F;
    g[10] = 3;
    g[11] = 1;
    g[12..32].copy_from_slice(&mechanism.field());
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(allow_v2: bool) -> LocalGreeting {
        LocalGreeting {
            mechanism: MechanismName::Null,
            socket_type: SocketType::Dealer,
            routing_id_len: 0,
            allow_v2,
        }
    }

    #[test]
    fn staged_output_and_v31_peer() {
        let mut g = GreetingExchange::new(local(true));
        assert_eq!(g.take_output(), &[0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F]);
        assert!(g.take_output().is_empty());
        let peer = greeting_v3(MechanismName::Null, 0);
        let mut first = Bytes::copy_from_slice(&peer[..10]);
        assert_eq!(g.feed(&mut first).unwrap(), None);
        assert_eq!(g.take_output(), &[3]);
        let mut rest = Bytes::copy_from_slice(&peer[10..]);
        let mut with_extra = rest.clone().to_vec();
        with_extra.extend_from_slice(b"\x04\x00");
        rest = Bytes::from(with_extra);
        let got = g.feed(&mut rest).unwrap().unwrap();
        assert_eq!(&rest[..], b"\x04\x00", "frame bytes must be left alone");
        assert_eq!(got.version, ZmtpVersion::V3_1);
        assert_eq!(got.mechanism, MechanismName::Null.field());
        let out = g.take_output().to_vec();
        assert_eq!(out.len(), 53);
        assert_eq!(&out[..5], b"\x01NULL");
    }

    #[test]
    fn every_split_gives_the_same_result() {
        let mut peer = greeting_v3(MechanismName::Plain, 5).to_vec();
        peer[11] = 0;
        for cut in 0..=peer.len() {
            let mut g = GreetingExchange::new(local(false));
            let mut a = Bytes::copy_from_slice(&peer[..cut]);
            let mut b = Bytes::copy_from_slice(&peer[cut..]);
            let r1 = g.feed(&mut a).unwrap();
            let r = match r1 {
                Some(r) => r,
                None => g.feed(&mut b).unwrap().unwrap(),
            };
            assert_eq!(r.version, ZmtpVersion::V3_0);
            assert_eq!(r.mechanism, MechanismName::Plain.field());
        }
    }

    #[test]
    fn old_peers() {
        // ZMTP 1.0 unversioned: first byte is a short length.
        let mut g = GreetingExchange::new(local(true));
        assert_eq!(
            g.feed(&mut Bytes::from_static(&[0x01, 0x00])),
            Err(ZmtpError::UnsupportedVersion { revision: None })
        );
        // ZMTP 1.0 long length with flags bit 0 clear.
        let mut g = GreetingExchange::new(local(true));
        assert_eq!(
            g.feed(&mut Bytes::from_static(&[
                0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x00
            ])),
            Err(ZmtpError::UnsupportedVersion { revision: None })
        );
        // Revision 0.
        let mut g = GreetingExchange::new(local(true));
        assert_eq!(
            g.feed(&mut Bytes::from_static(&[
                0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 0
            ])),
            Err(ZmtpError::UnsupportedVersion { revision: Some(0) })
        );
        // ZMTP 2.0.
        let mut g = GreetingExchange::new(local(true));
        g.take_output();
        let r = g
            .feed(&mut Bytes::from_static(&[
                0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 1, 5,
            ]))
            .unwrap()
            .unwrap();
        assert_eq!(r.version, ZmtpVersion::V2_0);
        assert_eq!(r.v2_socket_type, Some(5));
        assert_eq!(g.take_output(), &[3, 5]);
        let mut g = GreetingExchange::new(local(false));
        assert_eq!(
            g.feed(&mut Bytes::from_static(&[
                0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 1, 5
            ])),
            Err(ZmtpError::LegacyPeerWithSecurity)
        );
    }
}
