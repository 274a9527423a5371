//! The inbound half of a [`StreamCore`]: from the bytes received to the socket's pipe. The
//! core's input methods decode what arrives (or keep it aside while the stream is paused), and
//! [`Inbound`] is where decoded messages go: a message enters the socket's pipe whole (its
//! parts wait here until the last one), is held — and the stream paused — when the pipe is
//! full, carries the connection's properties when it is the first after a handshake, and counts
//! against the incomplete-message bound.
//!
//! `Inbound` borrows the core's fields one by one, so that the connection can hand it frames
//! while it decodes. Must never: write part of a message to the pipe, or keep anything of the
//! receive buffer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::Buf;
use zeroring_engine::body_pool::BodyBuf;
use zeroring_engine::pipe::{PipeWriter, WriteError};
use zeroring_engine::{CopyHint, Msg, MsgMetadata};

use super::super::wire::Wire;
use super::StreamCore;
use crate::zmtp::{FrameError, FrameSink, ZmtpError, PART_OVERHEAD};

/// The inbound half of a stream, borrowed field by field so that the connection can hand it
/// frames while it decodes (see [`FrameSink`]).
pub(super) struct Inbound<'a> {
    pub(super) to_socket: Option<&'a mut PipeWriter<Msg>>,
    pub(super) held: &'a mut VecDeque<Msg>,
    pub(super) paused: &'a mut bool,
    pub(super) in_mid_message: &'a mut bool,
    pub(super) finishing: &'a mut bool,
    pub(super) metadata: &'a mut Option<Arc<MsgMetadata>>,
    pub(super) metadata_pending: &'a mut bool,
    pub(super) in_msg_cost: &'a mut u64,
    pub(super) max_incomplete: u64,
    pub(super) overflowed: &'a mut bool,
    pub(super) partial: &'a mut Vec<Msg>,
}

impl FrameSink for Inbound<'_> {
    /// Writes a decoded message to the socket, or holds it (and pauses) when the pipe is full.
    #[inline]
    fn deliver(&mut self, msg: Msg) {
        if *self.overflowed {
            // The connection is being cut off: the rest of the chunk goes nowhere.
            return;
        }
        if msg.more() {
            *self.in_msg_cost += msg.len() as u64 + PART_OVERHEAD;
            if *self.in_msg_cost > self.max_incomplete {
                *self.overflowed = true;
                self.partial.clear();
                return;
            }
            self.partial.push(msg);
            return;
        }
        *self.in_msg_cost = 0;
        if self.partial.is_empty() {
            self.write(msg);
            return;
        }
        let mut parts = std::mem::take(self.partial);
        for part in parts.drain(..) {
            self.write(part);
        }
        self.write(msg);
        // Keep a small buffer for the next multipart message, not a huge one's.
        if parts.capacity() <= 64 {
            *self.partial = parts;
        }
    }

    /// The common case — a single-part message, nothing held or pending, the connection
    /// healthy — is copied from the receive buffer straight into the pipe's slot.
    #[inline]
    fn deliver_copy(&mut self, body: &[u8], more: bool) {
        if more
            || *self.overflowed
            || *self.metadata_pending
            || !self.partial.is_empty()
            || !self.held.is_empty()
        {
            self.deliver(Msg::copy_from_slice(body).with_more(more));
            return;
        }
        let Some(to_socket) = self.to_socket.as_mut() else {
            return;
        };
        *self.in_msg_cost = 0;
        match to_socket
            .write_in_place(|slot| Msg::write_copied(slot, body, false, CopyHint::Cached))
        {
            Ok(()) => *self.in_mid_message = false,
            Err(WriteError::Full(())) => {
                self.held.push_back(Msg::copy_from_slice(body));
                *self.paused = true;
            }
            Err(WriteError::Closed(())) => *self.finishing = true,
        }
    }

    /// The common case in bulk: single-part messages, nothing held or pending, the
    /// connection healthy — a run of them copied into the pipe's slots with one look at the
    /// reader's progress ([`PipeWriter::write_run`]). What the run leaves (the pipe at its
    /// mark by that look, a frame with MORE) comes one by one through `deliver_copy`.
    #[inline]
    fn deliver_copy_run<'i>(&mut self, mut take: impl FnMut() -> Option<&'i [u8]>) -> usize {
        if *self.overflowed
            || *self.metadata_pending
            || !self.partial.is_empty()
            || !self.held.is_empty()
        {
            return 0;
        }
        let Some(to_socket) = self.to_socket.as_mut() else {
            return 0;
        };
        let n = to_socket
            .write_run(|slot| Some(Msg::write_copied(slot, take()?, false, CopyHint::Cached)));
        if n > 0 {
            *self.in_msg_cost = 0;
            *self.in_mid_message = false;
        }
        n
    }

    /// Paused: the pipe refused a message (now held). Decoding stops at the frame boundary,
    /// so at most one message waits here as `Msg`s and the rest of the input as bytes.
    #[inline(always)]
    fn is_full(&self) -> bool {
        *self.paused
    }
}

impl Inbound<'_> {
    /// Writes one part to the socket, or holds it (and pauses) when the pipe is full.
    fn write(&mut self, mut msg: Msg) {
        if *self.metadata_pending {
            // Once per connection: the socket's end of the pipe keeps it for what follows.
            *self.metadata_pending = false;
            msg.set_metadata(self.metadata.clone());
        }
        if !self.held.is_empty() {
            self.held.push_back(msg);
            return;
        }
        let Some(to_socket) = self.to_socket.as_mut() else {
            return;
        };
        let more = msg.more();
        match to_socket.write(msg) {
            Ok(()) => *self.in_mid_message = more,
            Err(WriteError::Full(msg)) => {
                self.held.push_back(msg);
                *self.paused = true;
            }
            Err(WriteError::Closed(_)) => *self.finishing = true,
        }
    }
}

impl StreamCore {
    /// Bytes received (never empty: an empty read is [`StreamCore::handle_eof`]).
    ///
    /// Nothing of `data` is kept after the call returns: decoded bodies are copied inline or
    /// into allocations of their own, and bytes that arrive while paused are copied aside. The
    /// engine's `data` is borrowed from its I/O thread's receive buffer, which goes back to
    /// the pool when the completion's callback returns.
    pub fn handle_input(&mut self, data: impl AsRef<[u8]>, now: Instant) {
        let data = data.as_ref();
        if self.paused || !self.stalled.is_empty() {
            if self.stalled.is_empty() {
                log::debug!(
                    "{}: receiving paused (the socket's pipe is full); this connection only",
                    self.endpoint
                );
            }
            self.stalled.extend_from_slice(data);
        } else if !self.finishing {
            self.decode(data, now);
        }
    }

    /// Lends the body of the large frame being received (at least `min` bytes still to
    /// come), for a receive that writes the rest straight where the part keeps it; `None`
    /// while receiving is paused, input is stalled, or the connection is ending. No input may
    /// be handed in until [`StreamCore::return_body`] gives it back.
    pub fn lend_body(&mut self, min: usize) -> Option<BodyBuf> {
        if !self.input_flows() {
            return None;
        }
        self.conn.lend_body(min)
    }

    /// Whether [`StreamCore::lend_body`] would lend now.
    pub fn can_lend(&self, min: usize) -> bool {
        self.input_flows() && self.conn.can_lend(min)
    }

    /// Input is being decoded as it arrives: not paused, nothing stalled, not ending.
    pub(super) fn input_flows(&self) -> bool {
        !self.paused && self.stalled.is_empty() && !self.finishing
    }

    /// Takes back the body lent by [`StreamCore::lend_body`], with what the receive wrote
    /// (call it before [`StreamCore::handle_eof`] when the receive ended the stream): a frame
    /// it completes goes to the socket as one decoded from input would.
    pub fn return_body(&mut self, buf: BodyBuf, now: Instant) {
        let (conn, mut inbound) = self.split_inbound();
        conn.return_body_with(buf, now, &mut inbound);
        self.drain_events();
        self.check_overflow();
    }

    /// Decodes `data`: ordinary data frames go straight into the socket's pipe (or the held
    /// queue), the rest through the connection's events.
    ///
    /// When the pipe fills up, decoding stops at a frame boundary and the undecoded rest is
    /// kept as bytes in `stalled` (a few bytes per small message rather than a `Msg` each,
    /// and each message is moved once, into the pipe, instead of into a queue first); it is
    /// decoded when the socket makes room ([`StreamCore::pipe_writable`]).
    pub(super) fn decode(&mut self, data: &[u8], now: Instant) {
        let used = self.decode_some(data, now);
        if let Some(rest) = data.get(used..).filter(|r| !r.is_empty()) {
            self.stalled.extend_from_slice(rest);
        }
    }

    /// Decodes `data` until the pipe is full; returns how many bytes were used.
    pub(super) fn decode_some(&mut self, data: &[u8], now: Instant) -> usize {
        let (conn, mut inbound) = self.split_inbound();
        let used = conn.handle_input_with(data, now, &mut inbound);
        self.drain_events();
        self.check_overflow();
        used
    }

    /// A peer whose incomplete message went past the limit is cut off: its partial message
    /// (never flushed to the socket) is dropped with the connection.
    pub(super) fn check_overflow(&mut self) {
        if self.overflowed && !self.aborted {
            log::warn!(
                "{}: disconnecting a peer whose incomplete message passed {} bytes",
                self.endpoint,
                self.max_incomplete
            );
            self.error
                .get_or_insert(ZmtpError::Frame(FrameError::TooLarge {
                    size: self.in_msg_cost,
                    limit: self.max_incomplete,
                }));
            self.finishing = true;
            self.aborted = true;
        }
    }

    /// The socket made room in the inbound pipe: deliver what waited, then read on.
    pub fn pipe_writable(&mut self, now: Instant) {
        let Some(pipes) = self.pipes.as_mut() else {
            return;
        };
        while let Some(msg) = self.held.pop_front() {
            let more = msg.more();
            match pipes.to_socket.write(msg) {
                Ok(()) => self.in_mid_message = more,
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
        self.paused = false;
        if !self.stalled.is_empty() {
            // Decoded in place; what the pipe cannot take yet stays where it is.
            let mut data = std::mem::take(&mut self.stalled);
            let used = self.decode_some(&data, now);
            data.advance(used.min(data.len()));
            self.stalled = data;
        }
        if !self.paused && self.eof_seen {
            self.conn.handle_eof(self.read_error, now);
        }
    }

    /// Writes a decoded message to the socket, or holds it (and pauses) when the pipe is full.
    pub(super) fn deliver(&mut self, msg: Msg) {
        self.split_inbound().1.deliver(msg);
        self.check_overflow();
    }

    /// The connection and the inbound half, borrowed apart so that the connection can hand
    /// frames to the inbound half while it decodes.
    pub(super) fn split_inbound(&mut self) -> (&mut Wire, Inbound<'_>) {
        let StreamCore {
            conn,
            pipes,
            held,
            paused,
            in_mid_message,
            finishing,
            metadata,
            metadata_pending,
            in_msg_cost,
            max_incomplete,
            overflowed,
            partial,
            ..
        } = self;
        let inbound = Inbound {
            to_socket: pipes.as_mut().map(|p| &mut p.to_socket),
            held,
            paused,
            in_mid_message,
            finishing,
            metadata,
            metadata_pending,
            in_msg_cost,
            max_incomplete: *max_incomplete,
            overflowed,
            partial,
        };
        (conn, inbound)
    }
}
