//! The one way a peer joins a socket: a pipe pair delivered through the socket's command
//! mailbox. **For transports**: inproc uses it today; the tcp/ipc connection handler (wire
//! issue) creates a pipe pair after its ZMTP handshake, keeps one end, and delivers the other
//! end here with the peer's routing id (its READY `Identity`), socket type and metadata.
//!
//! ```
//! use zeroring::attach::{PeerAttachment, Peer};
//! use zeroring::engine::pipe::{pipe, PipeConfig};
//! use zeroring::{Context, SocketType};
//!
//! let ctx = Context::new();
//! let pull = ctx.socket(SocketType::Pull).unwrap();
//! // What a connection handler does after its handshake with a PUSH peer:
//! let (to_socket_w, to_socket_r) = pipe(PipeConfig::with_hwm(1000));
//! let (from_socket_w, _from_socket_r) = pipe(PipeConfig::with_hwm(1000));
//! let handle = pull.attach_handle();
//! handle
//!     .attach(PeerAttachment::new(
//!         from_socket_w,
//!         to_socket_r,
//!         Peer::new(SocketType::Push, "tcp://127.0.0.1:5555"),
//!     ))
//!     .unwrap();
//! let mut w = to_socket_w;
//! w.write(zeroring::Msg::from("hi")).unwrap();
//! w.flush();
//! assert_eq!(pull.recv_bytes(0).unwrap(), b"hi");
//! ```

use std::fmt;
use std::sync::Arc;

use zeroring_engine::mailbox::MailboxSender;
use zeroring_engine::pipe::{pipe, PipeConfig, PipeReader, PipeWriter};
use zeroring_engine::signal::Signal;
use zeroring_engine::{Msg, MsgMetadata};
use zeroring_transports::driver::{PipeEnds, WireHandover};
use zeroring_transports::socket_type::SocketType;
use zeroring_transports::zmtp::PeerInfo;

use crate::error::{Error, Result};
pub use crate::pattern::Peer;

impl Peer {
    /// A peer of type `socket_type` reached through `endpoint`, with no routing id, no
    /// metadata, not conflating.
    pub fn new(socket_type: SocketType, endpoint: impl Into<String>) -> Self {
        Peer {
            routing_id: None,
            socket_type,
            metadata: None,
            endpoint: endpoint.into(),
            conflate: false,
            key: None,
        }
    }
}

impl Peer {
    /// The peer a ZMTP handshake on `endpoint` revealed to a socket of type `ours`. A peer
    /// whose READY named no socket type is taken, as libzmq takes it (the handshake checks the
    /// type only when there is one): `ours`' usual counterpart stands in. `key` is the
    /// transport's key for a pipe kept across reconnects.
    pub fn from_handshake(
        info: &PeerInfo,
        ours: SocketType,
        endpoint: &str,
        key: Option<u64>,
        conflate: bool,
    ) -> Self {
        let socket_type = info.socket_type.unwrap_or_else(|| counterpart(ours));
        let mut md = MsgMetadata::new();
        for (name, value) in info.properties.iter() {
            md.insert(&String::from_utf8_lossy(name), value.clone());
        }
        Peer {
            routing_id: info.routing_id.clone().filter(|id| !id.is_empty()),
            socket_type,
            metadata: Some(Arc::new(md)),
            endpoint: endpoint.to_string(),
            conflate,
            key,
        }
    }

    /// The peer of a pipe attached before its first connection (IMMEDIATE off) by a socket
    /// of type `ours`: unknown until the handshake, so `ours`' usual counterpart stands in
    /// (patterns do not route by the peer's type).
    pub fn early(ours: SocketType, endpoint: &str, key: u64, conflate: bool) -> Self {
        Peer {
            key: Some(key),
            conflate,
            ..Peer::new(counterpart(ours), endpoint)
        }
    }
}

/// The usual peer type of `t`, standing in before a handshake names the real one.
fn counterpart(t: SocketType) -> SocketType {
    match t {
        SocketType::Push => SocketType::Pull,
        SocketType::Pull => SocketType::Push,
        SocketType::Pub => SocketType::Sub,
        SocketType::Sub => SocketType::Pub,
        SocketType::XPub => SocketType::XSub,
        SocketType::XSub => SocketType::XPub,
        SocketType::Req => SocketType::Rep,
        SocketType::Rep => SocketType::Req,
        SocketType::Dealer => SocketType::Router,
        other => other,
    }
}

/// A pipe pair for a socket: it writes to `writer` and reads from `reader`. The socket sets both
/// ends' notifications to its own signal when it attaches them.
#[derive(Debug)]
pub struct PeerAttachment {
    /// The socket's outbound end (the transport reads the other end).
    pub writer: PipeWriter<Msg>,
    /// The socket's inbound end (the transport writes the other end).
    pub reader: PipeReader<Msg>,
    /// Who is at the other end.
    pub peer: Peer,
    /// The part of `writer`'s high-water mark that is the peer's RCVHWM (inproc: the mark is
    /// the sum of both ends'), kept when the socket's SNDHWM changes; 0 for tcp/ipc.
    pub out_boost: usize,
    /// A tcp/ipc pipe's hand-over of its connection's writes (the send fast path); `None`
    /// for inproc.
    pub handover: Option<Arc<WireHandover>>,
}

impl PeerAttachment {
    /// Bundles an attachment.
    pub fn new(writer: PipeWriter<Msg>, reader: PipeReader<Msg>, peer: Peer) -> Self {
        PeerAttachment {
            writer,
            reader,
            peer,
            out_boost: 0,
            handover: None,
        }
    }

    /// With `out_boost` (see the field).
    pub fn with_out_boost(mut self, boost: usize) -> Self {
        self.out_boost = boost;
        self
    }

    /// A new pipe pair to `peer`: the socket's ends (this attachment) and the transport's.
    /// `sndhwm` bounds what the socket queues for the peer, `rcvhwm` what the transport
    /// queues for the socket.
    pub fn pipe_pair(peer: Peer, sndhwm: usize, rcvhwm: usize) -> (Self, PipeEnds) {
        let (to_socket, reader) = pipe(PipeConfig::with_hwm(rcvhwm));
        let (writer, from_socket) = pipe(PipeConfig::with_hwm(sndhwm));
        let handover = Arc::new(WireHandover::new());
        let mut ours = PeerAttachment::new(writer, reader, peer);
        ours.handover = Some(handover.clone());
        (
            ours,
            PipeEnds {
                to_socket,
                from_socket,
                handover: Some(handover),
            },
        )
    }
}

/// One side of an inproc connection, as the pipe pair between the two needs it.
#[derive(Clone, Debug)]
pub struct InprocSide {
    pub socket_type: SocketType,
    /// Its ROUTING_ID (what the other side's ROUTER sees).
    pub routing_id: bytes::Bytes,
    pub sndhwm: i32,
    pub rcvhwm: i32,
    pub conflate: bool,
}

/// The part an end's HWM adds to a pipe's mark: its value, or (0 = no limit) as good as none.
/// A change of RCVHWM moves the peer writer's mark by the difference of the two shares.
pub fn hwm_share(hwm: i32) -> isize {
    if hwm <= 0 {
        1 << 40
    } else {
        hwm as isize
    }
}

/// The mark of a writer whose own SNDHWM is `sndhwm` and whose peer adds `boost` (its RCVHWM,
/// inproc) to it: 0 (no limit) when SNDHWM is 0.
pub fn writer_hwm(sndhwm: i32, boost: usize) -> usize {
    if sndhwm <= 0 {
        0
    } else {
        (sndhwm as usize).saturating_add(boost)
    }
}

/// The high-water mark of an inproc pipe: the sender's SNDHWM plus the receiver's RCVHWM, as
/// libzmq's inproc connect sets it; 0 (no limit) if either is 0.
pub fn hwm_sum(a: i32, b: i32) -> usize {
    if a == 0 || b == 0 {
        0
    } else {
        (a.max(0) as usize).saturating_add(b.max(0) as usize)
    }
}

/// The pipe pair of an inproc connection to a binder that is there already (libzmq's
/// `socket_base_t::connect`, inproc branch): one pipe each way, each bounded by the sum of
/// its sender's SNDHWM and its receiver's RCVHWM (no bound when either side conflates). Each
/// side sees the other's ROUTING_ID; the connecter sees `connect_routing_id` instead when it
/// set ZMQ_CONNECT_ROUTING_ID. Returns (the connecter's attachment, the binder's).
pub fn inproc_pair(
    connecter: &InprocSide,
    connect_routing_id: Option<bytes::Bytes>,
    binder: &InprocSide,
    uri: &str,
) -> (PeerAttachment, PeerAttachment) {
    let conflate = connecter.conflate || binder.conflate;
    let hwm = |a, b| if conflate { 0 } else { hwm_sum(a, b) };
    let (c2b_w, c2b_r) = pipe::<Msg>(PipeConfig::with_hwm(hwm(connecter.sndhwm, binder.rcvhwm)));
    let (b2c_w, b2c_r) = pipe::<Msg>(PipeConfig::with_hwm(hwm(binder.sndhwm, connecter.rcvhwm)));
    let boost = |rcvhwm: i32| if conflate { 0 } else { rcvhwm.max(0) as usize };
    let binders = PeerAttachment::new(
        b2c_w,
        c2b_r,
        Peer {
            routing_id: Some(connecter.routing_id.clone()),
            socket_type: connecter.socket_type,
            metadata: None,
            endpoint: uri.to_string(),
            conflate,
            key: None,
        },
    )
    .with_out_boost(boost(connecter.rcvhwm));
    let connecters = PeerAttachment::new(
        c2b_w,
        b2c_r,
        Peer {
            routing_id: connect_routing_id.or(Some(binder.routing_id.clone())),
            socket_type: binder.socket_type,
            metadata: None,
            endpoint: uri.to_string(),
            conflate,
            key: None,
        },
    )
    .with_out_boost(boost(binder.rcvhwm));
    (connecters, binders)
}

/// A command for a socket, delivered through its mailbox.
#[derive(Debug)]
pub(crate) enum Command {
    /// A peer joins (boxed: attachments are rare, hiccups tiny).
    Attach(Box<PeerAttachment>),
    /// The pipe with this transport key now leads to a new connection.
    Hiccup(u64),
    /// The connecting session of the pipe with this key ended for good; these are its ends
    /// (see `socket::ended`).
    Ended(Box<PipeEnds>),
    /// The connecting session with this key gave up (RECONNECT_STOP_CONN_REFUSED): forget its
    /// endpoint.
    GaveUp(u64),
    /// Look again at the ended pipes held (posted by the socket to itself while it holds some).
    RetireEnded,
}

/// A cloneable, thread-safe handle that delivers attachments to one socket (from an I/O
/// thread, another socket, …). The socket picks them up at its next call (or wakes from a
/// blocking one).
#[derive(Clone)]
pub struct AttachHandle {
    pub(crate) sender: MailboxSender<Command>,
    pub(crate) signal: Arc<Signal>,
    pub(crate) socket_type: SocketType,
}

impl AttachHandle {
    /// Delivers a pipe pair. Fails with ETERM when the socket is closed (the pipes are then
    /// dropped, which closes them).
    pub fn attach(&self, a: PeerAttachment) -> Result<()> {
        self.sender
            .send(Command::Attach(Box::new(a)))
            .map_err(|_| Error::ETERM)
    }

    /// Tells the socket that the pipe attached with `Peer::key == Some(key)` now leads to a
    /// new connection (a connecter keeps its pipe across reconnects, as libzmq's session
    /// does): SUB/XSUB send their subscriptions again on it. Fails with ETERM when the socket
    /// is closed.
    pub fn hiccup(&self, key: u64) -> Result<()> {
        self.sender
            .send(Command::Hiccup(key))
            .map_err(|_| Error::ETERM)
    }

    /// Hands the socket the ends of a pipe whose connecting session ended for good (see
    /// [`SocketLink::ended`](zeroring_transports::driver::SocketLink::ended)). A closed socket
    /// refuses them, and they are dropped.
    pub fn ended(&self, ends: PipeEnds) {
        let _ = self.sender.send(Command::Ended(Box::new(ends)));
    }

    /// Tells the socket that the connecting session with `key` gave up (see
    /// [`SocketLink::gave_up`](zeroring_transports::driver::SocketLink::gave_up)).
    pub fn gave_up(&self, key: u64) {
        let _ = self.sender.send(Command::GaveUp(key));
    }

    /// The socket's type (to check compatibility during a handshake).
    pub fn socket_type(&self) -> SocketType {
        self.socket_type
    }

    /// The socket's readiness signal (what its pipes notify).
    pub fn signal(&self) -> &Arc<Signal> {
        &self.signal
    }
}

impl fmt::Debug for AttachHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachHandle")
            .field("socket_type", &self.socket_type)
            .finish()
    }
}
