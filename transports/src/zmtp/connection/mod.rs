//! One ZMTP connection as a sans-IO state machine: greeting → mechanism
//! handshake → READY → traffic, with the handshake timeout, heartbeats, ZAP
//! round trips and the events a socket and a monitor need.
//!
//! Owns: the protocol state of one stream. Must never: touch a socket, a thread
//! or a clock. Bytes come in through [`Connection::handle_input`], go out through
//! [`Connection::poll_transmit`]; time comes in as `now` and deadlines go out
//! through [`Connection::poll_timeout`].
//!
//! Driver loop, in short: feed every read with `handle_input` (and `handle_eof`
//! at end of stream), call `handle_timeout` when `poll_timeout`'s instant
//! passes, then drain `poll_event` and write out `poll_transmit` chunks. After a
//! `HandshakeFailed` or `Closed` event, write what `poll_transmit` still gives
//! (an ERROR command) and close the stream.
//!
//! Files: this one holds the state, the input and timer paths and the inbound frames;
//! `handshake.rs` the greeting-to-READY steps and ZAP, `outbound.rs` the frames queued in
//! traffic, `config.rs` and `events.rs` what goes in and comes out.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::command::{Command, MAX_PING_CONTEXT};
use super::encoder::{Encoder, DEFAULT_COPY_THRESHOLD};
use super::error::{CommandKind, ZmtpError};
use super::frame::{Frame, FrameBody, FrameDecoder, FrameRef};
use super::greeting::{GreetingExchange, LocalGreeting, MechanismName, ZmtpVersion};
use super::heartbeat::{Heartbeat, HeartbeatAction, HeartbeatConfig};
use super::mechanism::curve::{CurveClient, CurveSecretKey, CurveServer};
use super::mechanism::null::NullMechanism;
use super::mechanism::plain::{PlainClient, PlainServer};
use super::mechanism::{error_command, HandshakeContext, Mechanism, ZapSettings};
use super::metadata::{self, Metadata};
use super::zap::ZapRequest;
use crate::errno::Errno;
use crate::socket_type::SocketType;
use zeroring_engine::body_pool::BodyBuf;
use zeroring_engine::{Msg, SendBuf};

mod config;
mod events;
mod handshake;
mod outbound;

pub use config::{
    ConfigError, ConnectionConfig, MechanismConfig, DEFAULT_MAX_HANDSHAKE_FRAME,
    DEFAULT_MAX_INCOMPLETE_MSG, PART_OVERHEAD,
};
pub use events::{Event, FrameRefused, PeerInfo};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Greeting,
    Handshake,
    /// ZMTP 2.0: waiting for the peer's routing id message.
    V2Identity,
    Traffic,
    Closed,
}

/// Where [`Connection::handle_input_with`] hands ordinary data frames, as message parts in
/// wire order (MORE set as on the wire).
pub trait FrameSink {
    /// Whether data frames may go to this sink at all (`false`: they all become events).
    const TAKES_FRAMES: bool = true;
    /// One data frame.
    fn deliver(&mut self, msg: Msg);
    /// One data frame whose body is still in the receive buffer: a sink that can copy it
    /// straight to where it goes (a pipe slot) overrides this.
    #[inline(always)]
    fn deliver_copy(&mut self, body: &[u8], more: bool) {
        self.deliver(Msg::copy_from_slice(body).with_more(more));
    }
    /// Whether the sink can take no more for now (its socket's pipe is full): decoding stops
    /// at the next frame boundary and [`Connection::handle_input_with`] reports how far it
    /// got, so the caller keeps the rest as bytes (two or three per small frame) instead of
    /// decoded messages (a `Msg` each) — libzmq's engine stops its decoder the same way.
    #[inline(always)]
    fn is_full(&self) -> bool {
        false
    }
    /// A run of single-part data frames whose bodies are still in the receive buffer, taken
    /// one at a time by `take` (which yields a body, or `None` having consumed nothing): a
    /// sink that can copy them into its pipe in one batch overrides this. Returns how many it
    /// took; the default takes none, and the caller hands them over one by one.
    #[inline(always)]
    fn deliver_copy_run<'i>(&mut self, take: impl FnMut() -> Option<&'i [u8]>) -> usize {
        let _ = take;
        0
    }
}

/// The sink of [`Connection::handle_input`]: takes nothing, so every frame is an event.
struct NoSink;

impl FrameSink for NoSink {
    const TAKES_FRAMES: bool = false;
    fn deliver(&mut self, _msg: Msg) {}
}

/// A ZMTP connection.
#[derive(Debug)]
pub struct Connection {
    socket_type: SocketType,
    routing_id: Bytes,
    max_msg_size: Option<u64>,
    phase: Phase,
    greeting: GreetingExchange,
    mechanism_name: MechanismName,
    version: Option<ZmtpVersion>,
    decoder: FrameDecoder,
    encoder: Encoder,
    mechanism: Box<dyn Mechanism>,
    heartbeat: Heartbeat,
    handshake_deadline: Option<Instant>,
    events: VecDeque<Event>,
    /// The next inbound data frame starts a message.
    at_message_start: bool,
    peer: Option<Box<PeerInfo>>,
    v2_socket_type: Option<u8>,
}

impl Connection {
    /// Starts a connection: the first greeting bytes are due at once.
    pub fn new(config: ConnectionConfig, now: Instant) -> Result<Connection, ConfigError> {
        config.validate()?;
        let mechanism_name = config.mechanism.name();
        let allow_v2 = config.mechanism == MechanismConfig::Null && config.zap.domain.is_empty();
        let mut greeting = GreetingExchange::new(LocalGreeting {
            mechanism: mechanism_name,
            socket_type: config.socket_type,
            routing_id_len: config.routing_id.len(),
            allow_v2,
        });
        let mut encoder = Encoder::new(config.copy_threshold);
        encoder.raw(greeting.take_output());
        let max_msg_size = u64::try_from(config.max_msg_size).ok();
        let handshake_limit = Some(max_msg_size.map_or(config.max_handshake_frame, |m| {
            m.min(config.max_handshake_frame)
        }));
        let ctx = HandshakeContext {
            socket_type: config.socket_type,
            routing_id: config.routing_id.clone(),
            app_metadata: config.metadata,
            zap: config.zap,
            peer_address: config.peer_address,
            ready_after_peer: config.ready_after_peer,
        };
        let mechanism: Box<dyn Mechanism> = match config.mechanism {
            MechanismConfig::Null => Box::new(NullMechanism::new(ctx)),
            MechanismConfig::PlainClient { username, password } => {
                Box::new(PlainClient::new(ctx, username, password))
            }
            MechanismConfig::PlainServer => Box::new(PlainServer::new(ctx)),
            MechanismConfig::CurveClient {
                public,
                secret,
                server,
            } => Box::new(CurveClient::new(ctx, public, secret, server)),
            MechanismConfig::CurveServer { secret } => Box::new(CurveServer::new(ctx, secret)),
        };
        let decoder = FrameDecoder::new(handshake_limit);
        Ok(Connection {
            socket_type: config.socket_type,
            routing_id: config.routing_id,
            max_msg_size,
            phase: Phase::Greeting,
            greeting,
            mechanism_name,
            version: None,
            decoder,
            encoder,
            mechanism,
            heartbeat: Heartbeat::new(config.heartbeat),
            handshake_deadline: config
                .handshake_ivl
                .filter(|d| !d.is_zero())
                .map(|d| now + d),
            events: VecDeque::new(),
            at_message_start: true,
            peer: None,
            v2_socket_type: None,
        })
    }

    /// Feeds bytes read from the stream; every data frame becomes an [`Event::Frame`].
    ///
    /// Nothing the connection keeps or queues refers to `data` after the call (the engine's
    /// input is a slice of an I/O thread's shared receive buffer, which must go back at once).
    pub fn handle_input(&mut self, data: Bytes, now: Instant) {
        let _all = self.handle_input_with(&data, now, &mut NoSink);
    }

    /// Feeds bytes read from the stream, handing data frames to `sink` as message parts
    /// whenever nothing else is queued before them (once the handshake is done and no
    /// subscription or other event waits in [`Connection::poll_event`]); the rest become
    /// events, so the order of frames and events is kept. Small bodies are copied inline into
    /// their `Msg`, larger ones into an allocation of their own: nothing refers to `data`
    /// after the call.
    ///
    /// Returns how many bytes of `data` were consumed: all of them, unless the sink said
    /// [`FrameSink::is_full`] after a frame, or the connection closed (the rest is then of
    /// no use). The caller feeds the unconsumed rest again once the sink has room.
    #[must_use = "bytes not consumed must be fed again"]
    pub fn handle_input_with<S: FrameSink>(
        &mut self,
        data: &[u8],
        now: Instant,
        sink: &mut S,
    ) -> usize {
        let mut input = data;
        while !input.is_empty() {
            if S::TAKES_FRAMES && sink.is_full() {
                return data.len() - input.len();
            }
            match self.phase {
                Phase::Closed => return data.len(),
                Phase::Greeting => match self.greeting.feed_slice(&mut input) {
                    Ok(done) => {
                        self.encoder.raw(self.greeting.take_output());
                        if let Some(peer) = done {
                            self.on_greeting(peer, now);
                        }
                    }
                    Err(e) => self.fail(e),
                },
                Phase::Traffic if S::TAKES_FRAMES && self.bursts_allowed() => {
                    // Short data frames go to the sink in a tight loop; anything else (and a
                    // frame the loop does not take) goes through the general path below.
                    let mut took = false;
                    loop {
                        // Single-part frames in runs, straight into the sink's pipe.
                        let decoder = &mut self.decoder;
                        let input_ref = &mut input;
                        if sink.deliver_copy_run(|| decoder.short_single_frame(input_ref)) > 0 {
                            took = true;
                            self.at_message_start = true;
                        }
                        let Some((more, body)) = self.decoder.short_data_frame(&mut input) else {
                            break;
                        };
                        took = true;
                        self.at_message_start = !more;
                        sink.deliver_copy(body, more);
                        if sink.is_full() {
                            break;
                        }
                    }
                    if took {
                        self.heartbeat.on_inbound();
                    } else {
                        self.decode_one(&mut input, now, sink);
                    }
                }
                _ => self.decode_one(&mut input, now, sink),
            }
        }
        data.len()
    }

    /// Whether data frames may skip [`Connection::takes_fast_path`]'s per-frame checks: every
    /// data frame would pass them (no event queued, not sealed, and not a pre-3.1 peer whose
    /// messages may be subscriptions). Command frames never take the burst.
    #[inline(always)]
    fn bursts_allowed(&self) -> bool {
        self.events.is_empty()
            && !(self.version != Some(ZmtpVersion::V3_1)
                && self.socket_type.receives_subscriptions())
            && !self.mechanism.seals_traffic()
    }

    /// Lends the body of the data frame being received, when at least `min` bytes of it are
    /// still to come, so that a receive writes them straight where the part keeps them (see
    /// [`FrameDecoder::lend_body`](super::frame::FrameDecoder::lend_body)). Only in the
    /// traffic phase of an unsealed connection; no input may be handed in until
    /// [`Connection::return_body_with`] gives it back.
    pub fn lend_body(&mut self, min: usize) -> Option<BodyBuf> {
        if !self.may_lend() {
            return None;
        }
        self.decoder.lend_body(min)
    }

    /// Whether [`Connection::lend_body`] would lend now.
    pub fn can_lend(&self, min: usize) -> bool {
        self.may_lend() && self.decoder.lendable(min)
    }

    /// Bodies may be lent in this phase and mechanism: traffic, not sealed.
    fn may_lend(&self) -> bool {
        self.phase == Phase::Traffic && !self.mechanism.seals_traffic()
    }

    /// Takes back the body lent by [`Connection::lend_body`], with what the receive wrote;
    /// a frame it completes goes to `sink` as one decoded from input would.
    pub fn return_body_with<S: FrameSink>(&mut self, buf: BodyBuf, now: Instant, sink: &mut S) {
        if let Some(frame) = self.decoder.return_body(buf) {
            self.handle_frame(frame, now, sink);
        }
    }

    /// Decodes one frame (or as much of one as `input` holds) and hands it on.
    #[inline]
    fn decode_one<S: FrameSink>(&mut self, input: &mut &[u8], now: Instant, sink: &mut S) {
        match self.decoder.decode_slice(input) {
            Ok(Some(frame)) => self.handle_frame(frame, now, sink),
            Ok(None) => *input = &[],
            Err(e) => self.fail(e.into()),
        }
    }

    /// Hands on one decoded frame: an ordinary data frame straight to the sink, anything else
    /// through the connection's state machine.
    #[inline]
    fn handle_frame<S: FrameSink>(&mut self, frame: FrameRef<'_>, now: Instant, sink: &mut S) {
        if !(S::TAKES_FRAMES && self.takes_fast_path(&frame)) {
            self.on_frame(frame.into_owned(), now);
            return;
        }
        self.heartbeat.on_inbound();
        self.at_message_start = !frame.more;
        match frame.body {
            FrameBody::Borrowed(b) => sink.deliver_copy(b, frame.more),
            // A split body the pools serve was assembled in the block the part keeps: no
            // allocation, no second copy.
            FrameBody::Pooled(p) => sink.deliver(Msg::from_pooled(p).with_more(frame.more)),
            FrameBody::Assembled(b) => sink.deliver(Msg::from_bytes(b).with_more(frame.more)),
        }
    }

    /// Whether `frame` is an ordinary data frame that can skip the event queue: traffic phase,
    /// not sealed, no event before it, and not a pre-3.1 subscription message.
    #[inline]
    fn takes_fast_path(&self, frame: &FrameRef<'_>) -> bool {
        !frame.command
            && self.phase == Phase::Traffic
            && self.events.is_empty()
            && !(self.at_message_start
                && !frame.more
                && self.version != Some(ZmtpVersion::V3_1)
                && self.socket_type.receives_subscriptions())
            && !self.mechanism.seals_traffic()
    }

    /// The peer closed the stream (or it failed). Ending inside the greeting
    /// or a frame is reported as [`FrameError::Truncated`](super::error::FrameError::Truncated).
    pub fn handle_eof(&mut self, _now: Instant) {
        let truncated = match self.phase {
            Phase::Greeting => self.greeting.is_partial(),
            _ => self.decoder.finish().is_err(),
        };
        self.fail(if truncated {
            ZmtpError::Frame(super::error::FrameError::Truncated)
        } else {
            ZmtpError::ConnectionClosed
        });
    }

    /// Reading the stream failed with `errno` (the peer reset it, TCP gave up): the connection
    /// ends with [`ZmtpError::ReadFailed`], whatever was cut, as libzmq's engine reports the
    /// errno of a failed read.
    pub fn handle_read_error(&mut self, errno: crate::Errno, _now: Instant) {
        self.fail(ZmtpError::ReadFailed(errno));
    }

    /// The next chunk of output, in order. Chunks are either a batch of small
    /// frames or one large message body (send them with one vectored write).
    pub fn poll_transmit(&mut self) -> Option<SendBuf> {
        self.encoder.next_chunk()
    }

    /// Bodies of at most this many bytes are copied into the output batch; larger ones are
    /// queued as they are.
    pub fn copy_threshold(&self) -> usize {
        self.encoder.copy_threshold()
    }

    /// Bytes queued for output (for backpressure: stop sending when high).
    pub fn pending_transmit_bytes(&self) -> usize {
        self.encoder.pending_bytes()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant at which [`Connection::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed => None,
            Phase::Traffic => match (self.handshake_deadline, self.heartbeat.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            _ => self.handshake_deadline,
        }
    }

    /// Ends a connection still in its handshake as if HANDSHAKE_IVL had run out (a listener
    /// at its ZR_MAX_HANDSHAKES evicting its oldest handshake): the same
    /// [`ZmtpError::HandshakeTimeout`], so the same monitor events. Nothing after the
    /// handshake or once closed.
    pub fn expire_handshake(&mut self) {
        if matches!(self.phase, Phase::Closed | Phase::Traffic) {
            return;
        }
        self.fail(ZmtpError::HandshakeTimeout);
    }

    /// Fires the deadlines that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.handshake_deadline.is_some_and(|d| d <= now) {
            self.handshake_deadline = None;
            self.fail(ZmtpError::HandshakeTimeout);
            return;
        }
        if self.phase != Phase::Traffic {
            return;
        }
        while let Some(action) = self.heartbeat.handle_timeout(now) {
            match action {
                HeartbeatAction::SendPing { ttl } => {
                    let ttl = ttl.to_be_bytes();
                    self.emit(false, true, b"\x04PING", &Bytes::copy_from_slice(&ttl));
                }
                HeartbeatAction::TimedOut => return self.fail(ZmtpError::HeartbeatTimeout),
                HeartbeatAction::TtlExpired => return self.fail(ZmtpError::HeartbeatTtlExpired),
            }
        }
    }

    /// Whether the handshake completed and the connection is live.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Traffic
    }

    /// The encoder, when data frames may be written to it directly: traffic phase and no
    /// sealing mechanism (what [`Connection::send_frame_slice`] would do, minus its checks).
    #[inline]
    pub fn plain_traffic_encoder(&mut self) -> Option<&mut Encoder> {
        (self.phase == Phase::Traffic && !self.mechanism.seals_traffic())
            .then_some(&mut self.encoder)
    }

    /// Whether the peer's whole greeting arrived (the handshake went on past it, or the
    /// connection is live or ended after it). Until then, this side has sent no handshake
    /// command, so the peer cannot have completed its handshake.
    pub fn greeting_received(&self) -> bool {
        !matches!(self.phase, Phase::Greeting)
    }

    /// Whether the connection is finished (flush `poll_transmit`, then close).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The negotiated protocol version, once the greeting is complete.
    pub fn version(&self) -> Option<ZmtpVersion> {
        self.version
    }

    /// What the handshake told us about the peer.
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_deref()
    }

    /// The local socket type.
    pub fn socket_type(&self) -> SocketType {
        self.socket_type
    }

    fn on_frame(&mut self, frame: Frame, now: Instant) {
        match self.phase {
            Phase::Handshake => {
                if !frame.command {
                    return self.fail(ZmtpError::UnexpectedCommand { name: Bytes::new() });
                }
                match self.mechanism.process_command(&frame.body) {
                    Ok(()) => self.drive_mechanism(now),
                    Err(e) => self.fail(e),
                }
            }
            Phase::V2Identity => {
                let peer = PeerInfo {
                    version: ZmtpVersion::V2_0,
                    socket_type: self
                        .v2_socket_type
                        .and_then(|t| SocketType::from_raw(i32::from(t))),
                    // Kept for the connection's life: never a slice of the input.
                    routing_id: Some(Bytes::copy_from_slice(&frame.body)),
                    properties: Metadata::new(),
                    user_id: None,
                    zap_properties: None,
                };
                self.become_ready(peer, now);
            }
            Phase::Traffic => {
                self.heartbeat.on_inbound();
                let frame = if self.mechanism.seals_traffic() {
                    match self.mechanism.open(frame) {
                        Ok(f) => f,
                        Err(e) => return self.fail(e),
                    }
                } else {
                    frame
                };
                if frame.command {
                    self.on_command(frame.body, now);
                } else {
                    self.on_data(frame);
                }
            }
            Phase::Greeting | Phase::Closed => {}
        }
    }

    fn on_data(&mut self, frame: Frame) {
        let first = self.at_message_start;
        self.at_message_start = !frame.more;
        if first
            && !frame.more
            && self.version != Some(ZmtpVersion::V3_1)
            && self.socket_type.receives_subscriptions()
        {
            match frame.body.first() {
                Some(1) => {
                    return self
                        .events
                        .push_back(Event::Subscribe(frame.body.slice(1..)))
                }
                Some(0) => return self.events.push_back(Event::Cancel(frame.body.slice(1..))),
                _ => {}
            }
        }
        self.events.push_back(Event::Frame {
            body: frame.body,
            more: frame.more,
        });
    }

    fn on_command(&mut self, body: Bytes, now: Instant) {
        let cmd = match Command::parse(&body) {
            Ok(c) => c,
            Err(
                e @ ZmtpError::MalformedCommand {
                    kind: CommandKind::Unspecified,
                },
            ) => return self.fail(e),
            // A malformed ERROR still ends the connection; a malformed late READY
            // is ignored (libzmq ignores commands it does not use).
            Err(ZmtpError::MalformedCommand {
                kind: CommandKind::Error,
            }) => {
                return self.fail(ZmtpError::PeerError {
                    reason: Bytes::new(),
                });
            }
            Err(_) => return,
        };
        match cmd {
            Command::Subscribe(t) => self.events.push_back(Event::Subscribe(t)),
            Command::Cancel(t) => self.events.push_back(Event::Cancel(t)),
            Command::Join(g) => self.events.push_back(Event::Join(g)),
            Command::Leave(g) => self.events.push_back(Event::Leave(g)),
            Command::Ping { ttl, context } => {
                self.heartbeat.on_ping(ttl, now);
                let ctx = context.slice(..context.len().min(MAX_PING_CONTEXT));
                self.emit(false, true, b"\x04PONG", &ctx);
            }
            Command::Error { reason } => self.fail(ZmtpError::PeerError { reason }),
            Command::Pong { .. } | Command::Ready(_) | Command::Other { .. } => {}
        }
    }

    fn fail(&mut self, error: ZmtpError) {
        let was_ready = match self.phase {
            Phase::Closed => return,
            Phase::Traffic => true,
            _ => false,
        };
        if let Some(reason) = error.error_command_reason() {
            if self.version.is_some_and(|v| v >= ZmtpVersion::V3_0) {
                self.encoder.frame(false, true, &error_command(reason));
            }
        }
        self.phase = Phase::Closed;
        self.handshake_deadline = None;
        self.events.push_back(if was_ready {
            Event::Closed(error)
        } else {
            Event::HandshakeFailed(error)
        });
    }
}
