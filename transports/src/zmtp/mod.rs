//! The sans-IO ZMTP 3.1 protocol (RFC 23, 37), with libzmq 4.3's behaviour
//! where the RFCs leave room: greeting, frames, commands, metadata, the NULL
//! and PLAIN mechanisms, ZAP, heartbeats and the per-connection state machine.
//!
//! Owns: protocol logic only. Must never: touch sockets, threads or clocks. The
//! engine driver, the fallback backend and the simulator all run this code.

pub mod command;
pub mod connection;
pub mod encoder;
pub mod error;
pub mod frame;
pub mod greeting;
pub mod heartbeat;
pub mod mechanism;
pub mod metadata;
pub mod zap;

pub use connection::{
    ConfigError, Connection, ConnectionConfig, Event, FrameRefused, FrameSink, MechanismConfig,
    PeerInfo, DEFAULT_MAX_INCOMPLETE_MSG, PART_OVERHEAD,
};
pub use encoder::Encoder;
pub use error::{FrameError, HandshakeFailure, ProtocolErrorCode, ZapError, ZmtpError};
pub use frame::{Frame, FrameBody, FrameDecoder, FrameRef};
pub use greeting::{MechanismName, ZmtpVersion};
pub use heartbeat::HeartbeatConfig;
pub use mechanism::ZapSettings;
pub use metadata::Metadata;
pub use zap::{ZapReply, ZapRequest};

/// The old name of [`FrameRefused`], kept so that code written against it still builds.
#[deprecated(since = "0.1.0", note = "renamed FrameRefused")]
pub type SendError = FrameRefused;
