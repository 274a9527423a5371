//! The CURVE client: HELLO, then INITIATE with its vouch once the server's WELCOME opens,
//! then traffic once READY opens. Knows the server's long-term public key before it starts.

use super::*;

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
