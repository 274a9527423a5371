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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientState {
    SendingHello,
    WaitingWelcome,
    SendingInitiate,
    WaitingReady,
    Ready,
    Failed,
}

/// CURVE, client side: knows its long-term key pair and the server's public key.
pub struct CurveClient {
    ctx: HandshakeContext,
    public: [u8; KEY_LEN],
    secret: CurveSecretKey,
    server: PublicKey,
    /// C′ and c′.
    cn_public: PublicKey,
    cn_secret: Option<SecretKey>,
    /// S′ and the cookie, from WELCOME.
    cn_server: Option<PublicKey>,
    cookie: [u8; COOKIE_LEN],
    /// Our next short nonce before the traffic state exists.
    next_nonce: u64,
    traffic: Option<Traffic>,
    state: ClientState,
    peer: PeerState,
    failure: Option<ZmtpError>,
}

impl fmt::Debug for CurveClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveClient")
            .field("state", &self.state)
            .field("traffic", &self.traffic)
            .finish_non_exhaustive()
    }
}

impl CurveClient {
    /// `public`/`secret`: our long-term keys; `server`: the server's public key.
    pub fn new(
        ctx: HandshakeContext,
        public: [u8; KEY_LEN],
        secret: CurveSecretKey,
        server: [u8; KEY_LEN],
    ) -> Self {
        let (cn_public, cn_secret, failure) = match ephemeral() {
            Ok((p, s)) => (p, Some(s), None),
            Err(e) => (PublicKey::from_bytes([0; KEY_LEN]), None, Some(e)),
        };
        CurveClient {
            ctx,
            public,
            secret,
            server: PublicKey::from_bytes(server),
            cn_public,
            cn_secret,
            cn_server: None,
            cookie: [0; COOKIE_LEN],
            next_nonce: 1,
            traffic: None,
            state: ClientState::SendingHello,
            peer: PeerState::default(),
            failure,
        }
    }

    fn take_nonce(&mut self) -> [u8; 8] {
        let n = self.next_nonce;
        self.next_nonce += 1;
        n.to_be_bytes()
    }

    fn fail(&mut self, e: ZmtpError) {
        self.state = ClientState::Failed;
        self.failure.get_or_insert(e);
    }

    fn produce_hello(&mut self) -> Result<Bytes, ZmtpError> {
        let short = self.take_nonce();
        let cn_secret = self.cn_secret.as_ref().ok_or(ZmtpError::Cryptographic)?;
        let mut b = BytesMut::with_capacity(HELLO_LEN);
        b.extend_from_slice(HELLO);
        b.extend_from_slice(&[1, 0]);
        b.put_bytes(0, 72);
        b.extend_from_slice(self.cn_public.as_bytes());
        b.extend_from_slice(&short);
        let cipher = SalsaBox::new(&self.server, cn_secret);
        seal_into(
            &cipher,
            &nonce(b"CurveZMQHELLO---", &short),
            &[0u8; 64],
            &mut b,
        )?;
        Ok(b.freeze())
    }

    fn process_welcome(&mut self, body: &Bytes) -> Result<(), ZmtpError> {
        // libzmq's client tries to open a WELCOME in any state, so a late one fails as
        // cryptographic there; we refuse it with the same report.
        if self.state != ClientState::WaitingWelcome {
            return Err(ZmtpError::Cryptographic);
        }
        // libzmq reports any failure here, the size included, as cryptographic.
        if body.len() != WELCOME_LEN {
            return Err(ZmtpError::Cryptographic);
        }
        let cn_secret = self.cn_secret.as_ref().ok_or(ZmtpError::Cryptographic)?;
        let n = nonce(b"WELCOME-", body.get(8..24).unwrap_or_default());
        let cipher = SalsaBox::new(&self.server, cn_secret);
        let plain = open_box(&cipher, &n, body.get(24..).unwrap_or_default())?;
        let cn_server = PublicKey::from_bytes(key_at(&plain, 0)?);
        self.cookie.copy_from_slice(
            plain
                .get(KEY_LEN..KEY_LEN + COOKIE_LEN)
                .ok_or(ZmtpError::Cryptographic)?,
        );
        self.traffic = Some(Traffic {
            cipher: SalsaBox::new(&cn_server, cn_secret),
            send_prefix: b"CurveZMQMESSAGEC",
            recv_prefix: b"CurveZMQMESSAGES",
            next_nonce: self.next_nonce,
            peer_nonce: 1,
        });
        self.cn_server = Some(cn_server);
        self.state = ClientState::SendingInitiate;
        Ok(())
    }

    fn produce_initiate(&mut self) -> Result<Bytes, ZmtpError> {
        let cn_server = self.cn_server.as_ref().ok_or(ZmtpError::Cryptographic)?;
        let traffic = self.traffic.as_mut().ok_or(ZmtpError::Cryptographic)?;
        // Vouch = Box[C′ + S](C→S′), under a random long nonce.
        let vouch_tail = random::<16>()?;
        let mut vouch_plain = Zeroizing::new([0u8; 64]);
        vouch_plain[..KEY_LEN].copy_from_slice(self.cn_public.as_bytes());
        vouch_plain[KEY_LEN..].copy_from_slice(self.server.as_bytes());
        let mut vouch = BytesMut::with_capacity(80);
        seal_into(
            &SalsaBox::new(cn_server, &self.secret.to_crypto()),
            &nonce(b"VOUCH---", &*vouch_tail),
            &*vouch_plain,
            &mut vouch,
        )?;
        let metadata = command_with_basic_properties(b"", &self.ctx);
        let mut plain = Zeroizing::new(Vec::with_capacity(128 + metadata.len()));
        plain.extend_from_slice(&self.public);
        plain.extend_from_slice(&*vouch_tail);
        plain.extend_from_slice(&vouch);
        plain.extend_from_slice(&metadata);
        let short = traffic.take_nonce()?;
        let mut b = BytesMut::with_capacity(113 + TAG_LEN + plain.len());
        b.extend_from_slice(INITIATE);
        b.extend_from_slice(&self.cookie);
        b.extend_from_slice(&short);
        seal_into(
            &traffic.cipher,
            &nonce(b"CurveZMQINITIATE", &short),
            &plain,
            &mut b,
        )?;
        // The cookie and c′ are of no more use (the traffic box holds the key).
        self.cookie.zeroize();
        self.cn_secret = None;
        Ok(b.freeze())
    }

    fn process_ready(&mut self, body: &Bytes) -> Result<(), ZmtpError> {
        if body.len() < READY_MIN_LEN {
            return Err(ZmtpError::MalformedCommand {
                kind: CommandKind::Ready,
            });
        }
        // libzmq's client opens a READY in any state; before WELCOME it has no key for it
        // and reports a cryptographic failure. We refuse it with the same report.
        if self.state != ClientState::WaitingReady {
            return Err(ZmtpError::Cryptographic);
        }
        let traffic = self.traffic.as_mut().ok_or(ZmtpError::Cryptographic)?;
        let short = body.get(6..14).unwrap_or_default();
        let plain = open_box(
            &traffic.cipher,
            &nonce(b"CurveZMQREADY---", short),
            body.get(14..).unwrap_or_default(),
        )?;
        traffic.peer_nonce = u64_at(body, 6);
        let data = Bytes::copy_from_slice(&plain);
        self.peer.properties = accept_peer_properties(&self.ctx, &data, true)?;
        self.state = ClientState::Ready;
        Ok(())
    }
}

impl Mechanism for CurveClient {
    fn name(&self) -> MechanismName {
        MechanismName::Curve
    }

    fn next_command(&mut self) -> Option<Bytes> {
        let produced = match self.state {
            ClientState::SendingHello => {
                self.state = ClientState::WaitingWelcome;
                self.produce_hello()
            }
            ClientState::SendingInitiate => {
                self.state = ClientState::WaitingReady;
                self.produce_initiate()
            }
            _ => return None,
        };
        match produced {
            Ok(b) => Some(b),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn process_command(&mut self, body: &Bytes) -> Result<(), ZmtpError> {
        let r = if body.starts_with(WELCOME) {
            self.process_welcome(body)
        } else if body.starts_with(READY) {
            self.process_ready(body)
        } else if body.starts_with(ERROR) {
            if matches!(
                self.state,
                ClientState::WaitingWelcome | ClientState::WaitingReady
            ) {
                parse_error_command(body).and_then(|reason| Err(ZmtpError::PeerError { reason }))
            } else {
                Err(unexpected(body))
            }
        } else {
            Err(unexpected(body))
        };
        if let Err(e) = &r {
            self.fail(e.clone());
        }
        r
    }

    fn status(&self) -> MechanismStatus {
        if let Some(f) = &self.failure {
            return MechanismStatus::Failed(f.clone());
        }
        if self.state == ClientState::Ready {
            MechanismStatus::Ready
        } else {
            MechanismStatus::Handshaking
        }
    }

    fn peer_properties(&self) -> &Metadata {
        &self.peer.properties
    }

    fn seals_traffic(&self) -> bool {
        true
    }

    fn seal(&mut self, frame: Frame) -> Result<Frame, ZmtpError> {
        match (&mut self.traffic, self.state) {
            (Some(t), ClientState::Ready) => t.seal(frame),
            _ => Err(ZmtpError::OutOfSequence),
        }
    }

    fn open(&mut self, frame: Frame) -> Result<Frame, ZmtpError> {
        match (&mut self.traffic, self.state) {
            (Some(t), ClientState::Ready) => t.open(frame),
            _ => Err(ZmtpError::OutOfSequence),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerState {
    WaitingHello,
    SendingWelcome,
    WaitingInitiate,
    WaitingZap,
    SendingReady,
    Ready,
    SendingError { status: u16 },
    Failed,
}

/// CURVE, server side: knows only its long-term secret key, and derives the public key
/// from it (the vouch must name it).
pub struct CurveServer {
    ctx: HandshakeContext,
    secret: CurveSecretKey,
    public: [u8; KEY_LEN],
    /// S′ and s′.
    cn_public: PublicKey,
    cn_secret: Option<SecretKey>,
    /// C′, from HELLO.
    cn_client: [u8; KEY_LEN],
    /// K: the cookie key, from WELCOME until INITIATE.
    cookie_key: Option<Zeroizing<[u8; KEY_LEN]>>,
    traffic: Option<Traffic>,
    state: ServerState,
    zap: ZapState,
    peer: PeerState,
    failure: Option<ZmtpError>,
}

impl fmt::Debug for CurveServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveServer")
            .field("state", &self.state)
            .field("zap", &self.zap)
            .field("traffic", &self.traffic)
            .finish_non_exhaustive()
    }
}

impl CurveServer {
    pub fn new(ctx: HandshakeContext, secret: CurveSecretKey) -> Self {
        let (cn_public, cn_secret, failure) = match ephemeral() {
            Ok((p, s)) => (p, Some(s), None),
            Err(e) => (PublicKey::from_bytes([0; KEY_LEN]), None, Some(e)),
        };
        CurveServer {
            ctx,
            public: secret.public_key(),
            secret,
            cn_public,
            cn_secret,
            cn_client: [0; KEY_LEN],
            cookie_key: None,
            traffic: None,
            state: ServerState::WaitingHello,
            zap: ZapState::NotUsed,
            peer: PeerState::default(),
            failure,
        }
    }

    fn fail(&mut self, e: ZmtpError) {
        self.state = ServerState::Failed;
        self.failure.get_or_insert(e);
    }

    fn process_hello(&mut self, body: &Bytes) -> Result<(), ZmtpError> {
        check_basic_structure(body)?;
        if !body.starts_with(HELLO) {
            return Err(unexpected(body));
        }
        let malformed = ZmtpError::MalformedCommand {
            kind: CommandKind::Hello,
        };
        if body.len() != HELLO_LEN || body.get(6..8) != Some(&[1, 0]) {
            return Err(malformed);
        }
        self.cn_client = key_at(body, 80)?;
        let short = body.get(112..120).unwrap_or_default();
        // A HELLO not boxed for our key fails here, before ZAP is asked.
        let cipher = SalsaBox::new(
            &PublicKey::from_bytes(self.cn_client),
            &self.secret.to_crypto(),
        );
        open_box(
            &cipher,
            &nonce(b"CurveZMQHELLO---", short),
            body.get(120..).unwrap_or_default(),
        )?;
        self.state = ServerState::SendingWelcome;
        Ok(())
    }

    fn produce_welcome(&mut self) -> Result<Bytes, ZmtpError> {
        let cn_secret = self.cn_secret.as_ref().ok_or(ZmtpError::Cryptographic)?;
        // Cookie = SecretBox[C′ + s′](K) under a fresh key K for this connection.
        let key = random::<KEY_LEN>()?;
        let cookie_tail = random::<16>()?;
        let mut cookie_plain = Zeroizing::new([0u8; 64]);
        cookie_plain[..KEY_LEN].copy_from_slice(&self.cn_client);
        cookie_plain[KEY_LEN..].copy_from_slice(&*Zeroizing::new(cn_secret.to_bytes()));
        let mut plain = BytesMut::with_capacity(128 + TAG_LEN);
        plain.extend_from_slice(self.cn_public.as_bytes());
        plain.extend_from_slice(&*cookie_tail);
        seal_into(
            &XSalsa20Poly1305::new(GenericArray::from_slice(&*key)),
            &nonce(b"COOKIE--", &*cookie_tail),
            &*cookie_plain,
            &mut plain,
        )?;
        self.cookie_key = Some(key);
        let welcome_tail = random::<16>()?;
        let mut b = BytesMut::with_capacity(WELCOME_LEN);
        b.extend_from_slice(WELCOME);
        b.extend_from_slice(&*welcome_tail);
        let cipher = SalsaBox::new(
            &PublicKey::from_bytes(self.cn_client),
            &self.secret.to_crypto(),
        );
        seal_into(&cipher, &nonce(b"WELCOME-", &*welcome_tail), &plain, &mut b)?;
        plain.zeroize();
        Ok(b.freeze())
    }

    fn process_initiate(&mut self, body: &Bytes) -> Result<(), ZmtpError> {
        check_basic_structure(body)?;
        if !body.starts_with(INITIATE) {
            return Err(unexpected(body));
        }
        if body.len() < INITIATE_MIN_LEN {
            return Err(ZmtpError::MalformedCommand {
                kind: CommandKind::Initiate,
            });
        }
        // The cookie key is used once: forget it whatever the outcome.
        let key = self.cookie_key.take().ok_or(ZmtpError::Cryptographic)?;
        let cn_secret = self.cn_secret.take().ok_or(ZmtpError::Cryptographic)?;
        let cookie = open_box(
            &XSalsa20Poly1305::new(GenericArray::from_slice(&*key)),
            &nonce(b"COOKIE--", body.get(9..25).unwrap_or_default()),
            body.get(25..105).unwrap_or_default(),
        )?;
        drop(key);
        let cookie_ok = cookie
            .get(..KEY_LEN)
            .unwrap_or_default()
            .ct_eq(&self.cn_client)
            & cookie
                .get(KEY_LEN..)
                .unwrap_or_default()
                .ct_eq(&*Zeroizing::new(cn_secret.to_bytes()));
        if !bool::from(cookie_ok) {
            return Err(ZmtpError::Cryptographic);
        }
        let cn_client = PublicKey::from_bytes(self.cn_client);
        let cipher = SalsaBox::new(&cn_client, &cn_secret);
        let short = body.get(105..113).unwrap_or_default();
        let plain = open_box(
            &cipher,
            &nonce(b"CurveZMQINITIATE", short),
            body.get(113..).unwrap_or_default(),
        )?;
        let client_key = key_at(&plain, 0)?;
        let vouch = open_box(
            &SalsaBox::new(&PublicKey::from_bytes(client_key), &cn_secret),
            &nonce(b"VOUCH---", plain.get(32..48).unwrap_or_default()),
            plain.get(48..128).unwrap_or_default(),
        )?;
        // RFC 26: the vouch names C′ and S. libzmq checks only C′; a vouch for another
        // server key can only come from a client that already opened our WELCOME, so the
        // extra check refuses nothing libzmq's clients send.
        let vouch_ok = vouch
            .get(..KEY_LEN)
            .unwrap_or_default()
            .ct_eq(&self.cn_client)
            & vouch.get(KEY_LEN..).unwrap_or_default().ct_eq(&self.public);
        if !bool::from(vouch_ok) {
            return Err(ZmtpError::KeyExchange);
        }
        let data = Bytes::copy_from_slice(plain.get(128..).unwrap_or_default());
        self.peer.properties = accept_peer_properties(&self.ctx, &data, false)?;
        self.traffic = Some(Traffic {
            cipher,
            send_prefix: b"CurveZMQMESSAGES",
            recv_prefix: b"CurveZMQMESSAGEC",
            next_nonce: 1,
            peer_nonce: u64_at(body, 105),
        });
        // libzmq: ZAP when a domain is set or ZAP_ENFORCE_DOMAIN is off, if a handler
        // exists; without one, go on unless the domain is enforced.
        let zap = &self.ctx.zap;
        if !zap.domain.is_empty() || !zap.enforce_domain {
            if zap.handler_available {
                self.zap = ZapState::Pending(Box::new(zap_request(
                    &self.ctx,
                    "CURVE",
                    vec![Bytes::copy_from_slice(&client_key)],
                )));
                self.state = ServerState::WaitingZap;
                return Ok(());
            } else if zap.enforce_domain {
                return Err(ZmtpError::ZapUnavailable);
            }
        }
        self.state = ServerState::SendingReady;
        Ok(())
    }

    fn produce_ready(&mut self) -> Result<Bytes, ZmtpError> {
        let traffic = self.traffic.as_mut().ok_or(ZmtpError::Cryptographic)?;
        let metadata = command_with_basic_properties(b"", &self.ctx);
        let short = traffic.take_nonce()?;
        let mut b = BytesMut::with_capacity(14 + TAG_LEN + metadata.len());
        b.extend_from_slice(READY);
        b.extend_from_slice(&short);
        seal_into(
            &traffic.cipher,
            &nonce(b"CurveZMQREADY---", &short),
            &metadata,
            &mut b,
        )?;
        Ok(b.freeze())
    }
}

impl Mechanism for CurveServer {
    fn name(&self) -> MechanismName {
        MechanismName::Curve
    }

    fn next_command(&mut self) -> Option<Bytes> {
        let produced = match self.state {
            ServerState::SendingWelcome => {
                self.state = ServerState::WaitingInitiate;
                self.produce_welcome()
            }
            ServerState::SendingReady => {
                self.state = ServerState::Ready;
                self.produce_ready()
            }
            ServerState::SendingError { status } => {
                self.state = ServerState::Failed;
                return Some(error_command(status.to_string().as_bytes()));
            }
            _ => return None,
        };
        match produced {
            Ok(b) => Some(b),
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn process_command(&mut self, body: &Bytes) -> Result<(), ZmtpError> {
        let r = match self.state {
            ServerState::WaitingHello => self.process_hello(body),
            ServerState::WaitingInitiate => self.process_initiate(body),
            // libzmq reports ZMTP_UNSPECIFIED for a command in any other state.
            _ => Err(ZmtpError::OutOfSequence),
        };
        if let Err(e) = &r {
            self.fail(e.clone());
        }
        r
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
            200 => self.state = ServerState::SendingReady,
            // 300 closes without an ERROR (RFC 27), others send ERROR with the code.
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

    fn seals_traffic(&self) -> bool {
        true
    }

    fn seal(&mut self, frame: Frame) -> Result<Frame, ZmtpError> {
        match (&mut self.traffic, self.state) {
            (Some(t), ServerState::Ready) => t.seal(frame),
            _ => Err(ZmtpError::OutOfSequence),
        }
    }

    fn open(&mut self, frame: Frame) -> Result<Frame, ZmtpError> {
        match (&mut self.traffic, self.state) {
            (Some(t), ServerState::Ready) => t.open(frame),
            _ => Err(ZmtpError::OutOfSequence),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket_type::SocketType;
    use crate::zmtp::mechanism::ZapSettings;

    fn ctx(t: SocketType) -> HandshakeContext {
        HandshakeContext {
            socket_type: t,
            routing_id: Bytes::new(),
            app_metadata: Metadata::new(),
            zap: ZapSettings::default(),
            peer_address: Bytes::new(),
        }
    }

    fn pair() -> (CurveClient, CurveServer) {
        let (spub, ssec) = keypair().unwrap();
        let (cpub, csec) = keypair().unwrap();
        (
            CurveClient::new(ctx(SocketType::Dealer), cpub, csec, spub),
            CurveServer::new(ctx(SocketType::Router), ssec),
        )
    }

    fn code(e: &ZmtpError) -> Option<crate::zmtp::error::HandshakeFailure> {
        e.handshake_failure()
    }

    #[test]
    fn handshake_sizes_and_cookie_key_lifetime() {
        let (mut c, mut s) = pair();
        let hello = c.next_command().unwrap();
        assert_eq!(hello.len(), HELLO_LEN);
        assert_eq!(&hello[6..8], &[1, 0]);
        assert!(hello[8..80].iter().all(|&b| b == 0));
        assert_eq!(&hello[112..120], &1u64.to_be_bytes());
        s.process_command(&hello).unwrap();
        assert!(s.cookie_key.is_none());
        let welcome = s.next_command().unwrap();
        assert_eq!(welcome.len(), WELCOME_LEN);
        assert!(s.cookie_key.is_some());
        c.process_command(&welcome).unwrap();
        let initiate = c.next_command().unwrap();
        assert!(initiate.len() >= INITIATE_MIN_LEN);
        assert_eq!(&initiate[105..113], &2u64.to_be_bytes());
        s.process_command(&initiate).unwrap();
        // The cookie key is forgotten once INITIATE is in.
        assert!(s.cookie_key.is_none());
        let ready = s.next_command().unwrap();
        assert!(ready.len() >= READY_MIN_LEN);
        assert_eq!(&ready[6..14], &1u64.to_be_bytes());
        c.process_command(&ready).unwrap();
        assert_eq!(c.status(), MechanismStatus::Ready);
        assert_eq!(s.status(), MechanismStatus::Ready);
        assert_eq!(
            c.peer_properties().get("Socket-Type").unwrap(),
            &Bytes::from_static(b"ROUTER")
        );
    }

    #[test]
    fn a_replayed_initiate_cannot_reuse_the_cookie() {
        // A second server instance given the same INITIATE has no cookie key for it; the
        // same instance refuses a second INITIATE (out of sequence).
        let (mut c, mut s) = pair();
        let hello = c.next_command().unwrap();
        s.process_command(&hello).unwrap();
        let welcome = s.next_command().unwrap();
        c.process_command(&welcome).unwrap();
        let initiate = c.next_command().unwrap();
        s.process_command(&initiate).unwrap();
        assert_eq!(
            s.process_command(&initiate).unwrap_err(),
            ZmtpError::OutOfSequence
        );
        // A fresh server with the same long-term key, replayed HELLO then INITIATE.
        let mut s2 = CurveServer::new(ctx(SocketType::Router), s.secret.clone());
        s2.process_command(&hello).unwrap();
        s2.next_command().unwrap();
        assert_eq!(
            s2.process_command(&initiate).unwrap_err(),
            ZmtpError::Cryptographic
        );
    }

    #[test]
    fn malformed_hellos_as_libzmq_reports_them() {
        use crate::zmtp::error::{HandshakeFailure as H, ProtocolErrorCode as P};
        let (mut c, _) = pair();
        let hello = c.next_command().unwrap();
        let mut bad_version = hello.to_vec();
        bad_version[6] = 2;
        let cases: Vec<(Vec<u8>, H)> = vec![
            (
                hello[..199].to_vec(),
                H::Protocol(P::ZmtpMalformedCommandHello),
            ),
            (bad_version, H::Protocol(P::ZmtpMalformedCommandHello)),
            (b"\x05READY".to_vec(), H::Protocol(P::ZmtpUnexpectedCommand)),
            (
                b"\x09".to_vec(),
                H::Protocol(P::ZmtpMalformedCommandUnspecified),
            ),
        ];
        for (body, want) in cases {
            let (_, mut s) = pair();
            let e = s.process_command(&Bytes::from(body)).unwrap_err();
            assert_eq!(code(&e), Some(want));
            assert!(matches!(s.status(), MechanismStatus::Failed(_)));
        }
        // A WELCOME of the wrong size is cryptographic for libzmq's client.
        let (mut c, _) = pair();
        c.next_command().unwrap();
        let e = c
            .process_command(&Bytes::from_static(b"\x07WELCOME"))
            .unwrap_err();
        assert_eq!(e, ZmtpError::Cryptographic);
    }

    #[test]
    fn secret_key_equality_and_derivation() {
        let (public, secret) = keypair().unwrap();
        assert_eq!(secret.public_key(), public);
        assert_eq!(secret.clone(), secret);
        assert_ne!(CurveSecretKey::from_bytes([1; 32]), secret);
    }
}
