//! The adapter: a zeroring socket on a simulated host.
//!
//! A [`SimSocket`] is the production [`SocketCore`] — the real option table and the real
//! socket pattern (`zeroring::pattern`) over real engine pipes — with the blocking calls of
//! `zeroring::Socket` replaced by `async` waits on the simulated clock. Its connections run
//! the production [`StreamCore`](zeroring_transports::driver::StreamCore) over turmoil TCP
//! (see [`crate::connection`]), attached through a [`SocketLink`] exactly as the engine's
//! driver attaches them: pipes at the handshake, or before the first connection for a
//! connecter (IMMEDIATE off), kept across reconnects, with the socket's hiccup.
//!
//! What is the simulator's own: the `async` waiting, turmoil's sockets, the connect loop's
//! timing (driven by the transports crate's real [`Backoff`]) and a ZAP handler that accepts
//! fixed PLAIN credentials (a ZAP handler is user code).
//!
//! Must never: read the wall clock (time is turmoil's), use unbiased `select!` or
//! hash-ordered iteration (both would break replay).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use turmoil::net::{TcpListener, TcpStream};
use zeroring::attach::{Peer, PeerAttachment};
use zeroring::engine::pipe::{Notify, NotifyHandle};
use zeroring::options::num;
use zeroring::{Error, Msg, SocketCore, SocketType, Stats};
use zeroring_transports::driver::{attaches_early, Backoff, Kept, PipeEnds, SocketLink};
use zeroring_transports::monitor::MonitorEvent;
use zeroring_transports::zmtp::{HeartbeatConfig, MechanismConfig, PeerInfo, ZapReply, ZapRequest};

use crate::connection;
use crate::record::Record;
use crate::trace::{sim_now, Trace};

/// One message: its parts, in order.
pub type Message = Vec<Bytes>;

/// A simulated socket's settings. Every field but the last four is a ZeroMQ option, applied
/// through the real option table (`zmq_setsockopt`'s checks included).
#[derive(Clone, Debug)]
pub struct SocketOptions {
    /// PLAIN_SERVER, or PLAIN_USERNAME + PLAIN_PASSWORD.
    pub mechanism: MechanismConfig,
    /// ZMQ_ROUTING_ID.
    pub routing_id: Bytes,
    /// ZMQ_HANDSHAKE_IVL (`None`: 0, no limit).
    pub handshake_ivl: Option<Duration>,
    /// ZMQ_HEARTBEAT_IVL / _TTL / _TIMEOUT.
    pub heartbeat: HeartbeatConfig,
    /// ZMQ_RECONNECT_IVL (`None`: -1, never reconnect).
    pub reconnect_ivl: Option<Duration>,
    /// ZMQ_RECONNECT_IVL_MAX.
    pub reconnect_ivl_max: Duration,
    /// ZMQ_CONNECT_TIMEOUT.
    pub connect_timeout: Option<Duration>,
    /// ZMQ_SNDHWM / ZMQ_RCVHWM, in messages, per pipe.
    pub sndhwm: usize,
    pub rcvhwm: usize,
    /// Further integer options: (option number, value), e.g. ROUTER_HANDOVER, REQ_RELAXED.
    pub int_options: Vec<(i32, i32)>,
    /// PLAIN or CURVE server: the credentials its ZAP handler accepts (PLAIN: username and
    /// password; CURVE: the client's public key and nothing). `None`: no ZAP handler.
    pub plain_accept: Option<(Bytes, Bytes)>,
    /// Seed of the reconnect jitter (the scenario derives it from the run's seed).
    pub backoff_seed: u64,
    /// Test-only switch: `false` makes the link drop the socket's hiccups, so a reconnected
    /// subscriber never sends its subscriptions again (the bug the simulator must notice).
    pub forward_hiccups: bool,
    /// Test-only switch: the socket silently discards every n-th message it would deliver
    /// (a loss on a live connection the message-flow check must notice).
    pub lose_every: Option<u64>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            mechanism: MechanismConfig::Null,
            routing_id: Bytes::new(),
            handshake_ivl: Some(Duration::from_secs(30)),
            heartbeat: HeartbeatConfig::default(),
            reconnect_ivl: Some(Duration::from_millis(100)),
            reconnect_ivl_max: Duration::ZERO,
            connect_timeout: None,
            sndhwm: 1000,
            rcvhwm: 1000,
            int_options: Vec::new(),
            plain_accept: None,
            backoff_seed: 1,
            forward_hiccups: true,
            lose_every: None,
        }
    }
}

fn ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

impl SocketOptions {
    /// Applies the ZeroMQ options to `core` through the option table.
    fn apply(&self, core: &mut SocketCore) -> Result<(), Error> {
        let mut ints = vec![
            (num::HANDSHAKE_IVL, self.handshake_ivl.map_or(0, ms)),
            (num::HEARTBEAT_IVL, self.heartbeat.interval.map_or(0, ms)),
            (num::HEARTBEAT_TTL, ms(self.heartbeat.ttl)),
            (
                num::HEARTBEAT_TIMEOUT,
                self.heartbeat.timeout.map_or(-1, ms),
            ),
            (num::RECONNECT_IVL, self.reconnect_ivl.map_or(-1, ms)),
            (num::RECONNECT_IVL_MAX, ms(self.reconnect_ivl_max)),
            (num::CONNECT_TIMEOUT, self.connect_timeout.map_or(0, ms)),
            (num::SNDHWM, self.sndhwm as i32),
            (num::RCVHWM, self.rcvhwm as i32),
        ];
        ints.extend(self.int_options.iter().copied());
        let mut bytes: Vec<(i32, Bytes)> = Vec::new();
        match &self.mechanism {
            MechanismConfig::Null => {}
            MechanismConfig::PlainServer => ints.push((num::PLAIN_SERVER, 1)),
            MechanismConfig::PlainClient { username, password } => {
                bytes.push((num::PLAIN_USERNAME, username.clone()));
                bytes.push((num::PLAIN_PASSWORD, password.clone()));
            }
            MechanismConfig::CurveServer { secret } => {
                ints.push((num::CURVE_SERVER, 1));
                let secret = Bytes::copy_from_slice(secret.as_bytes());
                bytes.push((num::CURVE_SECRETKEY, secret));
            }
            MechanismConfig::CurveClient {
                public,
                secret,
                server,
            } => {
                bytes.push((num::CURVE_PUBLICKEY, Bytes::copy_from_slice(public)));
                let secret = Bytes::copy_from_slice(secret.as_bytes());
                bytes.push((num::CURVE_SECRETKEY, secret));
                bytes.push((num::CURVE_SERVERKEY, Bytes::copy_from_slice(server)));
            }
        }
        if !self.routing_id.is_empty() {
            bytes.push((num::ROUTING_ID, self.routing_id.clone()));
        }
        for (option, value) in ints {
            core.set_option(option, &value.to_ne_bytes())?;
        }
        for (option, value) in bytes {
            core.set_option(option, &value)?;
        }
        Ok(())
    }
}

/// Wakes a task on the simulated host (the application, or a connection).
pub(crate) struct Wake(pub(crate) Arc<tokio::sync::Notify>);

impl Notify for Wake {
    fn notify(&self) {
        // A stored permit: a wake-up before the waiter waits is never lost.
        self.0.notify_one();
    }
}

/// A peer joining or rejoining, as the real socket's mailbox carries it.
enum Command {
    Attach(Box<PeerAttachment>),
    Hiccup(u64),
}

/// The socket's side of every link: the command queue and what a link needs to build pipes.
pub(crate) struct Shared {
    commands: Mutex<VecDeque<Command>>,
    app_wake: Arc<tokio::sync::Notify>,
    socket_type: SocketType,
    sndhwm: usize,
    rcvhwm: usize,
    conflate: bool,
    forward_hiccups: bool,
    plain_accept: Option<(Bytes, Bytes)>,
}

impl Shared {
    fn post(&self, c: Command) {
        self.commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(c);
        self.app_wake.notify_one();
    }

    fn pipes(&self, peer: Peer) -> PipeEnds {
        let (socket_ends, ours) = PeerAttachment::pipe_pair(peer, self.sndhwm, self.rcvhwm);
        self.post(Command::Attach(Box::new(socket_ends)));
        ours
    }

    pub(crate) fn attach_early(&self, endpoint: &str, key: u64) -> PipeEnds {
        self.pipes(Peer::early(self.socket_type, endpoint, key, self.conflate))
    }
}

/// What a link saw, for the connection's I/O half to record.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    Attached(Option<Bytes>),
    Refused,
    Hiccup,
    Monitor(MonitorEvent),
    Zap(u16),
}

/// One connection's link to its socket.
pub(crate) struct ConnLink {
    shared: Arc<Shared>,
    log: Mutex<Vec<LinkEvent>>,
}

impl ConnLink {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        ConnLink {
            shared,
            log: Mutex::new(Vec::new()),
        }
    }

    fn note(&self, e: LinkEvent) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    }

    /// What happened since the last call.
    pub(crate) fn take_log(&self) -> Vec<LinkEvent> {
        std::mem::take(&mut *self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl SocketLink for ConnLink {
    fn attach(&self, info: &PeerInfo, endpoint: &str, key: Option<u64>) -> Option<PipeEnds> {
        let Some(peer) = Peer::from_handshake(info, endpoint, key, self.shared.conflate) else {
            self.note(LinkEvent::Refused);
            return None;
        };
        self.note(LinkEvent::Attached(peer.routing_id.clone()));
        Some(self.shared.pipes(peer))
    }

    fn attach_early(&self, endpoint: &str, key: u64) -> Option<PipeEnds> {
        Some(self.shared.attach_early(endpoint, key))
    }

    fn hiccup(&self, key: u64) {
        self.note(LinkEvent::Hiccup);
        if self.shared.forward_hiccups {
            self.shared.post(Command::Hiccup(key));
        }
    }

    fn monitor(&self, event: MonitorEvent, _value: u32, _endpoint: &str) {
        self.note(LinkEvent::Monitor(event));
    }

    fn zap(&self, request: ZapRequest, respond: zeroring_transports::driver::ZapResponder) {
        let ok = match (&self.shared.plain_accept, request.credentials.as_slice()) {
            (Some((u, p)), [cu, cp]) => u == cu && p == cp,
            // CURVE: the one credential is the client's public key, kept as the "username".
            (Some((key, _)), [client_key]) => key == client_key,
            (None, _) => true,
            _ => false,
        };
        let reply = if ok {
            let user = request.credentials.first().cloned().unwrap_or_default();
            ZapReply {
                request_id: request.request_id.clone(),
                ..ZapReply::ok(user)
            }
        } else {
            ZapReply {
                request_id: request.request_id.clone(),
                ..ZapReply::deny(400)
            }
        };
        self.note(LinkEvent::Zap(reply.status_code));
        respond(Ok(reply));
    }
}

pub(crate) struct Inner {
    pub(crate) host: String,
    core: RefCell<SocketCore>,
    pub(crate) shared: Arc<Shared>,
    app_wake: Arc<tokio::sync::Notify>,
    pub(crate) opts: SocketOptions,
    pub(crate) trace: Trace,
    pub(crate) record: Record,
    next_key: Cell<u64>,
    delivered: Cell<u64>,
}

impl Inner {
    /// The ZMTP configuration for a new connection, from the socket's options.
    pub(crate) fn connection_config(&self) -> zeroring_transports::zmtp::ConnectionConfig {
        self.core
            .borrow()
            .connection_config(self.opts.plain_accept.is_some())
    }

    pub(crate) fn event(&self, text: impl fmt::Display) {
        self.trace.event(&self.host, text);
    }
}

/// A socket on a simulated host (cheap to clone: clones share the socket).
#[derive(Clone)]
pub struct SimSocket {
    inner: Rc<Inner>,
}

impl fmt::Debug for SimSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimSocket")
            .field("host", &self.inner.host)
            .field("core", &self.inner.core)
            .finish()
    }
}

impl SimSocket {
    /// A socket of type `socket_type` named after its `host`, writing to `trace` and
    /// `record`. Panics on options the option table refuses (a scenario bug).
    pub fn new(
        host: &str,
        socket_type: SocketType,
        opts: SocketOptions,
        trace: Trace,
        record: Record,
    ) -> Self {
        let mut core = SocketCore::new(socket_type).expect("a socket type zeroring has");
        opts.apply(&mut core)
            .expect("options the option table takes");
        let app_wake = Arc::new(tokio::sync::Notify::new());
        let o = core.options();
        let shared = Arc::new(Shared {
            commands: Mutex::new(VecDeque::new()),
            app_wake: app_wake.clone(),
            socket_type,
            sndhwm: o.sndhwm.max(0) as usize,
            rcvhwm: o.rcvhwm.max(0) as usize,
            conflate: o.conflate,
            forward_hiccups: opts.forward_hiccups,
            plain_accept: opts.plain_accept.clone(),
        });
        SimSocket {
            inner: Rc::new(Inner {
                host: host.to_string(),
                core: RefCell::new(core),
                shared,
                app_wake,
                opts,
                trace,
                record,
                next_key: Cell::new(1),
                delivered: Cell::new(0),
            }),
        }
    }

    /// `zmq_setsockopt` (SUBSCRIBE, UNSUBSCRIBE, …) through the real option table.
    pub fn set_option(&self, option: i32, value: &[u8]) -> Result<(), Error> {
        let r = self.with_core(|c| c.set_option(option, value));
        self.inner.app_wake.notify_one();
        r
    }

    /// Binds `0.0.0.0:port` and accepts connections in the background.
    pub async fn bind(&self, port: u16) -> io::Result<()> {
        let listener = TcpListener::bind(("0.0.0.0", port)).await?;
        self.inner.event(format_args!("bind :{port}"));
        tokio::task::spawn_local(accept_loop(self.inner.clone(), listener, port));
        Ok(())
    }

    /// Connects to `host:port` in the background, reconnecting after every disconnect.
    pub fn connect(&self, host: &str, port: u16) {
        let key = self.inner.next_key.get();
        self.inner.next_key.set(key + 1);
        // As libzmq's connect: with IMMEDIATE off the pipe exists before any connection, so
        // sends queue at once.
        let endpoint = format!("tcp://{host}:{port}");
        let immediate = self.inner.core.borrow().options().immediate;
        let kept = attaches_early(self.inner.shared.socket_type, immediate)
            .then(|| Kept::early(self.inner.shared.attach_early(&endpoint, key)));
        tokio::task::spawn_local(connect_loop(
            self.inner.clone(),
            host.to_string(),
            port,
            key,
            kept,
        ));
    }

    /// Runs `f` on the core after taking in what the links posted, and records the counters.
    fn with_core<R>(&self, f: impl FnOnce(&mut SocketCore) -> R) -> R {
        let mut core = self.inner.core.borrow_mut();
        let commands: Vec<Command> = self
            .inner
            .shared
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for c in commands {
            match c {
                Command::Attach(a) => {
                    let wake: NotifyHandle = Arc::new(Wake(self.inner.app_wake.clone()));
                    core.attach(*a, Some(wake));
                }
                Command::Hiccup(key) => core.hiccup(key),
            }
        }
        let r = f(&mut core);
        let stats = core.stats();
        self.inner.record.with(|rec| rec.stats = stats);
        r
    }

    /// Sends without waiting; EAGAIN when the pattern cannot take the message now.
    pub fn send(&self, msg: Message) -> Result<(), Error> {
        self.with_core(|core| {
            let last = msg.len().saturating_sub(1);
            for (i, part) in msg.into_iter().enumerate() {
                core.send(Msg::from_bytes(part).with_more(i < last))
                    .map_err(|e| e.error)?;
            }
            Ok(())
        })
    }

    /// Sends, waiting while the pattern says EAGAIN (a blocking send).
    pub async fn send_wait(&self, msg: Message) -> Result<(), Error> {
        loop {
            let wake = self.inner.app_wake.clone();
            let notified = wake.notified();
            match self.send(msg.clone()) {
                Err(Error::EAGAIN) => notified.await,
                other => return other,
            }
        }
    }

    /// Receives a whole message without waiting.
    pub fn try_recv(&self) -> Option<Message> {
        loop {
            let m = self.recv_message()?;
            let n = self.inner.delivered.get() + 1;
            self.inner.delivered.set(n);
            if self
                .inner
                .opts
                .lose_every
                .is_some_and(|k| n % k.max(1) == 0)
            {
                continue; // the deliberate bug
            }
            return Some(m);
        }
    }

    fn recv_message(&self) -> Option<Message> {
        self.with_core(|core| {
            let mut parts = Vec::new();
            let mut retries = 0;
            loop {
                match core.recv() {
                    Ok(m) => {
                        let more = m.more();
                        parts.push(m.into_bytes());
                        if !more {
                            return Some(parts);
                        }
                    }
                    // As `Socket::recv`: a pattern may discard something (a stale reply, a
                    // filtered message) and say EAGAIN with more queued behind it.
                    Err(Error::EAGAIN) if parts.is_empty() && retries < 1024 && core.has_in() => {
                        retries += 1;
                    }
                    Err(_) if parts.is_empty() => return None,
                    // Parts of one message are flushed together: the rest is there.
                    Err(_) => return Some(parts),
                }
            }
        })
    }

    /// Receives a whole message, waiting for one.
    pub async fn recv(&self) -> Message {
        loop {
            let wake = self.inner.app_wake.clone();
            let notified = wake.notified();
            if let Some(m) = self.try_recv() {
                return m;
            }
            notified.await;
        }
    }

    /// The socket's counters.
    pub fn stats(&self) -> Stats {
        self.with_core(|c| c.stats())
    }

    /// Attached pipes whose peer is still there.
    pub fn peers(&self) -> usize {
        self.with_core(|c| c.peers())
    }
}

async fn accept_loop(inner: Rc<Inner>, listener: TcpListener, port: u16) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let endpoint = format!("tcp://0.0.0.0:{port}");
                inner.event(format_args!("accepted {}", connection::host_of(remote)));
                tokio::task::spawn_local(connection::run(
                    inner.clone(),
                    stream,
                    remote,
                    endpoint,
                    None,
                ));
            }
            Err(e) => {
                inner.event(format_args!("accept failed: {e}"));
                return;
            }
        }
    }
}

/// The connecter: connect, run the connection, wait the backoff, again — with the
/// transports crate's own `Backoff` and early-attach rule.
async fn connect_loop(inner: Rc<Inner>, host: String, port: u16, key: u64, mut kept: Option<Kept>) {
    let endpoint = format!("tcp://{host}:{port}");
    let opts = inner.opts.clone();
    let mut backoff = Backoff::new(
        opts.reconnect_ivl.unwrap_or_default(),
        opts.reconnect_ivl_max,
        opts.backoff_seed,
    );
    let (record, me) = (inner.record.clone(), inner.host.clone());
    loop {
        record.with(|r| r.connect_attempts.push(sim_now()));
        inner
            .trace
            .event(&me, format_args!("connect {host}:{port}"));
        let attempt = TcpStream::connect((host.as_str(), port));
        let result = match opts.connect_timeout {
            Some(t) => match tokio::time::timeout(t, attempt).await {
                Ok(r) => r,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timeout")),
            },
            None => attempt.await,
        };
        match result.and_then(|s| s.peer_addr().map(|a| (s, a))) {
            Ok((stream, remote)) => {
                // As the production connecter: the schedule restarts at every TCP connect.
                backoff.reset();
                inner.trace.event(
                    &me,
                    format_args!("connected to {}", connection::host_of(remote)),
                );
                kept = connection::run(
                    inner.clone(),
                    stream,
                    remote,
                    endpoint.clone(),
                    Some((key, kept.take())),
                )
                .await;
            }
            Err(e) => {
                record.with(|r| r.connect_failures += 1);
                inner
                    .trace
                    .event(&me, format_args!("connect failed: {}", e.kind()));
            }
        }
        if opts.reconnect_ivl.is_none() {
            return;
        }
        let delay = backoff.next_delay();
        record.with(|r| r.reconnect_delays.push(delay));
        inner
            .trace
            .event(&me, format_args!("reconnect in {}ms", delay.as_millis()));
        tokio::time::sleep(delay).await;
    }
}
