//! A simulated socket's settings: the ZeroMQ options a scenario gives a [`SimSocket`]
//! (applied through the real option table) and the test-only switches that inject bugs.
//!
//! Must never: interpret an option itself (the option table does).
//!
//! [`SimSocket`]: crate::socket::SimSocket

use std::time::Duration;

use bytes::Bytes;
use zeroring::options::num;
use zeroring::{Error, SocketCore};
use zeroring_transports::zmtp::{HeartbeatConfig, MechanismConfig};

/// A simulated socket's settings. Every field up to `int_options` is a ZeroMQ option, applied
/// through the real option table (`zmq_setsockopt`'s checks included); the rest are the
/// simulator's own (the ZAP handler's credentials, the jitter seed, the bug switches).
#[derive(Clone, Debug)]
pub struct SocketOptions {
    /// PLAIN_SERVER, or PLAIN_USERNAME + PLAIN_PASSWORD.
    pub mechanism: MechanismConfig,
    /// ZMQ_ROUTING_ID.
    pub routing_id: Bytes,
    /// ZMQ_HANDSHAKE_IVL (`None`: 0, no limit).
    pub handshake_ivl: Option<Duration>,
    /// ZMQ_HEARTBEAT_IVL / _TTL / _TIMEOUT.
    pub heartbeat: HeartbeatConfig,
    /// ZMQ_RECONNECT_IVL (`None`: -1, never reconnect).
    pub reconnect_ivl: Option<Duration>,
    /// ZMQ_RECONNECT_IVL_MAX.
    pub reconnect_ivl_max: Duration,
    /// ZMQ_CONNECT_TIMEOUT.
    pub connect_timeout: Option<Duration>,
    /// ZMQ_RECONNECT_STOP (bits: 1 CONN_REFUSED, 2 HANDSHAKE_FAILED).
    pub reconnect_stop: i32,
    /// ZMQ_SNDHWM / ZMQ_RCVHWM, in messages, per pipe.
    pub sndhwm: usize,
    pub rcvhwm: usize,
    /// Further integer options: (option number, value), e.g. ROUTER_HANDOVER, REQ_RELAXED.
    pub int_options: Vec<(i32, i32)>,
    /// PLAIN or CURVE server: the credentials its ZAP handler accepts (PLAIN: username and
    /// password; CURVE: the client's public key and nothing). `None`: no ZAP handler.
    pub plain_accept: Option<(Bytes, Bytes)>,
    /// Seed of the reconnect jitter (the scenario derives it from the run's seed).
    pub backoff_seed: u64,
    /// Test-only switch: `false` makes the link drop the socket's hiccups, so a reconnected
    /// subscriber never sends its subscriptions again (the bug the simulator must notice).
    pub forward_hiccups: bool,
    /// Test-only switch: the socket silently discards every n-th message it would deliver
    /// (a loss on a live connection the message-flow check must notice).
    pub lose_every: Option<u64>,
    /// Test-only switch: close ignores ZMQ_LINGER and drops what is queued at once.
    pub drop_on_close: bool,
    /// Test-only switch: the monitor loses DISCONNECTED events.
    pub skip_disconnected: bool,
    /// Test-only switch: the connecter ignores RECONNECT_STOP (the option is still set).
    pub ignore_reconnect_stop: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            mechanism: MechanismConfig::Null,
            routing_id: Bytes::new(),
            handshake_ivl: Some(Duration::from_secs(30)),
            heartbeat: HeartbeatConfig::default(),
            reconnect_ivl: Some(Duration::from_millis(100)),
            reconnect_ivl_max: Duration::ZERO,
            connect_timeout: None,
            reconnect_stop: 0,
            sndhwm: 1000,
            rcvhwm: 1000,
            int_options: Vec::new(),
            plain_accept: None,
            backoff_seed: 1,
            forward_hiccups: true,
            lose_every: None,
            drop_on_close: false,
            skip_disconnected: false,
            ignore_reconnect_stop: false,
        }
    }
}

fn ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

impl SocketOptions {
    /// Applies the ZeroMQ options to `core` through the option table.
    pub(crate) fn apply(&self, core: &mut SocketCore) -> Result<(), Error> {
        let mut ints = vec![
            (num::HANDSHAKE_IVL, self.handshake_ivl.map_or(0, ms)),
            (num::HEARTBEAT_IVL, self.heartbeat.interval.map_or(0, ms)),
            (num::HEARTBEAT_TTL, ms(self.heartbeat.ttl)),
            (num::RECONNECT_IVL, self.reconnect_ivl.map_or(-1, ms)),
            (num::RECONNECT_IVL_MAX, ms(self.reconnect_ivl_max)),
            (num::CONNECT_TIMEOUT, self.connect_timeout.map_or(0, ms)),
            (num::RECONNECT_STOP, self.reconnect_stop),
            (num::SNDHWM, self.sndhwm as i32),
            (num::RCVHWM, self.rcvhwm as i32),
        ];
        // Left unset it stays -1 (the interval), which libzmq's setsockopt does not take.
        if let Some(t) = self.heartbeat.timeout {
            ints.push((num::HEARTBEAT_TIMEOUT, ms(t)));
        }
        ints.extend(self.int_options.iter().copied());
        let mut bytes: Vec<(i32, Bytes)> = Vec::new();
        match &self.mechanism {
            MechanismConfig::Null => {}
            MechanismConfig::PlainServer => ints.push((num::PLAIN_SERVER, 1)),
            MechanismConfig::PlainClient { username, password } => {
                bytes.push((num::PLAIN_USERNAME, username.clone()));
                bytes.push((num::PLAIN_PASSWORD, password.clone()));
            }
            MechanismConfig::CurveServer { secret } => {
                ints.push((num::CURVE_SERVER, 1));
                let secret = Bytes::copy_from_slice(secret.as_bytes());
                bytes.push((num::CURVE_SECRETKEY, secret));
            }
            MechanismConfig::CurveClient {
                public,
                secret,
                server,
            } => {
                bytes.push((num::CURVE_PUBLICKEY, Bytes::copy_from_slice(public)));
                let secret = Bytes::copy_from_slice(secret.as_bytes());
                bytes.push((num::CURVE_SECRETKEY, secret));
                bytes.push((num::CURVE_SERVERKEY, Bytes::copy_from_slice(server)));
            }
        }
        if !self.routing_id.is_empty() {
            bytes.push((num::ROUTING_ID, self.routing_id.clone()));
        }
        for (option, value) in ints {
            core.set_option(option, &value.to_ne_bytes())?;
        }
        for (option, value) in bytes {
            core.set_option(option, &value)?;
        }
        Ok(())
    }
}
