//! PUB, XPUB, SUB and XSUB (RFC 29).
//!
//! Subscriptions travel through the pipes as messages: `\x01topic` subscribes, `\x00topic`
//! cancels (the ZMTP driver translates SUBSCRIBE/CANCEL commands to and from these).
//!
//! - [`XPub`] (PUB when not `xpub`): reads subscriptions from its pipes into an [`MTrie`],
//!   distributes each message to the pipes whose subscriptions match its first part (or do
//!   not match, under INVERT_MATCHING); a pipe at its high-water mark misses the message
//!   (counted), or with XPUB_NODROP the send fails with EAGAIN. An XPUB hands subscriptions to
//!   the user as messages: new topics only, every subscription with XPUB_VERBOSE, every
//!   unsubscription too with XPUB_VERBOSER, all of them under XPUB_MANUAL (where the user
//!   applies them with SUBSCRIBE/UNSUBSCRIBE on the pipe that sent the last one it received).
//!   A pipe that leaves cancels its subscriptions. XPUB_WELCOME_MSG is sent to each new pipe.
//!   What waits for an XPUB's user is bounded by RCVHWM (+ one message per peer): past it a
//!   peer's pipe is left unread until the user reads (backpressure; nothing is dropped).
//! - [`XSub`] (SUB when not `xsub`): keeps its subscriptions in a counted [`SubTrie`], sends
//!   every subscription upstream and a cancel when a topic's count falls to zero, replays its
//!   subscriptions to each new pipe, and fair-queues incoming messages; a SUB drops those
//!   whose first part matches no subscription, an XSUB passes everything on (libzmq sets its
//!   `filter` option only for SUB: an XSUB is a proxy's upstream side).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use zeroring_engine::Msg;

use super::dist::Dist;
use super::fq::{Fq, ReadyList};
use super::trie::{MTrie, RmResult, SubTrie};
use super::{drop_dead, reap, Pattern, PatternCx, Pipe, PipeId, Pipes, SendError};
use crate::error::{Error, Result};
use crate::options::{num, Value};

fn sub_msg(subscribe: bool, topic: &[u8]) -> Msg {
    let mut b = BytesMut::with_capacity(topic.len() + 1);
    b.put_u8(subscribe as u8);
    b.put_slice(topic);
    Msg::from_bytes(b.freeze())
}

/// PUB and XPUB.
#[derive(Debug)]
pub struct XPub {
    xpub: bool,
    pipes: Pipes,
    dist: Dist,
    subs: MTrie,
    /// XPUB_MANUAL: the subscriptions each peer sent (cancelled for the user when it leaves).
    manual_subs: MTrie,
    /// Messages for the user: subscriptions, and (XPUB) user messages from upstream.
    pending: VecDeque<(Msg, Option<PipeId>)>,
    /// XPUB_MANUAL: the pipe that sent the last subscription the user received.
    last_pipe: Option<PipeId>,
    targets: Vec<PipeId>,
    /// Pipes that have something to read again (subscriptions): only those are visited.
    ready: Arc<ReadyList>,
    visit: Vec<PipeId>,
    /// Pipes left unread because `pending` reached RCVHWM (sorted): read again once the user
    /// has taken some of it. Their peers meet backpressure (the pipe fills, the connection
    /// stops reading); no subscription is dropped.
    deferred: Vec<PipeId>,
}

impl XPub {
    /// `xpub`: XPUB (subscriptions and upstream messages reach the user) or PUB.
    pub fn new(xpub: bool) -> Self {
        XPub {
            xpub,
            pipes: Pipes::default(),
            dist: Dist::default(),
            subs: MTrie::new(),
            manual_subs: MTrie::new(),
            pending: VecDeque::new(),
            last_pipe: None,
            targets: Vec::new(),
            ready: Arc::default(),
            visit: Vec::new(),
            deferred: Vec::new(),
        }
    }

    fn cleanup(&mut self, cx: &mut PatternCx<'_>) {
        for p in reap(&mut self.pipes, cx) {
            let (xpub, manual, verboser) =
                (self.xpub, cx.options.xpub_manual, cx.options.xpub_verboser);
            let pending = &mut self.pending;
            if manual {
                // Cancel what the peer itself subscribed to; the user's mapping goes silently.
                self.manual_subs.rm_pipe(p.id, |topic, _| {
                    if xpub {
                        pending.push_back((sub_msg(false, topic), None));
                    }
                });
                self.subs.rm_pipe(p.id, |_, _| {});
            } else {
                self.subs.rm_pipe(p.id, |topic, last| {
                    if xpub && (last || verboser) {
                        pending.push_back((sub_msg(false, topic), None));
                    }
                });
            }
            if self.last_pipe == Some(p.id) {
                self.last_pipe = None;
            }
            if let Ok(at) = self.deferred.binary_search(&p.id) {
                self.deferred.remove(at);
            }
        }
    }

    /// Reads what subscribers sent: from the pipes attached or reported readable since the
    /// last call (a publish to thousands of peers must not visit each one), or from every
    /// pipe while some pipe does not report.
    ///
    /// An XPUB's messages for its user are bounded by RCVHWM (0: no bound, as libzmq's
    /// `_pending_data`, which has none): a pipe is read on while `pending` is below it, and
    /// past it for at most one more message that adds to `pending` (so that a new peer's
    /// first subscription still takes effect) — then it is deferred, left unread until the
    /// user reads. `pending` holds at most RCVHWM + one message per peer.
    fn process(&mut self, cx: &mut PatternCx<'_>) {
        let o = cx.options;
        let limit = match (self.xpub, o.rcvhwm) {
            (true, hwm) if hwm > 0 => hwm as usize,
            _ => usize::MAX,
        };
        let mut dead = false;
        let mut visit = std::mem::take(&mut self.visit);
        if self.pipes.unreported > 0 {
            visit.extend(self.pipes.iter().map(|p| p.id));
            self.pipes.fresh.clear();
        }
        self.ready.drain_into(&mut self.pipes, &mut visit);
        if !self.deferred.is_empty() && self.pending.len() < limit {
            // Room again: the deferred pipes are read (and leave the list unless deferred
            // anew).
            visit.append(&mut self.deferred);
        }
        if visit.len() > 1 {
            visit.sort_unstable();
            visit.dedup();
        }
        for &id in &visit {
            if self.deferred.binary_search(&id).is_ok() {
                // Still no room for what it sends.
                continue;
            }
            let Some(i) = self.pipes.index_of(id) else {
                continue;
            };
            let p = &mut self.pipes.list[i];
            let pending_before = self.pending.len();
            // Always read (not just when `len_hint` says so): a read that finds the pipe
            // empty arms its wakeup, so the pipe reports its next subscription.
            let mut first = true;
            let mut process_subscribe = true;
            loop {
                // No room, and this pipe has had its one message past it: at a message
                // boundary, leave the rest in the pipe (and so with an empty pipe too, or a
                // peer sending one subscription at a time would pass the bound each time).
                let full = self.pending.len() >= limit && self.pending.len() > pending_before;
                if first && full {
                    if let Err(at) = self.deferred.binary_search(&id) {
                        self.deferred.insert(at, id);
                    }
                    cx.stats.reads_deferred += 1;
                    break;
                }
                let m = match p.reader.read() {
                    Ok(m) => m,
                    Err(zeroring_engine::pipe::ReadError::Empty) => {
                        if full {
                            if let Err(at) = self.deferred.binary_search(&id) {
                                self.deferred.insert(at, id);
                            }
                            cx.stats.reads_deferred += 1;
                        }
                        break;
                    }
                    Err(_) => {
                        dead = true;
                        break;
                    }
                };
                // Every part is examined unless ONLY_FIRST_SUBSCRIBE (then only the first, and
                // the rest of a message whose first part was a subscription), as in libzmq.
                let first_part = first;
                first = !m.more();
                let d = m.data();
                let is_sub = (first_part || process_subscribe) && !d.is_empty() && d[0] <= 1;
                if first_part {
                    process_subscribe = !o.only_first_subscribe || is_sub;
                }
                if is_sub {
                    let subscribe = d[0] == 1;
                    let topic = &d[1..];
                    if o.xpub_manual {
                        // Remember what the peer asked for, to cancel it when it leaves.
                        if subscribe {
                            self.manual_subs.add(topic, p.id);
                        } else {
                            self.manual_subs.rm(topic, p.id);
                        }
                        if self.xpub {
                            self.pending
                                .push_back((m.clone().with_more(false), Some(p.id)));
                        }
                        continue;
                    }
                    let notify = if subscribe {
                        self.subs.add(topic, p.id) || o.xpub_verbose
                    } else {
                        self.subs.rm(topic, p.id) != RmResult::ValuesRemain || o.xpub_verboser
                    };
                    // A subscription reaches the user as a message of its own, whatever
                    // followed it (libzmq queues it without its MORE flag).
                    if self.xpub && notify {
                        self.pending
                            .push_back((m.clone().with_more(false), Some(p.id)));
                    }
                } else if self.xpub {
                    self.pending.push_back((m, Some(p.id)));
                }
            }
        }
        visit.clear();
        self.visit = visit;
        if dead {
            let mut i = 0;
            while i < self.pipes.len() {
                if self.pipes.list[i].reader.is_writer_closed()
                    && self.pipes.list[i].reader.len_hint() == 0
                {
                    self.pipes.kill_at(i);
                } else {
                    i += 1;
                }
            }
        }
        self.cleanup(cx);
    }
}

impl Pattern for XPub {
    fn attach(&mut self, mut pipe: Pipe, cx: &mut PatternCx<'_>) {
        if let Some(w) = &cx.options.xpub_welcome_msg {
            if pipe.writer.write(Msg::from_bytes(w.clone())).is_ok() {
                pipe.writer.flush();
            }
        }
        cx.stats.peers_attached += 1;
        self.pipes.push(pipe);
    }

    fn send(&mut self, msg: Msg, cx: &mut PatternCx<'_>) -> std::result::Result<(), SendError> {
        let more = msg.more();
        if !self.dist.in_message() {
            self.process(cx);
            self.targets.clear();
            if cx.options.xpub_manual_last_value && self.last_pipe.is_some() {
                // Only the pipe that sent the last subscription the user read, if it matches.
                let last = self.last_pipe.take();
                let t = &mut self.targets;
                self.subs.matching(msg.data(), |p| {
                    if Some(p) == last {
                        t.push(p)
                    }
                });
            } else if cx.options.invert_matching {
                let mut hit = Vec::new();
                self.subs.matching(msg.data(), |p| hit.push(p));
                self.targets.extend(
                    self.pipes
                        .iter()
                        .map(|p| p.id)
                        .filter(|id| !hit.contains(id)),
                );
            } else {
                let t = &mut self.targets;
                self.subs.matching(msg.data(), |p| t.push(p));
            }
            if cx.options.xpub_nodrop && !self.dist.all_writable(&mut self.pipes, &self.targets) {
                return Err(SendError::new(Error::EAGAIN, msg));
            }
        }
        let dropped = self.dist.send(&mut self.pipes, &self.targets, msg);
        cx.stats.dropped_hwm += dropped as u64;
        if !more {
            cx.stats.sent += 1;
        }
        self.cleanup(cx);
        Ok(())
    }

    fn recv(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        if !self.xpub {
            return Err(Error::ENOTSUP);
        }
        self.process(cx);
        let (m, pipe) = self.pending.pop_front().ok_or(Error::EAGAIN)?;
        if cx.options.xpub_manual {
            self.last_pipe = pipe;
        }
        if !m.more() {
            cx.stats.received += 1;
        }
        Ok(m)
    }

    fn has_in(&mut self, cx: &mut PatternCx<'_>) -> bool {
        if !self.xpub {
            return false;
        }
        self.process(cx);
        !self.pending.is_empty()
    }

    fn copy_hint(&self) -> zeroring_engine::CopyHint {
        // One body for every subscriber it goes to: streamed only when all are connections.
        self.pipes.copy_hint()
    }

    fn has_out(&mut self, cx: &mut PatternCx<'_>) -> bool {
        !cx.options.xpub_nodrop || self.dist.in_message() || self.pipes.any_writable()
    }

    fn set_option(&mut self, opt: i32, value: &Value, cx: &mut PatternCx<'_>) -> Result<()> {
        if opt != num::SUBSCRIBE && opt != num::UNSUBSCRIBE {
            return Ok(());
        }
        if !cx.options.xpub_manual {
            return Err(Error::EINVAL);
        }
        let Value::Bytes(topic) = value else {
            return Err(Error::EINVAL);
        };
        if let Some(p) = self.last_pipe {
            if opt == num::SUBSCRIBE {
                self.subs.add(topic, p);
            } else {
                self.subs.rm(topic, p);
            }
        }
        Ok(())
    }

    fn topics_count(&mut self, cx: &mut PatternCx<'_>) -> Option<usize> {
        self.process(cx);
        Some(self.subs.num_topics())
    }

    fn disconnect(&mut self, endpoint: &str, cx: &mut PatternCx<'_>) -> usize {
        let n = self.pipes.kill_endpoint(endpoint);
        self.cleanup(cx);
        n
    }

    fn peers(&self) -> usize {
        self.pipes.live()
    }

    fn pipes_mut(&mut self) -> Option<&mut super::Pipes> {
        Some(&mut self.pipes)
    }

    fn ready_list(&self) -> Option<Arc<ReadyList>> {
        Some(self.ready.clone())
    }
}

/// SUB and XSUB.
#[derive(Debug)]
pub struct XSub {
    xsub: bool,
    pipes: Pipes,
    fq: Fq,
    dist: Dist,
    subs: SubTrie,
    /// A matching message read ahead (by has_in), delivered first.
    prefetched: VecDeque<Msg>,
    /// Inside a matching message.
    more_in: bool,
    /// Inside an upstream message.
    more_out: bool,
    /// Parts of the current upstream message are examined for (un)subscriptions.
    process_subscribe: bool,
    all: Vec<PipeId>,
}

impl XSub {
    /// `xsub`: XSUB (the user may send subscriptions and messages upstream) or SUB.
    pub fn new(xsub: bool) -> Self {
        XSub {
            xsub,
            pipes: Pipes::default(),
            fq: Fq::default(),
            dist: Dist::default(),
            subs: SubTrie::new(),
            prefetched: VecDeque::new(),
            more_in: false,
            more_out: false,
            process_subscribe: true,
            all: Vec::new(),
        }
    }

    fn upstream(&mut self, msg: Msg, cx: &mut PatternCx<'_>) {
        self.all.clear();
        self.all.extend(self.pipes.iter().map(|p| p.id));
        let dropped = self.dist.send(&mut self.pipes, &self.all, msg);
        cx.stats.dropped_hwm += dropped as u64;
        drop_dead(&mut self.pipes, cx);
    }

    /// Handles one part the user (or SUBSCRIBE/UNSUBSCRIBE) sends upstream.
    fn send_up(&mut self, msg: Msg, cx: &mut PatternCx<'_>) {
        let first_part = !self.more_out;
        self.more_out = msg.more();
        // Every part is examined, unless ONLY_FIRST_SUBSCRIBE (as in libzmq). A subscribe is
        // always forwarded (the XPUB side filters duplicates); a cancel only when the topic's
        // count falls to zero, or always with XSUB_VERBOSE_UNSUBSCRIBE.
        if first_part {
            self.process_subscribe = !cx.options.only_first_subscribe;
        } else if !self.process_subscribe {
            self.upstream(msg, cx);
            return;
        }
        let d = msg.data();
        if !d.is_empty() && d[0] == 1 {
            self.subs.add(&d[1..]);
            self.process_subscribe = true;
            self.upstream(msg, cx);
        } else if !d.is_empty() && d[0] == 0 {
            self.process_subscribe = true;
            if self.subs.rm(&d[1..]) || cx.options.xsub_verbose_unsubscribe {
                self.upstream(msg, cx);
            }
        } else {
            self.upstream(msg, cx);
        }
    }

    fn matches(&self, m: &Msg, cx: &PatternCx<'_>) -> bool {
        self.xsub || self.subs.check(m.data()) != cx.options.invert_matching
    }

    /// Next part of a matching message, from the pipes.
    fn recv_matching(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        loop {
            let r = self.fq.recv(&mut self.pipes);
            drop_dead(&mut self.pipes, cx);
            let (mut m, _) = r?;
            if self.more_in {
                self.more_in = m.more();
                return Ok(m);
            }
            if self.matches(&m, cx) {
                self.more_in = m.more();
                return Ok(m);
            }
            while m.more() {
                match self.fq.recv(&mut self.pipes) {
                    Ok((n, _)) => m = n,
                    Err(_) => break,
                }
            }
            cx.stats.filtered += 1;
        }
    }
}

impl Pattern for XSub {
    fn attach(&mut self, mut pipe: Pipe, cx: &mut PatternCx<'_>) {
        for t in self.subs.topics() {
            // A full pipe misses the replay, as in libzmq.
            let _ = super::write_or_drop(&mut pipe.writer, sub_msg(true, &t));
        }
        pipe.writer.flush();
        cx.stats.peers_attached += 1;
        self.pipes.push(pipe);
    }

    fn hiccup(&mut self, key: u64, _cx: &mut PatternCx<'_>) {
        let topics = self.subs.topics();
        if let Some(p) = self.pipes.iter_mut().find(|p| p.peer.key == Some(key)) {
            for t in topics {
                let _ = super::write_or_drop(&mut p.writer, sub_msg(true, &t));
            }
            p.writer.flush();
        }
    }

    fn send(&mut self, msg: Msg, cx: &mut PatternCx<'_>) -> std::result::Result<(), SendError> {
        if !self.xsub {
            return Err(SendError::new(Error::ENOTSUP, msg));
        }
        self.send_up(msg, cx);
        Ok(())
    }

    fn recv(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        let m = match self.prefetched.pop_front() {
            Some(m) => m,
            None => self.recv_matching(cx)?,
        };
        if !m.more() {
            cx.stats.received += 1;
        }
        Ok(m)
    }

    fn has_in(&mut self, cx: &mut PatternCx<'_>) -> bool {
        if !self.prefetched.is_empty() || self.more_in {
            return true;
        }
        match self.recv_matching(cx) {
            Ok(mut m) => loop {
                let more = m.more();
                self.prefetched.push_back(m);
                if !more {
                    return true;
                }
                match self.recv_matching(cx) {
                    Ok(n) => m = n,
                    Err(_) => return true,
                }
            },
            Err(_) => false,
        }
    }

    fn has_out(&mut self, _cx: &mut PatternCx<'_>) -> bool {
        self.xsub
    }

    fn set_option(&mut self, opt: i32, value: &Value, cx: &mut PatternCx<'_>) -> Result<()> {
        let subscribe = match opt {
            num::SUBSCRIBE => true,
            num::UNSUBSCRIBE => false,
            _ => return Ok(()),
        };
        let Value::Bytes(topic) = value else {
            return Err(Error::EINVAL);
        };
        if self.more_out {
            // libzmq would interleave; refuse instead of corrupting the upstream message.
            return Err(Error::EFSM);
        }
        self.send_up(sub_msg(subscribe, topic), cx);
        Ok(())
    }

    fn topics_count(&mut self, _cx: &mut PatternCx<'_>) -> Option<usize> {
        Some(self.subs.num_topics())
    }

    fn disconnect(&mut self, endpoint: &str, cx: &mut PatternCx<'_>) -> usize {
        let n = self.pipes.kill_endpoint(endpoint);
        self.fq.forget_disconnected(&self.pipes);
        drop_dead(&mut self.pipes, cx);
        n
    }

    fn peers(&self) -> usize {
        self.pipes.live()
    }

    fn pipes_mut(&mut self) -> Option<&mut super::Pipes> {
        Some(&mut self.pipes)
    }

    fn ready_list(&self) -> Option<std::sync::Arc<super::fq::ReadyList>> {
        Some(self.fq.ready_list())
    }
}

/// The subscription message for `topic` (`\x01topic` or `\x00topic`).
pub fn subscription(subscribe: bool, topic: &[u8]) -> Bytes {
    sub_msg(subscribe, topic).into_bytes()
}

#[cfg(test)]
mod tests {
    //! The XPUB's bound on unread subscriptions, driven directly.

    use zeroring_engine::pipe::{pipe, PipeConfig, PipeReader, PipeWriter};

    use super::*;
    use crate::options::Options;
    use crate::pattern::Peer;
    use crate::pattern::Stats;
    use zeroring_transports::SocketType;

    fn peer(id: PipeId) -> (Pipe, PipeWriter<Msg>, PipeReader<Msg>) {
        let (to_us_w, to_us_r) = pipe(PipeConfig::with_hwm(10_000));
        let (from_us_w, from_us_r) = pipe(PipeConfig::with_hwm(10_000));
        let p = Pipe {
            id,
            writer: from_us_w,
            reader: to_us_r,
            peer: Peer::new(SocketType::Sub, format!("test://{id}")),
            routing_id: Bytes::new(),
            queued: false,
            reports_ready: false,
            out_boost: 0,
            rcv_share: 10_000,
            direct: None,
        };
        (p, to_us_w, from_us_r)
    }

    /// An XPUB whose user does not read holds at most RCVHWM subscriptions plus one per peer;
    /// the rest waits in the peers' pipes (backpressure), and all of it arrives, in order,
    /// once the user reads. Other peers' subscriptions still take effect meanwhile.
    #[test]
    fn unread_subscriptions_are_bounded_by_rcvhwm_and_none_is_lost() {
        let mut options = Options::new(SocketType::XPub);
        options.rcvhwm = 10;
        options.xpub_verbose = true;
        let mut stats = Stats::default();
        let mut xpub = XPub::new(true);
        let mut cx = PatternCx {
            options: &options,
            stats: &mut stats,
        };
        let (a, mut aw, _ar) = peer(1);
        let (b, mut bw, mut br) = peer(2);
        xpub.attach(a, &mut cx);
        xpub.attach(b, &mut cx);
        for i in 0..100 {
            aw.write(sub_msg(true, format!("a{i}").as_bytes())).unwrap();
        }
        aw.flush();
        assert!(xpub.has_in(&mut cx));
        assert_eq!(xpub.pending.len(), 10, "read up to RCVHWM");
        // A peer sending one subscription at a time gets one past the bound, then waits.
        for i in 0..5 {
            bw.write(sub_msg(true, format!("b{i}").as_bytes())).unwrap();
            bw.flush();
            xpub.has_in(&mut cx);
            assert!(xpub.pending.len() <= 11, "{}", xpub.pending.len());
        }
        assert!(cx.stats.reads_deferred > 0);
        // b's first subscription took effect: it is served.
        xpub.send(Msg::from("b0 news"), &mut cx).unwrap();
        assert_eq!(br.read().unwrap().data(), b"b0 news");
        // The user reads: everything arrives, each peer's in its order.
        let mut got = Vec::new();
        while let Ok(m) = xpub.recv(&mut cx) {
            got.push(String::from_utf8(m.data()[1..].to_vec()).unwrap());
            assert!(xpub.pending.len() <= 12);
        }
        assert_eq!(got.len(), 105);
        let a: Vec<_> = got.iter().filter(|t| t.starts_with('a')).cloned().collect();
        let b: Vec<_> = got.iter().filter(|t| t.starts_with('b')).cloned().collect();
        assert_eq!(a, (0..100).map(|i| format!("a{i}")).collect::<Vec<_>>());
        assert_eq!(b, (0..5).map(|i| format!("b{i}")).collect::<Vec<_>>());
        assert_eq!(xpub.subs.num_topics(), 105);
        assert!(xpub.deferred.is_empty());
    }

    /// RCVHWM 0 (no limit) and PUB keep libzmq's unbounded reading.
    #[test]
    fn rcvhwm_zero_reads_everything() {
        let mut options = Options::new(SocketType::XPub);
        options.rcvhwm = 0;
        options.xpub_verbose = true;
        let mut stats = Stats::default();
        let mut xpub = XPub::new(true);
        let mut cx = PatternCx {
            options: &options,
            stats: &mut stats,
        };
        let (a, mut aw, _ar) = peer(1);
        xpub.attach(a, &mut cx);
        for i in 0..100 {
            aw.write(sub_msg(true, format!("a{i}").as_bytes())).unwrap();
        }
        aw.flush();
        assert!(xpub.has_in(&mut cx));
        assert_eq!(xpub.pending.len(), 100);
        assert_eq!(cx.stats.reads_deferred, 0);
    }
}
