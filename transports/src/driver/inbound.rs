//! The inbound half of a stream: where decoded messages go. A message enters the socket's
//! pipe whole (its parts wait here until the last one), is held — and the stream paused —
//! when the pipe is full, carries the connection's properties when it is the first after a
//! handshake, and counts against the incomplete-message bound.
//!
//! It borrows the [`super::stream_core::StreamCore`]'s fields one by one, so that the
//! connection can hand it frames while it decodes. Must never: write part of a message to the
//! pipe, or keep anything of the receive buffer.

use std::collections::VecDeque;
use std::sync::Arc;

use zeroring_engine::pipe::{PipeWriter, WriteError};
use zeroring_engine::{CopyHint, Msg, MsgMetadata};

use crate::zmtp::{FrameSink, PART_OVERHEAD};

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
