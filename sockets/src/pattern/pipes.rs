//! A socket's pipes as its pattern sees them: [`Pipe`] (one attached pipe pair and what is known
//! of its peer, with the reads that lend a part's slot instead of moving it) and [`Pipes`] (the
//! live pipes in attach order, indexed by [`PipeId`], and the dead ones waiting to be reaped).
//!
//! Must never: block, or look a pipe up by scanning (sending to thousands of peers looks each
//! one up per message).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use bytes::Bytes;
use zeroring_engine::pipe::{Lend, PipeReader, PipeWriter};
use zeroring_engine::{Msg, MsgMetadata};
use zeroring_transports::socket_type::SocketType;

/// Identifies a pipe within one socket (never reused).
pub type PipeId = u64;

/// What a socket knows about the peer at the other end of a pipe pair.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The peer's routing id (ZMQ_ROUTING_ID / the ZMTP `Identity` property, or the local
    /// CONNECT_ROUTING_ID), if it has one.
    pub routing_id: Option<Bytes>,
    /// The peer's socket type.
    pub socket_type: SocketType,
    /// Connection properties to attach to received messages.
    pub metadata: Option<Arc<MsgMetadata>>,
    /// The endpoint this pipe belongs to (as given to bind/connect); `disconnect` closes the
    /// pipes of an endpoint.
    pub endpoint: String,
    /// Keep only the newest message on this pipe when reading (ZMQ_CONFLATE).
    pub conflate: bool,
    /// A key the transport chose for this pipe, to refer to it later (see
    /// [`AttachHandle::hiccup`](crate::attach::AttachHandle::hiccup)).
    pub key: Option<u64>,
}

/// One attached pipe pair: we write to `writer` and read from `reader`.
#[derive(Debug)]
pub struct Pipe {
    /// This pipe's id in its socket.
    pub id: PipeId,
    /// Outbound end.
    pub writer: PipeWriter<Msg>,
    /// Inbound end.
    pub reader: PipeReader<Msg>,
    /// The peer.
    pub peer: Peer,
    /// The routing id a ROUTER assigned to this pipe.
    pub routing_id: Bytes,
    /// In its fair-queue's round-robin queue (see [`super::fq::Fq`]).
    pub queued: bool,
    /// Its reader reports to the pattern's [`super::fq::ReadyList`] when written after running dry.
    pub reports_ready: bool,
    /// The part of the writer's high-water mark that is the peer's RCVHWM (an inproc pipe's
    /// mark is the sum of both ends'; 0 for tcp/ipc): kept when this socket's SNDHWM changes.
    pub out_boost: usize,
    /// The RCVHWM this socket had when the pipe was made: what it adds to the peer writer's
    /// mark, which a change of RCVHWM moves by the difference.
    pub rcv_share: i32,
    /// A tcp/ipc pipe's direct writes to its connection (the send fast path).
    pub direct: Option<super::direct::Direct>,
}

impl Pipe {
    /// How a body copied for this pipe is written ([`CopyHint`](zeroring_engine::CopyHint)):
    /// a tcp/ipc pipe's reader is the kernel, after the queue ahead of the part (up to SNDHWM
    /// parts), so a large body is written past the cache; an inproc peer may read it at once.
    /// Measured at 64 KiB, zeroring alone: tcp 1.15×, ipc 1.14×; streamed to an inproc peer it
    /// would cost 0.63× (docs/performance.md, "tcp 64 KiB: bodies written past the cache").
    #[inline(always)]
    pub fn copy_hint(&self) -> zeroring_engine::CopyHint {
        // Every tcp/ipc pipe, and only those, has a hand-over of its connection's writes.
        if self.direct.is_some() {
            zeroring_engine::CopyHint::Streamed
        } else {
            zeroring_engine::CopyHint::Cached
        }
    }

    /// Reads the next part, applying conflation: for a conflating pipe, the newest complete
    /// message available wins.
    #[inline]
    pub(super) fn read(&mut self) -> std::result::Result<Msg, zeroring_engine::pipe::ReadError> {
        let mut m = self.reader.read()?;
        if self.peer.conflate && !m.more() {
            while self.reader.len_hint() > 0 {
                match self.reader.read() {
                    Ok(n) => m = n,
                    Err(_) => break,
                }
            }
        }
        self.attach_metadata(&mut m, None);
        Ok(m)
    }

    /// A stream attaches its connection's properties to the first message after each
    /// handshake only (no shared refcount per message on the I/O thread); the pipe keeps them
    /// and gives them to the messages that follow — moving `reused` (the properties the
    /// caller's old part carried) when they are the same, cloning the `Arc` otherwise.
    #[inline(always)]
    fn attach_metadata(&mut self, m: &mut Msg, reused: Option<Arc<MsgMetadata>>) {
        match m.metadata() {
            Some(md) => {
                if !self
                    .peer
                    .metadata
                    .as_ref()
                    .is_some_and(|p| Arc::ptr_eq(p, md))
                {
                    self.peer.metadata = Some(md.clone());
                }
            }
            None => {
                if let Some(md) = &self.peer.metadata {
                    if reused.as_ref().is_some_and(|r| Arc::ptr_eq(r, md)) {
                        m.set_metadata(reused);
                    } else {
                        m.set_metadata(Some(md.clone()));
                    }
                }
            }
        }
    }

    /// [`Pipe::read`] into a part the caller reuses: the part's old contents are dropped, and
    /// when it already carries this pipe's connection properties they stay for the new part
    /// (no refcount traffic per message on a connection with properties). `out` is untouched
    /// on error.
    #[inline(always)]
    pub(super) fn read_into(
        &mut self,
        out: &mut Msg,
    ) -> std::result::Result<(), zeroring_engine::pipe::ReadError> {
        if self.peer.conflate {
            return self.read_into_conflated(out);
        }
        // The part's body and flags are exchanged with `out`'s in the pipe's slot, where
        // `out`'s old body is then dropped (nothing to do for an inline one); `out` keeps its
        // properties when they are this connection's, the common case: a comparison.
        let peer_md = &mut self.peer.metadata;
        self.reader.read_with(|m| {
            out.swap_contents(m);
            let same = same_properties(out.metadata(), peer_md.as_ref());
            if m.metadata().is_some() || !same {
                Self::carry_metadata(out, m, peer_md);
            }
        })
    }

    /// [`Pipe::read_into`]'s fast path, for a receive with nothing else to do: when `out`'s
    /// body is inline and its properties are this connection's, and the part at hand brought
    /// none, the part's body and flags are exchanged with `out`'s and nothing is left to free
    /// or carry ([`PipeReader::lend_ready`]: no call at all). `None`, with nothing changed,
    /// otherwise (the caller takes [`Pipe::read_into`]).
    #[inline(always)]
    pub(super) fn read_ready(&mut self, out: &mut Msg) -> Option<()> {
        if self.peer.conflate
            || !out.is_inline()
            || !same_properties(out.metadata(), self.peer.metadata.as_ref())
        {
            return None;
        }
        self.reader.lend_ready(SwapIn(out))
    }

    /// [`Pipe::read_into`] when `out` does not simply keep its properties: `new` (the part
    /// read, its body already in `out`) brought its own — the first part after a handshake,
    /// whose properties the pipe keeps for the parts that follow — or `out`'s are not the
    /// pipe's.
    #[cold]
    #[inline(never)]
    fn carry_metadata(out: &mut Msg, new: &mut Msg, peer_md: &mut Option<Arc<MsgMetadata>>) {
        match new.take_metadata() {
            Some(md) => {
                if !peer_md.as_ref().is_some_and(|p| Arc::ptr_eq(p, &md)) {
                    *peer_md = Some(md.clone());
                }
                out.set_metadata(Some(md));
            }
            None => out.set_metadata(peer_md.clone()),
        }
    }

    /// [`Pipe::read_into`] for a conflating pipe (the newest complete message wins).
    #[inline(never)]
    fn read_into_conflated(
        &mut self,
        out: &mut Msg,
    ) -> std::result::Result<(), zeroring_engine::pipe::ReadError> {
        *out = self.read()?;
        Ok(())
    }
}

/// Hashes a [`PipeId`] (a counter the socket hands out, never chosen by a peer) with one
/// multiplication: SipHash's defence against chosen keys buys nothing here, and fan-out to
/// thousands of peers looks pipes up once per peer per message.
#[derive(Debug, Default, Clone, Copy)]
pub struct PipeIdHasher(u64);

impl Hasher for PipeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; anything else still hashes, just not as fast.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A `HashMap` / `HashSet` state for pipe ids.
pub type PipeIdState = BuildHasherDefault<PipeIdHasher>;

/// The pipes of a socket, in attach order. Pipes found closed are moved to a dead list that
/// the pattern drains (to clean up routing tables, subscriptions, …).
#[derive(Debug, Default)]
pub struct Pipes {
    pub(super) list: Vec<Pipe>,
    /// Where each live pipe sits in `list`: lookups by id are O(1), so that sending to
    /// thousands of peers (PUB, ROUTER) does not cost a scan per peer.
    index: HashMap<PipeId, usize, PipeIdState>,
    /// Pipes attached since the fair-queue last looked.
    pub(super) fresh: Vec<PipeId>,
    /// Live pipes whose reader does not report to a `ReadyList` (a pattern driven without a
    /// socket): while there are any, readers must visit every pipe.
    pub(super) unreported: usize,
    pub(super) dead: Vec<Pipe>,
    /// Pipes out of service but not closed ([`Pipes::retire`]).
    retired: Vec<Pipe>,
    /// The pipes the last [`Pipes::kill_endpoint`] closed (a disconnect): a part a fair-queue
    /// read ahead from one of them is dropped with it ([`super::fq::Fq::forget_disconnected`]).
    pub(super) disconnected: Vec<PipeId>,
}

impl Pipes {
    /// Number of live pipes.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there is no live pipe.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Pipes whose peer has not closed its reading end.
    pub fn live(&self) -> usize {
        self.list
            .iter()
            .filter(|p| !p.writer.is_reader_closed())
            .count()
    }

    /// Adds a pipe at the end.
    pub fn push(&mut self, p: Pipe) {
        self.index.insert(p.id, self.list.len());
        // Patterns without a fair-queue never take `fresh`: keep it to the live pipes.
        if self.fresh.len() > self.list.len() {
            let index = &self.index;
            self.fresh.retain(|id| index.contains_key(id));
        }
        self.fresh.push(p.id);
        if !p.reports_ready {
            self.unreported += 1;
        }
        self.list.push(p);
    }

    /// Wakes the first pipe's reader after [`super::lb::Lb::send_slice_ready`] or
    /// [`super::lb::Lb::send_msg_ready`] found it asleep; returns the send's result (`Ok`, in
    /// whichever error type the send has), so that the fast path ends in this call.
    #[cold]
    #[inline(never)]
    pub(crate) fn wake_first<E>(&self) -> std::result::Result<(), E> {
        if let Some(p) = self.list.first() {
            p.writer.wake_reader();
        }
        Ok(())
    }

    /// Index of a pipe.
    #[inline]
    pub fn index_of(&self, id: PipeId) -> Option<usize> {
        // Few pipes (the common case): a scan beats hashing.
        if self.list.len() <= 8 {
            return self.list.iter().position(|p| p.id == id);
        }
        self.index.get(&id).copied()
    }

    /// A pipe by id.
    pub fn get_mut(&mut self, id: PipeId) -> Option<&mut Pipe> {
        let i = self.index_of(id)?;
        self.list.get_mut(i)
    }

    /// A pipe by id.
    pub fn get(&self, id: PipeId) -> Option<&Pipe> {
        self.list.get(self.index_of(id)?)
    }

    /// The copy hint for a part that may go to any of these pipes: streamed only when there
    /// is one and every one leads to a connection ([`Pipe::copy_hint`]).
    pub fn copy_hint(&self) -> zeroring_engine::CopyHint {
        use zeroring_engine::CopyHint;
        if !self.list.is_empty()
            && self
                .list
                .iter()
                .all(|p| p.copy_hint() == CopyHint::Streamed)
        {
            CopyHint::Streamed
        } else {
            CopyHint::Cached
        }
    }

    /// The copy hint for a part that goes to pipe `id` ([`Pipe::copy_hint`]); cached when
    /// there is no such pipe.
    pub fn copy_hint_of(&self, id: Option<PipeId>) -> zeroring_engine::CopyHint {
        id.and_then(|id| self.get(id))
            .map_or(zeroring_engine::CopyHint::Cached, Pipe::copy_hint)
    }

    /// The live pipes.
    pub fn iter(&self) -> std::slice::Iter<'_, Pipe> {
        self.list.iter()
    }

    /// The live pipes.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Pipe> {
        self.list.iter_mut()
    }

    /// Removes the pipe at `i` and puts it on the dead list.
    pub fn kill_at(&mut self, i: usize) {
        let p = self.detach_at(i);
        self.dead.push(p);
    }

    fn detach_at(&mut self, i: usize) -> Pipe {
        // `remove`, not `swap_remove`: the round-robin order of the others is kept.
        let p = self.list.remove(i);
        self.index.remove(&p.id);
        if !p.reports_ready {
            self.unreported -= 1;
        }
        for (j, q) in self.list.iter().enumerate().skip(i) {
            self.index.insert(q.id, j);
        }
        p
    }

    /// Takes pipe `id` out of service without closing it; returns whether it was there.
    ///
    /// For a connection whose routing id a newer peer took over (ROUTER_HANDOVER): libzmq
    /// ends the socket's pipe to it but leaves the connection open, its session keeping the
    /// engine, which stops reading once a message finds no pipe. Closing it instead would
    /// have the peer (seeing a disconnect) reconnect and take the id back, and two live peers
    /// with one id would trade it at every reconnect. Nothing reads or writes the pipe again
    /// and its reader wakes nobody, so the connection fills it to its high-water mark and then
    /// stops reading. It is freed when the connection ends ([`Pipes::sweep_retired`]), when
    /// its endpoint is disconnected or unbound, or with the socket; a connecting session that
    /// reconnects takes it back ([`Pipes::take_retired`]).
    pub fn retire(&mut self, id: PipeId) -> bool {
        let Some(i) = self.index_of(id) else {
            return false;
        };
        let mut p = self.detach_at(i);
        p.reader.set_notify(None);
        self.retired.push(p);
        true
    }

    /// Frees the retired pipes whose connection has ended; returns how many whole messages
    /// they held unread (dropped with them). Out of line: a ROUTER's send checks
    /// [`retired`](Self::retired) and calls this only when there are some.
    #[cold]
    #[inline(never)]
    pub fn sweep_retired(&mut self) -> u64 {
        let mut dropped = 0;
        self.retired.retain_mut(|p| {
            if !p.reader.is_writer_closed() {
                return true;
            }
            while let Ok(m) = p.reader.try_read() {
                dropped += u64::from(!m.more());
            }
            false
        });
        dropped
    }

    /// Retired pipes not yet freed.
    pub fn retired(&self) -> usize {
        self.retired.len()
    }

    /// Takes back the retired pipe with transport key `key`, if there is one: its connecting
    /// session has reconnected with it (sessions keep their pipe across reconnects), where
    /// libzmq's session, whose pipe had been ended, makes a new one that its socket attaches
    /// as a newcomer.
    pub fn take_retired(&mut self, key: u64) -> Option<Pipe> {
        let i = self.retired.iter().position(|p| p.peer.key == Some(key))?;
        Some(self.retired.swap_remove(i))
    }

    /// The peer closed its reading end (seen by a failed write to pipe `i`): detaches the pipe
    /// unless it still holds messages the peer sent before leaving, which stay readable (the
    /// pipe goes when the reader finds it closed). Returns whether it was detached.
    pub fn write_closed(&mut self, i: usize) -> bool {
        if self.list[i].reader.len_hint() == 0 {
            self.kill_at(i);
            true
        } else {
            false
        }
    }

    /// Removes a pipe by id (onto the dead list); returns whether it was there.
    pub fn kill(&mut self, id: PipeId) -> bool {
        match self.index_of(id) {
            Some(i) => {
                self.kill_at(i);
                true
            }
            None => false,
        }
    }

    /// Takes the pipes found dead since the last call. Dropping them closes both ends.
    pub fn take_dead(&mut self) -> Vec<Pipe> {
        std::mem::take(&mut self.dead)
    }

    /// Whether some pipe can take a new message now (arms writable notifications).
    pub fn any_writable(&mut self) -> bool {
        self.list.iter_mut().any(|p| p.writer.is_writable())
    }

    /// Closes the pipes of `endpoint` (disconnect); returns how many.
    pub fn kill_endpoint(&mut self, endpoint: &str) -> usize {
        let mut n = 0;
        let mut i = 0;
        self.disconnected.clear();
        while i < self.list.len() {
            if self.list[i].peer.endpoint == endpoint {
                self.disconnected.push(self.list[i].id);
                self.kill_at(i);
                n += 1;
            } else {
                i += 1;
            }
        }
        self.retired.retain(|p| p.peer.endpoint != endpoint);
        n
    }
}

/// Whether two parts' connection properties are the same: the same `Arc`, or none on both.
#[inline(always)]
fn same_properties(a: Option<&Arc<MsgMetadata>>, b: Option<&Arc<MsgMetadata>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// [`Pipe::read_ready`]'s lending of a slot: the part's body and flags are exchanged with the
/// reused part's, whose inline body is then what the slot holds. Only a part that brought no
/// properties is taken, so the slot has nothing left to drop, and only the last of its
/// message, so the fair-queue has no message under way to record.
struct SwapIn<'a>(&'a mut Msg);

impl Lend<Msg> for SwapIn<'_> {
    type Out = ();
    #[inline(always)]
    fn accepts(&self, m: &Msg) -> bool {
        m.metadata().is_none() && !m.more()
    }
    #[inline(always)]
    fn lend(self, m: &mut Msg) {
        self.0.swap_contents(m);
    }
}
