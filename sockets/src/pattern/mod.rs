//! Sans-IO pattern logic: plain structs over a set of pipe endpoints. No threads, no clocks, no
//! blocking: every operation either completes or says [`Error::EAGAIN`], and the driver (the
//! [`Socket`](crate::Socket) today, the simulator later) decides whether to wait. Pipes notify
//! the socket's signal by themselves; a pattern only reads and writes them.
//!
//! - [`lb`]: load-balancing of outgoing messages (PUSH, DEALER, REQ).
//! - [`fq`]: fair-queuing of incoming messages (PULL, DEALER, ROUTER, REP, SUB).
//! - [`dist`]: distribution to many pipes (PUB, XPUB, XSUB's upstream).
//! - [`Pipe`], [`Pipes`]: the socket's pipes as a pattern sees them.
//! - [`trie`]: subscription tries.
//! - one module per socket family: [`pair`], [`pipeline`], [`reqrep`], [`router`], [`pubsub`].

pub mod direct;
pub mod dist;
pub mod fq;
pub mod lb;
pub mod pair;
pub mod pipeline;
mod pipes;
pub mod pubsub;
pub mod reqrep;
pub mod router;
pub mod stream;
pub mod trie;

use std::fmt;
use std::sync::Arc;

use zeroring_engine::pipe::{PipeWriter, WriteError};
use zeroring_engine::Msg;
use zeroring_transports::socket_type::SocketType;

use crate::error::{Error, Result};
use crate::options::{Options, Value};

pub use pipes::{Peer, Pipe, PipeId, PipeIdHasher, PipeIdState, Pipes};

/// What a socket counts. Messages (not parts) except where said.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Messages handed to pipes.
    pub sent: u64,
    /// Of those, messages the socket's thread wrote straight to their connection (the send
    /// fast path, [`direct`]).
    pub sent_direct: u64,
    /// Of those, messages the connection took only in part: the I/O thread wrote the rest.
    pub sent_direct_partial: u64,
    /// Messages delivered to the user.
    pub received: u64,
    /// Messages dropped because a peer's pipe was at its high-water mark (PUB, XPUB, ROUTER;
    /// counted once per peer that missed the message).
    pub dropped_hwm: u64,
    /// Messages dropped because no peer could take them: ROUTER to an unknown routing id, REP
    /// reply to a peer that left, a message to a pipe that closed mid-way.
    pub dropped_unroutable: u64,
    /// Incoming messages discarded by the pattern: REQ's stale or malformed replies, REP's
    /// malformed requests.
    pub dropped_invalid: u64,
    /// Incoming messages a ROUTER never read from a connection whose routing id a newer peer
    /// took over (ROUTER_HANDOVER; the connection stays open and unread, as libzmq leaves
    /// it): counted when that connection ends.
    pub dropped_superseded: u64,
    /// Incoming messages filtered out by subscriptions (SUB/XSUB: not losses, counted for
    /// observability).
    pub filtered: u64,
    /// Pipes attached since the socket was created.
    pub peers_attached: u64,
    /// Pipes detached since the socket was created.
    pub peers_detached: u64,
    /// XPUB: times a peer's pipe was left unread because the user had RCVHWM messages
    /// (subscriptions) unread — backpressure on that peer, nothing dropped.
    pub reads_deferred: u64,
}

/// What a pattern may look at while it runs.
#[derive(Debug)]
pub struct PatternCx<'a> {
    /// The socket's options.
    pub options: &'a Options,
    /// The socket's counters.
    pub stats: &'a mut Stats,
}

/// The old name of [`PatternCx`], kept so that code written against it still builds.
#[deprecated(
    since = "0.1.0",
    note = "renamed PatternCx (the engine's Cx is an I/O handler's)"
)]
pub type Cx<'a> = PatternCx<'a>;

/// A failed send: the error and the message, handed back so that a blocking send can retry.
#[derive(Debug)]
pub struct SendError {
    /// Why.
    pub error: Error,
    /// The part that was not sent.
    pub msg: Msg,
}

impl SendError {
    /// Builds one.
    pub fn new(error: Error, msg: Msg) -> Self {
        SendError { error, msg }
    }
}

/// One socket type's behaviour.
pub trait Pattern: Send + fmt::Debug {
    /// A new peer joined. The pattern owns the pipe from now on (it may refuse it by dropping
    /// it, e.g. a second PAIR peer).
    fn attach(&mut self, pipe: Pipe, cx: &mut PatternCx<'_>);

    /// Sends one part; `EAGAIN` means "would block". Most types keep the parts of a message
    /// staged and flush at its last part.
    fn send(&mut self, msg: Msg, cx: &mut PatternCx<'_>) -> std::result::Result<(), SendError> {
        let _ = cx;
        Err(SendError::new(Error::ENOTSUP, msg))
    }

    /// [`Pattern::send`] of a part given as a body to copy (`more`: parts follow); on
    /// failure nothing was copied and the caller still has the body. The types on the
    /// throughput path override it to build the part in the pipe's slot.
    fn send_slice(&mut self, data: &[u8], more: bool, cx: &mut PatternCx<'_>) -> Result<()> {
        let how = if data.len() >= zeroring_engine::stream_copy::STREAM_MIN {
            self.copy_hint()
        } else {
            zeroring_engine::CopyHint::Cached
        };
        let mut m = Msg::copy_with_hint(data, how);
        m.set_more(more);
        self.send(m, cx).map_err(|e| e.error)
    }

    /// How [`Pattern::send_slice`] writes the next part's copy: streamed past the cache when
    /// every pipe it may go to leads to a connection, whose kernel reads it only after the
    /// parts queued ahead of it ([`Pipe::copy_hint`]). Asked only for large bodies.
    fn copy_hint(&self) -> zeroring_engine::CopyHint {
        zeroring_engine::CopyHint::Cached
    }

    /// Receives one part; `EAGAIN` means "nothing now".
    fn recv(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        let _ = cx;
        Err(Error::ENOTSUP)
    }

    /// [`Pattern::recv`] into a part the caller reuses (`zmq_msg_recv`'s shape); `out` is left
    /// as it was on error. The types on the throughput path override it to move the part from
    /// the pipe straight into `out`.
    fn recv_into(&mut self, out: &mut Msg, cx: &mut PatternCx<'_>) -> Result<()> {
        *out = self.recv(cx)?;
        Ok(())
    }

    /// Whether a recv could succeed now (ZMQ_EVENTS' POLLIN; may be a hint).
    fn has_in(&mut self, cx: &mut PatternCx<'_>) -> bool;

    /// Whether a send could succeed now (ZMQ_EVENTS' POLLOUT).
    fn has_out(&mut self, cx: &mut PatternCx<'_>) -> bool;

    /// Pattern-specific option actions (SUBSCRIBE, UNSUBSCRIBE, XPUB_WELCOME_MSG …), called
    /// after the value was validated and stored. Returns an error to reject it.
    fn set_option(&mut self, num: i32, value: &Value, cx: &mut PatternCx<'_>) -> Result<()> {
        let _ = (num, value, cx);
        Ok(())
    }

    /// The transport reconnected the pipe with transport key `key` to a new peer (it keeps
    /// pipes across reconnects): XSUB/SUB send their subscriptions again (libzmq's hiccup).
    fn hiccup(&mut self, key: u64, cx: &mut PatternCx<'_>) {
        let _ = (key, cx);
    }

    /// The pipe with transport key `key` that the pattern took out of service without closing
    /// it (a ROUTER's connection whose id a newer peer took over), now that its connecting
    /// session has reconnected with it: the socket attaches it again as a newcomer.
    fn take_retired(&mut self, key: u64) -> Option<Pipe> {
        let _ = key;
        None
    }

    /// ZMQ_TOPICS_COUNT, for the types that have subscriptions.
    fn topics_count(&mut self, cx: &mut PatternCx<'_>) -> Option<usize> {
        let _ = cx;
        None
    }

    /// Closes the pipes of an endpoint (inproc `disconnect`, a connect's pipe at
    /// `zmq_disconnect`); returns how many. The socket ends them itself, so this covers
    /// [`Pattern::ended_by_socket`] too.
    fn disconnect(&mut self, endpoint: &str, cx: &mut PatternCx<'_>) -> usize;

    /// The socket itself is ending the connections of `endpoint` (unbind, disconnect): their
    /// pipes close as the transport lets go of them. STREAM announces no departure for
    /// those, as libzmq's raw engine announces only the ends it did not choose. The default
    /// does nothing.
    fn ended_by_socket(&mut self, endpoint: &str) {
        let _ = endpoint;
    }

    /// Number of attached pipes whose peer is still there.
    fn peers(&self) -> usize;

    /// The list that reports pipes readable again, for patterns that fair-queue their input
    /// (the socket installs [`fq::ReadyList::notify_for`] on each pipe's reader).
    fn ready_list(&self) -> Option<Arc<fq::ReadyList>> {
        None
    }

    /// A routing id the pattern gave itself since last asked, for the socket's ROUTING_ID
    /// option (libzmq's STREAM copies each generated peer id into it).
    fn take_own_routing_id(&mut self) -> Option<bytes::Bytes> {
        None
    }

    /// The live pipes, for what applies to each (a change of SNDHWM/RCVHWM).
    fn pipes_mut(&mut self) -> Option<&mut Pipes> {
        None
    }
}

/// The pattern for a socket type; ENOTSUP... EINVAL for types not available yet.
pub fn new_pattern(t: SocketType) -> Result<Box<dyn Pattern>> {
    Ok(match t {
        SocketType::Pair => Box::new(pair::Pair::default()),
        SocketType::Push => Box::new(pipeline::Push::default()),
        SocketType::Pull => Box::new(pipeline::Pull::default()),
        SocketType::Req => Box::new(reqrep::Req::default()),
        SocketType::Rep => Box::new(reqrep::Rep::default()),
        SocketType::Dealer => Box::new(reqrep::Dealer::default()),
        SocketType::Router => Box::new(router::Router::default()),
        SocketType::Pub => Box::new(pubsub::XPub::new(false)),
        SocketType::XPub => Box::new(pubsub::XPub::new(true)),
        SocketType::Sub => Box::new(pubsub::XSub::new(false)),
        SocketType::XSub => Box::new(pubsub::XSub::new(true)),
        SocketType::Stream => Box::new(stream::Stream::default()),
        _ => return Err(Error::EINVAL),
    })
}

/// A write whose "full" drops the message (PUB, a ROUTER without ROUTER_MANDATORY, REP's
/// reply) rather than refusing it with EAGAIN: before giving up it looks at the reader's live
/// progress, so a socket's lazy view of its readers (see `engine::pipe`, "Lazy credit") never
/// costs a message.
#[inline(always)]
pub(crate) fn write_or_drop(
    w: &mut PipeWriter<Msg>,
    m: Msg,
) -> std::result::Result<(), WriteError<Msg>> {
    match w.write(m) {
        Err(WriteError::Full(m)) if w.refresh() => w.write(m),
        r => r,
    }
}

/// Counts a load-balanced send's outcome once its message is complete: sent, or dropped
/// because its pipe went away mid-message.
#[inline(always)]
pub(crate) fn count_sent<E>(
    r: &std::result::Result<Option<PipeId>, E>,
    more: bool,
    cx: &mut PatternCx<'_>,
) {
    match r {
        Ok(Some(_)) if !more => cx.stats.sent += 1,
        Ok(None) if !more => cx.stats.dropped_unroutable += 1,
        _ => {}
    }
}

/// Takes the pipes found dead, counting them (dropping the result closes them).
#[inline(always)]
pub(crate) fn reap(pipes: &mut Pipes, cx: &mut PatternCx<'_>) -> Vec<Pipe> {
    if pipes.dead.is_empty() {
        return Vec::new();
    }
    reap_dead(pipes, cx)
}

/// Drops the pipes found dead, counting them: [`reap`] for a caller with nothing to clean up.
#[inline(always)]
pub(crate) fn drop_dead(pipes: &mut Pipes, cx: &mut PatternCx<'_>) {
    if !pipes.dead.is_empty() {
        drop_dead_slow(pipes, cx);
    }
}

#[cold]
#[inline(never)]
fn drop_dead_slow(pipes: &mut Pipes, cx: &mut PatternCx<'_>) {
    drop(reap_dead(pipes, cx));
}

/// [`reap`] when there is something to reap: out of line, so that every send and receive
/// pays one load and a branch for it.
#[cold]
#[inline(never)]
fn reap_dead(pipes: &mut Pipes, cx: &mut PatternCx<'_>) -> Vec<Pipe> {
    let dead = pipes.take_dead();
    cx.stats.peers_detached += dead.len() as u64;
    dead
}

#[cfg(test)]
mod tests;
