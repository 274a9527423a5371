//! What a stream speaks on its descriptor: ZMTP (every socket type but STREAM), or raw bytes
//! (STREAM, whose peers are plain TCP programs).
//!
//! Owns: the small adapter that gives both the same sans-IO face — input in, events and
//! output chunks out — so [`super::stream`] has one code path for back-pressure and batching.
//! Raw mode turns every received chunk into one single-part message and sends each outbound
//! message's bytes as they are.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use zeroring_engine::body_pool::BodyBuf;
use zeroring_engine::SendBuf;

use crate::zmtp::{Connection, Event, FrameRefused, FrameSink, ZapError, ZapReply, ZmtpError};

/// Raw mode's queues.
#[derive(Debug, Default)]
pub(crate) struct Raw {
    events: VecDeque<Event>,
    out: VecDeque<SendBuf>,
    out_bytes: usize,
    closed: bool,
}

pub(crate) enum Wire {
    Zmtp(Box<Connection>),
    Raw(Raw),
}

impl Wire {
    /// Feeds received bytes; nothing refers to `data` afterwards; returns how many were
    /// consumed (see [`Connection::handle_input_with`]).
    /// See [`Connection::lend_body`]; a raw STREAM connection has no frames to lend.
    pub(crate) fn lend_body(&mut self, min: usize) -> Option<BodyBuf> {
        match self {
            Wire::Zmtp(c) => c.lend_body(min),
            Wire::Raw(_) => None,
        }
    }

    /// See [`Connection::can_lend`].
    pub(crate) fn can_lend(&self, min: usize) -> bool {
        match self {
            Wire::Zmtp(c) => c.can_lend(min),
            Wire::Raw(_) => false,
        }
    }

    /// See [`Connection::return_body_with`].
    pub(crate) fn return_body_with<S: FrameSink>(
        &mut self,
        buf: BodyBuf,
        now: Instant,
        sink: &mut S,
    ) {
        if let Wire::Zmtp(c) = self {
            c.return_body_with(buf, now, sink);
        }
    }

    pub(crate) fn handle_input_with<S: FrameSink>(
        &mut self,
        data: &[u8],
        now: Instant,
        sink: &mut S,
    ) -> usize {
        match self {
            Wire::Zmtp(c) => c.handle_input_with(data, now, sink),
            // A raw chunk is one message, copied out of the receive buffer.
            Wire::Raw(r) => {
                r.events.push_back(Event::Frame {
                    body: Bytes::copy_from_slice(data),
                    more: false,
                });
                data.len()
            }
        }
    }

    /// The stream ended: the peer closed it (`error` None) or reading it failed.
    pub(crate) fn handle_eof(&mut self, error: Option<crate::Errno>, now: Instant) {
        match (self, error) {
            (Wire::Zmtp(c), None) => c.handle_eof(now),
            (Wire::Zmtp(c), Some(e)) => c.handle_read_error(e, now),
            (Wire::Raw(r), _) => {
                if !r.closed {
                    r.closed = true;
                    let err = error.map_or(ZmtpError::ConnectionClosed, ZmtpError::ReadFailed);
                    r.events.push_back(Event::Closed(err));
                }
            }
        }
    }

    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        match self {
            Wire::Zmtp(c) => c.poll_event(),
            Wire::Raw(r) => r.events.pop_front(),
        }
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<SendBuf> {
        match self {
            Wire::Zmtp(c) => c.poll_transmit(),
            Wire::Raw(r) => {
                let b = r.out.pop_front()?;
                r.out_bytes -= b.len();
                Some(b)
            }
        }
    }

    /// Bodies of at most this many bytes are best copied into the output (a raw STREAM
    /// connection queues every body as `Bytes`, so it copies none).
    pub(crate) fn copy_threshold(&self) -> usize {
        match self {
            Wire::Zmtp(c) => c.copy_threshold(),
            Wire::Raw(_) => 0,
        }
    }

    pub(crate) fn pending_transmit_bytes(&self) -> usize {
        match self {
            Wire::Zmtp(c) => c.pending_transmit_bytes(),
            Wire::Raw(r) => r.out_bytes,
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Wire::Zmtp(c) => c.poll_timeout(),
            Wire::Raw(_) => None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Wire::Zmtp(c) = self {
            c.handle_timeout(now);
        }
    }

    pub(crate) fn expire_handshake(&mut self) {
        if let Wire::Zmtp(c) = self {
            c.expire_handshake();
        }
    }

    pub(crate) fn zap_reply(&mut self, reply: Result<ZapReply, ZapError>, now: Instant) {
        if let Wire::Zmtp(c) = self {
            c.zap_result(reply, now);
        }
    }

    /// See [`crate::zmtp::Connection::greeting_received`]; a raw stream has none to wait for.
    pub(crate) fn greeting_received(&self) -> bool {
        match self {
            Wire::Zmtp(c) => c.greeting_received(),
            Wire::Raw(_) => true,
        }
    }

    pub(crate) fn is_ready(&self) -> bool {
        match self {
            Wire::Zmtp(c) => c.is_ready(),
            Wire::Raw(r) => !r.closed,
        }
    }

    pub(crate) fn send_frame(&mut self, body: SendBuf, more: bool) -> Result<(), FrameRefused> {
        match self {
            Wire::Zmtp(c) => c.send_frame(body, more),
            Wire::Raw(r) => {
                r.out_bytes += body.len();
                r.out.push_back(body);
                Ok(())
            }
        }
    }

    pub(crate) fn send_frame_slice(&mut self, body: &[u8], more: bool) -> Result<(), FrameRefused> {
        match self {
            Wire::Zmtp(c) => c.send_frame_slice(body, more),
            Wire::Raw(_) => self.send_frame(Bytes::copy_from_slice(body).into(), more),
        }
    }

    pub(crate) fn send_subscribe(&mut self, topic: &Bytes) -> Result<(), FrameRefused> {
        match self {
            Wire::Zmtp(c) => c.send_subscribe(topic),
            Wire::Raw(_) => Err(FrameRefused::Unsupported),
        }
    }

    pub(crate) fn send_cancel(&mut self, topic: &Bytes) -> Result<(), FrameRefused> {
        match self {
            Wire::Zmtp(c) => c.send_cancel(topic),
            Wire::Raw(_) => Err(FrameRefused::Unsupported),
        }
    }

    /// See [`Connection::plain_traffic_encoder`]; never for a raw (STREAM) connection.
    #[inline]
    pub(crate) fn plain_traffic_encoder(&mut self) -> Option<&mut crate::zmtp::Encoder> {
        match self {
            Wire::Zmtp(c) => c.plain_traffic_encoder(),
            Wire::Raw(_) => None,
        }
    }

    pub(crate) fn is_raw(&self) -> bool {
        matches!(self, Wire::Raw(_))
    }
}
