//! The CURVE server: WELCOME with a cookie sealed under a per-connection key, INITIATE checked
//! against that cookie and the client's vouch (then ZAP, when a handler is configured), READY,
//! then traffic.

use super::*;

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
    pub(super) secret: CurveSecretKey,
    public: [u8; KEY_LEN],
    /// S′ and s′.
    cn_public: PublicKey,
    cn_secret: Option<SecretKey>,
    /// C′, from HELLO.
    cn_client: [u8; KEY_LEN],
    /// K: the cookie key, from WELCOME until INITIATE.
    pub(super) cookie_key: Option<Zeroizing<[u8; KEY_LEN]>>,
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
