//! Accepted sessions: the handler that runs one connection a listener accepted, for as long as
//! that connection lives. It registers with its listener (so unbind and close reach it), holds
//! the connection's ticket in the listener's ZR_MAX_HANDSHAKES gate until the handshake ends,
//! acts on an eviction from that gate, and lingers after its socket closed.
//!
//! Must never: reconnect (the peer does), or keep its gate ticket past the handshake or its
//! registry entry past its end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroring_engine::{
    Completion, Cx, Handler, HandlerId, IoThreadHandle, OpId, SharedFd, TimerId,
};

use super::handshakes::{HandshakeGate, Ticket, TOKEN_EVICT};
use super::linger::LingerSlot;
use super::session::{LingerState, TOKEN_LINGER, TOKEN_STOP};
use super::stream::Stream;
use super::stream_core::Status;
use super::Link;
use crate::zmtp::ConnectionConfig;

/// Sessions accepted by one listener, so that unbinding or closing can reach them.
pub(crate) type Registry = Arc<Mutex<Vec<(IoThreadHandle, HandlerId, LingerSlot)>>>;

/// The endpoints an accepted connection goes by: its listener's (what its pipes carry, so that
/// unbind finds them) and its own (what its monitor events name, as libzmq's: the
/// connection's local address, which a wildcard bind's listener endpoint is not).
pub(crate) struct AcceptedEndpoints {
    pub(crate) listener: Arc<str>,
    pub(crate) connection: Arc<str>,
}

/// Runs one accepted connection.
pub(crate) struct AcceptedSession {
    start: Option<(SharedFd, ConnectionConfig, Link, AcceptedEndpoints)>,
    stream: Option<Stream>,
    registry: Registry,
    slot: LingerSlot,
    linger: LingerState,
    /// The listener's ZR_MAX_HANDSHAKES gate and this connection's place in it, while the
    /// handshake is under way.
    gate: Option<(Arc<HandshakeGate>, Arc<Ticket>)>,
    /// Evicted past its peer's greeting: the handshake's last chance ends at this timer or at
    /// the next input that leaves it unfinished (see [`AcceptedSession::expire_if_evicted`]).
    last_chance: Option<TimerId>,
}

/// How long a connection evicted past its peer's greeting may still finish its handshake
/// (see [`AcceptedSession::expire_if_evicted`]).
const LAST_CHANCE: Duration = Duration::from_millis(100);

impl AcceptedSession {
    pub(crate) fn new(
        fd: SharedFd,
        config: ConnectionConfig,
        link: Link,
        endpoints: AcceptedEndpoints,
        registry: Registry,
        gate: (Arc<HandshakeGate>, Arc<Ticket>),
    ) -> Self {
        AcceptedSession {
            start: Some((fd, config, link, endpoints)),
            stream: None,
            registry,
            slot: LingerSlot::default(),
            linger: LingerState::default(),
            gate: Some(gate),
            last_chance: None,
        }
    }

    /// Gives the gate's ticket back (the handshake completed or the connection ended).
    fn leave_gate(&mut self) {
        if let Some((gate, ticket)) = self.gate.take() {
            gate.leave(&ticket);
        }
    }

    fn finish(&mut self, cx: &mut Cx<'_>) {
        self.leave_gate();
        if let Some(me) = cx.id() {
            let thread = cx.handle().index();
            self.registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|(t, id, _)| !(t.index() == thread && *id == me));
        }
        self.linger = LingerState::default();
        cx.close();
    }

    /// Acts on an eviction by the gate, before any more input is handled: a connection chosen
    /// while its peer's greeting had not arrived ends its handshake at once. One past the
    /// greeting is close to done (its peer's last command is usually in the socket's queue
    /// already): it gets a last chance, until its next input or [`LAST_CHANCE`], to finish;
    /// what is still a handshake then ends. Either way this side has not sent its last
    /// command, so the peer has sent no message to drop (see `handshakes`). (TOKEN_EVICT brings
    /// the same news, for a session with nothing else to do.)
    fn expire_if_evicted(&mut self, cx: &mut Cx<'_>) {
        if self.last_chance.is_some() || !matches!(&self.gate, Some((_, t)) if t.is_evicted()) {
            return;
        }
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        if stream.greeting_received() && stream.in_handshake() {
            self.last_chance = Some(cx.set_timer(cx.now() + LAST_CHANCE));
            return;
        }
        let status = stream.expire_handshake(cx);
        self.after(cx, status);
    }

    /// Ends the last chance (see [`AcceptedSession::expire_if_evicted`]): the handshake, if it
    /// is still one.
    fn end_last_chance(&mut self, cx: &mut Cx<'_>) {
        let Some(timer) = self.last_chance.take() else {
            return;
        };
        cx.cancel_timer(timer);
        if let Some(stream) = self.stream.as_mut() {
            let status = stream.expire_handshake(cx);
            self.after(cx, status);
        }
    }

    fn after(&mut self, cx: &mut Cx<'_>, status: Status) {
        if status == Status::Done {
            self.stream = None;
            self.finish(cx);
        } else if let (Some((_, ticket)), Some(stream)) = (&self.gate, &self.stream) {
            if !stream.in_handshake() {
                self.leave_gate();
            } else if stream.greeting_received() {
                // Close to done: protected from eviction for a while (see `handshakes`).
                ticket.greeted();
            }
        }
    }
}

impl Handler for AcceptedSession {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        let Some((fd, config, link, endpoints)) = self.start.take() else {
            return;
        };
        let mut evicted = false;
        if let Some(me) = cx.id() {
            self.registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((cx.handle().clone(), me, self.slot.clone()));
            if let Some((_, ticket)) = &self.gate {
                evicted = ticket.started(cx.handle().clone(), me);
            }
        }
        match Stream::new(fd, config, link, endpoints.listener, cx.now()) {
            Ok(mut stream) => {
                stream.set_monitor_endpoint(endpoints.connection);
                let stream = self.stream.insert(stream);
                let mut status = stream.start(cx);
                if evicted && status == Status::Open {
                    // Evicted before it started: its handshake ends at once.
                    status = stream.expire_handshake(cx);
                }
                self.after(cx, status);
            }
            Err(_) => self.finish(cx),
        }
    }

    fn on_completion(&mut self, cx: &mut Cx<'_>, op: OpId, completion: Completion<'_>, more: bool) {
        self.expire_if_evicted(cx);
        let input = matches!(
            completion,
            Completion::Received(_) | Completion::ReceivedInto { .. }
        );
        if let Some(stream) = self.stream.as_mut() {
            let status = stream.on_completion(cx, op, completion, more);
            self.after(cx, status);
        }
        if input {
            // Input that left the handshake unfinished ends an evicted one's last chance.
            self.end_last_chance(cx);
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_>, timer: TimerId) {
        if self.linger.is_deadline(timer) {
            // LINGER ran out: what is still queued is dropped with the connection.
            if let Some(mut stream) = self.stream.take() {
                stream.stop(cx);
            }
            return self.finish(cx);
        }
        if self.last_chance == Some(timer) {
            return self.end_last_chance(cx);
        }
        if let Some(stream) = self.stream.as_mut() {
            let status = stream.on_timer(cx, timer);
            self.after(cx, status);
        }
    }

    fn on_notify(&mut self, cx: &mut Cx<'_>, token: u64) {
        if token == TOKEN_EVICT {
            // ZR_MAX_HANDSHAKES: newer connections pushed this one's handshake out (nothing
            // if it completed meanwhile).
            self.expire_if_evicted(cx);
            return;
        }
        if token == TOKEN_LINGER && self.linger.begin(cx, &self.slot.clone()) {
            // Go on until the socket's queue is drained (the stream ends when it reads the
            // closed pipe) or the deadline.
            if self.stream.is_none() {
                self.finish(cx);
            }
            return;
        }
        if token == TOKEN_STOP || token == TOKEN_LINGER {
            if let Some(mut stream) = self.stream.take() {
                stream.stop(cx);
            }
            return self.finish(cx);
        }
        if let Some(stream) = self.stream.as_mut() {
            let status = stream.on_notify(cx, token);
            self.after(cx, status);
        }
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_>) {
        self.leave_gate();
        if let Some(mut stream) = self.stream.take() {
            stream.stop(cx);
        }
        cx.close();
    }
}

impl Drop for AcceptedSession {
    fn drop(&mut self) {
        // A session dropped without finishing (its thread gone) leaves no ticket behind.
        self.leave_gate();
    }
}
