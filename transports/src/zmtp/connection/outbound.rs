//! The outbound half of a [`Connection`] in traffic: data frames, subscriptions and group
//! commands queued for the wire, sealed first where the mechanism encrypts (CURVE). The fast
//! path for plain traffic (`plain_traffic_encoder`) bypasses these checks and is in `mod.rs`.
//!
//! Must never: queue a frame before the handshake succeeded or after the connection closed
//! (each send says why with [`FrameRefused`]).

use bytes::Bytes;

use zeroring_engine::SendBuf;

use super::{Connection, FrameRefused, Phase};
use crate::zmtp::frame::Frame;
use crate::zmtp::greeting::ZmtpVersion;

impl Connection {
    /// Queues one frame of an outbound message (`Bytes`, or any [`SendBuf`]: a part's pooled
    /// block is queued by reference, not wrapped, where the body is not copied).
    pub fn send_frame(&mut self, body: impl Into<SendBuf>, more: bool) -> Result<(), FrameRefused> {
        self.check_sendable()?;
        let body = body.into();
        if self.mechanism.seals_traffic() {
            self.seal(more, false, &[], &body);
        } else {
            self.encoder.frame_buf(more, body);
        }
        Ok(())
    }

    /// Queues one frame of an outbound message from borrowed bytes (copied into the output
    /// batch: meant for small bodies, such as a `Msg`'s inline ones).
    pub fn send_frame_slice(&mut self, body: &[u8], more: bool) -> Result<(), FrameRefused> {
        self.check_sendable()?;
        if self.mechanism.seals_traffic() {
            self.emit(more, false, &[], &Bytes::copy_from_slice(body));
        } else {
            self.encoder.frame_copied(more, false, body);
        }
        Ok(())
    }

    /// Queues a whole message (MORE on every part but the last).
    pub fn send_message<I>(&mut self, parts: I) -> Result<(), FrameRefused>
    where
        I: IntoIterator<Item = Bytes>,
    {
        self.check_sendable()?;
        let mut parts = parts.into_iter().peekable();
        while let Some(p) = parts.next() {
            let more = parts.peek().is_some();
            self.emit(more, false, &[], &p);
        }
        Ok(())
    }

    /// Queues a subscription: a SUBSCRIBE command to a 3.1 peer, a `\x01topic`
    /// message to a 3.0 or 2.0 peer.
    pub fn send_subscribe(&mut self, topic: &Bytes) -> Result<(), FrameRefused> {
        self.check_sendable()?;
        if self.version == Some(ZmtpVersion::V3_1) {
            self.emit(false, true, b"\x09SUBSCRIBE", topic);
        } else {
            self.emit(false, false, b"\x01", topic);
        }
        Ok(())
    }

    /// Queues an unsubscription (CANCEL, or `\x00topic` before 3.1).
    pub fn send_cancel(&mut self, topic: &Bytes) -> Result<(), FrameRefused> {
        self.check_sendable()?;
        if self.version == Some(ZmtpVersion::V3_1) {
            self.emit(false, true, b"\x06CANCEL", topic);
        } else {
            self.emit(false, false, b"\x00", topic);
        }
        Ok(())
    }

    /// Queues a JOIN (ZMTP 3.1 only).
    pub fn send_join(&mut self, group: &Bytes) -> Result<(), FrameRefused> {
        self.check_sendable()?;
        if self.version != Some(ZmtpVersion::V3_1) {
            return Err(FrameRefused::Unsupported);
        }
        self.emit(false, true, b"\x04JOIN", group);
        Ok(())
    }

    /// Queues a LEAVE (ZMTP 3.1 only).
    pub fn send_leave(&mut self, group: &Bytes) -> Result<(), FrameRefused> {
        self.check_sendable()?;
        if self.version != Some(ZmtpVersion::V3_1) {
            return Err(FrameRefused::Unsupported);
        }
        self.emit(false, true, b"\x05LEAVE", group);
        Ok(())
    }

    pub(super) fn check_sendable(&self) -> Result<(), FrameRefused> {
        match self.phase {
            Phase::Traffic => Ok(()),
            Phase::Closed => Err(FrameRefused::Closed),
            _ => Err(FrameRefused::NotReady),
        }
    }

    /// Queues a traffic frame, through the mechanism's seal when it has one.
    pub(super) fn emit(&mut self, more: bool, command: bool, prefix: &[u8], body: &Bytes) {
        if self.mechanism.seals_traffic() {
            self.seal(more, command, prefix, body);
        } else {
            self.encoder.frame_with_prefix(more, command, prefix, body);
        }
    }

    /// Queues a frame sealed by the mechanism (CURVE's MESSAGE command), or fails the
    /// connection when sealing fails.
    pub(super) fn seal(&mut self, more: bool, command: bool, prefix: &[u8], body: &[u8]) {
        let mut full = bytes::BytesMut::with_capacity(prefix.len() + body.len());
        full.extend_from_slice(prefix);
        full.extend_from_slice(body);
        let frame = Frame {
            more,
            command,
            body: full.freeze(),
        };
        match self.mechanism.seal(frame) {
            Ok(f) => self.encoder.frame(f.more, f.command, &f.body),
            Err(e) => self.fail(e),
        }
    }
}
