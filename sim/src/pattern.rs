//! The seam where socket patterns plug into the simulator, and the minimal stand-in patterns
//! used until the `zeroring` pattern cores (`sockets/src/pattern/`) can be driven here.
//!
//! The trait has libzmq's shape (`xattach_pipe`, `xpipe_terminated`, `xread_activated`,
//! `xsend`, `xrecv`) so that a real pattern core is an adapter away: see `docs/simulation.md`,
//! "Plugging in the real patterns".
//!
//! **Stand-ins, not the product**: [`Push`], [`Pull`], [`Pub`], [`Sub`], [`Dealer`] and
//! [`Router`] implement just enough policy to exercise the protocol and the driver (round-robin
//! load balancing, fair queueing, prefix-matched subscriptions applied at the publisher as
//! libzmq's XPUB does, routing ids with ROUTER_HANDOVER). They are replaced by the real pattern
//! cores when those land; the scenarios and invariants stay.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use zeroring_transports::{Errno, SocketType};

use crate::pipe::{Message, PipeId, Pipes};

/// A socket pattern driven by the simulator: routing policy over pipes, nothing else.
pub trait SimPattern: fmt::Debug {
    /// The socket type announced in the handshake.
    fn socket_type(&self) -> SocketType;

    /// A peer completed its handshake and its pipe is ready (libzmq `xattach_pipe`).
    /// Returning `false` refuses the peer (the connection is closed), e.g. a duplicate routing
    /// id on a ROUTER without ROUTER_HANDOVER.
    fn attached(&mut self, pipe: PipeId, pipes: &mut Pipes) -> bool;

    /// The pipe's connection ended (libzmq `xpipe_terminated`).
    fn terminated(&mut self, pipe: PipeId, pipes: &mut Pipes);

    /// New inbound messages on `pipe` (libzmq `xread_activated`). Patterns that consume
    /// control messages (a publisher reading `\x01topic`) do it here.
    fn read_activated(&mut self, pipe: PipeId, pipes: &mut Pipes) {
        let _ = (pipe, pipes);
    }

    /// Sends a message (libzmq `xsend`); returns the pipes it was queued on, or EAGAIN when it
    /// cannot be sent now (the caller may wait for the socket to become writable).
    fn send(&mut self, msg: Message, pipes: &mut Pipes) -> Result<Vec<PipeId>, Errno>;

    /// Receives a message (libzmq `xrecv`), or `None` when none is ready.
    fn recv(&mut self, pipes: &mut Pipes) -> Option<Message>;
}

/// Round-robin over `ids` starting after `last`: the first id for which `ok` holds.
fn next_after(ids: &[PipeId], last: Option<PipeId>, ok: impl Fn(PipeId) -> bool) -> Option<PipeId> {
    let start = match last {
        Some(l) => ids.iter().position(|&i| i > l).unwrap_or(0),
        None => 0,
    };
    (0..ids.len())
        .map(|k| ids[(start + k) % ids.len()])
        .find(|&i| ok(i))
}

/// Load-balances outbound messages over live pipes with room (libzmq `lb_t`).
#[derive(Debug, Default)]
struct LoadBalance {
    last: Option<PipeId>,
}

impl LoadBalance {
    fn send(&mut self, msg: Message, pipes: &mut Pipes) -> Result<Vec<PipeId>, Errno> {
        let ids = pipes.live();
        let Some(id) = next_after(&ids, self.last, |i| pipes.can_write(i)) else {
            return Err(Errno::EAGAIN);
        };
        self.last = Some(id);
        pipes.write(id, msg).map_err(|_| Errno::EAGAIN)?;
        Ok(vec![id])
    }
}

/// Fair-queues inbound messages over pipes (libzmq `fq_t`).
#[derive(Debug, Default)]
struct FairQueue {
    last: Option<PipeId>,
}

impl FairQueue {
    fn recv(&mut self, pipes: &mut Pipes) -> Option<Message> {
        self.recv_from(pipes).map(|(_, m)| m)
    }

    fn recv_from(&mut self, pipes: &mut Pipes) -> Option<(PipeId, Message)> {
        let ids = pipes.readable_ids();
        let id = next_after(&ids, self.last, |_| true)?;
        self.last = Some(id);
        pipes.read(id).map(|m| (id, m))
    }
}

/// Stand-in PUSH: load-balanced, blocks (EAGAIN) when no pipe has room.
#[derive(Debug, Default)]
pub struct Push {
    lb: LoadBalance,
}

impl SimPattern for Push {
    fn socket_type(&self) -> SocketType {
        SocketType::Push
    }
    fn attached(&mut self, _: PipeId, _: &mut Pipes) -> bool {
        true
    }
    fn terminated(&mut self, _: PipeId, _: &mut Pipes) {}
    fn send(&mut self, msg: Message, pipes: &mut Pipes) -> Result<Vec<PipeId>, Errno> {
        self.lb.send(msg, pipes)
    }
    fn recv(&mut self, _: &mut Pipes) -> Option<Message> {
        None
    }
}

/// Stand-in PULL: fair-queued.
#[derive(Debug, Default)]
pub struct Pull {
    fq: FairQueue,
}

impl SimPattern for Pull {
    fn socket_type(&self) -> SocketType {
        SocketType::Pull
    }
    fn attached(&mut self, _: PipeId, _: &mut Pipes) -> bool {
        true
    }
    fn terminated(&mut self, _: PipeId, _: &mut Pipes) {}
    fn send(&mut self, _: Message, _: &mut Pipes) -> Result<Vec<PipeId>, Errno> {
        Err(Errno::ENOTSUP)
    }
    fn recv(&mut self, pipes: &mut Pipes) -> Option<Message> {
        self.fq.recv(pipes)
    }
}

/// Stand-in DEALER: load-balanced sends, fair-queued receives.
#[derive(Debug, Default)]
pub struct Dealer {
    lb: LoadBalance,
    fq: FairQueue,
}

impl SimPattern for Dealer {
    fn socket_type(&self) -> SocketType {
        SocketType::Dealer
    }
    fn attached(&mut self, _: PipeId, _: &mut Pipes) -> bool {
        true
    }
    fn terminated(&mut self, _: PipeId, _: &mut Pipes) {}
    fn send(&mut self, msg: Message, pipes: &mut Pipes) -> Result<Vec<PipeId>, Errno> {
        self.lb.send(msg, pipes)
    }
    fn recv(&mut self, pipes: &mut Pipes) -> Option<Message> {
        self.fq.recv(pipes)
    }
}

/// Stand-in ROUTER: inbound messages get the peer's routing id prepended; outbound ones are
/// routed by their first frame and dropped (counted) when the peer is unknown or full.
/// A peer without a routing id gets a generated one (libzmq: 5 bytes, 0x00 + u32).
#[derive(Debug, Default)]
pub struct Router {
    /// ZMQ_ROUTER_HANDOVER: a new peer with a known id takes the id over.
    pub handover: bool,
    by_id: BTreeMap<Bytes, PipeId>,
    ids: BTreeMap<PipeId, Bytes>,
    next_generated: u32,
    fq: FairQueue,
}

impl Router {
    /// A ROUTER, with or without ROUTER_HANDOVER.
    pub fn new(handover: bool) -> Self {
        Router {
            handover,
            next_generated: 0x0000_0001,
            ..Default::default()
        }
    }

    /// The pipe currently owning `id`.
    pub fn pipe_of(&self, id: &[u8]) -> Option<PipeId> {
        self.by_id.get(id).copied()
    }
}

impl SimPattern for Router {
    fn socket_type(&self) -> SocketType {
        SocketType::Router
    }
    fn attached(&mut self, pipe: PipeId, pipes: &mut Pipes) -> bool {
        let announced = pipes
            .get(pipe)
            .and_then(|p| p.peer.routing_id.clone())
            .filter(|id| !id.is_empty());
        let id = match announced {
            Some(id) => {
                if let Some(&old) = self.by_id.get(&id) {
                    if !self.handover {
                        return false;
                    }
                    // Handover: the old pipe loses its id (libzmq renames it; we unmap it).
                    self.ids.remove(&old);
                    pipes.count_handover();
                }
                id
            }
            None => {
                let mut g = vec![0u8];
                g.extend_from_slice(&self.next_generated.to_be_bytes());
                self.next_generated = self.next_generated.wrapping_add(1);
                Bytes::from(g)
            }
        };
        self.by_id.insert(id.clone(), pipe);
        self.ids.insert(pipe, id);
        true
    }
    fn terminated(&mut self, pipe: PipeId, _: &mut Pipes) {
        if let Some(id) = self.ids.remove(&pipe) {
            if self.by_id.get(&id) == Some(&pipe) {
                self.by_id.remove(&id);
            }
        }
    }
    fn send(&mut self, mut msg: Message, pipes: &mut Pipes) -> Result<Vec<PipeId>, Errno> {
        if msg.is_empty() {
            return Err(Errno::EINVAL);
        }
        let id = msg.remove(0);
        let Some(&pipe) = self.by_id.get(&id) else {
            pipes.count_unroutable();
            return Ok(vec![]);
        };
        match pipes.write(pipe, msg) {
            Ok(()) => Ok(vec![pipe]),
            Err(_) => {
                pipes.count_hwm_drop();
                Ok(vec![])
            }
        }
    }
    fn recv(&mut self, pipes: &mut Pipes) -> Option<Message> {
        loop {
            let ids = pipes.readable_ids();
            let pipe = next_after(&ids, self.fq.last, |_| true)?;
            self.fq.last = Some(pipe);
            let msg = pipes.read(pipe)?;
            // A pipe that lost its id by handover still drains; its messages carry no id and
            // are dropped like libzmq drops messages from a terminated pipe.
            let Some(id) = self.ids.get(&pipe) else {
                continue;
            };
            let mut out = Vec::with_capacity(msg.len() + 1);
            out.push(id.clone());
            out.extend(msg);
            return Some(out);
        }
    }
}

/// Whether `data` starts with `topic` (ZeroMQ's prefix match).
fn matches(topic: &[u8], data: &[u8]) -> bool {
    data.starts_with(topic)
}

/// Stand-in PUB: each pipe's subscriptions (a multiset of prefixes, as `\x01topic` / `\x00topic`
/// messages from the peer) decide where a message goes; full pipes drop (counted).
#[derive(Debug, Default)]
pub struct Pub {
    subs: BTreeMap<PipeId, BTreeMap<Bytes, u32>>,
    /// Subscriptions applied: (pipe, topic), in order — the "acknowledgement" scenarios use.
    pub applied: Vec<(PipeId, Bytes)>,
}

impl Pub {
    /// Whether `pipe` currently subscribes to a prefix of `data`.
    pub fn subscribed(&self, pipe: PipeId, data: &[u8]) -> bool {
        self.subs
            .get(&pipe)
            .is_some_and(|s| s.keys().any(|t| matches(t, data)))
    }
}

impl SimPattern for Pub {
    fn socket_type(&self) -> SocketType {
        SocketType::Pub
    }
    fn attached(&mut self, pipe: PipeId, _: &mut Pipes) -> bool {
        self.subs.insert(pipe, BTreeMap::new());
        true
    }
    fn terminated(&mut self, pipe: PipeId, _: &mut Pipes) {
        self.subs.remove(&pipe);
    }
    fn read_activated(&mut self, pipe: PipeId, pipes: &mut Pipes) {
        while let Some(msg) = pipes.read(pipe) {
            let [body] = msg.as_slice() else { continue };
            let Some(set) = self.subs.get_mut(&pipe) else {
                continue;
            };
            match body.first() {
                Some(1) => {
                    let topic = body.slice(1..);
                    *set.entry(topic.clone()).or_default() += 1;
                    self.applied.push((pipe, topic));
                }
                Some(0) => {
                    let topic = body.slice(1..);
                    if let Some(n) = set.get_mut(&topic) {
                        *n -= 1;
                        if *n == 0 {
                            set.remove(&topic);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    fn send(&mut self, msg: Message, pipes: &mut Pipes) -> Result<Vec<PipeId>, Errno> {
        let first = msg.first().cloned().unwrap_or_default();
        let mut sent = Vec::new();
        for pipe in pipes.live() {
            if !self.subscribed(pipe, &first) {
                continue;
            }
            match pipes.write(pipe, msg.clone()) {
                Ok(()) => sent.push(pipe),
                Err(_) => pipes.count_hwm_drop(),
            }
        }
        Ok(sent)
    }
    fn recv(&mut self, _: &mut Pipes) -> Option<Message> {
        None
    }
}

/// Stand-in SUB: keeps its subscriptions, sends them to every pipe, replays them to each new
/// pipe (libzmq `xsub_t::xattach_pipe`), and filters what it receives.
#[derive(Debug)]
pub struct Sub {
    subs: BTreeMap<Bytes, u32>,
    fq: FairQueue,
    /// Test-only switch: `false` sends the subscriptions to the first pipe only and never
    /// replays them on a reconnect (the bug the simulator must notice).
    pub replay_subscriptions: bool,
    attached_before: bool,
}

impl Sub {
    /// A SUB; `replay_subscriptions` is `true` except in the broken-variant test.
    pub fn new(replay_subscriptions: bool) -> Self {
        Sub {
            subs: BTreeMap::new(),
            fq: FairQueue::default(),
            replay_subscriptions,
            attached_before: false,
        }
    }

    /// Whether a message with first frame `data` passes the local filter.
    pub fn accepts(&self, data: &[u8]) -> bool {
        self.subs.keys().any(|t| matches(t, data))
    }
}

fn sub_message(first: u8, topic: &[u8]) -> Message {
    let mut b = Vec::with_capacity(topic.len() + 1);
    b.push(first);
    b.extend_from_slice(topic);
    vec![Bytes::from(b)]
}

impl SimPattern for Sub {
    fn socket_type(&self) -> SocketType {
        SocketType::Sub
    }
    fn attached(&mut self, pipe: PipeId, pipes: &mut Pipes) -> bool {
        let first = !std::mem::replace(&mut self.attached_before, true);
        if self.replay_subscriptions || first {
            for topic in self.subs.keys() {
                // Subscriptions are never dropped: libzmq writes them past the HWM.
                let _ = pipes.write_control(pipe, sub_message(1, topic));
            }
        }
        true
    }
    fn terminated(&mut self, _: PipeId, _: &mut Pipes) {}
    /// `[\x01topic]` subscribes, `[\x00topic]` cancels (libzmq's XSUB input).
    fn send(&mut self, msg: Message, pipes: &mut Pipes) -> Result<Vec<PipeId>, Errno> {
        let [body] = msg.as_slice() else {
            return Err(Errno::ENOTSUP);
        };
        let topic = body.slice(1..);
        match body.first() {
            Some(1) => {
                let n = self.subs.entry(topic.clone()).or_default();
                *n += 1;
                if *n > 1 {
                    return Ok(vec![]);
                }
            }
            Some(0) => match self.subs.get_mut(&topic) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    return Ok(vec![]);
                }
                Some(_) => {
                    self.subs.remove(&topic);
                }
                None => return Ok(vec![]),
            },
            _ => return Err(Errno::EINVAL),
        }
        let mut sent = Vec::new();
        for pipe in pipes.live() {
            if pipes.write_control(pipe, msg.clone()).is_ok() {
                sent.push(pipe);
            }
        }
        Ok(sent)
    }
    fn recv(&mut self, pipes: &mut Pipes) -> Option<Message> {
        loop {
            let msg = self.fq.recv(pipes)?;
            if self.accepts(msg.first().map_or(&[][..], |b| &b[..])) {
                return Some(msg);
            }
        }
    }
}

/// Stand-in REQ with ZMQ_REQ_RELAXED and ZMQ_REQ_CORRELATE (libzmq `req_t`): a request goes
/// to one pipe (load-balanced) as `[request id (u32 BE), "", body…]` with CORRELATE or
/// `["", body…]` without; only a reply from that pipe, and with CORRELATE only one carrying the
/// current id, is accepted; anything else is dropped. RELAXED allows a new request while a
/// reply is outstanding (the old reply is then unwanted).
#[derive(Debug)]
pub struct Req {
    pub relaxed: bool,
    pub correlate: bool,
    lb: LoadBalance,
    next_id: u32,
    /// (pipe, id) of the request whose reply we wait for.
    waiting: Option<(PipeId, u32)>,
}

impl Req {
    /// A REQ with the two options.
    pub fn new(relaxed: bool, correlate: bool) -> Self {
        Req {
            relaxed,
            correlate,
            lb: LoadBalance::default(),
            next_id: 1,
            waiting: None,
        }
    }
}

impl SimPattern for Req {
    fn socket_type(&self) -> SocketType {
        SocketType::Req
    }
    fn attached(&mut self, _: PipeId, _: &mut Pipes) -> bool {
        true
    }
    fn terminated(&mut self, _: PipeId, _: &mut Pipes) {}
    fn send(&mut self, msg: Message, pipes: &mut Pipes) -> Result<Vec<PipeId>, Errno> {
        if self.waiting.is_some() && !self.relaxed {
            return Err(Errno::EFSM);
        }
        let id = self.next_id;
        let mut wire = Vec::with_capacity(msg.len() + 2);
        if self.correlate {
            wire.push(Bytes::copy_from_slice(&id.to_be_bytes()));
        }
        wire.push(Bytes::new());
        wire.extend(msg);
        let sent = self.lb.send(wire, pipes)?;
        self.next_id = self.next_id.wrapping_add(1);
        self.waiting = sent.first().map(|&p| (p, id));
        Ok(sent)
    }
    fn recv(&mut self, pipes: &mut Pipes) -> Option<Message> {
        loop {
            let (pipe, id) = self.waiting?;
            // Drop whatever other pipes delivered (libzmq reads only the reply pipe).
            for other in pipes.readable_ids() {
                if other != pipe {
                    while pipes.read(other).is_some() {}
                }
            }
            let mut msg = pipes.read(pipe)?;
            if self.correlate {
                if msg.first().map(|b| &b[..]) != Some(&id.to_be_bytes()[..]) {
                    continue;
                }
                msg.remove(0);
            }
            if msg.first().is_none_or(|b| !b.is_empty()) {
                continue;
            }
            msg.remove(0);
            self.waiting = None;
            return Some(msg);
        }
    }
}

/// Stand-in REP (libzmq `rep_t`): receives one request at a time, remembers its envelope (all
/// frames up to the empty delimiter) and the pipe, and sends the reply back with it; a reply
/// to a pipe that is gone or full is dropped.
#[derive(Debug, Default)]
pub struct Rep {
    fq: FairQueue,
    pending: Option<(PipeId, Message)>,
}

impl SimPattern for Rep {
    fn socket_type(&self) -> SocketType {
        SocketType::Rep
    }
    fn attached(&mut self, _: PipeId, _: &mut Pipes) -> bool {
        true
    }
    fn terminated(&mut self, _: PipeId, _: &mut Pipes) {}
    fn send(&mut self, msg: Message, pipes: &mut Pipes) -> Result<Vec<PipeId>, Errno> {
        let Some((pipe, mut envelope)) = self.pending.take() else {
            return Err(Errno::EFSM);
        };
        envelope.extend(msg);
        match pipes.write(pipe, envelope) {
            Ok(()) => Ok(vec![pipe]),
            Err(_) => {
                pipes.count_hwm_drop();
                Ok(vec![])
            }
        }
    }
    fn recv(&mut self, pipes: &mut Pipes) -> Option<Message> {
        if self.pending.is_some() {
            return None;
        }
        loop {
            let (pipe, mut msg) = self.fq.recv_from(pipes)?;
            let Some(split) = msg.iter().position(|b| b.is_empty()) else {
                continue; // no delimiter: malformed, dropped
            };
            let body = msg.split_off(split + 1);
            self.pending = Some((pipe, msg));
            return Some(body);
        }
    }
}
