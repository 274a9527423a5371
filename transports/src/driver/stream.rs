//! The engine's half of a stream: one descriptor on an I/O thread, driving a [`StreamCore`]
//! (which owns every decision about the connection) with the engine's operations.
//!
//! Keeps exactly one receive armed while the core wants input — single-shot (one buffer) at
//! the start and for a while after each pause, so that a connection at its high-water mark
//! takes in at most one buffer more; multishot otherwise, cancelled when the core pauses —,
//! at most one batched send in flight — small frames and large bodies as
//! iovec entries, never copied — and one timer for the core's next deadline. Pipe wake-ups and
//! ZAP replies arrive as handler notifications.
//!
//! It must never block, and never decide anything the simulator could not replay: all of that
//! lives in [`super::stream_core`].

use std::sync::{Arc, Mutex};
use std::time::Instant;

use zeroring_engine::pipe::Notify;
use zeroring_engine::{Completion, Cx, HandlerId, IoThreadHandle, Op, OpId, SharedFd, TimerId};

use super::stream_core::{Kept, Status, StreamCore};
use super::Link;
use crate::zmtp::{ConnectionConfig, ZapError, ZapReply};

/// Most buffers handed to one send.
const MAX_SEND_CHUNKS: usize = 256;

/// Receives armed single-shot (one provided buffer each, at most
/// [`RECV_ONCE_MAX`](zeroring_engine::RECV_ONCE_MAX) of it, [`Op::RecvOnce`]) at the start of a
/// connection and after each pause, before the stream goes back to one multishot receive.
/// While the socket's pipe keeps filling up, every receive asks the kernel for that much, so
/// a paused connection takes in at most `RECV_ONCE_MAX` past the message it could not deliver
/// (a multishot receive goes on filling whole buffers until its cancel reaches the kernel: up
/// to a batch of them). 64 receives = up to 1 MiB that flowed without a pause.
const SINGLE_SHOT_RUN: u32 = 64;

/// A large frame body with at least this much still to come after a receive is lent to an
/// [`Op::RecvInto`], which has the kernel write the rest where the part keeps it: one
/// receive for the rest of the body, no receive buffer and no copy (libzmq's decoder reads a
/// large body straight into its message the same way). One single-shot receive's worth
/// ([`RECV_ONCE_MAX`](zeroring_engine::RECV_ONCE_MAX)): for less, the next receive takes it
/// with the frames after it.
const LEND_MIN: usize = zeroring_engine::RECV_ONCE_MAX;

/// Notification tokens the stream's handler forwards to it.
pub(crate) const TOKEN_PIPE_READABLE: u64 = 1;
pub(crate) const TOKEN_PIPE_WRITABLE: u64 = 2;
pub(crate) const TOKEN_ZAP: u64 = 3;
/// The application's direct write ended with the I/O side waiting, or left bytes behind.
pub(crate) const TOKEN_DIRECT: u64 = 4;
/// First token free for the owning handler's own use.
pub(crate) const TOKEN_OWNER_BASE: u64 = 16;

/// Wakes a handler on its I/O thread when a pipe changes state.
struct HandlerNotify {
    thread: IoThreadHandle,
    handler: HandlerId,
    token: u64,
}

impl Notify for HandlerNotify {
    fn notify(&self) {
        let _ = self.thread.notify(self.handler, self.token);
    }
}

pub(crate) struct Stream {
    fd: SharedFd,
    core: StreamCore,
    link: Link,
    recv: Option<OpId>,
    /// The armed receive was asked to stop (the core paused); it ends on its own time.
    recv_cancelled: bool,
    sending: Option<OpId>,
    timer: Option<(TimerId, Instant)>,
    zap: Arc<Mutex<Option<Result<ZapReply, ZapError>>>>,
    done: bool,
    /// The buffer list of the last finished send, reused for the next one.
    spare_bufs: Vec<zeroring_engine::SendBuf>,
    /// Receives still to arm single-shot (see [`SINGLE_SHOT_RUN`]); multishot at zero.
    single_shot_left: u32,
    /// The armed receive is the multishot one.
    recv_multishot: bool,
    /// Wakes this stream when the application's direct write ends (TOKEN_DIRECT; see
    /// [`StreamCore::offer_output`]).
    direct_notify: Option<zeroring_engine::pipe::NotifyHandle>,
}

impl Stream {
    /// A stream of `config.socket_type`: raw bytes for STREAM, ZMTP for every other type.
    pub(crate) fn new(
        fd: SharedFd,
        config: ConnectionConfig,
        link: Link,
        endpoint: Arc<str>,
        now: Instant,
    ) -> Result<Self, crate::zmtp::ConfigError> {
        let raw_fd = std::os::fd::AsRawFd::as_raw_fd(&*fd);
        let core = StreamCore::new(config, link.clone(), endpoint, raw_fd as u32, now)?;
        Ok(Stream {
            fd,
            core,
            link,
            recv: None,
            recv_cancelled: false,
            sending: None,
            timer: None,
            zap: Arc::new(Mutex::new(None)),
            done: false,
            spare_bufs: Vec::new(),
            single_shot_left: SINGLE_SHOT_RUN,
            recv_multishot: false,
            direct_notify: None,
        })
    }

    /// See [`StreamCore::keep_pipes`].
    pub(crate) fn keep_pipes(&mut self, key: u64, kept: Option<Kept>) {
        self.core.keep_pipes(key, kept);
    }

    /// The pipes to keep for the next connection, after the stream ended.
    pub(crate) fn take_kept(&mut self) -> Option<Kept> {
        self.core.take_kept()
    }

    /// Starts receiving and sends the greeting.
    pub(crate) fn start(&mut self, cx: &mut Cx<'_>) -> Status {
        let me = cx.id().expect("streams run inside handlers");
        let notify = |token| {
            Arc::new(HandlerNotify {
                thread: cx.handle().clone(),
                handler: me,
                token,
            })
        };
        let (readable, writable) = (notify(TOKEN_PIPE_READABLE), notify(TOKEN_PIPE_WRITABLE));
        self.core.set_notify(readable, writable);
        self.direct_notify = Some(notify(TOKEN_DIRECT));
        self.core.start();
        self.pump(cx)
    }

    /// Whether the connection is still in its ZMTP handshake.
    pub(crate) fn in_handshake(&self) -> bool {
        self.core.in_handshake()
    }

    /// Whether the peer's whole greeting arrived.
    pub(crate) fn greeting_received(&self) -> bool {
        self.core.greeting_received()
    }

    /// Ends a handshake still under way as HANDSHAKE_IVL running out would.
    pub(crate) fn expire_handshake(&mut self, cx: &mut Cx<'_>) -> Status {
        self.core.expire_handshake();
        self.pump(cx)
    }

    /// See [`StreamCore::set_monitor_endpoint`].
    pub(crate) fn set_monitor_endpoint(&mut self, endpoint: Arc<str>) {
        self.core.set_monitor_endpoint(endpoint);
    }

    /// How the stream ended, for its session's decision to reconnect.
    pub(crate) fn end(&self) -> super::StreamEnd {
        self.core.end()
    }

    /// Bytes that arrived before the stream existed (behind a SOCKS proxy's reply): decoded
    /// as if just received.
    pub(crate) fn feed(&mut self, cx: &mut Cx<'_>, data: bytes::Bytes) -> Status {
        self.core.handle_input(data, cx.now());
        self.pump(cx)
    }

    /// Whether `op` belongs to this stream.
    pub(crate) fn owns(&self, op: OpId) -> bool {
        self.recv == Some(op) || self.sending == Some(op)
    }

    pub(crate) fn on_completion(
        &mut self,
        cx: &mut Cx<'_>,
        op: OpId,
        completion: Completion<'_>,
        more: bool,
    ) -> Status {
        match completion {
            Completion::Received(result) => {
                if !more && self.recv == Some(op) {
                    self.recv = None;
                    self.recv_cancelled = false;
                }
                match result {
                    Ok(data) if !data.is_empty() => {
                        self.single_shot_left = self.single_shot_left.saturating_sub(1);
                        self.core.handle_input(data, cx.now());
                        self.yield_multishot_to_lend(cx);
                    }
                    Ok(_) => self.core.handle_eof(cx.now()),
                    Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => {}
                    Err(e) => self.core.handle_read_error(read_errno(&e), cx.now()),
                }
            }
            Completion::ReceivedInto { result, buf } => {
                if self.recv == Some(op) {
                    self.recv = None;
                    self.recv_cancelled = false;
                }
                // The body goes back first, whatever happened: an end of stream then finds
                // the frame cut, as it would have with the bytes in a receive buffer.
                self.core.return_body(buf, cx.now());
                match result {
                    Ok(0) => self.core.handle_eof(cx.now()),
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => {}
                    Err(e) => self.core.handle_read_error(read_errno(&e), cx.now()),
                }
            }
            Completion::Sent { result, mut bufs } => {
                // The list comes back for the next send (its buffers are done with).
                bufs.clear();
                self.spare_bufs = bufs;
                self.sending = None;
                self.core.handle_send_result(result.is_ok());
            }
            _ => {}
        }
        self.pump(cx)
    }

    /// After input was decoded: when it left a large body under way and the multishot
    /// receive is still armed, that receive gives way to single-shot ones, so that the rest of
    /// the body can be received where the part keeps it. (Checked here, where the decoder's
    /// state changes, not on every pump.)
    fn yield_multishot_to_lend(&mut self, cx: &mut Cx<'_>) {
        let Some(op) = self.recv else {
            return;
        };
        if self.recv_multishot && !self.recv_cancelled && self.core.can_lend(LEND_MIN) {
            self.single_shot_left = SINGLE_SHOT_RUN;
            self.recv_cancelled = true;
            cx.cancel(op);
        }
    }

    pub(crate) fn on_notify(&mut self, cx: &mut Cx<'_>, token: u64) -> Status {
        match token {
            TOKEN_PIPE_WRITABLE => self.core.pipe_writable(cx.now()),
            TOKEN_ZAP => {
                let reply = self.zap.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(reply) = reply {
                    self.core.zap_reply(reply, cx.now());
                }
            }
            _ => {}
        }
        self.pump(cx)
    }

    pub(crate) fn on_timer(&mut self, cx: &mut Cx<'_>, timer: TimerId) -> Status {
        if self.timer.map(|(t, _)| t) == Some(timer) {
            self.timer = None;
            self.core.handle_timeout(cx.now());
        }
        self.pump(cx)
    }

    /// Ends the stream at once (unbind, disconnect, socket close): pipes closed, operations
    /// cancelled.
    pub(crate) fn stop(&mut self, cx: &mut Cx<'_>) {
        self.core.stop();
        self.release(cx);
    }

    /// Cancels every operation and the timer, once.
    fn release(&mut self, cx: &mut Cx<'_>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        if let Some(op) = self.recv.take() {
            cx.cancel(op);
        }
        if let Some(op) = self.sending.take() {
            cx.cancel(op);
        }
        if let Some((t, _)) = self.timer.take() {
            cx.cancel_timer(t);
        }
    }

    /// Lets the core move everything, then carries out what it asks for.
    fn pump(&mut self, cx: &mut Cx<'_>) -> Status {
        if self.done {
            return Status::Done;
        }
        // The send fast path: the connection's output back from the application before
        // anything is read from the socket's pipe or written (offered again below when there
        // is nothing to send).
        self.core.claim_output();
        let status = self.core.drive();
        while let Some(request) = self.core.poll_zap_request() {
            let slot = self.zap.clone();
            let thread = cx.handle().clone();
            let me = cx.id().expect("streams run inside handlers");
            self.link.zap(
                request,
                Box::new(move |reply| {
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(reply);
                    let _ = thread.notify(me, TOKEN_ZAP);
                }),
            );
        }
        if status == Status::Done {
            self.release(cx);
            return Status::Done;
        }
        // Keep exactly one receive armed while reading is wanted; a receive cancelled by a
        // pause ends on its own time, possibly after the pause is over.
        let wants_recv = self.core.wants_recv();
        if !wants_recv {
            // Paused (or ending): the receives after it ask for one buffer at a time.
            self.single_shot_left = SINGLE_SHOT_RUN;
        }
        match self.recv {
            None if wants_recv => {
                let fd = self.fd.clone();
                let lent = (self.single_shot_left > 0)
                    .then(|| self.core.lend_body(LEND_MIN))
                    .flatten();
                let op = match lent {
                    Some(buf) => {
                        // Large bodies keep the stream single-shot while they come.
                        self.single_shot_left = SINGLE_SHOT_RUN;
                        Op::RecvInto { fd, buf }
                    }
                    None if self.single_shot_left > 0 => Op::RecvOnce { fd },
                    None => Op::Recv { fd },
                };
                self.recv_multishot = matches!(op, Op::Recv { .. });
                self.recv = Some(cx.submit(op));
            }
            Some(op) if !wants_recv && !self.recv_cancelled => {
                self.recv_cancelled = true;
                cx.cancel(op);
            }
            _ => {}
        }
        if self.sending.is_none() {
            let mut bufs = std::mem::take(&mut self.spare_bufs);
            if self.core.poll_transmit_into(&mut bufs, MAX_SEND_CHUNKS) {
                self.sending = Some(cx.submit(Op::Send {
                    fd: self.fd.clone(),
                    bufs,
                    zero_copy: false,
                }));
            } else {
                bufs.clear();
                self.spare_bufs = bufs;
            }
        }
        let (fd, notify) = (&self.fd, &self.direct_notify);
        self.core
            .offer_output(|| Some((fd.clone(), notify.clone()?)));
        self.update_timer(cx);
        Status::Open
    }

    fn update_timer(&mut self, cx: &mut Cx<'_>) {
        let want = self.core.poll_timeout();
        if self.timer.map(|(_, at)| at) == want {
            return;
        }
        if let Some((t, _)) = self.timer.take() {
            cx.cancel_timer(t);
        }
        if let Some(at) = want {
            self.timer = Some((cx.set_timer(at), at));
        }
    }
}

/// The errno of a failed read, as a monitor reports it (EPIPE when the error has none).
fn read_errno(e: &std::io::Error) -> crate::Errno {
    crate::Errno(e.raw_os_error().unwrap_or(libc::EPIPE))
}
