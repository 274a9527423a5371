//! The sans-IO half of a stream: one `Wire` (a ZMTP connection, or raw bytes for STREAM)
//! joined to the socket's pipe pair. It decides everything a connection does between the
//! network and the socket — when to attach, what to deliver, when to pause reading, what to
//! encode, when to finish, which pipes a reconnect keeps — and performs no I/O.
//!
//! The I/O half drives it: the engine's `stream::Stream` on an I/O thread, the
//! simulator (`zeroring-sim`) on turmoil's TCP. Each feeds bytes, end of stream (the peer's
//! close, [`StreamCore::handle_eof`], or a failed read, [`StreamCore::handle_read_error`]), send
//! results, timer expiries, pipe wake-ups and ZAP replies in, then calls [`StreamCore::drive`] and
//! carries out what the core asks for: keep a receive armed while [`StreamCore::wants_recv`],
//! send what [`StreamCore::poll_transmit`] returns (one send at a time), arm a timer for
//! [`StreamCore::poll_timeout`], route [`StreamCore::poll_zap_request`]s to the ZAP handler;
//! once done, its session learns how it ended from [`StreamCore::end`].
//!
//! Inbound (`inbound.rs`): frames become [`Msg`]s written into the pipe to the socket (flushed
//! only at message boundaries, so the socket never sees part of a message), subscriptions
//! become `\x01topic` / `\x00topic` messages. When that pipe is full, reading pauses: bytes
//! already received wait undecoded until the socket drains the pipe to its low-water mark.
//!
//! Outbound (`outbound.rs`): messages read from the socket's pipe are encoded while less than
//! [`OUT_HIGH_WATER`] bytes are queued.
//!
//! Must never: read a clock (time comes in as `now`), block, or hold more than one receive's
//! worth of decoded input or [`OUT_HIGH_WATER`] plus one message of output.

mod inbound;
mod outbound;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use zeroring_engine::pipe::NotifyHandle;
use zeroring_engine::{Msg, MsgMetadata};

use super::wire::{Raw, Wire};
use super::{Link, PipeEnds};
use crate::monitor::MonitorEvent;
use crate::socket_type::SocketType;
use crate::zmtp::{
    Connection, ConnectionConfig, Event, HandshakeFailure, PeerInfo, ZapError, ZapReply,
    ZapRequest, ZmtpError,
};
use crate::Errno;

/// Encode from the socket's pipe only while less than this much output is queued.
pub const OUT_HIGH_WATER: usize = 256 * 1024;

/// Whether a stream goes on after an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Still running.
    Open,
    /// Finished: its pipes are closed or handed back ([`StreamCore::take_kept`]); the owner
    /// cancels its operations, drops it, and maybe reconnects.
    Done,
}

/// A connecting session's pipes between two connections.
#[derive(Debug)]
pub struct Kept {
    pipes: PipeEnds,
    /// The dead connection had read part of an outbound message: its rest is dropped.
    out_mid_message: bool,
    /// The pipes led to a connection before (so the socket must replay subscriptions).
    connected_before: bool,
}

impl Kept {
    /// Pipes attached before any connection (IMMEDIATE off).
    pub fn early(pipes: PipeEnds) -> Self {
        Kept {
            pipes,
            out_mid_message: false,
            connected_before: false,
        }
    }

    /// The pipe ends themselves (a session that ends for good hands them to the socket).
    pub fn into_pipes(self) -> PipeEnds {
        self.pipes
    }

    /// Whether the socket queued anything for the next connection to send (what a closing
    /// socket's LINGER is for).
    pub fn owes_output(&self) -> bool {
        self.pipes.from_socket.len_hint() > 0
    }
}

/// Whether a connecting session of `socket_type` attaches its pipes before its first
/// connection: libzmq's does unless ZMQ_IMMEDIATE is set, except for ROUTER (it must learn the
/// peer's routing id first) and STREAM (every connection is a new peer) — unless the connect
/// named the peer with CONNECT_ROUTING_ID, which only the socket's link knows: a connecting
/// session asks its link whenever IMMEDIATE is off ([`SocketLink::attach_early`]).
///
/// [`SocketLink::attach_early`]: super::SocketLink::attach_early
pub fn attaches_early(socket_type: SocketType, immediate: bool) -> bool {
    !immediate && !matches!(socket_type, SocketType::Router | SocketType::Stream)
}

/// One connection's logic. See the module documentation for how to drive it.
pub struct StreamCore {
    conn: Wire,
    link: Link,
    endpoint: Arc<str>,
    /// What its monitor events name: `endpoint`, or the connection's own address
    /// ([`StreamCore::set_monitor_endpoint`]).
    monitor_endpoint: Arc<str>,
    /// Reported with the Disconnected monitor event (libzmq reports the descriptor).
    fd_value: u32,
    /// Installed on the pipes' driver ends: (readable from the socket, writable to it).
    notify: Option<(NotifyHandle, NotifyHandle)>,
    paused: bool,
    /// Bytes not decoded yet: the rest of a read that filled the pipe, and reads that arrived
    /// while paused (copied out of the receive buffer; a paused stream cancels its receive,
    /// so this is at most one read's rest plus the few reads already under way).
    stalled: BytesMut,
    /// The decoded message (its parts) that the socket's pipe refused; at most one, since
    /// decoding stops when the pipe is full.
    held: VecDeque<Msg>,
    pipes: Option<PipeEnds>,
    /// The connection's properties; they ride on the first message delivered after the
    /// handshake, and the socket's end of the pipe applies them to every later message.
    metadata: Option<Arc<MsgMetadata>>,
    metadata_pending: bool,
    /// What the inbound message in progress holds (bytes + per-part overhead), its limit,
    /// and whether the peer went past it.
    in_msg_cost: u64,
    max_incomplete: u64,
    overflowed: bool,
    /// The parts of the inbound message in progress: a message goes into the socket's pipe
    /// whole, so a connection that dies mid-message leaves nothing of it behind (pipes cannot
    /// take back what was written; libzmq rolls its pipe back instead).
    partial: Vec<Msg>,
    /// The peer's address, for the `Peer-Address` property (libzmq: the IP, no port).
    peer_address: Bytes,
    zap_requests: VecDeque<ZapRequest>,
    /// A send handed out by `poll_transmit` has not completed yet.
    sending: bool,
    /// Subscriber side: outbound `\x01`/`\x00` messages become SUBSCRIBE/CANCEL.
    subscriber: bool,
    out_mid_message: bool,
    /// The last part written to the socket's pipe had MORE: do not flush yet.
    in_mid_message: bool,
    /// The socket (or the session for it) ended the stream, not the peer or an error: no
    /// DISCONNECTED event.
    owner_ended: bool,
    finishing: bool,
    /// The connection died (heartbeat timeout, end of stream, protocol error after the
    /// handshake): finish now, dropping output, even with a send in flight — it may never
    /// complete (a dead peer's window stays full), and libzmq does not wait either.
    aborted: bool,
    done: bool,
    handshake_done: bool,
    eof_seen: bool,
    /// Why reading ended, when it failed rather than met the peer's close.
    read_error: Option<Errno>,
    /// Why the connection failed or closed (the first reason seen).
    error: Option<ZmtpError>,
    /// Set for a connecting session that keeps its pipes across reconnects.
    keep_key: Option<u64>,
    /// A raw (STREAM) connecter's session key: the socket gives every connection of one
    /// connecter the same routing id, as libzmq's kept pipe does.
    raw_key: Option<u64>,
    /// ZMQ_HELLO_MSG, sent first on each connection after the handshake.
    hello: Option<Bytes>,
    /// ZMQ_HICCUP_MSG, delivered to the socket when a kept pipe reconnects.
    hiccup: Option<Bytes>,
    /// Pipes inherited from the previous connection, installed at the handshake.
    inherited: Option<PipeEnds>,
    /// Pipes handed back at teardown.
    returned: Option<Kept>,
    /// Drop outbound parts until the end of the message a dead connection started.
    skip_partial_out: bool,
    /// The inherited pipes led to an earlier connection.
    inherited_connected: bool,
    /// This side owns the connection's output (the send fast path,
    /// [`WireHandover`](crate::driver::WireHandover)): only then is the socket's pipe read and
    /// a send handed out. True until it first lets go.
    owns_output: bool,
    /// The hand-over was opened with this connection.
    handover_open: bool,
}

impl std::fmt::Debug for StreamCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamCore")
            .field("endpoint", &self.endpoint)
            .field("ready", &self.conn.is_ready())
            .field("paused", &self.paused)
            .field("held", &self.held.len())
            .field("finishing", &self.finishing)
            .field("done", &self.done)
            .finish()
    }
}

impl StreamCore {
    /// A stream of `config.socket_type` on `endpoint`: raw bytes for STREAM, ZMTP for every
    /// other type. `fd_value` is what the Disconnected monitor event reports.
    pub fn new(
        config: ConnectionConfig,
        link: Link,
        endpoint: Arc<str>,
        fd_value: u32,
        now: Instant,
    ) -> Result<Self, crate::zmtp::ConfigError> {
        let subscriber = matches!(config.socket_type, SocketType::Sub | SocketType::XSub);
        let max_incomplete = config.max_incomplete_msg;
        let peer_address = config.peer_address.clone();
        let hello = config.hello_msg.clone();
        let hiccup = config.hiccup_msg.clone();
        let conn = if config.socket_type == SocketType::Stream {
            Wire::Raw(Raw::default())
        } else {
            Wire::Zmtp(Box::new(Connection::new(config, now)?))
        };
        Ok(StreamCore {
            conn,
            link,
            monitor_endpoint: endpoint.clone(),
            endpoint,
            fd_value,
            notify: None,
            paused: false,
            stalled: BytesMut::new(),
            held: VecDeque::new(),
            pipes: None,
            metadata: None,
            metadata_pending: false,
            in_msg_cost: 0,
            max_incomplete,
            overflowed: false,
            partial: Vec::new(),
            peer_address,
            zap_requests: VecDeque::new(),
            sending: false,
            subscriber,
            out_mid_message: false,
            in_mid_message: false,
            owner_ended: false,
            finishing: false,
            aborted: false,
            done: false,
            handshake_done: false,
            eof_seen: false,
            read_error: None,
            error: None,
            keep_key: None,
            raw_key: None,
            hello,
            hiccup,
            inherited: None,
            returned: None,
            skip_partial_out: false,
            inherited_connected: false,
            owns_output: true,
            handover_open: false,
        })
    }

    /// How the pipes wake the I/O half: `readable` when the socket queued outbound messages,
    /// `writable` when the socket made room in a full inbound pipe (then call
    /// [`StreamCore::pipe_writable`]). Set before [`StreamCore::start`].
    pub fn set_notify(&mut self, readable: NotifyHandle, writable: NotifyHandle) {
        self.notify = Some((readable, writable));
    }

    /// Keeps the pipes across reconnects under `key`, taking over `kept` from the previous
    /// connection if there was one. Raw (STREAM) streams never keep pipes (each reconnect
    /// is announced as a new connection) but pass `key` on: libzmq's STREAM keeps the peer's
    /// routing id across reconnects.
    pub fn keep_pipes(&mut self, key: u64, kept: Option<Kept>) {
        if self.conn.is_raw() {
            self.raw_key = Some(key);
            // A STREAM's pipe attached at connect (CONNECT_ROUTING_ID): this first connection
            // takes it; it closes with the connection, as every raw connection's pipe does.
            self.inherited = kept.map(|k| k.pipes);
            return;
        }
        self.keep_key = Some(key);
        if let Some(k) = kept {
            self.skip_partial_out = k.out_mid_message;
            self.inherited_connected = k.connected_before;
            self.inherited = Some(k.pipes);
        }
    }

    /// The pipes to keep for the next connection, after the stream ended.
    pub fn take_kept(&mut self) -> Option<Kept> {
        self.returned.take()
    }

    /// The connection is up: a raw stream joins its socket at once (no handshake); a ZMTP
    /// one has its greeting queued already.
    pub fn start(&mut self) {
        if self.conn.is_raw() {
            // libzmq's raw engine has the same properties as a ZMTP one, less the handshake's:
            // Peer-Address (and the fd, for ZMQ_SRCFD), on the connect notification and every chunk.
            let mut md = MsgMetadata::new();
            if !self.peer_address.is_empty() {
                md.insert("Peer-Address", self.peer_address.clone());
            }
            md.set_src_fd(self.fd_value as i32);
            let metadata = Some(Arc::new(md));
            if let Some(pipes) = self.inherited.take() {
                // Attached at connect: the socket announced the peer then; the first chunk
                // brings the connection's properties.
                self.metadata = metadata;
                self.metadata_pending = true;
                self.install(pipes);
                return;
            }
            match self.link.attach_raw(&self.endpoint, self.raw_key, metadata) {
                Some(pipes) => self.install(pipes),
                None => self.finishing = true,
            }
        }
    }

    /// The peer closed its side.
    pub fn handle_eof(&mut self, now: Instant) {
        self.eof_seen = true;
        if !self.paused {
            self.conn.handle_eof(self.read_error, now);
        }
    }

    /// Reading failed with `errno` (ECONNRESET, ETIMEDOUT, …): the end of the stream, with the
    /// errno a monitor is told (HANDSHAKE_FAILED_NO_DETAIL), as libzmq's engine reports it.
    pub fn handle_read_error(&mut self, errno: Errno, now: Instant) {
        self.read_error.get_or_insert(errno);
        self.handle_eof(now);
    }

    /// The send handed out by [`StreamCore::poll_transmit`] completed; `ok: false` means the
    /// peer is gone and nothing more can be written.
    pub fn handle_send_result(&mut self, ok: bool) {
        self.sending = false;
        if !ok {
            self.finishing = true;
            self.eof_seen = true;
        }
    }

    /// The deadline from [`StreamCore::poll_timeout`] passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now);
    }

    /// The ZAP handler answered a request from [`StreamCore::poll_zap_request`].
    pub fn zap_reply(&mut self, reply: Result<ZapReply, ZapError>, now: Instant) {
        self.conn.zap_reply(reply, now);
    }

    /// Moves everything that can move (events to the socket, the socket's messages to the
    /// encoder) and decides whether the stream is finished.
    pub fn drive(&mut self) -> Status {
        if self.done {
            return Status::Done;
        }
        self.drain_events();
        self.encode_outbound();
        let output_can_leave = self.conn.pending_transmit_bytes() > 0 && !self.eof_seen;
        if self.aborted || (self.finishing && !self.sending && !output_can_leave) {
            // Whatever was queued (an ERROR command, the socket's last messages) went out,
            // or cannot any more.
            self.teardown();
            return Status::Done;
        }
        Status::Open
    }

    /// What waits for room in the socket's pipe: decoded message parts (at most one
    /// message's) and bytes not decoded yet.
    pub fn inbound_backlog(&self) -> (usize, usize) {
        (self.held.len(), self.stalled.len())
    }

    /// Whether a receive should be armed: false while paused, finishing or after the end of
    /// the stream. A receive armed before a pause should be cancelled.
    pub fn wants_recv(&self) -> bool {
        !self.paused && !self.finishing && !self.eof_seen && !self.done
    }

    /// The next deadline (handshake, heartbeats), if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.done {
            None
        } else {
            self.conn.poll_timeout()
        }
    }

    /// A request for the socket's ZAP handler; answer with [`StreamCore::zap_reply`].
    pub fn poll_zap_request(&mut self) -> Option<ZapRequest> {
        self.zap_requests.pop_front()
    }

    /// Why the connection failed or closed, once it did (the protocol's verdict; a stream cut
    /// by the I/O side shows as [`ZmtpError::ConnectionClosed`]).
    pub fn error(&self) -> Option<&ZmtpError> {
        self.error.as_ref()
    }

    /// Names `endpoint` in its monitor events instead of the endpoint its pipes carry: an
    /// accepted tcp connection's own local address, as libzmq's events name it
    /// (`tcp://127.0.0.1:5555` where the wildcard bind's listener is `tcp://0.0.0.0:5555`).
    pub fn set_monitor_endpoint(&mut self, endpoint: Arc<str>) {
        self.monitor_endpoint = endpoint;
    }

    /// How the stream ended, for its session's decision to reconnect: a raw stream's every
    /// end counts as a failed handshake, as libzmq's raw engine (no mechanism) reports it.
    pub fn end(&self) -> super::StreamEnd {
        super::StreamEnd::of(self.error(), self.handshake_done && !self.conn.is_raw())
    }

    /// Whether the handshake succeeded at some point (the connection may have ended since).
    pub fn handshake_done(&self) -> bool {
        self.handshake_done
    }

    /// Whether the connection is still in its ZMTP handshake (a raw stream never is): what a
    /// listener's ZR_MAX_HANDSHAKES counts.
    pub fn in_handshake(&self) -> bool {
        !self.conn.is_raw() && !self.handshake_done && !self.done && !self.finishing
    }

    /// Ends the handshake as HANDSHAKE_IVL running out would (see
    /// [`crate::zmtp::Connection::expire_handshake`]); nothing once it completed.
    pub fn expire_handshake(&mut self) {
        if self.in_handshake() {
            self.conn.expire_handshake();
        }
    }

    /// Whether the peer's whole greeting arrived (see
    /// [`crate::zmtp::Connection::greeting_received`]).
    pub fn greeting_received(&self) -> bool {
        self.conn.greeting_received()
    }

    /// Whether the connection completed its handshake.
    pub fn is_ready(&self) -> bool {
        self.conn.is_ready()
    }

    /// Whether the handshake is still in its greeting (no version agreed yet).
    pub fn in_greeting(&self) -> bool {
        match &self.conn {
            Wire::Zmtp(c) => c.version().is_none() && !c.is_ready() && !c.is_closed(),
            Wire::Raw(_) => false,
        }
    }

    /// Ends the stream at once (unbind, disconnect, socket close, host gone). Not reported
    /// as DISCONNECTED: libzmq reports that only for an engine error (the peer closed, a
    /// protocol error, a heartbeat timeout), not when its owner terminates the engine.
    pub fn stop(&mut self) {
        self.owner_ended = true;
        self.teardown();
    }

    fn on_handshake(&mut self, peer: &PeerInfo) {
        self.handshake_done = true;
        self.link
            .monitor(MonitorEvent::HandshakeSucceeded, 0, &self.monitor_endpoint);
        if let (Some(pipes), Some(key)) = (self.inherited.take(), self.keep_key) {
            self.install(pipes);
            if self.inherited_connected {
                self.link.hiccup(key);
                if let Some(hiccup) = self.hiccup.clone() {
                    // ZMQ_HICCUP_MSG: the socket hears of the reconnection, as if from the peer.
                    self.deliver(Msg::from_bytes(hiccup));
                }
            }
        } else {
            let Some(pipes) = self.link.attach(peer, &self.endpoint, self.keep_key) else {
                self.finishing = true;
                return;
            };
            self.install(pipes);
        }
        if let Some(hello) = &self.hello {
            // Ahead of everything the socket queued: the output is at a message boundary
            // on a fresh connection.
            let _ = self.conn.send_frame(hello.clone().into(), false);
        }
        let mut md = MsgMetadata::new();
        for (name, value) in peer.properties.iter() {
            md.insert(&String::from_utf8_lossy(name), value.clone());
        }
        if let Some(zap) = &peer.zap_properties {
            for (name, value) in zap.iter() {
                md.insert(&String::from_utf8_lossy(name), value.clone());
            }
        }
        if let Some(user) = &peer.user_id {
            md.insert("User-Id", user.clone());
        }
        if !self.peer_address.is_empty() {
            md.insert("Peer-Address", self.peer_address.clone());
        }
        md.set_src_fd(self.fd_value as i32);
        self.metadata = Some(Arc::new(md));
        self.metadata_pending = true;
    }

    /// Takes the driver's ends of the socket's pipe pair and asks to be woken by both.
    fn install(&mut self, mut pipes: PipeEnds) {
        if let Some((readable, writable)) = &self.notify {
            pipes.from_socket.set_notify(Some(readable.clone()));
            pipes.to_socket.set_notify(Some(writable.clone()));
        }
        self.pipes = Some(pipes);
    }

    /// Reports a handshake failure's monitor event (`HANDSHAKE_FAILED_*`), if it has one.
    fn report_failure(&self, failure: Option<HandshakeFailure>) {
        if let Some(f) = failure {
            if let Some(ev) = MonitorEvent::from_code(f.event()) {
                self.link.monitor(ev, f.value(), &self.monitor_endpoint);
            }
        }
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::HandshakeSucceeded(peer) => self.on_handshake(&peer),
                Event::HandshakeFailed(err) => {
                    self.report_failure(err.handshake_failure());
                    self.error.get_or_insert(err);
                    self.finishing = true;
                }
                Event::ZapRequest(request) => self.zap_requests.push_back(*request),
                Event::Frame { body, more } => {
                    // A raw chunk or a frame that queued behind an event; small ones inline.
                    self.deliver(Msg::from_small_or_owned(body).with_more(more));
                }
                Event::Subscribe(topic) => self.deliver(command_message(1, &topic)),
                Event::Cancel(topic) => self.deliver(command_message(0, &topic)),
                // RADIO/DISH arrive with the draft socket types.
                Event::Join(_) | Event::Leave(_) => {}
                Event::Closed(err) => {
                    // A CURVE MESSAGE that fails to open: libzmq reports it like a handshake failure.
                    self.report_failure(err.traffic_failure());
                    self.error.get_or_insert(err);
                    self.finishing = true;
                    self.aborted = true;
                }
            }
        }
        if let Some(pipes) = self.pipes.as_mut() {
            if !self.in_mid_message {
                pipes.to_socket.flush();
            }
        }
    }

    fn teardown(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        if let Some(mut pipes) = self.pipes.take().or_else(|| self.inherited.take()) {
            // The application can no longer write to this connection itself.
            if let Some(h) = &pipes.handover {
                h.close();
            }
            let socket_gone =
                pipes.to_socket.is_reader_closed() || pipes.from_socket.is_writer_closed();
            // A half-written inbound message is taken back (libzmq's session rolls its pipe
            // back when the engine goes away): the socket never sees the head of a message the
            // connection cut, whether the pipes go on to the next connection or close. A
            // closed socket's queue that is still owed goes on to the next connection (its
            // session lingers and reconnects, as libzmq's does after a connection error);
            // inbound has nowhere to go then anyway.
            if self.in_mid_message {
                pipes.to_socket.rollback();
                self.in_mid_message = false;
            }
            let owed_by_closed_socket = socket_gone && pipes.from_socket.len_hint() > 0;
            let keep = !socket_gone || owed_by_closed_socket;
            if self.keep_key.is_some() && keep {
                self.returned = Some(Kept {
                    pipes,
                    out_mid_message: self.out_mid_message,
                    connected_before: self.handshake_done || self.inherited_connected,
                });
            } else {
                pipes.to_socket.close();
                pipes.from_socket.close();
            }
        }
        self.held.clear();
        self.partial.clear();
        self.stalled.clear();
        if !self.owner_ended {
            if self.conn.is_raw() {
                // libzmq's raw engine has no mechanism, so its engine reports every end it
                // did not choose as a handshake that failed (HANDSHAKE_FAILED_NO_DETAIL with
                // errno, EPIPE for a peer's close) before DISCONNECTED.
                let errno = match self.error.as_ref().and_then(ZmtpError::handshake_failure) {
                    Some(HandshakeFailure::NoDetail(e)) => e,
                    _ => Errno::EPIPE,
                };
                self.report_failure(Some(HandshakeFailure::NoDetail(errno)));
            }
            self.link.monitor(
                MonitorEvent::Disconnected,
                self.fd_value,
                &self.monitor_endpoint,
            );
        }
    }
}

/// A subscription crossing the pipe as libzmq passes it internally: `\x01topic` or `\x00topic`.
fn command_message(first: u8, topic: &Bytes) -> Msg {
    let mut b = BytesMut::with_capacity(1 + topic.len());
    b.put_u8(first);
    b.extend_from_slice(topic);
    Msg::from_bytes(b.freeze())
}
