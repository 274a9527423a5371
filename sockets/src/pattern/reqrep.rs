//! REQ, REP and DEALER (RFC 28).
//!
//! - DEALER: load-balances outgoing and fair-queues incoming messages, no envelope handling.
//! - REQ: a DEALER that alternates send / recv strictly (EFSM otherwise, unless REQ_RELAXED),
//!   prefixes each request with an empty delimiter (and a 4-byte request id under
//!   REQ_CORRELATE), takes the reply only from the pipe the request went to, strips the
//!   envelope and discards malformed or stale replies.
//! - REP: fair-queues requests, keeps each request's envelope (everything up to and including
//!   the empty delimiter) and the pipe it came from, and sends the reply back there with the
//!   envelope; a reply to a peer that left, or is at its high-water mark, is dropped.

use zeroring_engine::pipe::WriteError;
use zeroring_engine::Msg;

use super::fq::Fq;
use super::lb::Lb;
use super::{count_sent, drop_dead, reap, Pattern, PatternCx, Pipe, PipeId, Pipes, SendError};
use crate::error::{Error, Result};

/// ZMQ_PROBE_ROUTER: an empty message first. A tcp/ipc pipe gets it from its link as it is
/// made (see `wire::Link`), before the socket takes it from its mailbox.
fn probe(pipe: &mut Pipe, cx: &PatternCx<'_>) {
    if cx.options.probe_router
        && pipe.peer.endpoint.starts_with("inproc://")
        && pipe.writer.write(Msg::new()).is_ok()
    {
        pipe.writer.flush();
    }
}

/// DEALER.
#[derive(Debug, Default)]
pub struct Dealer {
    pipes: Pipes,
    lb: Lb,
    fq: Fq,
}

impl Dealer {
    fn send_part(
        &mut self,
        msg: Msg,
        cx: &mut PatternCx<'_>,
    ) -> std::result::Result<Option<PipeId>, SendError> {
        let more = msg.more();
        if !more {
            if let Some(id) = self.lb.try_direct(&mut self.pipes, &[msg.data()], cx.stats) {
                return Ok(Some(id));
            }
        }
        let r = self.lb.send(&mut self.pipes, msg);
        count_sent(&r, more, cx);
        r
    }

    fn recv_part(&mut self) -> Result<(Msg, PipeId)> {
        self.fq.recv(&mut self.pipes)
    }
}

impl Pattern for Dealer {
    fn attach(&mut self, mut pipe: Pipe, cx: &mut PatternCx<'_>) {
        probe(&mut pipe, cx);
        cx.stats.peers_attached += 1;
        self.pipes.push(pipe);
    }

    fn send(&mut self, msg: Msg, cx: &mut PatternCx<'_>) -> std::result::Result<(), SendError> {
        let r = self.send_part(msg, cx);
        drop_dead(&mut self.pipes, cx);
        r.map(|_| ())
    }

    fn send_slice(&mut self, data: &[u8], more: bool, cx: &mut PatternCx<'_>) -> Result<()> {
        let r = self
            .lb
            .send_slice::<true>(&mut self.pipes, data, more, cx.stats);
        drop_dead(&mut self.pipes, cx);
        r
    }

    fn recv(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        self.lb.direct_armed = true;
        let r = self.recv_part();
        drop_dead(&mut self.pipes, cx);
        let (m, _) = r?;
        if !m.more() {
            cx.stats.received += 1;
        }
        Ok(m)
    }

    fn recv_into(&mut self, out: &mut Msg, cx: &mut PatternCx<'_>) -> Result<()> {
        self.lb.direct_armed = true;
        self.fq.recv_counted(&mut self.pipes, out, cx)
    }

    fn has_in(&mut self, _cx: &mut PatternCx<'_>) -> bool {
        self.lb.direct_armed = true;
        self.fq.has_in(&mut self.pipes)
    }

    fn has_out(&mut self, _cx: &mut PatternCx<'_>) -> bool {
        self.lb.has_out(&mut self.pipes)
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

/// REQ.
#[derive(Debug)]
pub struct Req {
    dealer: Dealer,
    receiving_reply: bool,
    message_begins: bool,
    reply_pipe: Option<PipeId>,
    request_id: u32,
}

impl Default for Req {
    fn default() -> Self {
        Req {
            dealer: Dealer::default(),
            receiving_reply: false,
            message_begins: true,
            reply_pipe: None,
            request_id: initial_request_id(),
        }
    }
}

/// A starting request id that differs between sockets (libzmq starts from a random value).
fn initial_request_id() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() as u32
}

impl Req {
    /// Drops the replies already waiting: they answer older requests.
    fn drop_stale_replies(&mut self, cx: &mut PatternCx<'_>) {
        while let Ok((m, _)) = self.dealer.recv_part() {
            if !m.more() {
                cx.stats.dropped_invalid += 1;
            }
        }
        self.forget_dead(cx);
    }

    fn forget_dead(&mut self, cx: &mut PatternCx<'_>) {
        for p in reap(&mut self.dealer.pipes, cx) {
            if Some(p.id) == self.reply_pipe {
                self.reply_pipe = None;
            }
        }
    }

    /// Reads the next part from the reply pipe, discarding parts from other pipes.
    fn recv_reply_part(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        loop {
            let r = self.dealer.recv_part();
            self.forget_dead(cx);
            let (m, pipe) = r?;
            if self.reply_pipe.is_none() || self.reply_pipe == Some(pipe) {
                return Ok(m);
            }
            if !m.more() {
                cx.stats.dropped_invalid += 1;
            }
        }
    }

    fn skip_rest(&mut self, mut m: Msg, cx: &mut PatternCx<'_>) -> Error {
        while m.more() {
            match self.recv_reply_part(cx) {
                Ok(n) => m = n,
                Err(_) => break,
            }
        }
        cx.stats.dropped_invalid += 1;
        Error::EAGAIN
    }
}

impl Pattern for Req {
    fn attach(&mut self, pipe: Pipe, cx: &mut PatternCx<'_>) {
        self.dealer.attach(pipe, cx);
    }

    fn send(&mut self, msg: Msg, cx: &mut PatternCx<'_>) -> std::result::Result<(), SendError> {
        if self.receiving_reply {
            if !cx.options.req_relaxed {
                return Err(SendError::new(Error::EFSM, msg));
            }
            self.receiving_reply = false;
            self.message_begins = true;
        }
        if self.message_begins && !msg.more() && !cx.options.req_correlate {
            // The send fast path: the delimiter and the body in one direct write, with the
            // stale replies dropped before this request leaves.
            self.drop_stale_replies(cx);
            if let Some(id) =
                self.dealer
                    .lb
                    .try_direct(&mut self.dealer.pipes, &[&[], msg.data()], cx.stats)
            {
                self.reply_pipe = Some(id);
                self.receiving_reply = true;
                return Ok(());
            }
        }
        if self.message_begins {
            self.reply_pipe = None;
            if cx.options.req_correlate {
                self.request_id = self.request_id.wrapping_add(1);
                let id = Msg::copy_from_slice(&self.request_id.to_ne_bytes()).with_more(true);
                if let Err(e) = self.dealer.lb.send(&mut self.dealer.pipes, id) {
                    self.forget_dead(cx);
                    return Err(SendError::new(e.error, msg));
                }
            }
            match self
                .dealer
                .lb
                .send(&mut self.dealer.pipes, Msg::new().with_more(true))
            {
                Ok(p) => self.reply_pipe = p,
                Err(e) => {
                    self.forget_dead(cx);
                    return Err(SendError::new(e.error, msg));
                }
            }
            self.message_begins = false;
            self.drop_stale_replies(cx);
        }
        let more = msg.more();
        let r = self.dealer.send_part(msg, cx);
        self.forget_dead(cx);
        r?;
        if !more {
            self.receiving_reply = true;
            self.message_begins = true;
        }
        Ok(())
    }

    fn recv(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        if !self.receiving_reply {
            return Err(Error::EFSM);
        }
        self.dealer.lb.direct_armed = true;
        if self.message_begins {
            let mut m = self.recv_reply_part(cx)?;
            if cx.options.req_correlate {
                if !m.more() || m.len() != 4 || m.data() != self.request_id.to_ne_bytes() {
                    return Err(self.skip_rest(m, cx));
                }
                m = self.recv_reply_part(cx)?;
            }
            if !m.more() || !m.is_empty() {
                return Err(self.skip_rest(m, cx));
            }
            self.message_begins = false;
        }
        let m = self.recv_reply_part(cx)?;
        if !m.more() {
            self.receiving_reply = false;
            self.message_begins = true;
            cx.stats.received += 1;
        }
        Ok(m)
    }

    fn has_in(&mut self, cx: &mut PatternCx<'_>) -> bool {
        self.receiving_reply && self.dealer.has_in(cx)
    }

    fn copy_hint(&self) -> zeroring_engine::CopyHint {
        self.dealer.pipes.copy_hint()
    }

    fn has_out(&mut self, cx: &mut PatternCx<'_>) -> bool {
        (!self.receiving_reply || cx.options.req_relaxed) && self.dealer.has_out(cx)
    }

    fn disconnect(&mut self, endpoint: &str, cx: &mut PatternCx<'_>) -> usize {
        let n = self.dealer.pipes.kill_endpoint(endpoint);
        self.dealer.fq.forget_disconnected(&self.dealer.pipes);
        self.forget_dead(cx);
        n
    }

    fn peers(&self) -> usize {
        self.dealer.peers()
    }

    fn pipes_mut(&mut self) -> Option<&mut super::Pipes> {
        self.dealer.pipes_mut()
    }

    fn ready_list(&self) -> Option<std::sync::Arc<super::fq::ReadyList>> {
        Some(self.dealer.fq.ready_list())
    }
}

/// REP.
#[derive(Debug)]
pub struct Rep {
    pipes: Pipes,
    fq: Fq,
    sending_reply: bool,
    request_begins: bool,
    /// The request's envelope, delimiter included.
    envelope: Vec<Msg>,
    reply_pipe: Option<PipeId>,
    /// The reply being sent is dropped (peer gone or full).
    dropping: bool,
    /// The first part of the reply has been handled.
    reply_started: bool,
    /// A reply may be written directly (see [`Lb::direct_armed`]; a REP alternates, so this
    /// is set again by every receive).
    direct_armed: bool,
}

impl Default for Rep {
    fn default() -> Self {
        Rep {
            pipes: Pipes::default(),
            fq: Fq::default(),
            sending_reply: false,
            request_begins: true,
            envelope: Vec::new(),
            reply_pipe: None,
            dropping: false,
            reply_started: false,
            direct_armed: true,
        }
    }
}

impl Pattern for Rep {
    fn attach(&mut self, pipe: Pipe, cx: &mut PatternCx<'_>) {
        cx.stats.peers_attached += 1;
        self.pipes.push(pipe);
    }

    fn recv(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        if self.sending_reply {
            return Err(Error::EFSM);
        }
        self.direct_armed = true;
        let r = self.recv_inner(cx);
        drop_dead(&mut self.pipes, cx);
        r
    }

    fn send(&mut self, msg: Msg, cx: &mut PatternCx<'_>) -> std::result::Result<(), SendError> {
        if !self.sending_reply {
            return Err(SendError::new(Error::EFSM, msg));
        }
        let more = msg.more();
        if !self.reply_started && !more && self.try_direct_reply(&msg, cx) {
            return Ok(());
        }
        if !self.reply_started {
            self.reply_started = true;
            self.dropping = true;
            let envelope = std::mem::take(&mut self.envelope);
            if let Some(i) = self.reply_pipe.and_then(|id| self.pipes.index_of(id)) {
                let w = &mut self.pipes.list[i].writer;
                let mut parts = envelope.into_iter();
                if let Some(first) = parts.next() {
                    match super::write_or_drop(w, first) {
                        Ok(()) => {
                            self.dropping = false;
                            for p in parts {
                                let _ = w.write(p);
                            }
                        }
                        Err(WriteError::Full(_)) => cx.stats.dropped_hwm += 1,
                        Err(WriteError::Closed(_)) => {
                            self.pipes.write_closed(i);
                            cx.stats.dropped_unroutable += 1;
                        }
                    }
                }
            } else {
                cx.stats.dropped_unroutable += 1;
            }
        }
        if !self.dropping {
            if let Some(p) = self.reply_pipe.and_then(|id| self.pipes.get_mut(id)) {
                let _ = p.writer.write(msg);
                if !more {
                    p.writer.flush();
                    cx.stats.sent += 1;
                }
            }
        }
        if !more {
            self.end_reply();
        }
        drop_dead(&mut self.pipes, cx);
        Ok(())
    }

    fn has_in(&mut self, _cx: &mut PatternCx<'_>) -> bool {
        !self.sending_reply && self.fq.has_in(&mut self.pipes)
    }

    fn copy_hint(&self) -> zeroring_engine::CopyHint {
        // A reply goes back on the pipe its request came from.
        self.pipes.copy_hint_of(self.reply_pipe)
    }

    fn has_out(&mut self, _cx: &mut PatternCx<'_>) -> bool {
        self.sending_reply
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

impl Rep {
    /// The send fast path for a single-part reply: the envelope and the body in one direct
    /// write to the requester's connection ([`super::direct`]); `false` when it must go
    /// through the pipe.
    fn try_direct_reply(&mut self, msg: &Msg, cx: &mut PatternCx<'_>) -> bool {
        const MAX_PARTS: usize = 8;
        if !self.direct_armed || self.envelope.len() >= MAX_PARTS {
            return false;
        }
        let Some(i) = self.reply_pipe.and_then(|id| self.pipes.index_of(id)) else {
            return false;
        };
        let p = &mut self.pipes.list[i];
        let Some(d) = p.direct.as_mut() else {
            return false;
        };
        let mut parts: [&[u8]; MAX_PARTS] = [&[]; MAX_PARTS];
        for (slot, m) in parts.iter_mut().zip(&self.envelope) {
            *slot = m.data();
        }
        let n = self.envelope.len();
        parts[n] = msg.data();
        if !d.try_write_counted(&p.writer, &parts[..=n], cx.stats) {
            return false;
        }
        self.envelope.clear();
        self.direct_armed = false;
        self.end_reply();
        drop_dead(&mut self.pipes, cx);
        true
    }

    /// The reply's last part is sent (or dropped): back to receiving the next request.
    fn end_reply(&mut self) {
        self.sending_reply = false;
        self.reply_started = false;
        self.dropping = false;
        self.reply_pipe = None;
    }

    fn recv_inner(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        if self.request_begins {
            loop {
                let (m, pipe) = self.fq.recv(&mut self.pipes)?;
                if m.more() {
                    let bottom = m.is_empty();
                    self.envelope.push(m);
                    if bottom {
                        self.reply_pipe = Some(pipe);
                        break;
                    }
                } else {
                    // No delimiter: malformed request, discard it.
                    self.envelope.clear();
                    cx.stats.dropped_invalid += 1;
                }
            }
            self.request_begins = false;
        }
        let (m, _) = self.fq.recv(&mut self.pipes)?;
        if !m.more() {
            self.sending_reply = true;
            self.request_begins = true;
            cx.stats.received += 1;
        }
        Ok(m)
    }
}
