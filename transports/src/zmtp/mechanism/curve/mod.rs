//! The CURVE mechanism (RFC 25 CurveZMQ, RFC 26 ZMTP-CURVE), laid out byte for
//! byte as libzmq 4.3 lays it out:
//!
//! - client HELLO (200 bytes): `\x05HELLO`, version 1.0, 72 zero bytes of
//!   anti-amplification padding, C′, short nonce, Box\[64 zeros\](C′→S);
//! - server WELCOME (168 bytes): `\x07WELCOME`, 16-byte long nonce,
//!   Box\[S′ + cookie\](S→C′), the cookie being SecretBox\[C′ + s′\](K) under a
//!   fresh per-connection cookie key K;
//! - client INITIATE (≥ 257 bytes): `\x08INITIATE`, cookie, short nonce,
//!   Box\[C + vouch nonce + vouch + metadata\](C′→S′), the vouch being
//!   Box\[C′ + S\](C→S′);
//! - server READY: `\x05READY`, short nonce, Box\[metadata\](S′→C′);
//! - then every frame, data or command, as `\x07MESSAGE`, short nonce,
//!   Box\[flags + body\](C′↔S′) — sent by libzmq as an ordinary frame with no
//!   flags (MORE and COMMAND travel inside the box).
//!
//! Boxes are NaCl `crypto_box` / `crypto_secretbox` (X25519 + XSalsa20-Poly1305)
//! from the RustCrypto crates; on the wire a box is its 16-byte tag followed by the
//! ciphertext (NaCl's "easy" layout, which is what libzmq sends after stripping the
//! zero padding). Short nonces start at 1 in each direction and count every command
//! and message; an inbound MESSAGE whose nonce is not above the last one seen is a
//! protocol error (ZMTP_INVALID_SEQUENCE), as in libzmq.
//!
//! Owns: CURVE's client and server handshakes, the traffic seal/open, and the
//! key types (secret keys zeroized on drop, compared in constant time). Must
//! never: print a secret key, keep the cookie key after INITIATE, or accept a
//! frame that does not authenticate.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use crypto_box::aead::generic_array::GenericArray;
use crypto_box::aead::{AeadInPlace, KeyInit};
use crypto_box::{PublicKey, SalsaBox, SecretKey};
use crypto_secretbox::XSalsa20Poly1305;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::{
    accept_peer_properties, command_with_basic_properties, error_command, parse_error_command,
    zap_request, HandshakeContext, Mechanism, MechanismStatus, PeerState, ZapState,
};
use crate::zmtp::command::split;
use crate::zmtp::error::{CommandKind, ZapError, ZmtpError};
use crate::zmtp::frame::Frame;
use crate::zmtp::greeting::MechanismName;
use crate::zmtp::metadata::Metadata;
use crate::zmtp::zap::{ZapReply, ZapRequest};

mod client;
mod server;
#[cfg(test)]
mod tests;

pub use client::CurveClient;
pub use server::CurveServer;

/// Length of a CURVE key (public or secret), in bytes.
pub const KEY_LEN: usize = 32;
/// Length of a CURVE key in Z85 text.
pub const KEY_LEN_Z85: usize = 40;

const HELLO: &[u8] = b"\x05HELLO";
const WELCOME: &[u8] = b"\x07WELCOME";
const INITIATE: &[u8] = b"\x08INITIATE";
const READY: &[u8] = b"\x05READY";
const ERROR: &[u8] = b"\x05ERROR";
const MESSAGE: &[u8] = b"\x07MESSAGE";

const HELLO_LEN: usize = 200;
const WELCOME_LEN: usize = 168;
const INITIATE_MIN_LEN: usize = 257;
const READY_MIN_LEN: usize = 30;
const TAG_LEN: usize = 16;
/// `\x07MESSAGE` + short nonce.
const MESSAGE_HEADER_LEN: usize = 16;
const COOKIE_LEN: usize = 16 + 80;

const FLAG_MORE: u8 = 1;
const FLAG_COMMAND: u8 = 2;

/// A CURVE secret key: zeroized on drop, never printed, compared in constant time.
#[derive(Clone)]
pub struct CurveSecretKey(Zeroizing<[u8; KEY_LEN]>);

impl CurveSecretKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        CurveSecretKey(Zeroizing::new(bytes))
    }

    /// The raw key (for `zmq_getsockopt`).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The public key that goes with this secret key.
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        self.to_crypto().public_key().to_bytes()
    }

    fn to_crypto(&self) -> SecretKey {
        SecretKey::from_bytes(*self.0)
    }
}

impl fmt::Debug for CurveSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurveSecretKey(..)")
    }
}

impl PartialEq for CurveSecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&*other.0).into()
    }
}

impl Eq for CurveSecretKey {}

/// Random bytes from the OS, or the cryptographic failure libzmq would report.
fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, ZmtpError> {
    let mut b = Zeroizing::new([0u8; N]);
    getrandom::fill(&mut *b).map_err(|_| ZmtpError::Cryptographic)?;
    Ok(b)
}

/// A fresh long-term key pair (libzmq's `zmq_curve_keypair`): the public key and
/// the secret key. Fails only when the OS has no randomness to give.
pub fn keypair() -> Result<([u8; KEY_LEN], CurveSecretKey), ZmtpError> {
    let secret = CurveSecretKey::from_bytes(*random::<KEY_LEN>()?);
    Ok((secret.public_key(), secret))
}

/// A short-term key pair for one connection.
fn ephemeral() -> Result<(PublicKey, SecretKey), ZmtpError> {
    let secret = SecretKey::from_bytes(*random::<KEY_LEN>()?);
    Ok((secret.public_key(), secret))
}

/// A 24-byte nonce: `prefix` then `tail` (callers pass 16 + 8 or 8 + 16 bytes; anything
/// else is cut or zero-padded rather than a panic).
fn nonce(prefix: &[u8], tail: &[u8]) -> [u8; 24] {
    let mut n = [0u8; 24];
    for (d, s) in n.iter_mut().zip(prefix.iter().chain(tail)) {
        *d = *s;
    }
    n
}

/// Appends Box\[plaintext\] (tag, then ciphertext) to `out`.
fn seal_into<A: AeadInPlace>(
    cipher: &A,
    nonce: &[u8; 24],
    plaintext: &[u8],
    out: &mut BytesMut,
) -> Result<(), ZmtpError> {
    let start = out.len();
    out.put_bytes(0, TAG_LEN);
    out.extend_from_slice(plaintext);
    let body = out
        .get_mut(start + TAG_LEN..)
        .ok_or(ZmtpError::Cryptographic)?;
    let tag = cipher
        .encrypt_in_place_detached(GenericArray::from_slice(nonce), b"", body)
        .map_err(|_| ZmtpError::Cryptographic)?;
    if let Some(t) = out.get_mut(start..start + TAG_LEN) {
        t.copy_from_slice(&tag);
    }
    Ok(())
}

/// Opens a box (tag, then ciphertext) into a plaintext that is wiped on drop.
fn open_box<A: AeadInPlace>(
    cipher: &A,
    nonce: &[u8; 24],
    boxed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ZmtpError> {
    let (tag, ct) = boxed
        .split_at_checked(TAG_LEN)
        .ok_or(ZmtpError::Cryptographic)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    cipher
        .decrypt_in_place_detached(
            GenericArray::from_slice(nonce),
            b"",
            &mut buf,
            GenericArray::from_slice(tag),
        )
        .map_err(|_| ZmtpError::Cryptographic)?;
    Ok(buf)
}

fn key_at(b: &[u8], at: usize) -> Result<[u8; KEY_LEN], ZmtpError> {
    b.get(at..at + KEY_LEN)
        .and_then(|s| <[u8; KEY_LEN]>::try_from(s).ok())
        .ok_or(ZmtpError::Cryptographic)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_be_bytes)
}

/// libzmq's check_basic_command_structure: a name length byte that fits.
fn check_basic_structure(body: &[u8]) -> Result<(), ZmtpError> {
    let first = usize::from(*body.first().unwrap_or(&0));
    if body.len() <= 1 || body.len() <= first {
        return Err(ZmtpError::MalformedCommand {
            kind: CommandKind::Unspecified,
        });
    }
    Ok(())
}

fn unexpected(body: &Bytes) -> ZmtpError {
    ZmtpError::UnexpectedCommand {
        name: split(body).map(|(n, _)| n).unwrap_or_default(),
    }
}

/// The traffic state both sides share once the handshake is done: the
/// precomputed C′/S′ box and the two short-nonce counters.
struct Traffic {
    cipher: SalsaBox,
    send_prefix: &'static [u8; 16],
    recv_prefix: &'static [u8; 16],
    /// The next short nonce we send (1 first, counting handshake commands).
    next_nonce: u64,
    /// The last short nonce the peer sent.
    peer_nonce: u64,
}

impl fmt::Debug for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traffic")
            .field("next_nonce", &self.next_nonce)
            .field("peer_nonce", &self.peer_nonce)
            .finish_non_exhaustive()
    }
}

impl Traffic {
    fn take_nonce(&mut self) -> Result<[u8; 8], ZmtpError> {
        let n = self.next_nonce;
        // A nonce must never repeat: stop at the end of the counter.
        self.next_nonce = n.checked_add(1).ok_or(ZmtpError::InvalidSequence)?;
        Ok(n.to_be_bytes())
    }

    fn seal(&mut self, frame: Frame) -> Result<Frame, ZmtpError> {
        let short = self.take_nonce()?;
        let n = nonce(self.send_prefix, &short);
        let flags = (u8::from(frame.more) * FLAG_MORE) | (u8::from(frame.command) * FLAG_COMMAND);
        let mut out = BytesMut::with_capacity(MESSAGE_HEADER_LEN + TAG_LEN + 1 + frame.body.len());
        out.extend_from_slice(MESSAGE);
        out.extend_from_slice(&short);
        let start = out.len();
        out.put_bytes(0, TAG_LEN);
        out.put_u8(flags);
        out.extend_from_slice(&frame.body);
        let tag = self
            .cipher
            .encrypt_in_place_detached(
                GenericArray::from_slice(&n),
                b"",
                out.get_mut(start + TAG_LEN..).unwrap_or_default(),
            )
            .map_err(|_| ZmtpError::Cryptographic)?;
        if let Some(t) = out.get_mut(start..start + TAG_LEN) {
            t.copy_from_slice(&tag);
        }
        Ok(Frame {
            more: false,
            command: false,
            body: out.freeze(),
        })
    }

    fn open(&mut self, frame: Frame) -> Result<Frame, ZmtpError> {
        let body = &frame.body;
        check_basic_structure(body)?;
        if !body.starts_with(MESSAGE) {
            return Err(unexpected(body));
        }
        if body.len() < MESSAGE_HEADER_LEN + TAG_LEN + 1 {
            return Err(ZmtpError::MalformedCommand {
                kind: CommandKind::Message,
            });
        }
        let short = u64_at(body, MESSAGE.len());
        if short <= self.peer_nonce {
            return Err(ZmtpError::InvalidSequence);
        }
        let n = nonce(self.recv_prefix, &short.to_be_bytes());
        let (tag, ct) = body
            .get(MESSAGE_HEADER_LEN..)
            .and_then(|b| b.split_at_checked(TAG_LEN))
            .ok_or(ZmtpError::MalformedCommand {
                kind: CommandKind::Message,
            })?;
        let mut plain = BytesMut::from(ct);
        self.cipher
            .decrypt_in_place_detached(
                GenericArray::from_slice(&n),
                b"",
                &mut plain,
                GenericArray::from_slice(tag),
            )
            .map_err(|_| ZmtpError::Cryptographic)?;
        self.peer_nonce = short;
        let flags = *plain.first().unwrap_or(&0);
        let body = plain.freeze().slice(1..);
        Ok(Frame {
            more: flags & FLAG_MORE != 0,
            command: flags & FLAG_COMMAND != 0,
            body,
        })
    }
}
