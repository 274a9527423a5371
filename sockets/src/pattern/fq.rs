//! Fair-queuing (libzmq's `fq_t`): incoming messages are taken from the pipes round robin, one
//! whole message at a time; a multipart message is read from its pipe to the end before another
//! pipe gets a turn. Pipes found closed are detached.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use zeroring_engine::pipe::{Notify, NotifyHandle, ReadError};
use zeroring_engine::Msg;

use super::{PipeId, Pipes};
use crate::error::{Error, Result};

/// The pipes that have something to read again after the socket found them empty.
///
/// A pipe's reader marks itself asleep when it finds the pipe empty, and the writer's next
/// flush then calls the reader's notify exactly once: [`ReadyList::notify_for`] makes that
/// notify record the pipe here (then wake the socket). So the fair-queue only ever visits
/// pipes that may have data — with thousands of mostly idle peers, a receive costs the same
/// as with one (libzmq's `fq_t` keeps its active pipes apart for the same reason).
#[derive(Debug, Default)]
pub struct ReadyList {
    pending: AtomicBool,
    ids: Mutex<Vec<PipeId>>,
}

impl ReadyList {
    /// Records that pipe `id` became readable (any thread).
    fn push(&self, id: PipeId) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.push(id);
        self.pending.store(true, Ordering::Release);
    }

    /// Moves the pipes to look at into `out` (the socket's thread): those attached since the
    /// last call, then those reported readable (an id may come twice).
    pub(crate) fn drain_into(&self, pipes: &mut Pipes, out: &mut Vec<PipeId>) {
        out.append(&mut pipes.fresh);
        self.take(out);
    }

    /// Moves the recorded ids into `out` (the socket's thread).
    fn take(&self, out: &mut Vec<PipeId>) {
        if !self.pending.swap(false, Ordering::AcqRel) {
            return;
        }
        out.append(&mut self.ids.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The notify to install on pipe `id`'s reader: records the pipe, then calls `then` (the
    /// socket's own wakeup).
    pub fn notify_for(self: &Arc<Self>, id: PipeId, then: Option<NotifyHandle>) -> NotifyHandle {
        Arc::new(PipeReadable {
            id,
            list: self.clone(),
            then,
        })
    }
}

struct PipeReadable {
    id: PipeId,
    list: Arc<ReadyList>,
    then: Option<NotifyHandle>,
}

impl Notify for PipeReadable {
    fn notify(&self) {
        self.list.push(self.id);
        if let Some(then) = &self.then {
            then.notify();
        }
    }
}

/// Fair-queue state.
#[derive(Debug, Default)]
pub struct Fq {
    /// The pipe whose message is being read.
    more: Option<PipeId>,
    /// Pipes that may have data, in round-robin order; a pipe found empty leaves it (its
    /// reader now sleeps and will be recorded in `ready` when written again). A live pipe
    /// is in it exactly when its `queued` is set, unless it is `more`'s (read to the end of
    /// its message first, then queued again).
    queue: VecDeque<PipeId>,
    ready: Arc<ReadyList>,
    scratch: Vec<PipeId>,
    /// A part [`Fq::has_in`] read to arm the pipes, handed out by the next [`Fq::recv`].
    prefetched: Option<(Msg, PipeId)>,
    /// Where the pipe at the head of `queue` was last found in the pipe list: the fast path
    /// checks it before looking the id up.
    head_at: usize,
}

impl Fq {
    /// The list that this fair-queue's pipes must report to (see [`ReadyList::notify_for`]);
    /// a pipe is visited once reported, so attaching one reports it at once.
    pub fn ready_list(&self) -> Arc<ReadyList> {
        self.ready.clone()
    }

    /// Whether pipes were attached or reported since the last [`Fq::activate`]. A plain load
    /// when nothing happened (the common case while a busy pipe is drained).
    #[inline(always)]
    fn has_news(&self, pipes: &Pipes) -> bool {
        !pipes.fresh.is_empty() || self.ready.pending.load(Ordering::Relaxed)
    }

    /// Moves the pipes attached or reported since the last call into the round-robin queue.
    fn activate(&mut self, pipes: &mut Pipes) {
        self.ready.drain_into(pipes, &mut self.scratch);
        for id in self.scratch.drain(..) {
            if let Some(p) = pipes.get_mut(id) {
                if !p.queued {
                    p.queued = true;
                    self.queue.push_back(id);
                }
            }
        }
    }

    /// Receives one part and the pipe it came from.
    ///
    /// The common case — no message under way, nothing newly attached or reported, the pipe
    /// at the head of the round robin has data — is a few loads and one pipe read; the round
    /// robin advances as in the full path (`Fq::recv_slow`).
    #[inline]
    pub fn recv(&mut self, pipes: &mut Pipes) -> Result<(Msg, PipeId)> {
        let mut m = Msg::new();
        let id = self.recv_into(pipes, &mut m)?;
        Ok((m, id))
    }

    /// [`Fq::recv`] into a part the caller reuses (see [`Pipe::read_into`](super::Pipe)); the
    /// same fast path, without moving the part through the layers above. `out` is untouched
    /// on error.
    #[inline(always)]
    pub fn recv_into(&mut self, pipes: &mut Pipes, out: &mut Msg) -> Result<PipeId> {
        if self.prefetched.is_none() && self.more.is_none() && !self.has_news(pipes) {
            // The pipe at the head of the round robin. With one pipe, queued (and no message
            // under way), it is the queue's only entry: no look at the queue.
            let at = if pipes.list.len() == 1 && self.queue.len() == 1 && pipes.list[0].queued {
                Some(0)
            } else if let Some(&id) = self.queue.front() {
                match pipes.list.get(self.head_at) {
                    Some(p) if p.id == id => Some(self.head_at),
                    _ => pipes.index_of(id),
                }
            } else {
                None
            };
            if let Some(i) = at {
                self.head_at = i;
                let id = pipes.list[i].id;
                if pipes.list[i].read_into(out).is_ok() {
                    if out.more() {
                        self.more = Some(id);
                        self.queue.pop_front();
                    } else if self.queue.len() > 1 {
                        self.queue.rotate_left(1);
                    }
                    return Ok(id);
                }
            }
        }
        let (m, id) = self.recv_slow(pipes)?;
        *out = m;
        Ok(id)
    }

    /// The fast path of [`Fq::recv_into`] with nothing else to do: one pipe, queued, no
    /// message under way, nothing attached, reported or dead since, and at hand the last part
    /// of a message, which [`Pipe::read_ready`](super::Pipe) takes with no call at all.
    /// `None`, with nothing changed, wherever any of that does not hold (the caller then takes
    /// the full path). The round robin stays as in [`Fq::recv_into`]'s single-pipe
    /// case: the one pipe at its head.
    #[inline(always)]
    fn recv_ready(&mut self, pipes: &mut Pipes, out: &mut Msg) -> Option<()> {
        if self.prefetched.is_some()
            || self.more.is_some()
            || self.has_news(pipes)
            || !pipes.dead.is_empty()
            || pipes.list.len() != 1
            || self.queue.len() != 1
        {
            return None;
        }
        let p = &mut pipes.list[0];
        if !p.queued {
            return None;
        }
        p.read_ready(out)?;
        self.head_at = 0;
        Some(())
    }

    /// [`Fq::recv_into`] for a pattern whose receive is just the fair-queue (PULL, DEALER):
    /// dead pipes reaped, complete messages counted. [`Fq::recv_ready`] first, which has no
    /// call in it; then [`Fq::recv_counted_full`] by a tail call, so that the caller's path
    /// saves no registers either.
    #[inline(always)]
    pub(crate) fn recv_counted(
        &mut self,
        pipes: &mut Pipes,
        out: &mut Msg,
        cx: &mut super::PatternCx<'_>,
    ) -> Result<()> {
        if self.recv_ready(pipes, out).is_some() {
            cx.stats.received += 1;
            return Ok(());
        }
        self.recv_counted_full(pipes, out, cx)
    }

    /// [`Fq::recv_counted`] past its fast path.
    #[inline(never)]
    fn recv_counted_full(
        &mut self,
        pipes: &mut Pipes,
        out: &mut Msg,
        cx: &mut super::PatternCx<'_>,
    ) -> Result<()> {
        let r = self.recv_into(pipes, out);
        super::drop_dead(pipes, cx);
        r?;
        if !out.more() {
            cx.stats.received += 1;
        }
        Ok(())
    }

    #[inline(never)]
    fn recv_slow(&mut self, pipes: &mut Pipes) -> Result<(Msg, PipeId)> {
        if let Some(part) = self.prefetched.take() {
            // Its pipe's state (`more`, the queue) was updated when it was read.
            return Ok(part);
        }
        if let Some(id) = self.more {
            match pipes.index_of(id) {
                Some(i) => match pipes.list[i].read() {
                    Ok(m) => {
                        if !m.more() {
                            self.more = None;
                            self.queue.push_back(id);
                        }
                        return Ok((m, id));
                    }
                    // Parts of a message are flushed together; this is defensive.
                    Err(ReadError::Empty) => return Err(Error::EAGAIN),
                    // The writer closed mid-message: the message is cut short.
                    Err(ReadError::Closed) => {
                        pipes.kill_at(i);
                        self.more = None;
                    }
                },
                None => self.more = None,
            }
        }
        self.activate(pipes);
        // Each queued pipe is tried at most once per call.
        for _ in 0..self.queue.len() {
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            // Gone (killed elsewhere): its id is never reused.
            let Some(i) = pipes.index_of(id) else {
                continue;
            };
            match pipes.list[i].read() {
                Ok(m) => {
                    if m.more() {
                        self.more = Some(id);
                    } else {
                        self.queue.push_back(id);
                    }
                    return Ok((m, id));
                }
                Err(ReadError::Empty) => {
                    if pipes.list[i].reports_ready {
                        // Its reader sleeps now; the next write reports it again.
                        pipes.list[i].queued = false;
                    } else {
                        // Nothing would report it (a pattern driven without a socket): keep
                        // visiting it.
                        self.queue.push_back(id);
                    }
                }
                Err(ReadError::Closed) => pipes.kill_at(i),
            }
        }
        Err(Error::EAGAIN)
    }

    /// After a disconnect ([`Pipes::kill_endpoint`]): what was read ahead from the pipes it
    /// closed goes with them, as libzmq's terminated pipe is not read further — a message
    /// queued before a disconnect never surfaces after it.
    pub fn forget_disconnected(&mut self, pipes: &Pipes) {
        if let Some((_, id)) = &self.prefetched {
            if pipes.disconnected.contains(id) {
                self.prefetched = None;
            }
        }
        if self.more.is_some_and(|id| pipes.disconnected.contains(&id)) {
            self.more = None;
        }
    }

    /// Whether a message is being read.
    pub fn in_message(&self) -> bool {
        self.more.is_some()
    }

    /// Whether a recv would succeed now. When nothing is visible it tries to read every
    /// queued pipe, so that each one found empty is armed — its next write wakes the socket —
    /// and a part that raced in is kept for the next [`Fq::recv`]: after `false`, nothing can
    /// arrive unnoticed (what ZMQ_EVENTS and a poller on the socket's fd rely on).
    pub fn has_in(&mut self, pipes: &mut Pipes) -> bool {
        if self.prefetched.is_some() || self.more.is_some() {
            return true;
        }
        match self.recv(pipes) {
            Ok(part) => {
                self.prefetched = Some(part);
                true
            }
            Err(_) => false,
        }
    }
}
