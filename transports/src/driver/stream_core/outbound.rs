//! The outbound half of a [`StreamCore`]: what goes from the socket's pipe to the wire. It
//! encodes parts read from the pipe while less than [`OUT_HIGH_WATER`] bytes are queued, hands
//! out one send at a time ([`StreamCore::poll_transmit`]), and moves the connection's output
//! between the I/O half and the application (the send fast path, [`WireHandover`]).
//!
//! Must never: hand out a send while another is in flight or while the application owns the
//! output, or encode past [`OUT_HIGH_WATER`] plus one message.

use std::sync::Arc;

use zeroring_engine::pipe::{NotifyHandle, ReadError};
use zeroring_engine::SendBuf;

use super::{StreamCore, OUT_HIGH_WATER};
use crate::driver::WireHandover;

impl StreamCore {
    /// Takes the connection's output back from the application (the send fast path,
    /// [`WireHandover`]); the I/O half calls it before [`StreamCore::drive`]. While the
    /// application writes, it stays with the application and the core reads nothing from the
    /// socket's pipe and hands out no send: the application's turn ends with a wake-up for
    /// this connection (its `notify` from [`StreamCore::offer_output`]).
    pub fn claim_output(&mut self) {
        if !self.owns_output {
            self.owns_output = self.handover().is_none_or(|h| h.io_claim());
        }
    }

    /// Lets the application write whole messages to the connection itself while there is
    /// nothing to send ([`StreamCore::output_idle`]); the I/O half calls it after handing out
    /// its sends. The first time, `open` gives the connection and the wake-up for the end of
    /// an application's turn (`None`: not now).
    pub fn offer_output(
        &mut self,
        open: impl FnOnce() -> Option<(zeroring_engine::SharedFd, NotifyHandle)>,
    ) {
        if !self.owns_output || !self.output_idle() {
            return;
        }
        // The pipes' field, not `handover()`: the borrow stays off `handover_open` and
        // `owns_output`, so no `Arc` is cloned on every pass of the loop.
        let Some(h) = self.pipes.as_ref().and_then(|p| p.handover.as_ref()) else {
            return;
        };
        if !self.handover_open {
            let Some((conn, notify)) = open() else {
                return;
            };
            h.open(conn, notify);
            self.handover_open = true;
        }
        self.owns_output = false;
        h.io_release();
    }

    /// The hand-over of this connection's writes between the I/O half and the application
    /// (tcp and ipc pipes have one).
    pub fn handover(&self) -> Option<&Arc<WireHandover>> {
        self.pipes.as_ref()?.handover.as_ref()
    }

    /// Whether the application could write whole messages straight to the connection now: a
    /// ZMTP connection in its traffic phase without sealing (NULL, PLAIN), not a subscriber's
    /// (its messages may be subscriptions), between messages, with nothing queued to send and
    /// not ending. The socket's pipe must be read to its end too, which the application checks
    /// ([`PipeWriter::reader_drained`](zeroring_engine::pipe::PipeWriter::reader_drained)).
    pub fn output_idle(&mut self) -> bool {
        !self.finishing
            && !self.done
            && !self.eof_seen
            && !self.sending
            && !self.subscriber
            && !self.skip_partial_out
            && !self.out_mid_message
            && self.pipes.is_some()
            && self.conn.pending_transmit_bytes() == 0
            && self.conn.plain_traffic_encoder().is_some()
    }

    /// Up to `max_chunks` buffers to send as one write, when no send is in flight; the I/O
    /// half reports its end with [`StreamCore::handle_send_result`].
    pub fn poll_transmit(&mut self, max_chunks: usize) -> Option<Vec<SendBuf>> {
        let mut bufs = Vec::new();
        self.poll_transmit_into(&mut bufs, max_chunks)
            .then_some(bufs)
    }

    /// [`StreamCore::poll_transmit`] into a caller's (reused) vector, which must be empty;
    /// returns whether there is a send to make. Nothing while the application owns the
    /// connection's output ([`StreamCore::claim_output`]); what its last direct write left
    /// over comes first.
    pub fn poll_transmit_into(&mut self, bufs: &mut Vec<SendBuf>, max_chunks: usize) -> bool {
        if self.sending || self.done || self.eof_seen || !self.owns_output {
            return false;
        }
        // What an application's direct write left over goes first: the rest of a message
        // already on the wire.
        if let Some(rest) = self.handover().and_then(|h| h.take_leftover()) {
            bufs.push(SendBuf::Shared(rest));
        }
        while bufs.len() < max_chunks {
            match self.conn.poll_transmit() {
                Some(chunk) => bufs.push(chunk),
                None => break,
            }
        }
        if bufs.is_empty() {
            return false;
        }
        self.sending = true;
        true
    }

    /// Encodes from the socket's pipe while output is low.
    pub(super) fn encode_outbound(&mut self) {
        if self.finishing || !self.conn.is_ready() || !self.owns_output {
            return;
        }
        let Some(pipes) = self.pipes.as_mut() else {
            return;
        };
        // The common case first: on a ZMTP connection in its traffic phase without sealing
        // (NULL, PLAIN), that is not a subscriber's (whose `\x01topic` parts become commands),
        // parts go from the pipe straight to the encoder: small ones into its batch with
        // fixed-size moves, larger ones queued as they are — what `send_frame_slice` and
        // `send_frame` would do, without their per-frame checks. Everything else takes the
        // general path below.
        if !self.skip_partial_out && !self.subscriber {
            if let Some(enc) = self.conn.plain_traffic_encoder() {
                if enc.pending_bytes() >= OUT_HIGH_WATER {
                    return;
                }
                // Read in a run, each part encoded where it lies in the pipe's slot.
                let out_mid_message = &mut self.out_mid_message;
                let r = pipes.from_socket.read_run(|msg| {
                    let more = msg.more();
                    *out_mid_message = more;
                    if let Some((buf, len)) = msg.inline_buf() {
                        enc.inline_frame(more, buf, len);
                    } else if let Some(body) = msg.shared_bytes() {
                        enc.frame(more, false, body);
                    } else if msg.len() <= enc.copy_threshold() {
                        // A pooled mid-size body: copied, and its block goes home when the
                        // pipe drops the part.
                        enc.frame_copied(more, false, msg.data());
                    } else if let Some(body) = msg.share_buf() {
                        // A pooled large body: queued as it is (its block goes home when
                        // the send that wrote it completes), not copied, not wrapped.
                        enc.frame_buf(more, body);
                    }
                    enc.pending_bytes() < OUT_HIGH_WATER
                });
                if r == Err(ReadError::Closed) {
                    self.finishing = true;
                }
                return;
            }
        }
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
                    if self.conn.is_raw() && msg.is_empty() {
                        // STREAM: an empty message asks to close this connection (the
                        // socket ends it: no DISCONNECTED, as libzmq).
                        self.finishing = true;
                        self.owner_ended = true;
                        return;
                    }
                    let result = if self.subscriber
                        && at_start
                        && !more
                        && matches!(msg.data().first(), Some(0) | Some(1))
                    {
                        let data = msg.into_bytes();
                        let topic = data.slice(1..);
                        if data[0] == 1 {
                            self.conn.send_subscribe(&topic)
                        } else {
                            self.conn.send_cancel(&topic)
                        }
                    } else if msg.shared_bytes().is_none()
                        && msg.len() <= self.conn.copy_threshold()
                    {
                        // Inline and pooled mid-size bodies are copied into the output batch
                        // anyway: no Bytes.
                        self.conn.send_frame_slice(msg.data(), more)
                    } else {
                        self.conn.send_frame(msg.into_send_buf(), more)
                    };
                    if result.is_err() {
                        self.finishing = true;
                        return;
                    }
                }
                Err(ReadError::Empty) => return,
                Err(ReadError::Closed) => {
                    // The socket let go of this peer: send what is queued, then close (no
                    // DISCONNECTED: the socket ended it, as libzmq's lingering session does).
                    self.finishing = true;
                    self.owner_ended = true;
                    return;
                }
            }
        }
    }
}
