//! The ZAP client (RFC 27): a connection's authentication request goes to the handler bound at
//! `inproc://zeromq.zap.01` in the same context, and its reply comes back to the connection.
//!
//! Owns: one exchange per request, over a pipe pair attached to the handler's socket as an
//! inproc DEALER peer (libzmq's session talks to its handler over a pipe the same way), waited
//! on by a short-lived helper thread so the I/O thread that asked never blocks. Must never:
//! answer for a handler that is not there (no handler → the mechanism's own no-handler rule
//! applies before a request is made), or depend on the socket driver (it sits below it).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zeroring_engine::pipe::{pipe, Notify, PipeConfig, ReadError};
use zeroring_engine::Msg;
use zeroring_transports::driver::ZapResponder;
use zeroring_transports::zmtp::{ZapError, ZapReply, ZapRequest};
use zeroring_transports::SocketType;

use crate::attach::{Command, Peer, PeerAttachment};
use crate::context::WeakContext;
use crate::Context;

/// The endpoint libzmq's ZAP handlers bind.
pub const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
const ZAP_NAME: &str = "zeromq.zap.01";

/// How long a handler may take before the request fails (status 500).
const ZAP_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a ZAP handler is bound in `ctx`.
pub(crate) fn handler_bound(ctx: &Context) -> bool {
    ctx.inproc().bound.contains_key(ZAP_NAME)
}

fn failed(request: &ZapRequest) -> Result<ZapReply, ZapError> {
    let mut r = ZapReply::deny(500);
    r.request_id = request.request_id.clone();
    Ok(r)
}

/// Sends `request` to the handler and calls `respond` with its reply (or a 500 when the
/// exchange fails; a reply that is not valid ZAP is passed on as its ZapError, which fails
/// the handshake with HANDSHAKE_FAILED_PROTOCOL as libzmq's ZAP client does).
pub(crate) fn ask(ctx: WeakContext, request: ZapRequest, respond: ZapResponder) {
    // Like the I/O threads, with every signal blocked (libzmq's threads block them all).
    let spawned = zeroring_engine::thread::spawn("zeroring-zap".into(), move || {
        let reply = ctx
            .upgrade()
            .and_then(|ctx| exchange(&ctx, &request))
            .unwrap_or_else(|| failed(&request));
        respond(reply);
    });
    if let Err(e) = spawned {
        log::warn!("zeroring: no thread for a ZAP request: {e}");
    }
}

/// Wakes the helper thread when the handler's reply arrives (or its pipe closes).
#[derive(Default)]
struct Wakeup {
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Notify for Wakeup {
    fn notify(&self) {
        *self.woken.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }
}

impl Wakeup {
    /// Waits for a notification until `deadline`; false when it passed first.
    fn wait_until(&self, deadline: Instant) -> bool {
        let mut woken = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        while !*woken {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            woken = self
                .cv
                .wait_timeout(woken, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *woken = false;
        true
    }
}

fn exchange(ctx: &Context, request: &ZapRequest) -> Option<Result<ZapReply, ZapError>> {
    // The handler went away since the connection checked for one: as when it leaves
    // mid-exchange (below).
    let Some(sender) = ctx.inproc().bound.get(ZAP_NAME).map(|b| b.sender.clone()) else {
        return Some(Err(ZapError::HandlerGone));
    };
    // One request and one reply: no high-water mark to respect.
    let (mut to_handler, handler_reads) = pipe::<Msg>(PipeConfig::with_hwm(0));
    let (handler_writes, mut from_handler) = pipe::<Msg>(PipeConfig::with_hwm(0));
    let wake = Arc::new(Wakeup::default());
    from_handler.set_notify(Some(wake.clone()));
    // The handler sees what it saw from libzmq's session, or from a DEALER connected over
    // inproc: a peer with no routing id of its own.
    let peer = Peer {
        routing_id: Some(Bytes::new()),
        socket_type: SocketType::Dealer,
        metadata: None,
        endpoint: ZAP_ENDPOINT.to_string(),
        conflate: false,
        key: None,
    };
    let theirs = PeerAttachment::new(handler_writes, handler_reads, peer);
    if sender.send(Command::Attach(Box::new(theirs))).is_err() {
        return Some(Err(ZapError::HandlerGone));
    }
    // The frames start with the empty delimiter a REQ would add: they go as they are.
    let frames = request.frames();
    let last = frames.len().saturating_sub(1);
    for (i, f) in frames.into_iter().enumerate() {
        if to_handler
            .write(Msg::from_bytes(f).with_more(i < last))
            .is_err()
        {
            return Some(Err(ZapError::HandlerGone));
        }
    }
    to_handler.flush();
    let deadline = Instant::now() + ZAP_TIMEOUT;
    let mut reply: Vec<Bytes> = Vec::new();
    loop {
        match from_handler.read() {
            Ok(m) => {
                let more = m.more();
                reply.push(m.into_bytes());
                if !more {
                    break;
                }
            }
            Err(ReadError::Empty) => {
                if !wake.wait_until(deadline) {
                    return None;
                }
            }
            // The handler closed its socket without replying (libzmq: its session's ZAP pipe
            // terminates; the handshake fails with no detail, EPIPE).
            Err(_) => return Some(Err(ZapError::HandlerGone)),
        }
    }
    Some(ZapReply::parse(&reply))
}
