//! The ZAP client (RFC 27): a connection's authentication request goes to the handler bound at
//! `inproc://zeromq.zap.01` in the same context, and its reply comes back to the connection.
//!
//! Owns: one exchange per request, on a short-lived helper thread with a DEALER socket, so the
//! I/O thread that asked never blocks. Must never: answer for a handler that is not there (no
//! handler → the mechanism's own no-handler rule applies before a request is made).

use std::time::Duration;

use bytes::Bytes;
use zeroring_transports::driver::ZapResponder;
use zeroring_transports::zmtp::{ZapError, ZapReply, ZapRequest};
use zeroring_transports::SocketType;

use crate::context::WeakContext;
use crate::Context;

/// The endpoint libzmq's ZAP handlers bind.
pub const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// How long a handler may take before the request fails (status 500).
const ZAP_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a ZAP handler is bound in `ctx`.
pub(crate) fn handler_bound(ctx: &Context) -> bool {
    ctx.inproc().bound.contains_key("zeromq.zap.01")
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

fn exchange(ctx: &Context, request: &ZapRequest) -> Option<Result<ZapReply, ZapError>> {
    let s = ctx.socket(SocketType::Dealer).ok()?;
    s.set_linger(0).ok()?;
    s.set_rcvtimeo(ZAP_TIMEOUT.as_millis() as i32).ok()?;
    s.set_sndtimeo(ZAP_TIMEOUT.as_millis() as i32).ok()?;
    s.connect(ZAP_ENDPOINT).ok()?;
    // The frames start with the empty delimiter a REQ would add: a DEALER sends them as they are.
    let frames = request.frames();
    s.send_multipart(frames.iter().map(|f| f.as_ref()), 0)
        .ok()?;
    let reply: Vec<Bytes> = s
        .recv_multipart(0)
        .ok()?
        .into_iter()
        .map(Bytes::from)
        .collect();
    Some(ZapReply::parse(&reply))
}
