//! What one host's socket did, kept outside the host so that it survives crashes and bounces
//! and the scenario can check it during and after the run.
//!
//! Written by the simulator's I/O half (connects, connections, their ends and why) and by the
//! socket after every call (its real counters). Must never: hold anything a host owns (pipes,
//! the socket): a crash drops those, the record stays.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use zeroring::Stats;
use zeroring_transports::monitor::MonitorEvent;

/// Shared handle to a host's record.
#[derive(Clone, Debug, Default)]
pub struct Record(Rc<RefCell<SocketRecord>>);

impl Record {
    /// A new record for `host`.
    pub fn new(host: &str) -> Self {
        Record(Rc::new(RefCell::new(SocketRecord {
            host: host.to_string(),
            ..Default::default()
        })))
    }

    /// Runs `f` on the record.
    pub fn with<R>(&self, f: impl FnOnce(&mut SocketRecord) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}

/// One connection's life.
#[derive(Clone, Debug)]
pub struct ConnRecord {
    /// The host at the other end.
    pub peer_host: String,
    /// When the TCP connection was up.
    pub started_at: Duration,
    /// When its handshake succeeded.
    pub ready_at: Option<Duration>,
    /// The host's count of successful handshakes when this one succeeded: the order in which
    /// the socket attached the connections' pipes (simulated time can tie).
    pub ready_seq: Option<u64>,
    /// When it ended (or the host stopped).
    pub ended_at: Option<Duration>,
}

/// Counters and logs of one host's socket.
#[derive(Debug, Default)]
pub struct SocketRecord {
    pub host: String,
    pub(crate) next_conn: u64,
    /// Simulated time of every TCP connect attempt.
    pub connect_attempts: Vec<Duration>,
    /// Connect attempts that failed at the TCP level.
    pub connect_failures: u64,
    /// When connect attempts were refused (nothing listening).
    pub connect_refusals: Vec<Duration>,
    /// When connecting sessions closed for good (gave up, or were stopped).
    pub sessions_closed: Vec<Duration>,
    /// Every reconnect delay the connecter chose (the transports crate's `Backoff`).
    pub reconnect_delays: Vec<Duration>,
    /// Every connection, by number.
    pub connections: BTreeMap<u64, ConnRecord>,
    /// Connections in their handshake now: connection number → start time.
    pub in_handshake: BTreeMap<u64, Duration>,
    /// Where each of those is: "greeting" or "mechanism" (NULL/PLAIN commands).
    pub handshake_phase: BTreeMap<u64, &'static str>,
    /// Handshakes that succeeded.
    pub handshakes_ok: u64,
    /// Handshakes that failed: time and the protocol's error.
    pub handshake_failures: Vec<(Duration, String)>,
    /// Connections that closed after their handshake: time and error.
    pub closes: Vec<(Duration, String)>,
    /// Kept pipes that reached a new connection (the socket's hiccup).
    pub hiccups: u64,
    /// The socket's own counters, as of its last call.
    pub stats: Stats,
    /// When the host's software stopped (crash or bounce): its socket's queues went with it.
    pub stops: Vec<Duration>,
    /// Monitor events of every connecter (`connect ENDPOINT #KEY`) and accepted connection
    /// (`accepted ENDPOINT #N`), in order, with their times.
    pub monitor: BTreeMap<String, Vec<(Duration, MonitorEvent)>>,
    /// Sockets made on the host so far (one per incarnation): monitor paths carry it.
    pub sockets_made: u64,
    /// How long the socket's close waited for its connections (LINGER).
    pub close_took: Option<Duration>,
}

impl SocketRecord {
    /// The host's software stopped at `t` (crash or bounce): its open connections end there.
    pub fn host_stopped(&mut self, t: Duration) {
        self.stops.push(t);
        for c in self.connections.values_mut() {
            if c.ended_at.is_none() {
                c.ended_at = Some(t);
            }
        }
        self.in_handshake.clear();
        self.handshake_phase.clear();
    }

    /// Connections with a completed handshake that have not ended.
    pub fn open_connections(&self) -> impl Iterator<Item = &ConnRecord> {
        self.connections
            .values()
            .filter(|c| c.ready_at.is_some() && c.ended_at.is_none())
    }

    /// Like [`SocketRecord::disconnects`], for the connections with `peer` only.
    pub fn disconnects_with(&self, peer: &str) -> Vec<Duration> {
        self.connections
            .values()
            .filter(|c| c.ready_at.is_some() && c.peer_host == peer)
            .filter_map(|c| c.ended_at)
            .chain(self.stops.iter().copied())
            .collect()
    }

    /// When connections that had completed a handshake ended, and when the host stopped
    /// (the moments a message in flight or queued may be lost).
    pub fn disconnects(&self) -> Vec<Duration> {
        self.connections
            .values()
            .filter(|c| c.ready_at.is_some())
            .filter_map(|c| c.ended_at)
            .chain(self.stops.iter().copied())
            .collect()
    }
}
