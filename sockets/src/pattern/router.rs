//! ROUTER (RFC 28): every incoming message is prefixed with the routing id of the pipe it came
//! from; an outgoing message's first part names the pipe it goes to.
//!
//! Routing ids come from the peer (its ROUTING_ID, or our CONNECT_ROUTING_ID for it) or are
//! generated (5 bytes: a zero byte and a 32-bit counter, like libzmq). A peer whose id is
//! already taken is refused, unless ROUTER_HANDOVER lets it take the id over (the old pipe is
//! closed; a tcp/ipc connection behind it is left open and unread, as libzmq leaves it, and
//! comes back as a newcomer if its connecting session reconnects). Unroutable messages are
//! dropped, or refused with EHOSTUNREACH under ROUTER_MANDATORY; a message to a peer at its
//! high-water mark is dropped, or refused with EAGAIN under ROUTER_MANDATORY.
//!
//! Notices (libzmq's ROUTER_NOTIFY and DISCONNECT_MSG): a peer's arrival and departure can be
//! announced as `[routing id, ""]`, and a departure as `[routing id, DISCONNECT_MSG]`; they
//! queue behind nothing and are handed out between whole messages, never inside one.
//!
//! ROUTER_RAW (deprecated in libzmq, which points to STREAM): set before the first peer, the
//! ROUTER hands every call to a STREAM pattern, and its connections speak raw tcp, with a
//! STREAM's connect and disconnect notices (libzmq 4.3's raw engine sends them).

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use zeroring_engine::Msg;

use super::fq::Fq;
use super::{reap, Pattern, PatternCx, Pipe, PipeId, Pipes, SendError};
use crate::error::{Error, Result};
use crate::options::Value;

/// ZMQ_NOTIFY_CONNECT: announce arrivals.
pub const NOTIFY_CONNECT: i32 = 1;
/// ZMQ_NOTIFY_DISCONNECT: announce departures.
pub const NOTIFY_DISCONNECT: i32 = 2;

/// ROUTER.
#[derive(Debug)]
pub struct Router {
    pipes: Pipes,
    fq: Fq,
    by_id: HashMap<Bytes, PipeId>,
    next_id: u32,
    /// The first part of the incoming message whose routing id was just returned.
    prefetched: Option<Msg>,
    more_in: bool,
    more_out: bool,
    current_out: Option<PipeId>,
    /// Arrival / departure notices waiting to be received: (routing id, body).
    notices: VecDeque<(Bytes, Msg)>,
    /// ROUTER_RAW: a STREAM does the work.
    raw: Option<Box<super::stream::Stream>>,
}

impl Default for Router {
    fn default() -> Self {
        Router {
            pipes: Pipes::default(),
            fq: Fq::default(),
            by_id: HashMap::new(),
            next_id: std::process::id().wrapping_mul(2_654_435_761),
            prefetched: None,
            more_in: false,
            more_out: false,
            current_out: None,
            notices: VecDeque::new(),
            raw: None,
        }
    }
}

impl Router {
    fn cleanup(&mut self, cx: &mut PatternCx<'_>) {
        if self.pipes.retired() != 0 {
            cx.stats.dropped_superseded += self.pipes.sweep_retired();
        }
        for p in reap(&mut self.pipes, cx) {
            if self.by_id.get(&p.routing_id) == Some(&p.id) {
                self.by_id.remove(&p.routing_id);
                if cx.options.router_notify & NOTIFY_DISCONNECT != 0 {
                    self.notices.push_back((p.routing_id.clone(), Msg::new()));
                }
                if let Some(m) = &cx.options.disconnect_msg {
                    self.notices
                        .push_back((p.routing_id.clone(), Msg::from_bytes(m.clone())));
                }
            }
            if self.current_out == Some(p.id) {
                self.current_out = None;
            }
        }
    }

    /// The routing id of the next notice; its body waits as the prefetched part.
    fn next_notice(&mut self) -> Option<Msg> {
        let (id, body) = self.notices.pop_front()?;
        self.prefetched = Some(body.with_more(false));
        self.more_in = true;
        Some(Msg::from_bytes(id).with_more(true))
    }

    fn generate_id(&mut self) -> Bytes {
        loop {
            let mut id = [0u8; 5];
            id[1..].copy_from_slice(&self.next_id.to_be_bytes());
            self.next_id = self.next_id.wrapping_add(1);
            let id = Bytes::copy_from_slice(&id);
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }
}

impl Pattern for Router {
    fn attach(&mut self, mut pipe: Pipe, cx: &mut PatternCx<'_>) {
        if let Some(raw) = &mut self.raw {
            return raw.attach(pipe, cx);
        }
        self.cleanup(cx);
        let id = match pipe.peer.routing_id.clone().filter(|r| !r.is_empty()) {
            Some(rid) => {
                if let Some(&old) = self.by_id.get(&rid) {
                    if !cx.options.router_handover {
                        // Duplicate id: refuse the newcomer.
                        return;
                    }
                    self.by_id.remove(&rid);
                    // A connection is left open and unread (see `Pipes::retire`); an inproc
                    // peer's pipe is closed, as libzmq ends both sockets' ends of it.
                    let wire = self.pipes.get(old).is_some_and(|p| p.direct.is_some());
                    if wire && self.pipes.retire(old) {
                        cx.stats.peers_detached += 1;
                        if self.current_out == Some(old) {
                            self.current_out = None;
                        }
                    } else {
                        self.pipes.kill(old);
                    }
                    self.cleanup(cx);
                }
                rid
            }
            None => self.generate_id(),
        };
        // ZMQ_PROBE_ROUTER: an empty message first. A tcp/ipc pipe gets it from its link as
        // it is made (see `wire::Link`), before the socket takes it from its mailbox.
        if cx.options.probe_router
            && pipe.peer.endpoint.starts_with("inproc://")
            && pipe.writer.write(Msg::new()).is_ok()
        {
            pipe.writer.flush();
        }
        pipe.routing_id = id.clone();
        if cx.options.router_notify & NOTIFY_CONNECT != 0 {
            self.notices.push_back((id.clone(), Msg::new()));
        }
        self.by_id.insert(id, pipe.id);
        cx.stats.peers_attached += 1;
        self.pipes.push(pipe);
    }

    fn send(&mut self, msg: Msg, cx: &mut PatternCx<'_>) -> std::result::Result<(), SendError> {
        if let Some(raw) = &mut self.raw {
            return raw.send(msg, cx);
        }
        if !self.more_out {
            if !msg.more() {
                // A routing id with nothing after it: silently ignored, as libzmq does.
                return Ok(());
            }
            self.cleanup(cx);
            self.current_out = None;
            match self.by_id.get(msg.data()).copied() {
                Some(id) => {
                    let p = self.pipes.get_mut(id).expect("routing table out of sync");
                    // Without ROUTER_MANDATORY "full" drops the message: then with the
                    // reader's live progress, not the socket's lazy view of it.
                    if p.writer.is_writable()
                        || (!cx.options.router_mandatory && p.writer.refresh())
                    {
                        self.current_out = Some(id);
                    } else {
                        let closed = p.writer.is_reader_closed();
                        if closed {
                            if let Some(i) = self.pipes.index_of(id) {
                                self.pipes.write_closed(i);
                            }
                            self.cleanup(cx);
                        }
                        if cx.options.router_mandatory {
                            let e = if closed {
                                Error::EHOSTUNREACH
                            } else {
                                Error::EAGAIN
                            };
                            return Err(SendError::new(e, msg));
                        }
                        if closed {
                            cx.stats.dropped_unroutable += 1;
                        } else {
                            cx.stats.dropped_hwm += 1;
                        }
                    }
                }
                None => {
                    if cx.options.router_mandatory {
                        return Err(SendError::new(Error::EHOSTUNREACH, msg));
                    }
                    cx.stats.dropped_unroutable += 1;
                }
            }
            self.more_out = true;
            return Ok(());
        }
        let more = msg.more();
        if let Some(id) = self.current_out {
            if let Some(p) = self.pipes.get_mut(id) {
                if p.writer.write(msg).is_err() {
                    self.pipes.kill(id);
                    self.current_out = None;
                    cx.stats.dropped_unroutable += 1;
                } else if !more {
                    p.writer.flush();
                    cx.stats.sent += 1;
                }
            }
        }
        if !more {
            self.more_out = false;
            self.current_out = None;
        }
        self.cleanup(cx);
        Ok(())
    }

    fn recv(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        if let Some(raw) = &mut self.raw {
            return raw.recv(cx);
        }
        if let Some(m) = self.prefetched.take() {
            self.more_in = m.more();
            if !self.more_in {
                cx.stats.received += 1;
            }
            return Ok(m);
        }
        if !self.more_in {
            if let Some(m) = self.next_notice() {
                return Ok(m);
            }
        }
        let r = self.fq.recv(&mut self.pipes);
        let (m, pipe) = match r {
            Ok(x) => x,
            Err(e) => {
                self.cleanup(cx);
                if !self.more_in {
                    if let Some(m) = self.next_notice() {
                        return Ok(m);
                    }
                }
                return Err(e);
            }
        };
        if self.more_in {
            self.more_in = m.more();
            if !self.more_in {
                cx.stats.received += 1;
            }
            self.cleanup(cx);
            return Ok(m);
        }
        let id = self
            .pipes
            .get(pipe)
            .map(|p| p.routing_id.clone())
            .unwrap_or_default();
        self.prefetched = Some(m);
        self.more_in = true;
        self.cleanup(cx);
        let mut idm = Msg::from_bytes(id).with_more(true);
        if let Some(md) = self.prefetched.as_ref().and_then(|m| m.metadata()) {
            idm.set_metadata(Some(md.clone()));
        }
        Ok(idm)
    }

    fn has_in(&mut self, cx: &mut PatternCx<'_>) -> bool {
        if let Some(raw) = &mut self.raw {
            return raw.has_in(cx);
        }
        if self.prefetched.is_some() || self.fq.has_in(&mut self.pipes) {
            return true;
        }
        // Reading may have found pipes closed: their departure notices count.
        self.cleanup(cx);
        !self.more_in && !self.notices.is_empty()
    }

    fn copy_hint(&self) -> zeroring_engine::CopyHint {
        // The body parts, after the routing id chose the pipe (ROUTER_RAW: its stream's own).
        if self.raw.is_none() && self.more_out {
            self.pipes.copy_hint_of(self.current_out)
        } else {
            zeroring_engine::CopyHint::Cached
        }
    }

    fn has_out(&mut self, cx: &mut PatternCx<'_>) -> bool {
        if let Some(raw) = &mut self.raw {
            return raw.has_out(cx);
        }
        !cx.options.router_mandatory || self.more_out || self.pipes.any_writable()
    }

    fn disconnect(&mut self, endpoint: &str, cx: &mut PatternCx<'_>) -> usize {
        if let Some(raw) = &mut self.raw {
            return raw.disconnect(endpoint, cx);
        }
        let n = self.pipes.kill_endpoint(endpoint);
        self.fq.forget_disconnected(&self.pipes);
        self.cleanup(cx);
        n
    }

    fn ended_by_socket(&mut self, endpoint: &str) {
        if let Some(raw) = &mut self.raw {
            raw.ended_by_socket(endpoint);
        }
    }

    fn set_option(&mut self, num: i32, value: &Value, _cx: &mut PatternCx<'_>) -> Result<()> {
        if num == crate::options::num::ROUTER_RAW {
            let on = *value == Value::Int(1);
            if on != self.raw.is_some() {
                // Only before the first peer: pipes cannot change hands.
                if !self.pipes.is_empty() || self.raw.as_ref().is_some_and(|r| r.peers() > 0) {
                    return Err(Error::EINVAL);
                }
                self.raw = on.then(Box::default);
            }
        }
        Ok(())
    }

    fn peers(&self) -> usize {
        if let Some(raw) = &self.raw {
            return raw.peers();
        }
        self.pipes.live()
    }

    fn take_retired(&mut self, key: u64) -> Option<Pipe> {
        self.pipes.take_retired(key)
    }

    fn pipes_mut(&mut self) -> Option<&mut super::Pipes> {
        Some(&mut self.pipes)
    }

    fn ready_list(&self) -> Option<std::sync::Arc<super::fq::ReadyList>> {
        if let Some(raw) = &self.raw {
            return raw.ready_list();
        }
        Some(self.fq.ready_list())
    }
}
