//! The handshake half of a [`Connection`]: from the peer's greeting to READY. It checks the
//! peer's mechanism, drives the local one (its commands out, the peer's in, ZAP requests and
//! replies), and on success records the peer and starts the heartbeats; a ZMTP 2.0 peer skips
//! the mechanism and sends its routing id instead.
//!
//! Must never: let a data frame through before the handshake succeeded, or apply a ZAP reply
//! that no request is waiting for.

use std::time::Instant;

use bytes::Bytes;

use super::{Connection, Event, PeerInfo, Phase};
use crate::socket_type::SocketType;
use crate::zmtp::error::{ZapError, ZmtpError};
use crate::zmtp::greeting::{PeerGreeting, ZmtpVersion};
use crate::zmtp::mechanism::MechanismStatus;
use crate::zmtp::metadata;
use crate::zmtp::zap::ZapReply;

impl Connection {
    /// Applies a ZAP reply (built in code, e.g. by a test or an in-process
    /// handler). Ignored when no ZAP request is outstanding on a live connection.
    pub fn zap_reply(&mut self, reply: ZapReply, now: Instant) {
        self.apply_zap(Ok(reply), now);
    }

    /// Applies a ZAP reply, or the reason the handler's answer was not one (a ZAP protocol
    /// error: the handshake fails with its `ZMQ_PROTOCOL_ERROR_ZAP_*` code).
    pub fn zap_result(&mut self, reply: Result<ZapReply, ZapError>, now: Instant) {
        self.apply_zap(reply, now);
    }

    /// Applies a ZAP reply received as message frames from the handler.
    pub fn zap_reply_frames(&mut self, frames: &[Bytes], now: Instant) {
        self.apply_zap(ZapReply::parse(frames), now);
    }

    pub(super) fn apply_zap(&mut self, reply: Result<ZapReply, ZapError>, now: Instant) {
        if self.phase != Phase::Handshake || !self.mechanism.awaiting_zap() {
            return;
        }
        match self.mechanism.zap_reply(reply) {
            Ok(()) => self.drive_mechanism(now),
            Err(e) => self.fail(e),
        }
    }

    pub(super) fn on_greeting(&mut self, peer: PeerGreeting, now: Instant) {
        self.version = Some(peer.version);
        if peer.version == ZmtpVersion::V2_0 {
            // libzmq 3.x: no mechanism; the first message each way is the routing id.
            self.v2_socket_type = peer.v2_socket_type;
            self.phase = Phase::V2Identity;
            self.decoder.set_limit(self.max_msg_size);
            let id = self.routing_id.clone();
            self.encoder.frame(false, false, &id);
            return;
        }
        if peer.mechanism != self.mechanism_name.field() {
            return self.fail(ZmtpError::MechanismMismatch {
                peer: peer.mechanism,
            });
        }
        self.phase = Phase::Handshake;
        self.drive_mechanism(now);
    }

    pub(super) fn drive_mechanism(&mut self, now: Instant) {
        while let Some(cmd) = self.mechanism.next_command() {
            self.encoder.frame(false, true, &cmd);
        }
        while let Some(req) = self.mechanism.poll_zap_request() {
            self.events.push_back(Event::ZapRequest(Box::new(req)));
        }
        match self.mechanism.status() {
            MechanismStatus::Handshaking => {}
            MechanismStatus::Ready => self.on_ready(now),
            MechanismStatus::Failed(e) => self.fail(e),
        }
    }

    pub(super) fn on_ready(&mut self, now: Instant) {
        let props = self.mechanism.peer_properties().clone();
        let peer = PeerInfo {
            version: self.version.unwrap_or(ZmtpVersion::V3_1),
            socket_type: props
                .get(metadata::SOCKET_TYPE)
                .and_then(|v| SocketType::from_name(v)),
            routing_id: props.routing_id().cloned(),
            properties: props,
            user_id: self.mechanism.user_id().cloned(),
            zap_properties: self.mechanism.zap_properties().cloned(),
        };
        self.become_ready(peer, now);
    }

    pub(super) fn become_ready(&mut self, peer: PeerInfo, now: Instant) {
        self.phase = Phase::Traffic;
        self.handshake_deadline = None;
        self.decoder.set_limit(self.max_msg_size);
        if self.version != Some(ZmtpVersion::V2_0) {
            self.heartbeat.start(now);
        }
        let peer = Box::new(peer);
        self.peer = Some(peer.clone());
        self.events.push_back(Event::HandshakeSucceeded(peer));
    }
}
