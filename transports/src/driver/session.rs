//! Sessions: the handlers that own a [`Stream`]. An accepted session lives as long as its
//! connection; a connecting session connects, runs the stream, and after a failure or a
//! disconnect waits (libzmq's reconnect schedule) and connects again, until stopped.
//!
//! Must never: retry faster than RECONNECT_IVL allows, or keep a descriptor after stopping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use socket2::{Domain, SockAddr, Socket, Type};
use zeroring_engine::{
    Completion, Cx, Handler, HandlerId, IoThreadHandle, Op, OpId, SharedFd, ThreadGone, TimerId,
};

use super::linger::{self, LingerGuard, LingerSlot, Lingering};
use super::netopts::{Backoff, TransportOptions};
use super::socks::{SocksClient, Step};
use super::stream::{Stream, TOKEN_OWNER_BASE};
use super::stream_core::{attaches_early, Kept, Status};
use super::Link;
use crate::monitor::MonitorEvent;
use crate::zmtp::ConnectionConfig;

/// ZMQ_RECONNECT_STOP_CONN_REFUSED.
const RECONNECT_STOP_CONN_REFUSED: i32 = 1;
/// ZMQ_RECONNECT_STOP_HANDSHAKE_FAILED.
const RECONNECT_STOP_HANDSHAKE_FAILED: i32 = 2;

/// Stop the session (unbind, disconnect).
pub(crate) const TOKEN_STOP: u64 = TOKEN_OWNER_BASE;
/// The socket closed: deliver what is queued within the order left in the session's slot.
pub(crate) const TOKEN_LINGER: u64 = TOKEN_OWNER_BASE + 1;

/// Sessions accepted by one listener, so that unbinding or closing can reach them.
pub(crate) type Registry = Arc<Mutex<Vec<(IoThreadHandle, HandlerId, LingerSlot)>>>;

/// A session's linger after its socket closed: the guard that `term` waits on, and the
/// deadline timer.
#[derive(Debug, Default)]
struct LingerState {
    guard: Option<LingerGuard>,
    timer: Option<TimerId>,
}

impl LingerState {
    fn active(&self) -> bool {
        self.guard.is_some()
    }

    /// Takes the order left in `slot`; false when it says "stop now" (LINGER 0).
    fn begin(&mut self, cx: &mut Cx<'_>, slot: &LingerSlot) -> bool {
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

    fn is_deadline(&self, timer: TimerId) -> bool {
        self.timer == Some(timer)
    }
}

/// Runs one accepted connection.
pub(crate) struct AcceptedSession {
    start: Option<(SharedFd, ConnectionConfig, Link, Arc<str>)>,
    stream: Option<Stream>,
    registry: Registry,
    slot: LingerSlot,
    linger: LingerState,
}

impl AcceptedSession {
    pub(crate) fn new(
        fd: SharedFd,
        config: ConnectionConfig,
        link: Link,
        endpoint: Arc<str>,
        registry: Registry,
    ) -> Self {
        AcceptedSession {
            start: Some((fd, config, link, endpoint)),
            stream: None,
            registry,
            slot: LingerSlot::default(),
            linger: LingerState::default(),
        }
    }

    fn finish(&mut self, cx: &mut Cx<'_>) {
        if let Some(me) = cx.id() {
            let thread = cx.handle().index();
            self.registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|(t, id, _)| !(t.index() == thread && *id == me));
        }
        self.linger = LingerState::default();
        cx.close();
    }

    fn after(&mut self, cx: &mut Cx<'_>, status: Status) {
        if status == Status::Done {
            self.stream = None;
            self.finish(cx);
        }
    }
}

impl Handler for AcceptedSession {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        let Some((fd, config, link, endpoint)) = self.start.take() else {
            return;
        };
        if let Some(me) = cx.id() {
            self.registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((cx.handle().clone(), me, self.slot.clone()));
        }
        match Stream::new(fd, config, link, endpoint, cx.now()) {
            Ok(stream) => {
                let stream = self.stream.insert(stream);
                let status = stream.start(cx);
                self.after(cx, status);
            }
            Err(_) => self.finish(cx),
        }
    }

    fn on_completion(&mut self, cx: &mut Cx<'_>, op: OpId, completion: Completion<'_>, more: bool) {
        if let Some(stream) = self.stream.as_mut() {
            let status = stream.on_completion(cx, op, completion, more);
            self.after(cx, status);
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_>, timer: TimerId) {
        if self.linger.is_deadline(timer) {
            // LINGER ran out: what is still queued is dropped with the connection.
            if let Some(mut stream) = self.stream.take() {
                stream.stop(cx);
            }
            return self.finish(cx);
        }
        if let Some(stream) = self.stream.as_mut() {
            let status = stream.on_timer(cx, timer);
            self.after(cx, status);
        }
    }

    fn on_notify(&mut self, cx: &mut Cx<'_>, token: u64) {
        if token == TOKEN_LINGER && self.linger.begin(cx, &self.slot.clone()) {
            // Go on until the socket's queue is drained (the stream ends when it reads the
            // closed pipe) or the deadline.
            if self.stream.is_none() {
                self.finish(cx);
            }
            return;
        }
        if token == TOKEN_STOP || token == TOKEN_LINGER {
            if let Some(mut stream) = self.stream.take() {
                stream.stop(cx);
            }
            return self.finish(cx);
        }
        if let Some(stream) = self.stream.as_mut() {
            let status = stream.on_notify(cx, token);
            self.after(cx, status);
        }
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_>) {
        if let Some(mut stream) = self.stream.take() {
            stream.stop(cx);
        }
        cx.close();
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

enum State {
    Idle,
    Connecting {
        fd: SharedFd,
        op: OpId,
        timeout: Option<TimerId>,
    },
    /// Connected to the SOCKS proxy: the exchange before ZMTP. One multishot receive stays
    /// armed throughout (`recv`); `send` is the write in flight; `timer` bounds the exchange
    /// (HANDSHAKE_IVL). After the proxy's last reply, `draining` collects what the cancelled
    /// receive still delivers (the server's first bytes), for the stream to start with.
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
    Waiting(TimerId),
}

/// Connects, runs the stream, reconnects.
pub(crate) struct ConnectSession {
    target: ConnectTarget,
    endpoint: Arc<str>,
    opts: TransportOptions,
    config: ConnectionConfig,
    link: Link,
    state: State,
    backoff: Backoff,
    /// This session's pipe key (for the socket's hiccup), and the pipes kept between
    /// connections unless IMMEDIATE.
    key: u64,
    kept: Option<Kept>,
    slot: LingerSlot,
    linger: LingerState,
}

impl ConnectSession {
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
                Err(_) => return self.retry_later(cx),
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
            Err(_) => return self.retry_later(cx),
        };
        let fd: SharedFd = Arc::new(sock.into());
        let op = cx.submit(Op::Connect {
            fd: fd.clone(),
            addr: self.target.addr.clone(),
        });
        if self.target.tcp {
            self.link.monitor(
                MonitorEvent::ConnectDelayed,
                libc::EINPROGRESS as u32,
                &self.endpoint,
            );
        }
        let timeout = self
            .opts
            .connect_timeout
            .map(|t| cx.set_timer(cx.now() + t));
        self.state = State::Connecting { fd, op, timeout };
    }

    /// RECONNECT_STOP: no more attempts. Reported as libzmq's connecter does when it closes
    /// (ZMQ_EVENT_CLOSED); the kept pipe goes with the session, so the socket sees the peer
    /// gone.
    fn give_up(&mut self, cx: &mut Cx<'_>) {
        self.state = State::Idle;
        self.link.monitor(MonitorEvent::Closed, 0, &self.endpoint);
        cx.close();
    }

    fn retry_later(&mut self, cx: &mut Cx<'_>) {
        if self.opts.reconnect_ivl.is_none() {
            self.state = State::Idle;
            return cx.close();
        }
        let delay = self.backoff.next_delay();
        self.link.monitor(
            MonitorEvent::ConnectRetried,
            delay.as_millis() as u32,
            &self.endpoint,
        );
        self.state = State::Waiting(cx.set_timer(cx.now() + delay));
    }

    /// The SOCKS request, for a tcp target when ZMQ_SOCKS_PROXY is set.
    fn socks(&self) -> Option<&super::socks::SocksRequest> {
        self.opts.socks.as_ref().filter(|_| self.target.tcp)
    }

    /// The tcp connection is up: through a proxy, the SOCKS exchange comes first.
    fn connected(&mut self, cx: &mut Cx<'_>, fd: SharedFd) {
        let Some(req) = self.socks().cloned() else {
            return self.start_stream(cx, fd, None);
        };
        let client = Box::new(SocksClient::new(req));
        let send = cx.submit(Op::Send {
            fd: fd.clone(),
            bufs: vec![Bytes::from(client.start())],
            zero_copy: false,
        });
        let recv = cx.submit(Op::Recv { fd: fd.clone() });
        let timer = self
            .config
            .handshake_ivl
            .map(|t| cx.set_timer(cx.now() + t));
        self.state = State::Socks {
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
        let State::Socks {
            fd,
            recv,
            recv_live,
            send,
            client,
            draining,
            ..
        } = &mut self.state
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
                                bufs: vec![Bytes::from(bytes)],
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
            self.end_socks(cx);
            return self.retry_later(cx);
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
        if let State::Socks { timer: Some(t), .. } = std::mem::replace(&mut self.state, State::Idle)
        {
            cx.cancel_timer(t);
        }
    }

    /// Runs ZMTP on `fd`, first decoding `early` (bytes that came with the proxy's reply).
    fn start_stream(&mut self, cx: &mut Cx<'_>, fd: SharedFd, early: Option<Bytes>) {
        self.backoff.reset();
        let value = std::os::fd::AsRawFd::as_raw_fd(&*fd) as u32;
        self.link
            .monitor(MonitorEvent::Connected, value, &self.endpoint);
        let mut config = self.config.clone();
        config.peer_address = peer_address(&self.target);
        match Stream::new(
            fd,
            config,
            self.link.clone(),
            self.endpoint.clone(),
            cx.now(),
        ) {
            Ok(stream) => {
                let mut stream = Box::new(stream);
                if !self.opts.immediate {
                    stream.keep_pipes(self.key, self.kept.take());
                }
                let mut status = stream.start(cx);
                if let (Status::Open, Some(early)) = (status, early) {
                    status = stream.feed(cx, early);
                }
                self.state = State::Up(stream);
                self.after(cx, status);
            }
            Err(_) => cx.close(),
        }
    }

    fn after(&mut self, cx: &mut Cx<'_>, status: Status) {
        if status == Status::Done {
            if self.linger.active() {
                // The socket is gone and its queue went out (or could not): no reconnect.
                self.state = State::Idle;
                self.linger = LingerState::default();
                return cx.close();
            }
            let mut handshake_failed = false;
            let mut refused = false;
            if let State::Up(stream) = &mut self.state {
                self.kept = stream.take_kept();
                handshake_failed = !stream.handshake_done();
                refused = stream.refused_by_peer();
            }
            self.state = State::Idle;
            if refused {
                // The server sent ERROR (its ZAP handler denied us with 400 or 500): libzmq's
                // session treats that as a protocol error and does not reconnect.
                return cx.close();
            }
            // RECONNECT_STOP_HANDSHAKE_FAILED (not for STREAM: it has no handshake).
            if handshake_failed
                && self.opts.reconnect_stop & RECONNECT_STOP_HANDSHAKE_FAILED != 0
                && self.config.socket_type != crate::socket_type::SocketType::Stream
            {
                return self.give_up(cx);
            }
            self.retry_later(cx);
        }
    }
}

fn peer_address(target: &ConnectTarget) -> bytes::Bytes {
    match target.addr.as_socket() {
        Some(sa) => bytes::Bytes::from(sa.ip().to_string()),
        None => bytes::Bytes::new(),
    }
}

impl Handler for ConnectSession {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        self.attempt(cx);
    }

    fn on_completion(&mut self, cx: &mut Cx<'_>, op: OpId, completion: Completion<'_>, more: bool) {
        match &mut self.state {
            State::Connecting {
                fd,
                op: connect_op,
                timeout,
            } if *connect_op == op => {
                if let Some(t) = timeout.take() {
                    cx.cancel_timer(t);
                }
                let fd = fd.clone();
                match completion {
                    Completion::Connected(Ok(())) => self.connected(cx, fd),
                    Completion::Connected(Err(e))
                        if e.raw_os_error() == Some(libc::ECONNREFUSED)
                            && self.opts.reconnect_stop & RECONNECT_STOP_CONN_REFUSED != 0 =>
                    {
                        // RECONNECT_STOP_CONN_REFUSED: nobody listens there; give up.
                        drop(fd);
                        self.give_up(cx);
                    }
                    _ => {
                        drop(fd);
                        self.retry_later(cx);
                    }
                }
            }
            State::Socks { recv, send, .. } if *recv == op || *send == Some(op) => {
                self.socks_step(cx, op, completion, more)
            }
            State::Up(stream) if stream.owns(op) => {
                let status = stream.on_completion(cx, op, completion, more);
                self.after(cx, status);
            }
            // Late completions of a stream or connect already given up.
            _ => {}
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_>, timer: TimerId) {
        if self.linger.is_deadline(timer) {
            // LINGER ran out: what is still queued is dropped with the connection.
            if let State::Up(stream) = &mut self.state {
                stream.stop(cx);
            }
            self.state = State::Idle;
            self.linger = LingerState::default();
            return cx.close();
        }
        match &mut self.state {
            State::Waiting(t) if *t == timer => self.attempt(cx),
            State::Socks { recv, timer: t, .. } if *t == Some(timer) => {
                // The proxy did not finish within HANDSHAKE_IVL: the receive's end retries.
                *t = None;
                cx.cancel(*recv);
            }
            State::Connecting { op, timeout, .. } if *timeout == Some(timer) => {
                // CONNECT_TIMEOUT: abandon this attempt; its completion schedules the retry.
                *timeout = None;
                cx.cancel(*op);
            }
            State::Up(stream) => {
                let status = stream.on_timer(cx, timer);
                self.after(cx, status);
            }
            _ => {}
        }
    }

    fn on_notify(&mut self, cx: &mut Cx<'_>, token: u64) {
        // Linger only what is owed: a running stream drains the socket's queue itself (and
        // ends at once when it is empty); between connections, kept pipes with nothing
        // queued owe nothing, so a socket whose peer is gone closes at once whatever LINGER
        // says, as libzmq's does (its session ends when its pipe terminates empty).
        let has_queue = matches!(self.state, State::Up(_))
            || self.kept.as_ref().is_some_and(|k| k.owes_output());
        if token == TOKEN_LINGER && has_queue && self.linger.begin(cx, &self.slot.clone()) {
            // Go on until the socket's queue is drained (the stream ends when it reads the
            // closed pipe) or the deadline; while disconnected, keep reconnecting meanwhile,
            // as libzmq does, so a peer that comes back within LINGER still gets it all.
            return;
        }
        if token == TOKEN_STOP || token == TOKEN_LINGER {
            if let State::Up(stream) = &mut self.state {
                stream.stop(cx);
            }
            self.state = State::Idle;
            self.linger = LingerState::default();
            return cx.close();
        }
        if let State::Up(stream) = &mut self.state {
            let status = stream.on_notify(cx, token);
            self.after(cx, status);
        }
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_>) {
        if let State::Up(stream) = &mut self.state {
            stream.stop(cx);
        }
        self.state = State::Idle;
        cx.close();
    }
}

/// Stops a connecting session (zmq_disconnect) or lets it linger (socket close).
#[derive(Clone, Debug)]
pub struct ConnectHandle {
    thread: IoThreadHandle,
    id: HandlerId,
    slot: LingerSlot,
}

impl ConnectHandle {
    /// Stops connecting and closes the connection, if any.
    pub fn stop(&self) {
        let _ = self.thread.notify(self.id, TOKEN_STOP);
    }

    /// The socket closed: deliver what it queued within `limit` (`None` = no limit), counted
    /// in `lingering` until done; then close. Zero stops at once.
    pub fn linger(&self, limit: Option<Duration>, lingering: &Lingering) {
        linger::order(&self.slot, limit, lingering);
        let _ = self.thread.notify(self.id, TOKEN_LINGER);
    }

    /// The I/O thread that carries the session.
    pub fn thread(&self) -> &IoThreadHandle {
        &self.thread
    }
}

/// Starts a connecting session on the least-loaded thread that `opts.affinity` allows.
pub fn connect(
    threads: &[IoThreadHandle],
    target: ConnectTarget,
    opts: TransportOptions,
    config: ConnectionConfig,
    link: Link,
) -> Result<ConnectHandle, ThreadGone> {
    let thread = zeroring_engine::io_thread::least_loaded(threads, opts.affinity).clone();
    let endpoint: Arc<str> = Arc::from(target.endpoint.as_str());
    // Jitter only needs to differ between processes and sockets, not to be unpredictable.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = now.as_nanos() as u64
        ^ ((std::process::id() as u64) << 32)
        ^ (Arc::as_ptr(&endpoint) as *const u8 as u64);
    let backoff = Backoff::new(
        opts.reconnect_ivl.unwrap_or_default(),
        opts.reconnect_ivl_max,
        seed,
    );
    let slot = LingerSlot::default();
    let slot2 = slot.clone();
    static KEYS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let key = KEYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The early pipe is attached here, on the caller's thread, so that the socket can take
    // it before `connect` returns (libzmq attaches it inside zmq_connect: a SUB's earlier
    // subscriptions go down it at once, with no later call on the socket).
    let kept = attaches_early(config.socket_type, opts.immediate)
        .then(|| link.attach_early(&endpoint, key))
        .flatten()
        .map(Kept::early);
    let id = thread.spawn(move || ConnectSession {
        target,
        endpoint,
        opts,
        config,
        link,
        state: State::Idle,
        backoff,
        key,
        kept,
        slot: slot2,
        linger: LingerState::default(),
    })?;
    Ok(ConnectHandle { thread, id, slot })
}
