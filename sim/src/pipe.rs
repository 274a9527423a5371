//! The pipes between a simulated socket's pattern and its connections, and the per-host record
//! that outlives a crash.
//!
//! A pipe is created when a connection's handshake succeeds and terminated when that connection
//! ends — exactly as the production stream driver does (`SocketLink::attach` per handshake,
//! both pipe ends closed at teardown). Messages still queued outbound at termination are lost
//! (counted); messages already inbound stay readable until the pattern drains them.
//!
//! Must never: grow without bound. Each direction holds at most its high-water mark in whole
//! messages; the driver pauses reading when the inbound side is full.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use zeroring_transports::zmtp::PeerInfo;

use crate::trace::sim_now;

/// One message: its parts, in order.
pub type Message = Vec<Bytes>;

/// A pipe's identity, unique per host for the whole run (it survives a bounce).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PipeId(pub u64);

impl std::fmt::Display for PipeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pipe#{}", self.0)
    }
}

/// One pipe: the socket's view of one connected peer.
#[derive(Debug)]
pub struct Pipe {
    /// What the handshake said about the peer.
    pub peer: PeerInfo,
    /// The peer's address and host name.
    pub remote: SocketAddr,
    pub remote_host: String,
    out: VecDeque<Message>,
    inbound: VecDeque<Message>,
    sndhwm: usize,
    rcvhwm: usize,
    /// Wakes the connection task (outbound queued, inbound room made).
    wake: Rc<Notify>,
    terminated: bool,
}

/// All pipes of one socket.
#[derive(Debug)]
pub struct Pipes {
    pipes: BTreeMap<PipeId, Pipe>,
    record: Record,
    /// Wakes the application waiting to receive.
    pub(crate) readable: Rc<Notify>,
    /// Wakes the application waiting to send.
    pub(crate) writable: Rc<Notify>,
}

impl Pipes {
    pub(crate) fn new(record: Record) -> Self {
        Pipes {
            pipes: BTreeMap::new(),
            record,
            readable: Rc::new(Notify::new()),
            writable: Rc::new(Notify::new()),
        }
    }

    /// Live pipes (not terminated), in id order.
    pub fn live(&self) -> Vec<PipeId> {
        self.pipes
            .iter()
            .filter(|(_, p)| !p.terminated)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Pipes with inbound messages (terminated ones included until drained), in id order.
    pub fn readable_ids(&self) -> Vec<PipeId> {
        self.pipes
            .iter()
            .filter(|(_, p)| !p.inbound.is_empty())
            .map(|(id, _)| *id)
            .collect()
    }

    /// The pipe, if it exists.
    pub fn get(&self, id: PipeId) -> Option<&Pipe> {
        self.pipes.get(&id)
    }

    /// Whether a message may be written to `id` now (live and below SNDHWM).
    pub fn can_write(&self, id: PipeId) -> bool {
        self.pipes
            .get(&id)
            .is_some_and(|p| !p.terminated && p.out.len() < p.sndhwm)
    }

    /// Queues `msg` for the peer; gives it back when the pipe is full or gone.
    pub fn write(&mut self, id: PipeId, msg: Message) -> Result<(), Message> {
        let Some(p) = self.pipes.get_mut(&id) else {
            return Err(msg);
        };
        if p.terminated || p.out.len() >= p.sndhwm {
            return Err(msg);
        }
        p.out.push_back(msg);
        p.wake.notify_one();
        let queued = p.out.len();
        self.record
            .with(|r| r.max_out_queued = r.max_out_queued.max(queued));
        Ok(())
    }

    /// Queues a control message (a subscription) past the HWM, as libzmq does for them.
    pub fn write_control(&mut self, id: PipeId, msg: Message) -> Result<(), Message> {
        let Some(p) = self.pipes.get_mut(&id) else {
            return Err(msg);
        };
        if p.terminated {
            return Err(msg);
        }
        p.out.push_back(msg);
        p.wake.notify_one();
        Ok(())
    }

    /// Takes the next inbound message of `id`.
    pub fn read(&mut self, id: PipeId) -> Option<Message> {
        let p = self.pipes.get_mut(&id)?;
        let was_full = p.inbound.len() >= p.rcvhwm;
        let msg = p.inbound.pop_front();
        if p.terminated && p.inbound.is_empty() {
            self.pipes.remove(&id);
        } else if was_full {
            p.wake.notify_one();
        }
        msg
    }

    /// Peeks at the next inbound message of `id`.
    pub fn peek(&self, id: PipeId) -> Option<&Message> {
        self.pipes.get(&id)?.inbound.front()
    }

    /// Counts a message a pattern dropped by its HWM policy (PUB, ROUTER).
    pub fn count_hwm_drop(&mut self) {
        self.record.with(|r| r.dropped_hwm += 1);
    }

    /// Counts a ROUTER_HANDOVER (a new peer took over a known routing id).
    pub fn count_handover(&mut self) {
        self.record.with(|r| r.handovers += 1);
    }

    /// Counts a message a pattern dropped because no peer could take it (ROUTER: unknown id).
    pub fn count_unroutable(&mut self) {
        self.record.with(|r| r.dropped_unroutable += 1);
    }

    // --- driver side ---

    pub(crate) fn attach(
        &mut self,
        peer: PeerInfo,
        remote: SocketAddr,
        remote_host: String,
        sndhwm: usize,
        rcvhwm: usize,
        wake: Rc<Notify>,
    ) -> PipeId {
        let id = self.record.with(|r| {
            let id = PipeId(r.next_pipe);
            r.next_pipe += 1;
            r.pipes.insert(
                id,
                PipeRecord {
                    peer_host: remote_host.clone(),
                    attached_at: sim_now(),
                    terminated_at: None,
                    lost_outbound: 0,
                },
            );
            id
        });
        self.pipes.insert(
            id,
            Pipe {
                peer,
                remote,
                remote_host,
                out: VecDeque::new(),
                inbound: VecDeque::new(),
                sndhwm: sndhwm.max(1),
                rcvhwm: rcvhwm.max(1),
                wake,
                terminated: false,
            },
        );
        id
    }

    /// Takes the next outbound message for the wire; wakes a blocked sender when room appears.
    pub(crate) fn take_outbound(&mut self, id: PipeId) -> Option<Message> {
        let p = self.pipes.get_mut(&id)?;
        let was_full = p.out.len() >= p.sndhwm;
        let msg = p.out.pop_front();
        if msg.is_some() && was_full {
            self.writable.notify_one();
        }
        msg
    }

    /// Delivers a decoded message; gives it back when the pipe is at RCVHWM.
    pub(crate) fn deliver(&mut self, id: PipeId, msg: Message) -> Result<(), Message> {
        let Some(p) = self.pipes.get_mut(&id) else {
            return Err(msg);
        };
        if p.inbound.len() >= p.rcvhwm {
            return Err(msg);
        }
        p.inbound.push_back(msg);
        let queued = p.inbound.len();
        self.record
            .with(|r| r.max_in_queued = r.max_in_queued.max(queued));
        self.readable.notify_one();
        Ok(())
    }

    /// The connection ended: outbound messages are lost (returned as a count); inbound ones
    /// stay readable.
    pub(crate) fn terminate(&mut self, id: PipeId, why: &str) -> usize {
        let Some(p) = self.pipes.get_mut(&id) else {
            return 0;
        };
        p.terminated = true;
        let lost = p.out.len();
        p.out.clear();
        if p.inbound.is_empty() {
            self.pipes.remove(&id);
        }
        let now = sim_now();
        let why = why.to_string();
        self.record.with(|r| {
            r.dropped_on_disconnect += lost as u64;
            if let Some(pr) = r.pipes.get_mut(&id) {
                pr.terminated_at = Some(now);
                pr.lost_outbound = lost;
            }
            r.terminations.push((now, id, why));
        });
        // A blocked sender may now pick another pipe, or learn there is none.
        self.writable.notify_one();
        lost
    }
}

/// What a host's socket did, kept outside the host so that it survives crashes and bounces and
/// the scenario can check it during and after the run.
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

/// Counters and logs of one host's socket.
#[derive(Debug, Default)]
pub struct SocketRecord {
    pub host: String,
    next_pipe: u64,
    pub(crate) next_conn: u64,
    /// Simulated time of every TCP connect attempt.
    pub connect_attempts: Vec<Duration>,
    /// Connect attempts that failed at the TCP level.
    pub connect_failures: u64,
    /// Handshakes that succeeded.
    pub handshakes_ok: u64,
    /// Handshakes that failed: time and error.
    pub handshake_failures: Vec<(Duration, String)>,
    /// Connections that closed after the handshake: time and error.
    pub closes: Vec<(Duration, String)>,
    /// Connections in their handshake now: connection number → start time.
    pub in_handshake: BTreeMap<u64, Duration>,
    /// Where each of those is: "greeting" or "mechanism" (NULL/PLAIN commands).
    pub handshake_phase: BTreeMap<u64, &'static str>,
    /// Every pipe this host ever had.
    pub pipes: BTreeMap<PipeId, PipeRecord>,
    /// Pipe terminations: time, pipe, reason.
    pub terminations: Vec<(Duration, PipeId, String)>,
    /// Messages queued outbound on a pipe when its connection ended.
    pub dropped_on_disconnect: u64,
    /// Messages dropped by a pattern's HWM policy.
    pub dropped_hwm: u64,
    /// Messages dropped because no pipe matched (ROUTER unknown routing id).
    pub dropped_unroutable: u64,
    /// Decoded messages held by a driver when its connection ended.
    pub dropped_held: u64,
    /// Highest outbound / inbound queue length any pipe reached (memory bound).
    pub max_out_queued: usize,
    pub max_in_queued: usize,
    /// Highest number of decoded messages a driver held while paused.
    pub max_held: usize,
    /// Times a driver paused reading because the inbound pipe was full.
    pub pauses: u64,
    /// Subscriptions and cancels received: time, pipe, subscribe?, topic.
    pub subscriptions: Vec<(Duration, PipeId, bool, Bytes)>,
    /// ROUTER_HANDOVERs.
    pub handovers: u64,
    /// Every reconnect delay the connecter chose.
    pub reconnect_delays: Vec<Duration>,
}

impl SocketRecord {
    /// The host's software stopped at `t` (crash or bounce): its open pipes end there.
    pub fn host_stopped(&mut self, t: Duration) {
        for (id, p) in self.pipes.iter_mut() {
            if p.terminated_at.is_none() {
                p.terminated_at = Some(t);
                self.terminations.push((t, *id, "host stopped".into()));
            }
        }
        self.in_handshake.clear();
        self.handshake_phase.clear();
    }

    /// Pipes still open.
    pub fn open_pipes(&self) -> Vec<PipeId> {
        self.pipes
            .iter()
            .filter(|(_, p)| p.terminated_at.is_none())
            .map(|(id, _)| *id)
            .collect()
    }
}

/// One pipe's life.
#[derive(Clone, Debug)]
pub struct PipeRecord {
    pub peer_host: String,
    pub attached_at: Duration,
    pub terminated_at: Option<Duration>,
    pub lost_outbound: usize,
}
