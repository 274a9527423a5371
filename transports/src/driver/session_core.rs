//! The sans-IO half of a connecting session: everything a connecter decides between its
//! connections, with no descriptor, no clock and no thread.
//!
//! Owns: the connect attempts and their CONNECT_TIMEOUT, the reconnect schedule (RECONNECT_IVL
//! with jitter, or doubling to RECONNECT_IVL_MAX, [`Backoff`]), IMMEDIATE (whether the pipes
//! survive a disconnect), the pipes kept between connections, the session's monitor events
//! (CONNECT_DELAYED, CONNECTED, CONNECT_RETRIED), RECONNECT_STOP (giving up on a refused
//! connect or a failed handshake), and LINGER after the socket closed: go on (reconnecting if
//! need be) while the socket's queue owes output, until it is delivered or the deadline
//! passes, as libzmq's `session_base_t` does. HANDSHAKE_IVL, heartbeats and the rest of one
//! connection's life are the [`StreamCore`](super::StreamCore)'s.
//!
//! Must never: perform I/O, read a clock (time comes in as `now`), retry sooner than the
//! schedule allows, or hand out anything after [`SessionAction::Close`].
//!
//! Its drivers: the engine's `session::ConnectSession` on an I/O thread, and the
//! simulator's connecter (`zeroring-sim`) on turmoil's TCP.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::netopts::Backoff;
use super::stream_core::Kept;
use crate::monitor::MonitorEvent;

/// How a stream ended, as far as reconnecting goes (libzmq's engine error reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The connection went (the peer closed, an I/O error) or timed out (a heartbeat) after
    /// its handshake: reconnect.
    Lost,
    /// The connection went or timed out (HANDSHAKE_IVL) before its handshake completed —
    /// libzmq's HANDSHAKE_FAILED_NO_DETAIL — or a raw (STREAM) connection ended, which
    /// libzmq's engine, having no mechanism, reports the same way: reconnect, unless
    /// RECONNECT_STOP_HANDSHAKE_FAILED makes it a protocol error, as libzmq's engine does.
    HandshakeLost,
    /// The peer broke the protocol, refused us or cannot be talked to
    /// ([`crate::zmtp::ZmtpError::is_protocol_error`]): give up, as libzmq's session does.
    ProtocolError,
}

impl StreamEnd {
    /// How a stream ended whose protocol verdict is `error` (`None`: no verdict, it was cut);
    /// `handshaken`: whether its handshake had completed (always false for a raw stream).
    pub fn of(error: Option<&crate::zmtp::ZmtpError>, handshaken: bool) -> Self {
        if error.is_some_and(|e| e.is_protocol_error()) {
            StreamEnd::ProtocolError
        } else if handshaken {
            StreamEnd::Lost
        } else {
            StreamEnd::HandshakeLost
        }
    }
}

/// What the driver must do next (see [`SessionCore`]'s driving contract).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionAction {
    /// Start a connect attempt.
    Connect,
    /// Abandon the attempt in flight (CONNECT_TIMEOUT); its failure still comes back through
    /// [`SessionCore::handle_connect_failed`].
    CancelConnect,
    /// End the running stream at once, dropping what it holds (LINGER ran out).
    StopStream,
    /// The session is over: release everything. Nothing follows.
    Close,
}

/// The settings a connecting session runs on (from the socket's options).
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// RECONNECT_IVL; `None` (−1) connects once and never again.
    pub reconnect_ivl: Option<Duration>,
    /// RECONNECT_IVL_MAX.
    pub reconnect_ivl_max: Duration,
    /// CONNECT_TIMEOUT; `None` leaves it to the operating system.
    pub connect_timeout: Option<Duration>,
    /// IMMEDIATE: pipes exist only while a connection does.
    pub immediate: bool,
    /// tcp reports CONNECT_DELAYED for every attempt (ipc connects at once in libzmq).
    pub tcp: bool,
    /// Seed of the reconnect jitter.
    pub seed: u64,
    /// RECONNECT_STOP_CONN_REFUSED: a refused connect ends the session, and the socket
    /// forgets its endpoint ([`SessionCore::gave_up`]). (libzmq 4.3.5 applies it to tcp
    /// only.)
    pub stop_on_refused: bool,
    /// RECONNECT_STOP_HANDSHAKE_FAILED: a [`StreamEnd::HandshakeLost`] ends the session as a
    /// protocol error does.
    pub stop_on_handshake_failed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Told to connect; the driver has not started the attempt yet.
    Starting,
    /// An attempt is in flight; `deadline` is CONNECT_TIMEOUT's.
    Connecting {
        deadline: Option<Instant>,
    },
    /// A stream runs.
    Up,
    /// Waiting to try again.
    Waiting {
        until: Instant,
    },
    Closed,
}

/// The linger in progress after the socket closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Linger {
    deadline: Option<Instant>,
}

/// A connecting session's decisions.
///
/// # Driving contract
///
/// 1. Make it with [`SessionCore::new`] (with the pipes attached early, if any); it asks for
///    the first [`SessionAction::Connect`] at once.
/// 2. After every input, take every [`SessionCore::poll_action`] and carry it out in order,
///    report every [`SessionCore::poll_event`] to the socket's monitor, and arm one timer for
///    [`SessionCore::poll_timeout`] (replacing the previous one); when it fires call
///    [`SessionCore::handle_timeout`].
/// 3. `Connect`: start an attempt. Once it is under way call
///    [`SessionCore::handle_connect_started`]; if it cannot even start (no address, no
///    descriptor) call [`SessionCore::handle_connect_failed`] instead. When it completes call
///    [`SessionCore::handle_connected`] and give the stream the pipes it returns, or
///    [`SessionCore::handle_connect_refused`] (ECONNREFUSED) or
///    [`SessionCore::handle_connect_failed`] (any other failure).
/// 4. When the stream ends, call [`SessionCore::handle_stream_done`] with the pipes it kept
///    and how it ended ([`super::StreamCore::end`]).
/// 5. The socket disconnects ([`SessionCore::handle_stop`]) or closes
///    ([`SessionCore::handle_linger`]) at any time.
/// 6. After `Close`, give [`SessionCore::take_ended_pipes`] (if any) to the socket, tell it
///    to forget the endpoint if [`SessionCore::gave_up`], then drop the core.
#[derive(Debug)]
pub struct SessionCore {
    config: SessionConfig,
    backoff: Backoff,
    state: State,
    /// The key of the pipe kept across reconnects (the socket's hiccup names it).
    key: u64,
    kept: Option<Kept>,
    /// The session ended for good on the peer's side (reconnection disabled): `kept` goes to
    /// the socket ([`SessionCore::take_ended_pipes`]) instead of being dropped.
    hand_back: bool,
    /// The session gave up on a refused connect (RECONNECT_STOP_CONN_REFUSED).
    gave_up: bool,
    linger: Option<Linger>,
    actions: VecDeque<SessionAction>,
    events: VecDeque<(MonitorEvent, u32)>,
}

impl SessionCore {
    /// A session that will connect at once; `kept` are the pipes attached before any
    /// connection (IMMEDIATE off), `key` names them for the socket.
    pub fn new(config: SessionConfig, key: u64, kept: Option<Kept>) -> Self {
        let backoff = Backoff::new(
            config.reconnect_ivl.unwrap_or_default(),
            config.reconnect_ivl_max,
            config.seed,
        );
        SessionCore {
            config,
            backoff,
            state: State::Starting,
            key,
            kept,
            hand_back: false,
            gave_up: false,
            linger: None,
            actions: VecDeque::from([SessionAction::Connect]),
            events: VecDeque::new(),
        }
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<SessionAction> {
        self.actions.pop_front()
    }

    /// The next monitor event: the event and its value (libzmq's: errno, fd or milliseconds).
    pub fn poll_event(&mut self) -> Option<(MonitorEvent, u32)> {
        self.events.pop_front()
    }

    /// When [`SessionCore::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state = match self.state {
            State::Connecting { deadline } => deadline,
            State::Waiting { until } => Some(until),
            _ => None,
        };
        let linger = self.linger.and_then(|l| l.deadline);
        match (state, linger) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the socket closed and the session goes on delivering its queue.
    pub fn is_lingering(&self) -> bool {
        self.linger.is_some() && !self.is_closed()
    }

    /// The attempt asked for is under way.
    pub fn handle_connect_started(&mut self, now: Instant) {
        if self.state != State::Starting {
            return;
        }
        if self.config.tcp {
            self.events
                .push_back((MonitorEvent::ConnectDelayed, libc::EINPROGRESS as u32));
        }
        let deadline = self.config.connect_timeout.map(|t| now + t);
        self.state = State::Connecting { deadline };
    }

    /// An attempt that had a descriptor ended without a connection (refused, unreachable,
    /// timed out, or a SOCKS proxy failed it): ZMQ_EVENT_CLOSED with the descriptor (`value`),
    /// as libzmq's connecter reports closing it before its CONNECT_RETRIED. Call just before
    /// [`SessionCore::handle_connect_failed`].
    pub fn handle_connect_closed(&mut self, value: u32) {
        if matches!(self.state, State::Connecting { .. }) {
            self.events.push_back((MonitorEvent::Closed, value));
        }
    }

    /// The attempt failed (refused, unreachable, timed out, or could not start).
    pub fn handle_connect_failed(&mut self, now: Instant) {
        if matches!(self.state, State::Starting | State::Connecting { .. }) {
            self.retry_later(now);
        }
    }

    /// The attempt was refused (ECONNREFUSED: nothing listens there). Under
    /// RECONNECT_STOP_CONN_REFUSED the session ends, lingering or not, and the socket must
    /// forget its endpoint ([`SessionCore::gave_up`]), as libzmq's connecter has its socket
    /// run `term_endpoint` on it; otherwise as [`SessionCore::handle_connect_failed`].
    pub fn handle_connect_refused(&mut self, now: Instant) {
        if !matches!(self.state, State::Starting | State::Connecting { .. }) {
            return;
        }
        if !self.config.stop_on_refused {
            return self.retry_later(now);
        }
        self.gave_up = true;
        self.close();
    }

    /// The attempt succeeded (`value`: what CONNECTED reports, libzmq's descriptor). Returns
    /// the pipes the new stream keeps across reconnects: `(key, pipes kept so far)`, or
    /// `None` under IMMEDIATE (the stream attaches fresh pipes at its handshake).
    pub fn handle_connected(&mut self, value: u32) -> Option<(u64, Option<Kept>)> {
        if !matches!(self.state, State::Starting | State::Connecting { .. }) {
            return None;
        }
        // As libzmq: the schedule starts again at every successful TCP connect.
        self.backoff.reset();
        self.events.push_back((MonitorEvent::Connected, value));
        self.state = State::Up;
        (!self.config.immediate).then(|| (self.key, self.kept.take()))
    }

    /// The stream ended, as `end` says; `kept` is what it handed back
    /// ([`super::StreamCore::take_kept`]).
    pub fn handle_stream_done(&mut self, kept: Option<Kept>, end: StreamEnd, now: Instant) {
        if self.state != State::Up {
            return;
        }
        self.kept = kept;
        let protocol_error = end == StreamEnd::ProtocolError
            || (end == StreamEnd::HandshakeLost && self.config.stop_on_handshake_failed);
        if protocol_error {
            // libzmq's session terminates after a protocol error, lingering or not: a peer
            // that broke ZMTP, refused us with ERROR or is of a type we may not talk to is not
            // tried again, nor, under RECONNECT_STOP_HANDSHAKE_FAILED, one that hung up before
            // the handshake completed. Ended on the peer's side, as without RECONNECT_IVL: the
            // pipes go back to the socket (`retry_later` says why).
            self.hand_back = self.linger.is_none();
            return self.close();
        }
        if self.linger.is_some() && !self.owes_output() {
            // The socket is gone and its queue went out (or cannot): no reconnect.
            return self.close();
        }
        // Lingering with output still owed: reconnect as libzmq's session does after a
        // connection error, so a peer that comes back within LINGER still gets it all.
        self.retry_later(now);
    }

    /// A timer came due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if self
            .linger
            .and_then(|l| l.deadline)
            .is_some_and(|d| now >= d)
        {
            // LINGER ran out: what is still queued is dropped with the connection.
            if self.state == State::Up {
                self.actions.push_back(SessionAction::StopStream);
            }
            return self.close();
        }
        match self.state {
            State::Waiting { until } if now >= until => {
                self.state = State::Starting;
                self.actions.push_back(SessionAction::Connect);
            }
            State::Connecting {
                deadline: Some(d), ..
            } if now >= d => {
                // CONNECT_TIMEOUT: abandon this attempt; its failure schedules the retry.
                self.state = State::Connecting { deadline: None };
                self.actions.push_back(SessionAction::CancelConnect);
            }
            _ => {}
        }
    }

    /// zmq_disconnect (or a socket closed with LINGER 0): stop now.
    pub fn handle_stop(&mut self) {
        if self.is_closed() {
            return;
        }
        if self.state == State::Up {
            self.actions.push_back(SessionAction::StopStream);
        }
        self.close();
    }

    /// The socket closed: go on until what it queued is delivered, for at most `limit`
    /// (`None`: no limit, LINGER −1). Returns whether the session lingers; when it does not,
    /// it closes at once.
    ///
    /// Only what is owed lingers: a running stream drains the socket's queue itself (and ends
    /// when it is empty); between connections, pipes with nothing queued owe nothing, so a
    /// socket whose peer is gone closes at once whatever LINGER says, as libzmq's does (its
    /// session ends when its pipe terminates empty). Between connections with output owed,
    /// it goes on reconnecting.
    pub fn handle_linger(&mut self, limit: Option<Duration>, now: Instant) -> bool {
        if self.is_closed() || self.linger.is_some() {
            return self.is_lingering();
        }
        let owed = self.state == State::Up || self.owes_output();
        if limit == Some(Duration::ZERO) || !owed {
            self.handle_stop();
            return false;
        }
        self.linger = Some(Linger {
            deadline: limit.map(|l| now + l),
        });
        true
    }

    fn owes_output(&self) -> bool {
        self.kept.as_ref().is_some_and(Kept::owes_output)
    }

    fn retry_later(&mut self, now: Instant) {
        let Some(_) = self.config.reconnect_ivl else {
            // Ended by the peer, not by the socket: the pipes go back to the socket, which
            // retires them a moment later, as libzmq's sending socket learns of the end only
            // when it next looks at its commands (see `SocketLink::ended`). A closed socket's
            // session just drops them.
            self.hand_back = self.linger.is_none();
            return self.close();
        };
        let delay = self.backoff.next_delay();
        self.events.push_back((
            MonitorEvent::ConnectRetried,
            delay.as_millis().min(u32::MAX as u128) as u32,
        ));
        self.state = State::Waiting { until: now + delay };
    }

    /// After `Close`: the pipes of a session that ended for good on the peer's side, with
    /// their key, for [`super::SocketLink::ended`]; `None` when the socket ended it (they were
    /// dropped).
    pub fn take_ended_pipes(&mut self) -> Option<(u64, Kept)> {
        if !self.hand_back {
            return None;
        }
        self.kept.take().map(|k| (self.key, k))
    }

    /// After `Close`: the key of a session that gave up on a refused connect
    /// (RECONNECT_STOP_CONN_REFUSED), whose endpoint the socket must forget
    /// ([`super::SocketLink::gave_up`]); `None` otherwise.
    pub fn gave_up(&self) -> Option<u64> {
        self.gave_up.then_some(self.key)
    }

    fn close(&mut self) {
        self.state = State::Closed;
        if !self.hand_back {
            self.kept = None;
        }
        self.actions.push_back(SessionAction::Close);
    }
}

#[cfg(test)]
#[path = "session_core_tests.rs"]
mod tests;
