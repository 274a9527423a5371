//! The stream driver: ZMTP connections over tcp and ipc on the engine's I/O threads.
//!
//! Owns: listeners (bind synchronously, then multishot accept), connecting sessions (async
//! connect, CONNECT_TIMEOUT, reconnect with RECONNECT_IVL and randomised exponential backoff to
//! RECONNECT_IVL_MAX), and the [`stream`] that runs one [`crate::zmtp::Connection`] over one
//! descriptor: multishot receive → decoder → pipe to the socket; pipe from the socket → encoder
//! → one batched send in flight.
//!
//! It knows nothing of socket patterns: after a handshake it asks its [`SocketLink`] — the
//! owning socket, implemented by the sockets crate — for a pipe pair, and from then on moves
//! messages between that pair and the wire. Subscriptions cross the pipe as libzmq passes them
//! internally: a message `\x01topic` (subscribe) or `\x00topic` (cancel).
//!
//! It must never buffer without bound: a full inbound pipe pauses reading (TCP flow control
//! does the rest), and the outbound pipe is read only while little output is queued.

mod accepted;
mod address;
pub mod connect;
pub mod filter;
pub mod handshakes;
pub mod linger;
pub mod listener;
pub mod netopts;
pub mod session;
pub mod session_core;
pub mod socks;
pub mod stream;
pub mod stream_core;
mod wire;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use zeroring_engine::pipe::{PipeReader, PipeWriter};
use zeroring_engine::{Msg, MsgMetadata};

use crate::monitor::MonitorEvent;
use crate::zmtp::{PeerInfo, ZapError, ZapReply, ZapRequest};

pub use address::{bind_addr, connect_target, tcp_lookup_forms, Resolve};
pub use connect::{connect, ConnectHandle};
pub use filter::AcceptFilters;
pub use handshakes::{HandshakeCounts, DEFAULT_MAX_HANDSHAKES};
pub use linger::{LingerGuard, Lingering};
pub use listener::BindAddr;
pub use listener::{bind, Listener, ListenerHandle};
pub use netopts::{Backoff, TransportOptions};
pub use session::ConnectTarget;
pub use session_core::{SessionAction, SessionConfig, SessionCore, StreamEnd};
pub use socks::{SocksHost, SocksRequest};
pub use stream_core::{attaches_early, Kept, Status, StreamCore};

/// The driver's ends of the pipe pair that joins a connection to its socket.
#[derive(Debug)]
pub struct PipeEnds {
    /// Messages from the wire to the socket.
    pub to_socket: PipeWriter<Msg>,
    /// Messages from the socket to the wire.
    pub from_socket: PipeReader<Msg>,
    /// Who writes the connection: its I/O thread, or the socket's thread writing a whole
    /// message itself while the I/O thread has nothing to send (the send fast path). `None`:
    /// every message goes through the pipe.
    pub handover: Option<Arc<WireHandover>>,
}

/// The hand-over of a tcp or ipc connection's writes (see [`zeroring_engine::handover`]).
pub type WireHandover = zeroring_engine::handover::Handover<zeroring_engine::SharedFd>;

/// Completes a ZAP request from any thread: the handler's reply, or why it is not a valid one
/// (the handshake then fails with HANDSHAKE_FAILED_PROTOCOL and the `ZMQ_PROTOCOL_ERROR_ZAP_*`
/// code, as libzmq's ZAP client reports it).
pub type ZapResponder = Box<dyn FnOnce(Result<ZapReply, ZapError>) + Send>;

/// What a connection needs from the socket that owns it. Called on the I/O thread; every
/// method must return quickly (post to the socket's mailbox, do not block).
pub trait SocketLink: Send + Sync + 'static {
    /// The handshake with `peer` succeeded on `endpoint`: make a pipe pair, hand the socket
    /// its ends, and return the driver's. `None` refuses the peer (the connection closes),
    /// e.g. a duplicate routing id on a ROUTER without ROUTER_HANDOVER. `key` is set when a
    /// connecting session will keep this pipe across reconnects (see [`SocketLink::hiccup`]).
    fn attach(&self, peer: &PeerInfo, endpoint: &str, key: Option<u64>) -> Option<PipeEnds>;

    /// A connecting session starts (IMMEDIATE off): attach its pipe pair now, before any
    /// connection, so the socket can queue to it as libzmq's does. Asked for ROUTER and STREAM
    /// too: their link attaches one only when the connect named the peer (CONNECT_ROUTING_ID;
    /// otherwise a ROUTER must learn the peer's routing id first), and a STREAM's first raw
    /// connection takes it. The default declines.
    fn attach_early(&self, endpoint: &str, key: u64) -> Option<PipeEnds> {
        let _ = (endpoint, key);
        None
    }

    /// The pipe attached with `key` now leads to a new connection (a connecting session keeps
    /// its pipe across reconnects, as libzmq's does: the queue, the routing id and the peer's
    /// subscriptions survive). SUB/XSUB must send their subscriptions again.
    fn hiccup(&self, key: u64) {
        let _ = key;
    }

    /// The connecting session of the pipe attached with `key` ended for good on the peer's
    /// side (its connection was lost or refused and reconnection is disabled): `ends` are the
    /// session's ends of that pipe. libzmq's socket learns this from a command, which a
    /// sending socket looks at at most once a millisecond, so sends made just after the loss
    /// still go to the pipe (and are lost with it); the socket retires `ends` after such a
    /// moment. The default drops them, which the socket sees at once.
    fn ended(&self, key: u64, ends: PipeEnds) {
        let _ = (key, ends);
    }

    /// The connecting session of the pipe attached with `key` gave up on a refused connect
    /// (RECONNECT_STOP_CONN_REFUSED): the socket forgets its endpoint, as libzmq's connecter
    /// has its socket run `term_endpoint` on it, so that a later `zmq_disconnect` of it is
    /// ENOENT. Its pipe, if any, has closed. The default does nothing.
    fn gave_up(&self, key: u64) {
        let _ = key;
    }

    /// A raw (STREAM socket) connection on `endpoint` is up: like [`SocketLink::attach`], with
    /// no handshake and no peer information. Each inbound message is one received chunk; an
    /// empty outbound message closes the connection. `key` names a connecting session (the
    /// same for each of its reconnections), `None` for an accepted connection. `metadata` is
    /// the connection's properties (`Peer-Address`), for the socket to put on the connect
    /// notification and every chunk, as libzmq's raw engine does. The default refuses.
    fn attach_raw(
        &self,
        endpoint: &str,
        key: Option<u64>,
        metadata: Option<Arc<MsgMetadata>>,
    ) -> Option<PipeEnds> {
        let _ = (endpoint, key, metadata);
        None
    }

    /// A monitor event happened on `endpoint`.
    fn monitor(&self, event: MonitorEvent, value: u32, endpoint: &str);

    /// The mechanism wants a ZAP verdict. Call `respond` with the handler's reply (from any
    /// thread). The default has no handler: it answers 200 (accept), which is libzmq's
    /// behaviour when no ZAP handler is bound and ZAP_ENFORCE_DOMAIN is off.
    fn zap(&self, request: ZapRequest, respond: ZapResponder) {
        respond(Ok(ZapReply {
            request_id: request.request_id,
            status_code: 200,
            status_text: Bytes::new(),
            user_id: Bytes::new(),
            metadata: Default::default(),
        }));
    }
}

impl fmt::Debug for dyn SocketLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SocketLink")
    }
}

/// A shared link.
pub type Link = Arc<dyn SocketLink>;
