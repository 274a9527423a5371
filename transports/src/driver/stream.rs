//! One ZMTP connection over one descriptor, run by a handler on an I/O thread.
//!
//! Inbound: a multishot receive feeds [`Connection::handle_input`]; frames become [`Msg`]s
//! written into the pipe to the socket, subscriptions become `\x01topic` / `\x00topic`
//! messages. When that pipe is full, reading pauses (the receive is cancelled, bytes already
//! received wait undecoded) until the socket drains it to its low-water mark.
//!
//! Outbound: messages read from the socket's pipe are encoded while less than
//! [`OUT_HIGH_WATER`] bytes are queued, and at most one send — a batch of small frames plus
//! large bodies as iovec entries, never copied — is in flight.
//!
//! It must never block, and never queue more than one receive buffer's worth of decoded input
//! or [`OUT_HIGH_WATER`] plus one message of output.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use zeroring_engine::pipe::{Notify, ReadError, WriteError};
use zeroring_engine::{
    Completion, Cx, HandlerId, IoThreadHandle, Metadata, Msg, Op, OpId, SharedFd, TimerId,
};

use super::wire::{Raw, Wire};
use super::{Link, PipeEnds};
use crate::monitor::MonitorEvent;
use crate::socket_type::SocketType;
use crate::zmtp::{Connection, ConnectionConfig, Event, PeerInfo, ZapReply};

/// Encode from the socket's pipe only while less than this much output is queued.
pub const OUT_HIGH_WATER: usize = 256 * 1024;
/// Most buffers handed to one send.
const MAX_SEND_CHUNKS: usize = 256;

/// Notification tokens the stream's handler forwards to it.
pub(crate) const TOKEN_PIPE_READABLE: u64 = 1;
pub(crate) const TOKEN_PIPE_WRITABLE: u64 = 2;
pub(crate) const TOKEN_ZAP: u64 = 3;
/// First token free for the owning handler's own use.
pub(crate) const TOKEN_OWNER_BASE: u64 = 16;

/// Wakes a handler on its I/O thread when a pipe changes state.
struct HandlerNotify {
    thread: IoThreadHandle,
    handler: HandlerId,
    token: u64,
}

impl Notify for HandlerNotify {
    fn notify(&self) {
        let _ = self.thread.notify(self.handler, self.token);
    }
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
    pub(crate) fn early(pipes: PipeEnds) -> Self {
        Kept {
            pipes,
            out_mid_message: false,
            connected_before: false,
        }
    }
}

/// Whether the stream goes on after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Open,
    /// Finished; the owner should drop it (and maybe reconnect).
    Done,
}

pub(crate) struct Stream {
    fd: SharedFd,
    raw_fd: i32,
    conn: Wire,
    link: Link,
    endpoint: Arc<str>,
    recv: Option<OpId>,
    paused: bool,
    /// Bytes received while paused, not yet decoded.
    stalled: VecDeque<Bytes>,
    /// Decoded messages waiting for room in the socket's pipe.
    held: VecDeque<Msg>,
    pipes: Option<PipeEnds>,
    metadata: Option<Arc<Metadata>>,
    sending: Option<OpId>,
    timer: Option<(TimerId, Instant)>,
    zap: Arc<Mutex<Option<ZapReply>>>,
    /// Subscriber side: outbound `\x01`/`\x00` messages become SUBSCRIBE/CANCEL.
    subscriber: bool,
    out_mid_message: bool,
    /// The last part written to the socket's pipe had MORE: do not flush yet, so the socket
    /// never sees part of a message.
    in_mid_message: bool,
    finishing: bool,
    done: bool,
    handshake_done: bool,
    eof_seen: bool,
    /// Set for a connecting session that keeps its pipes across reconnects.
    keep_key: Option<u64>,
    /// Pipes inherited from the previous connection, installed at the handshake.
    inherited: Option<PipeEnds>,
    /// Pipes handed back at teardown.
    returned: Option<Kept>,
    /// Drop outbound parts until the end of the message a dead connection started.
    skip_partial_out: bool,
    /// The inherited pipes led to an earlier connection.
    inherited_connected: bool,
}

impl Stream {
    /// A stream of `config.socket_type`: raw bytes for STREAM, ZMTP for every other type.
    pub(crate) fn new(
        fd: SharedFd,
        config: ConnectionConfig,
        link: Link,
        endpoint: Arc<str>,
        now: Instant,
    ) -> Result<Self, crate::zmtp::ConfigError> {
        let subscriber = matches!(config.socket_type, SocketType::Sub | SocketType::XSub);
        let raw_fd = std::os::fd::AsRawFd::as_raw_fd(&*fd);
        let conn = if config.socket_type == SocketType::Stream {
            Wire::Raw(Raw::default())
        } else {
            Wire::Zmtp(Box::new(Connection::new(config, now)?))
        };
        Ok(Stream {
            fd,
            raw_fd,
            conn,
            link,
            endpoint,
            recv: None,
            paused: false,
            stalled: VecDeque::new(),
            held: VecDeque::new(),
            pipes: None,
            metadata: None,
            sending: None,
            timer: None,
            zap: Arc::new(Mutex::new(None)),
            subscriber,
            out_mid_message: false,
            in_mid_message: false,
            finishing: false,
            done: false,
            handshake_done: false,
            eof_seen: false,
            keep_key: None,
            inherited: None,
            returned: None,
            skip_partial_out: false,
            inherited_connected: false,
        })
    }

    /// Keeps the pipes across reconnects under `key`, taking over `kept` from the previous
    /// connection if there was one. Raw (STREAM) streams never keep: libzmq announces every
    /// reconnect of a STREAM peer as a new connection.
    pub(crate) fn keep_pipes(&mut self, key: u64, kept: Option<Kept>) {
        if self.conn.is_raw() {
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
    pub(crate) fn take_kept(&mut self) -> Option<Kept> {
        self.returned.take()
    }

    pub(crate) fn fd_value(&self) -> u32 {
        self.raw_fd as u32
    }

    /// Starts receiving and sends the greeting.
    pub(crate) fn start(&mut self, cx: &mut Cx<'_>) -> Status {
        if self.conn.is_raw() {
            // No handshake: the peer joins the socket at once.
            match self.link.attach_raw(&self.endpoint) {
                Some(pipes) => self.install(cx, pipes),
                None => self.finishing = true,
            }
        }
        self.pump(cx)
    }

    /// Whether `op` belongs to this stream.
    pub(crate) fn owns(&self, op: OpId) -> bool {
        self.recv == Some(op) || self.sending == Some(op)
    }

    pub(crate) fn on_completion(
        &mut self,
        cx: &mut Cx<'_>,
        op: OpId,
        completion: Completion,
        more: bool,
    ) -> Status {
        match completion {
            Completion::Received(result) => {
                if !more && self.recv == Some(op) {
                    self.recv = None;
                }
                match result {
                    Ok(data) if !data.is_empty() => {
                        if self.paused || !self.stalled.is_empty() {
                            self.stalled.push_back(data);
                        } else if !self.finishing {
                            self.conn.handle_input(data, cx.now());
                        }
                    }
                    Ok(_) => self.eof(cx),
                    Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => {}
                    Err(_) => self.eof(cx),
                }
            }
            Completion::Sent { result, .. } => {
                self.sending = None;
                if result.is_err() {
                    // The peer is gone; nothing more can be written.
                    self.finishing = true;
                    self.eof_seen = true;
                }
            }
            _ => {}
        }
        self.pump(cx)
    }

    fn eof(&mut self, cx: &mut Cx<'_>) {
        self.eof_seen = true;
        if !self.paused {
            self.conn.handle_eof(cx.now());
        }
    }

    pub(crate) fn on_notify(&mut self, cx: &mut Cx<'_>, token: u64) -> Status {
        match token {
            TOKEN_PIPE_WRITABLE => self.retry_held(cx),
            TOKEN_ZAP => {
                let reply = self.zap.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(reply) = reply {
                    self.conn.zap_reply(reply, cx.now());
                }
            }
            _ => {}
        }
        self.pump(cx)
    }

    pub(crate) fn on_timer(&mut self, cx: &mut Cx<'_>, timer: TimerId) -> Status {
        if self.timer.map(|(t, _)| t) == Some(timer) {
            self.timer = None;
            self.conn.handle_timeout(cx.now());
        }
        self.pump(cx)
    }

    /// Ends the stream at once (unbind, disconnect, socket close): pipes closed, operations
    /// cancelled.
    pub(crate) fn stop(&mut self, cx: &mut Cx<'_>) {
        self.teardown(cx);
    }

    /// Writes a decoded message to the socket, or holds it when the pipe is full.
    fn deliver(&mut self, cx: &mut Cx<'_>, msg: Msg) {
        if !self.held.is_empty() {
            self.held.push_back(msg);
            return;
        }
        let Some(pipes) = self.pipes.as_mut() else {
            return;
        };
        let more = msg.more();
        match pipes.to_socket.write(msg) {
            Ok(()) => {
                self.in_mid_message = more;
            }
            Err(WriteError::Full(msg)) => {
                self.held.push_back(msg);
                self.pause(cx);
            }
            Err(WriteError::Closed(_)) => self.finishing = true,
        }
    }

    fn pause(&mut self, cx: &mut Cx<'_>) {
        if self.paused {
            return;
        }
        self.paused = true;
        if let Some(op) = self.recv {
            cx.cancel(op);
        }
    }

    fn retry_held(&mut self, cx: &mut Cx<'_>) {
        let Some(pipes) = self.pipes.as_mut() else {
            return;
        };
        while let Some(msg) = self.held.pop_front() {
            let more = msg.more();
            match pipes.to_socket.write(msg) {
                Ok(()) => {
                    self.in_mid_message = more;
                }
                Err(WriteError::Full(msg)) => {
                    self.held.push_front(msg);
                    break;
                }
                Err(WriteError::Closed(_)) => {
                    self.held.clear();
                    self.finishing = true;
                }
            }
        }
        if !self.in_mid_message {
            pipes.to_socket.flush();
        }
        if !self.held.is_empty() {
            return;
        }
        // Room again: decode what waited, then read on.
        self.paused = false;
        while !self.paused {
            let Some(data) = self.stalled.pop_front() else {
                break;
            };
            self.conn.handle_input(data, cx.now());
            self.drain_events(cx);
        }
        if self.paused {
            return;
        }
        if self.eof_seen {
            self.conn.handle_eof(cx.now());
        }
    }

    fn on_handshake(&mut self, cx: &mut Cx<'_>, peer: &PeerInfo) {
        self.handshake_done = true;
        self.link
            .monitor(MonitorEvent::HandshakeSucceeded, 0, &self.endpoint);
        if let (Some(pipes), Some(key)) = (self.inherited.take(), self.keep_key) {
            self.install(cx, pipes);
            if self.inherited_connected {
                self.link.hiccup(key);
            }
        } else {
            let Some(pipes) = self.link.attach(peer, &self.endpoint, self.keep_key) else {
                self.finishing = true;
                return;
            };
            self.install(cx, pipes);
        }
        let mut md = Metadata::new();
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
        self.metadata = Some(Arc::new(md));
    }

    /// Takes the driver's ends of the socket's pipe pair and asks to be woken by both.
    fn install(&mut self, cx: &mut Cx<'_>, mut pipes: PipeEnds) {
        let me = cx.id().expect("streams run inside handlers");
        let thread = cx.handle().clone();
        let readable = HandlerNotify {
            thread: thread.clone(),
            handler: me,
            token: TOKEN_PIPE_READABLE,
        };
        let writable = HandlerNotify {
            thread,
            handler: me,
            token: TOKEN_PIPE_WRITABLE,
        };
        pipes.from_socket.set_notify(Some(Arc::new(readable)));
        pipes.to_socket.set_notify(Some(Arc::new(writable)));
        self.pipes = Some(pipes);
    }

    fn drain_events(&mut self, cx: &mut Cx<'_>) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::HandshakeSucceeded(peer) => self.on_handshake(cx, &peer),
                Event::HandshakeFailed(err) => {
                    if let Some(f) = err.handshake_failure() {
                        if let Some(ev) = MonitorEvent::from_code(f.event()) {
                            self.link.monitor(ev, f.value(), &self.endpoint);
                        }
                    }
                    self.finishing = true;
                }
                Event::ZapRequest(request) => {
                    let slot = self.zap.clone();
                    let thread = cx.handle().clone();
                    let me = cx.id().expect("streams run inside handlers");
                    self.link.zap(
                        *request,
                        Box::new(move |reply| {
                            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(reply);
                            let _ = thread.notify(me, TOKEN_ZAP);
                        }),
                    );
                }
                Event::Frame { body, more } => {
                    let mut msg = Msg::from_bytes(body).with_more(more);
                    msg.set_metadata(self.metadata.clone());
                    self.deliver(cx, msg);
                }
                Event::Subscribe(topic) => self.deliver(cx, command_message(1, &topic)),
                Event::Cancel(topic) => self.deliver(cx, command_message(0, &topic)),
                // RADIO/DISH arrive with the draft socket types.
                Event::Join(_) | Event::Leave(_) => {}
                Event::Closed(_) => self.finishing = true,
            }
        }
        if let Some(pipes) = self.pipes.as_mut() {
            if !self.in_mid_message {
                pipes.to_socket.flush();
            }
        }
    }

    /// Encodes from the socket's pipe while output is low.
    fn encode_outbound(&mut self) {
        if self.finishing || !self.conn.is_ready() {
            return;
        }
        let Some(pipes) = self.pipes.as_mut() else {
            return;
        };
        while self.conn.pending_transmit_bytes() < OUT_HIGH_WATER {
            match pipes.from_socket.read() {
                Ok(msg) if self.skip_partial_out => {
                    // The rest of a message whose start went down with the last connection.
                    self.skip_partial_out = msg.more();
                }
                Ok(msg) => {
                    let more = msg.more();
                    let at_start = !self.out_mid_message;
                    self.out_mid_message = more;
                    let data = msg.into_bytes();
                    if self.conn.is_raw() && data.is_empty() {
                        // STREAM: an empty message asks to close this connection.
                        self.finishing = true;
                        return;
                    }
                    let result = if self.subscriber
                        && at_start
                        && !more
                        && matches!(data.first(), Some(0) | Some(1))
                    {
                        let topic = data.slice(1..);
                        if data[0] == 1 {
                            self.conn.send_subscribe(&topic)
                        } else {
                            self.conn.send_cancel(&topic)
                        }
                    } else {
                        self.conn.send_frame(data, more)
                    };
                    if result.is_err() {
                        self.finishing = true;
                        return;
                    }
                }
                Err(ReadError::Empty) => return,
                Err(ReadError::Closed) => {
                    // The socket let go of this peer: send what is queued, then close.
                    self.finishing = true;
                    return;
                }
            }
        }
    }

    fn transmit(&mut self, cx: &mut Cx<'_>) {
        if self.sending.is_some() || self.done {
            return;
        }
        let mut bufs = Vec::new();
        while bufs.len() < MAX_SEND_CHUNKS {
            match self.conn.poll_transmit() {
                Some(chunk) => bufs.push(chunk),
                None => break,
            }
        }
        if !bufs.is_empty() && !self.eof_seen {
            self.sending = Some(cx.submit(Op::Send {
                fd: self.fd.clone(),
                bufs,
                zero_copy: false,
            }));
        }
    }

    fn update_timer(&mut self, cx: &mut Cx<'_>) {
        let want = if self.done {
            None
        } else {
            self.conn.poll_timeout()
        };
        if self.timer.map(|(_, at)| at) == want {
            return;
        }
        if let Some((t, _)) = self.timer.take() {
            cx.cancel_timer(t);
        }
        if let Some(at) = want {
            self.timer = Some((cx.set_timer(at), at));
        }
    }

    /// Moves everything that can move, then decides whether the stream is finished.
    fn pump(&mut self, cx: &mut Cx<'_>) -> Status {
        if self.done {
            return Status::Done;
        }
        self.drain_events(cx);
        // Keep exactly one receive armed while reading is wanted; a receive cancelled by a
        // pause ends on its own time, possibly after the pause is over.
        if self.recv.is_none() && !self.paused && !self.finishing && !self.eof_seen {
            self.recv = Some(cx.submit(Op::Recv {
                fd: self.fd.clone(),
            }));
        }
        self.encode_outbound();
        self.transmit(cx);
        if self.finishing && self.sending.is_none() {
            // Whatever is still queued (an ERROR command, say) went out with the last send,
            // or cannot go out any more.
            self.teardown(cx);
            return Status::Done;
        }
        self.update_timer(cx);
        Status::Open
    }

    fn teardown(&mut self, cx: &mut Cx<'_>) {
        if self.done {
            return;
        }
        self.done = true;
        if let Some(op) = self.recv.take() {
            cx.cancel(op);
        }
        if let Some(op) = self.sending.take() {
            cx.cancel(op);
        }
        if let Some((t, _)) = self.timer.take() {
            cx.cancel_timer(t);
        }
        if let Some(mut pipes) = self.pipes.take().or_else(|| self.inherited.take()) {
            let socket_gone =
                pipes.to_socket.is_reader_closed() || pipes.from_socket.is_writer_closed();
            // A half-written inbound message cannot be taken back (pipes have no rollback):
            // then the pipes close, as with IMMEDIATE.
            if self.keep_key.is_some() && !socket_gone && !self.in_mid_message {
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
        self.stalled.clear();
        self.link
            .monitor(MonitorEvent::Disconnected, self.fd_value(), &self.endpoint);
    }
}

/// A subscription crossing the pipe as libzmq passes it internally: `\x01topic` or `\x00topic`.
fn command_message(first: u8, topic: &Bytes) -> Msg {
    let mut b = BytesMut::with_capacity(1 + topic.len());
    b.put_u8(first);
    b.extend_from_slice(topic);
    Msg::from_bytes(b.freeze())
}
