//! What a [`Connection`](super::Connection) is made from: the socket type, the mechanism and
//! its role, limits and heartbeats, checked once ([`ConnectionConfig::validate`]) before a
//! connection starts.

use super::*;

/// Default limit on a frame during the handshake (commands with metadata).
pub const DEFAULT_MAX_HANDSHAKE_FRAME: u64 = 64 * 1024;

/// Which mechanism this side runs, and in which role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MechanismConfig {
    Null,
    /// ZMQ_PLAIN_USERNAME / ZMQ_PLAIN_PASSWORD set: PLAIN client.
    PlainClient {
        username: Bytes,
        password: Bytes,
    },
    /// ZMQ_PLAIN_SERVER = 1.
    PlainServer,
    /// ZMQ_CURVE_SERVERKEY set: CURVE client with its long-term key pair.
    CurveClient {
        public: [u8; 32],
        secret: CurveSecretKey,
        server: [u8; 32],
    },
    /// ZMQ_CURVE_SERVER = 1: only the long-term secret key is needed.
    CurveServer {
        secret: CurveSecretKey,
    },
}

impl MechanismConfig {
    /// The name sent in the greeting.
    pub fn name(&self) -> MechanismName {
        match self {
            MechanismConfig::Null => MechanismName::Null,
            MechanismConfig::PlainClient { .. } | MechanismConfig::PlainServer => {
                MechanismName::Plain
            }
            MechanismConfig::CurveClient { .. } | MechanismConfig::CurveServer { .. } => {
                MechanismName::Curve
            }
        }
    }
}

/// Everything a connection needs to know about the local socket.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    pub socket_type: SocketType,
    pub mechanism: MechanismConfig,
    /// ZMQ_ROUTING_ID (0..=255 bytes).
    pub routing_id: Bytes,
    /// ZMQ_METADATA application properties (`X-…`).
    pub metadata: Metadata,
    /// ZMQ_MAXMSGSIZE: largest inbound frame, -1 for unlimited.
    pub max_msg_size: i64,
    /// ZMQ_HANDSHAKE_IVL; `None` (libzmq: 0) disables the handshake timeout.
    pub handshake_ivl: Option<Duration>,
    pub heartbeat: HeartbeatConfig,
    pub zap: ZapSettings,
    /// The peer's address (ZAP requests carry it).
    pub peer_address: Bytes,
    /// NULL: send READY only once the peer's READY has arrived. Set on accepted connections
    /// (the listener's handshake cap may end them mid-handshake): until this side's READY goes
    /// out the peer cannot finish its handshake, so it has sent no message that ending the
    /// connection would drop, and it reconnects with what it queued. The connecting side
    /// sends its READY at once (every ZMTP peer's does), so the two never wait on each other.
    /// PLAIN and CURVE servers already answer last. Default false.
    pub ready_after_peer: bool,
    /// Outbound bodies up to this size are copied into the batch buffer.
    pub copy_threshold: usize,
    /// Largest frame accepted before the handshake completes.
    pub max_handshake_frame: u64,
    /// The most memory an incomplete inbound multipart message may hold, counting each part's
    /// bytes plus [`PART_OVERHEAD`]; a peer that sends more before the last part is
    /// disconnected (its partial message is discarded). Bounds what one peer can make a
    /// connection hold (a message that never ends); MAXMSGSIZE stays per frame, as libzmq's.
    pub max_incomplete_msg: u64,
    /// ZMQ_HELLO_MSG: a message the driver sends first on every new connection, right after
    /// the handshake and before anything from the socket's pipe (libzmq's hello session).
    pub hello_msg: Option<Bytes>,
    /// ZMQ_HICCUP_MSG: a message the driver hands the socket (as if from the peer) when a
    /// connecter's kept pipe leads to a new connection.
    pub hiccup_msg: Option<Bytes>,
}

/// What one queued message part costs beyond its bytes (the `Msg` in its pipe slot), for
/// [`ConnectionConfig::max_incomplete_msg`].
pub const PART_OVERHEAD: u64 = 64;

/// Default of [`ConnectionConfig::max_incomplete_msg`]: 64 MiB.
pub const DEFAULT_MAX_INCOMPLETE_MSG: u64 = 64 << 20;

impl ConnectionConfig {
    /// libzmq's defaults for a socket of type `socket_type`: NULL, no routing
    /// id, MAXMSGSIZE -1, HANDSHAKE_IVL 30 s, no heartbeats, no ZAP.
    pub fn new(socket_type: SocketType) -> Self {
        ConnectionConfig {
            socket_type,
            mechanism: MechanismConfig::Null,
            routing_id: Bytes::new(),
            metadata: Metadata::new(),
            max_msg_size: -1,
            handshake_ivl: Some(Duration::from_millis(30_000)),
            heartbeat: HeartbeatConfig::default(),
            zap: ZapSettings::default(),
            peer_address: Bytes::new(),
            ready_after_peer: false,
            copy_threshold: DEFAULT_COPY_THRESHOLD,
            max_handshake_frame: DEFAULT_MAX_HANDSHAKE_FRAME,
            max_incomplete_msg: DEFAULT_MAX_INCOMPLETE_MSG,
            hello_msg: None,
            hiccup_msg: None,
        }
    }

    /// Checks the options a connection cannot work with.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.socket_type == SocketType::Stream {
            return Err(ConfigError::NotZmtp);
        }
        if self.routing_id.len() > 255 {
            return Err(ConfigError::RoutingIdTooLong);
        }
        if let MechanismConfig::PlainClient { username, password } = &self.mechanism {
            if username.len() > 255 || password.len() > 255 {
                return Err(ConfigError::CredentialTooLong);
            }
        }
        Ok(())
    }
}

/// A configuration a connection refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// STREAM sockets do not speak ZMTP.
    NotZmtp,
    /// Routing ids are at most 255 bytes.
    RoutingIdTooLong,
    /// PLAIN usernames and passwords are at most 255 bytes.
    CredentialTooLong,
}

impl ConfigError {
    /// The errno libzmq gives for the corresponding option.
    pub fn errno(self) -> Errno {
        Errno::EINVAL
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::NotZmtp => "STREAM sockets do not use ZMTP",
            ConfigError::RoutingIdTooLong => "routing id longer than 255 bytes",
            ConfigError::CredentialTooLong => "PLAIN username or password longer than 255 bytes",
        })
    }
}

impl std::error::Error for ConfigError {}
