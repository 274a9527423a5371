//! Connecting sessions: the handlers that connect, run a `Stream`, and after a failure or a
//! disconnect wait (libzmq's reconnect schedule) and connect again, until stopped. (An
//! accepted session, which lives as long as its one connection, is `accepted.rs`'s; the
//! tokens and the linger state both kinds answer to are here.)
//!
//! The connecting session is the engine's driver of a [`SessionCore`]: the core decides when
//! to connect, how long to wait, which pipes the next stream keeps and how long to linger;
//! this file only makes descriptors, submits the connect, arms the core's one timer, runs the
//! stream, and holds the linger guard that `term` waits on. Starting one, and the handle its
//! socket keeps, are `connect.rs`'s.
//!
//! Must never: decide any of the core's questions itself, or keep a descriptor after
//! stopping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use socket2::{Domain, SockAddr, Socket, Type};
use zeroring_engine::{Completion, Cx, Handler, Op, OpId, SendBuf, SharedFd, TimerId};

use super::linger::{self, LingerGuard, LingerSlot};
use super::netopts::TransportOptions;
use super::session_core::{SessionAction, SessionCore, StreamEnd};
use super::socks::{SocksClient, Step};
use super::stream::{Stream, TOKEN_OWNER_BASE};
use super::stream_core::Status;
use super::Link;
use crate::zmtp::ConnectionConfig;

/// Stop the session (unbind, disconnect).
pub(crate) const TOKEN_STOP: u64 = TOKEN_OWNER_BASE;
/// The socket closed: deliver what is queued within the order left in the session's slot.
pub(crate) const TOKEN_LINGER: u64 = TOKEN_OWNER_BASE + 1;

/// A session's linger after its socket closed: the guard that `term` waits on, and the
/// deadline timer.
#[derive(Debug, Default)]
pub(super) struct LingerState {
    guard: Option<LingerGuard>,
    timer: Option<TimerId>,
}

impl LingerState {
    /// Takes the order left in `slot`; false when it says "stop now" (LINGER 0).
    pub(super) fn begin(&mut self, cx: &mut Cx<'_>, slot: &LingerSlot) -> bool {
        let Some(order) = linger::take(slot) else {
            return false;
        };
        if order.limit == Some(Duration::ZERO) {
            return false;
        }
        if let Some(limit) = order.limit {
            self.timer = Some(cx.set_timer(cx.now() + limit));
        }
        self.guard = Some(order.guard);
        true
    }

    pub(super) fn is_deadline(&self, timer: TimerId) -> bool {
        self.timer == Some(timer)
    }
}

/// Where a connecting session connects.
#[derive(Clone, Debug)]
pub struct ConnectTarget {
    /// The endpoint as the user wrote it (monitor events carry it).
    pub endpoint: String,
    /// The resolved peer address.
    pub addr: SockAddr,
    /// tcp (true) or ipc.
    pub tcp: bool,
    /// Source address to bind first (`tcp://src;dst`).
    pub source: Option<SockAddr>,
    /// Set when the endpoint names a host: `addr` and `source` are resolved from it again
    /// before every attempt (a failed resolution is retried like a refused connect).
    pub resolve: Option<super::address::Resolve>,
}

/// The I/O under way: the SessionCore decides, this carries it out.
enum Io {
    Idle,
    Connecting {
        fd: SharedFd,
        op: OpId,
    },
    /// Connected to the SOCKS proxy: the exchange before ZMTP (to the core, still the connect
    /// attempt). One multishot receive stays armed throughout (`recv`); `send` is the write in
    /// flight; `timer` bounds the exchange (HANDSHAKE_IVL). After the proxy's last reply,
    /// `draining` collects what the cancelled receive still delivers (the server's first
    /// bytes), for the stream to start with.
    Socks {
        fd: SharedFd,
        recv: OpId,
        recv_live: bool,
        send: Option<OpId>,
        client: Box<SocksClient>,
        timer: Option<TimerId>,
        draining: Option<Vec<u8>>,
    },
    Up(Box<Stream>),
}

/// Connects, runs the stream, reconnects: the engine's driver of a [`SessionCore`].
pub(crate) struct ConnectSession {
    target: ConnectTarget,
    endpoint: Arc<str>,
    opts: TransportOptions,
    config: ConnectionConfig,
    link: Link,
    core: SessionCore,
    io: Io,
    /// The timer armed for the core's `poll_timeout`, and when it fires.
    timer: Option<(TimerId, Instant)>,
    slot: LingerSlot,
    /// Held while the core lingers, so that `term` waits for it.
    guard: Option<LingerGuard>,
}

impl ConnectSession {
    /// A session for `target` (`endpoint`: its endpoint as written, shared), deciding by
    /// `core`; `slot` is where its socket leaves the linger order
    /// ([`super::connect::ConnectHandle::linger`]).
    pub(super) fn new(
        target: ConnectTarget,
        endpoint: Arc<str>,
        opts: TransportOptions,
        config: ConnectionConfig,
        link: Link,
        core: SessionCore,
        slot: LingerSlot,
    ) -> Self {
        ConnectSession {
            endpoint,
            target,
            opts,
            config,
            link,
            core,
            io: Io::Idle,
            timer: None,
            slot,
            guard: None,
        }
    }

    /// Carries out what the core asks for until it asks nothing more, reports its monitor
    /// events, and re-arms the one timer.
    fn pump(&mut self, cx: &mut Cx<'_>) {
        while let Some(action) = self.core.poll_action() {
            match action {
                SessionAction::Connect => self.attempt(cx),
                SessionAction::CancelConnect => match &self.io {
                    Io::Connecting { op, .. } => cx.cancel(*op),
                    // Its receive's end reports the failure.
                    Io::Socks { recv, .. } => cx.cancel(*recv),
                    _ => {}
                },
                SessionAction::StopStream => {
                    if let Io::Up(stream) = &mut self.io {
                        stream.stop(cx);
                    }
                    self.io = Io::Idle;
                }
                SessionAction::Close => {
                    if let Some(key) = self.core.gave_up() {
                        // Before the last events: a monitor that sees the refused attempt's
                        // CLOSED finds the endpoint already forgotten at its socket's next
                        // call (its mailbox holds the order first).
                        self.link.gave_up(key);
                    }
                    self.report();
                    if let Io::Up(stream) = &mut self.io {
                        stream.stop(cx);
                    }
                    self.io = Io::Idle;
                    self.guard = None;
                    if let Some((t, _)) = self.timer.take() {
                        cx.cancel_timer(t);
                    }
                    if let Some((key, kept)) = self.core.take_ended_pipes() {
                        self.link.ended(key, kept.into_pipes());
                    }
                    return cx.close();
                }
            }
        }
        self.report();
        let due = self.core.poll_timeout();
        if self.timer.map(|(_, at)| at) != due {
            if let Some((t, _)) = self.timer.take() {
                cx.cancel_timer(t);
            }
            self.timer = due.map(|at| (cx.set_timer(at), at));
        }
    }

    fn report(&mut self) {
        while let Some((event, value)) = self.core.poll_event() {
            self.link.monitor(event, value, &self.endpoint);
        }
    }

    fn attempt(&mut self, cx: &mut Cx<'_>) {
        if let Some((proxy, source)) = self.socks().map(|s| (s.proxy, s.source)) {
            // The proxy resolves the destination; we connect to the proxy.
            self.target.addr = proxy.into();
            self.target.source = source.map(Into::into);
        } else if let Some(names) = &self.target.resolve {
            // As libzmq's tcp_connecter: resolve at every attempt; on failure, no
            // CONNECT_DELAYED, just the reconnect timer (CONNECT_RETRIED).
            match names.resolve() {
                Ok((addr, source)) => {
                    self.target.addr = addr;
                    self.target.source = source;
                }
                Err(_) => return self.core.handle_connect_failed(cx.now()),
            }
        }
        let domain = if self.target.tcp {
            Domain::for_address(self.target.addr.as_socket().expect("tcp targets are inet"))
        } else {
            Domain::UNIX
        };
        let made = (|| -> std::io::Result<Socket> {
            let s = Socket::new(domain, Type::STREAM.nonblocking(), None)?;
            self.opts
                .apply(socket2::SockRef::from(&s), self.target.tcp)?;
            if let Some(src) = &self.target.source {
                // As libzmq: several connections (to different peers) may share one source
                // port, and a port a closed connection left in TIME_WAIT is usable again.
                s.set_reuse_address(true)?;
                s.bind(src)?;
            }
            Ok(s)
        })();
        let sock = match made {
            Ok(s) => s,
            Err(_) => return self.core.handle_connect_failed(cx.now()),
        };
        let fd: SharedFd = Arc::new(sock.into());
        let op = cx.submit(Op::Connect {
            fd: fd.clone(),
            addr: self.target.addr.clone(),
        });
        self.io = Io::Connecting { fd, op };
        self.core.handle_connect_started(cx.now());
    }

    /// The SOCKS request, for a tcp target when ZMQ_SOCKS_PROXY is set.
    fn socks(&self) -> Option<&super::socks::SocksRequest> {
        self.opts.socks.as_ref().filter(|_| self.target.tcp)
    }

    /// The connect finished: through a proxy, the SOCKS exchange comes first.
    fn connected(&mut self, cx: &mut Cx<'_>, fd: SharedFd) {
        let Some(req) = self.socks().cloned() else {
            return self.start_stream(cx, fd, None);
        };
        let client = Box::new(SocksClient::new(req));
        let send = cx.submit(Op::Send {
            fd: fd.clone(),
            bufs: vec![SendBuf::Shared(Bytes::from(client.start()))],
            zero_copy: false,
        });
        let recv = cx.submit(Op::Recv { fd: fd.clone() });
        let timer = self
            .config
            .handshake_ivl
            .map(|t| cx.set_timer(cx.now() + t));
        self.io = Io::Socks {
            fd,
            recv,
            recv_live: true,
            send: Some(send),
            client,
            timer,
            draining: None,
        };
    }

    /// One completion of the SOCKS exchange (`more`: the receive stays armed).
    fn socks_step(&mut self, cx: &mut Cx<'_>, op: OpId, completion: Completion<'_>, more: bool) {
        let Io::Socks {
            fd,
            recv,
            recv_live,
            send,
            client,
            draining,
            ..
        } = &mut self.io
        else {
            return;
        };
        let failed = if *send == Some(op) {
            *send = None;
            !matches!(completion, Completion::Sent { result: Ok(_), .. })
        } else if *recv == op {
            match completion {
                Completion::Received(Ok(data)) if !data.is_empty() => match draining {
                    Some(rest) => {
                        rest.extend_from_slice(data);
                        false
                    }
                    None => match client.on_data(data) {
                        Ok(Step::Read) => false,
                        Ok(Step::Send(bytes)) => {
                            *send = Some(cx.submit(Op::Send {
                                fd: fd.clone(),
                                bufs: vec![SendBuf::Shared(Bytes::from(bytes))],
                                zero_copy: false,
                            }));
                            false
                        }
                        Ok(Step::Done(rest)) => {
                            // The stream arms its own receive: end this one, keeping
                            // whatever it still brings.
                            *draining = Some(rest);
                            if more {
                                cx.cancel(op);
                            }
                            false
                        }
                        Err(e) => {
                            log::debug!("{}: SOCKS proxy: {e:?}", self.endpoint);
                            true
                        }
                    },
                },
                // The cancel's own end, after the exchange finished.
                Completion::Received(Err(e))
                    if draining.is_some() && e.raw_os_error() == Some(libc::ECANCELED) =>
                {
                    false
                }
                _ => true,
            }
        } else {
            return;
        };
        if *recv == op && !more {
            *recv_live = false;
        }
        if failed || (!*recv_live && draining.is_none()) {
            if *recv_live {
                // Its late completions find the session elsewhere and are ignored.
                cx.cancel(*recv);
            }
            let value = fd_value(fd);
            self.end_socks(cx);
            self.core.handle_connect_closed(value);
            return self.core.handle_connect_failed(cx.now());
        }
        if !*recv_live && send.is_none() {
            let fd = fd.clone();
            let rest = draining.take().unwrap_or_default();
            self.end_socks(cx);
            let rest = (!rest.is_empty()).then(|| Bytes::from(rest));
            self.start_stream(cx, fd, rest);
        }
    }

    /// Leaves the SOCKS state, dropping its timer.
    fn end_socks(&mut self, cx: &mut Cx<'_>) {
        if let Io::Socks { timer: Some(t), .. } = std::mem::replace(&mut self.io, Io::Idle) {
            cx.cancel_timer(t);
        }
    }

    /// Runs ZMTP on `fd`, first decoding `early` (bytes that came with the proxy's reply).
    fn start_stream(&mut self, cx: &mut Cx<'_>, fd: SharedFd, early: Option<Bytes>) {
        let value = fd_value(&fd);
        let keep = self.core.handle_connected(value);
        self.report();
        let mut config = self.config.clone();
        config.peer_address = match self.target.addr.as_socket() {
            Some(sa) => Bytes::from(sa.ip().to_string()),
            None => super::address::ipc_peer_address(&*fd),
        };
        match Stream::new(
            fd,
            config,
            self.link.clone(),
            self.endpoint.clone(),
            cx.now(),
        ) {
            Ok(stream) => {
                let mut stream = Box::new(stream);
                if let Some((key, kept)) = keep {
                    stream.keep_pipes(key, kept);
                }
                let mut status = stream.start(cx);
                if let (Status::Open, Some(early)) = (status, early) {
                    status = stream.feed(cx, early);
                }
                self.io = Io::Up(stream);
                self.after(cx, status);
            }
            // A configuration no connection can run: give up (as before any reconnect).
            Err(_) => self.core.handle_stop(),
        }
    }

    fn after(&mut self, cx: &mut Cx<'_>, status: Status) {
        if status == Status::Done {
            let (kept, end) = match &mut self.io {
                Io::Up(stream) => (stream.take_kept(), stream.end()),
                _ => (None, StreamEnd::Lost),
            };
            self.io = Io::Idle;
            self.core.handle_stream_done(kept, end, cx.now());
        }
    }
}

/// Whether a tcp connection's two ends are one socket. A connect to a port of the ephemeral
/// range where nothing listens can meet itself (the kernel may pick that very port as the
/// source, and a simultaneous open then joins the socket to itself), and so does one whose
/// source (`tcp://src;dst`) is its destination; the socket would then handshake with itself
/// and read what it sends. Such a connection is closed and retried like a refused one
/// (libzmq keeps it).
fn connected_to_itself(fd: &SharedFd) -> bool {
    let s = socket2::SockRef::from(&**fd);
    match (s.local_addr(), s.peer_addr()) {
        (Ok(local), Ok(peer)) => {
            local.as_socket().is_some() && local.as_socket() == peer.as_socket()
        }
        _ => false,
    }
}

impl Handler for ConnectSession {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        self.pump(cx);
    }

    fn on_completion(&mut self, cx: &mut Cx<'_>, op: OpId, completion: Completion<'_>, more: bool) {
        match &mut self.io {
            Io::Connecting { fd, op: connect_op } if *connect_op == op => {
                let fd = fd.clone();
                self.io = Io::Idle;
                match completion {
                    Completion::Connected(Ok(())) if !connected_to_itself(&fd) => {
                        self.connected(cx, fd)
                    }
                    completion => {
                        let value = fd_value(&fd);
                        drop(fd);
                        self.core.handle_connect_closed(value);
                        match completion {
                            Completion::Connected(Err(e))
                                if e.raw_os_error() == Some(libc::ECONNREFUSED) =>
                            {
                                self.core.handle_connect_refused(cx.now())
                            }
                            _ => self.core.handle_connect_failed(cx.now()),
                        }
                    }
                }
            }
            Io::Socks { recv, send, .. } if *recv == op || *send == Some(op) => {
                self.socks_step(cx, op, completion, more)
            }
            Io::Up(stream) if stream.owns(op) => {
                let status = stream.on_completion(cx, op, completion, more);
                self.after(cx, status);
            }
            // Late completions of a stream or connect already given up.
            _ => return,
        }
        self.pump(cx);
    }

    fn on_timer(&mut self, cx: &mut Cx<'_>, timer: TimerId) {
        if self.timer.is_some_and(|(t, _)| t == timer) {
            self.timer = None;
            self.core.handle_timeout(cx.now());
            return self.pump(cx);
        }
        if let Io::Socks { recv, timer: t, .. } = &mut self.io {
            if *t == Some(timer) {
                // The proxy did not finish within HANDSHAKE_IVL: the receive's end fails the
                // attempt.
                *t = None;
                cx.cancel(*recv);
            }
            return;
        }
        if let Io::Up(stream) = &mut self.io {
            let status = stream.on_timer(cx, timer);
            self.after(cx, status);
            self.pump(cx);
        }
    }

    fn on_notify(&mut self, cx: &mut Cx<'_>, token: u64) {
        if token == TOKEN_LINGER {
            match linger::take(&self.slot) {
                Some(order) => {
                    if self.core.handle_linger(order.limit, cx.now()) {
                        self.guard = Some(order.guard);
                    }
                }
                None => self.core.handle_stop(),
            }
            return self.pump(cx);
        }
        if token == TOKEN_STOP {
            self.core.handle_stop();
            return self.pump(cx);
        }
        if let Io::Up(stream) = &mut self.io {
            let status = stream.on_notify(cx, token);
            self.after(cx, status);
            self.pump(cx);
        }
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_>) {
        if let Io::Up(stream) = &mut self.io {
            stream.stop(cx);
        }
        self.io = Io::Idle;
        cx.close();
    }
}

/// A descriptor as the monitor reports it (libzmq's events carry the fd).
fn fd_value(fd: &SharedFd) -> u32 {
    std::os::fd::AsRawFd::as_raw_fd(&**fd) as u32
}
