//! STREAM: raw TCP peers (no ZMTP), addressed like ROUTER peers.
//!
//! Every chunk received from a peer is returned as `[routing id, data]`. A peer's arrival and
//! departure are announced as `[routing id, ""]` (libzmq's default ZMQ_STREAM_NOTIFY). To
//! send, name the peer in the first part (with SNDMORE) and give the bytes in the second; an
//! empty second part closes that connection. An unknown routing id gives EHOSTUNREACH and a
//! full peer EAGAIN, as libzmq's stream socket does.
//!
//! As libzmq's: a connecting STREAM gives every connection of one `connect` the same routing
//! id (libzmq keeps the pipe, and so the id, across reconnects); a connection this socket
//! closed itself (an empty part, unbind, disconnect) is not announced as gone;
//! ZMQ_STREAM_NOTIFY off announces nothing. The
//! connect notification and every chunk carry the connection's `Peer-Address`; and each id
//! the socket generates for a new peer becomes its own ROUTING_ID option (libzmq's
//! `stream_t::identify_peer` does so; test_stream_disconnect reads it).

use std::collections::{HashMap, VecDeque};

use std::sync::Arc;

use bytes::Bytes;
use zeroring_engine::{Msg, MsgMetadata};

use super::fq::Fq;
use super::{reap, Pattern, PatternCx, Pipe, PipeId, Pipes, SendError};
use crate::error::{Error, Result};

/// STREAM.
#[derive(Debug)]
pub struct Stream {
    pipes: Pipes,
    fq: Fq,
    by_id: HashMap<Bytes, PipeId>,
    next_id: u32,
    /// Parts ready to hand out: notifications, and the data part after its routing id.
    ready: VecDeque<Msg>,
    more_out: bool,
    current_out: Option<PipeId>,
    /// The routing id each connecter (by transport key) had, for its reconnections: one
    /// entry per `connect` (keys are never reused), dropped when this socket closes the
    /// connection itself.
    by_key: HashMap<u64, Bytes>,
    /// The last id generated for a new peer, not yet copied into ROUTING_ID.
    own_id: Option<Bytes>,
}

impl Default for Stream {
    fn default() -> Self {
        Stream {
            pipes: Pipes::default(),
            fq: Fq::default(),
            by_id: HashMap::new(),
            next_id: std::process::id().wrapping_mul(2_654_435_761),
            ready: VecDeque::new(),
            more_out: false,
            current_out: None,
            by_key: HashMap::new(),
            own_id: None,
        }
    }
}

/// Forgets `p`'s routing id (and its connecter's) so that its end is not announced: the socket
/// is ending it itself.
fn forget(by_id: &mut HashMap<Bytes, PipeId>, by_key: &mut HashMap<u64, Bytes>, p: &Pipe) {
    if by_id.get(&p.routing_id) == Some(&p.id) {
        by_id.remove(&p.routing_id);
    }
    if let Some(k) = p.peer.key {
        by_key.remove(&k);
    }
}

impl Stream {
    fn notify(&mut self, id: Bytes, metadata: Option<Arc<MsgMetadata>>, cx: &PatternCx<'_>) {
        if !cx.options.stream_notify {
            return;
        }
        let mut idm = Msg::from_bytes(id).with_more(true);
        let mut empty = Msg::new();
        if metadata.is_some() {
            idm.set_metadata(metadata.clone());
            empty.set_metadata(metadata);
        }
        self.ready.push_back(idm);
        self.ready.push_back(empty);
    }

    fn cleanup(&mut self, cx: &mut PatternCx<'_>) {
        for p in reap(&mut self.pipes, cx) {
            if self.by_id.get(&p.routing_id) == Some(&p.id) {
                self.by_id.remove(&p.routing_id);
                self.notify(p.routing_id.clone(), None, cx);
            }
            if self.current_out == Some(p.id) {
                self.current_out = None;
            }
        }
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

impl Pattern for Stream {
    fn attach(&mut self, mut pipe: Pipe, cx: &mut PatternCx<'_>) {
        self.cleanup(cx);
        let key = pipe.peer.key;
        let kept = key.and_then(|k| self.by_key.get(&k)).cloned();
        if let Some(id) = kept.clone().filter(|id| self.by_id.contains_key(id)) {
            // The previous connection of this connecter is gone (the transport reconnects
            // only after it ended) though its pipe may still hold unread data: announce it
            // now, so the notices stay in order, and let its data drain under the same id.
            self.by_id.remove(&id);
            self.notify(id, None, cx);
        }
        let id = match kept.or_else(|| pipe.peer.routing_id.clone().filter(|r| !r.is_empty())) {
            Some(rid) if !self.by_id.contains_key(&rid) => rid,
            _ => {
                let id = self.generate_id();
                self.own_id = Some(id.clone());
                id
            }
        };
        if let Some(k) = key {
            self.by_key.insert(k, id.clone());
        }
        pipe.routing_id = id.clone();
        self.by_id.insert(id.clone(), pipe.id);
        cx.stats.peers_attached += 1;
        let metadata = pipe.peer.metadata.clone();
        self.pipes.push(pipe);
        self.notify(id, metadata, cx);
    }

    fn send(&mut self, msg: Msg, cx: &mut PatternCx<'_>) -> std::result::Result<(), SendError> {
        if !self.more_out {
            self.cleanup(cx);
            self.current_out = None;
            if msg.more() {
                let Some(id) = self.by_id.get(msg.data()).copied() else {
                    return Err(SendError::new(Error::EHOSTUNREACH, msg));
                };
                let p = self.pipes.get_mut(id).expect("routing table out of sync");
                if !p.writer.is_writable() {
                    return Err(SendError::new(Error::EAGAIN, msg));
                }
                self.current_out = Some(id);
            }
            // A routing id without MORE is a malformed prefix: ignored, as libzmq does.
            self.more_out = true;
            return Ok(());
        }
        // The data part ends the message whatever its MORE flag says.
        self.more_out = false;
        let Some(id) = self.current_out.take() else {
            cx.stats.dropped_unroutable += 1;
            return Ok(());
        };
        if let Some(p) = self.pipes.get_mut(id) {
            if msg.is_empty() {
                // We close it: no departure notice for it (libzmq terminates the pipe, so
                // nothing is left to report), and the id is free again.
                forget(&mut self.by_id, &mut self.by_key, p);
            }
            // An empty part is passed on too: the connection closes when it reads it.
            if p.writer.write(msg.with_more(false)).is_ok() {
                p.writer.flush();
                cx.stats.sent += 1;
            } else {
                self.pipes.kill(id);
                cx.stats.dropped_unroutable += 1;
            }
        }
        self.cleanup(cx);
        Ok(())
    }

    fn recv(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        if let Some(m) = self.ready.pop_front() {
            if !m.more() {
                cx.stats.received += 1;
            }
            return Ok(m);
        }
        let (m, pipe) = match self.fq.recv(&mut self.pipes) {
            Ok(x) => x,
            Err(e) => {
                self.cleanup(cx);
                return self.ready.pop_front().ok_or(e);
            }
        };
        let id = self
            .pipes
            .get(pipe)
            .map(|p| p.routing_id.clone())
            .unwrap_or_default();
        let mut idm = Msg::from_bytes(id).with_more(true);
        idm.set_metadata(m.metadata().cloned());
        self.ready.push_back(m.with_more(false));
        self.cleanup(cx);
        Ok(idm)
    }

    fn has_in(&mut self, cx: &mut PatternCx<'_>) -> bool {
        if !self.ready.is_empty() || self.fq.has_in(&mut self.pipes) {
            return true;
        }
        // Reading may have found pipes closed: their departure notices count.
        self.cleanup(cx);
        !self.ready.is_empty()
    }

    fn has_out(&mut self, _cx: &mut PatternCx<'_>) -> bool {
        true
    }

    fn ended_by_socket(&mut self, endpoint: &str) {
        for p in self.pipes.iter().filter(|p| p.peer.endpoint == endpoint) {
            forget(&mut self.by_id, &mut self.by_key, p);
        }
    }

    fn disconnect(&mut self, endpoint: &str, cx: &mut PatternCx<'_>) -> usize {
        self.ended_by_socket(endpoint);
        let n = self.pipes.kill_endpoint(endpoint);
        self.fq.forget_disconnected(&self.pipes);
        self.cleanup(cx);
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

    fn take_own_routing_id(&mut self) -> Option<Bytes> {
        self.own_id.take()
    }
}
