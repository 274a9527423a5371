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
//! timing (driven by the transports crate's real `Backoff`) and a ZAP handler that accepts
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
use turmoil::net::TcpListener;
use zeroring::attach::{inproc_pair, InprocSide, Peer, PeerAttachment};
use zeroring::engine::pipe::{Notify, NotifyHandle};
use zeroring::{Error, Msg, SocketCore, SocketType, Stats};
use zeroring_transports::driver::{attaches_early, Kept, PipeEnds, SocketLink};
use zeroring_transports::monitor::MonitorEvent;
use zeroring_transports::zmtp::{PeerInfo, ZapReply, ZapRequest};

use crate::connection::{self, StopSignal};
pub use crate::options::SocketOptions;
use crate::record::Record;
use crate::session::{self, Control, Order};
use crate::trace::{sim_now, Trace};

/// One message: its parts, in order.
pub type Message = Vec<Bytes>;

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

    /// Drops what the links posted (the socket closed: their pipes close).
    fn drain(&self) {
        let dropped: Vec<Command> = self
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        drop(dropped);
    }

    pub(crate) fn attach_early(&self, endpoint: &str, key: u64) -> PipeEnds {
        self.pipes(Peer::early(self.socket_type, endpoint, key, self.conflate))
    }
}

/// What a link saw, for the connection's I/O half to record.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    Attached(Option<Bytes>),
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
        let shared = &self.shared;
        let peer = Peer::from_handshake(info, shared.socket_type, endpoint, key, shared.conflate);
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
    /// Which of the host's sockets this is (monitor paths name it).
    pub(crate) incarnation: u64,
    /// The socket closed (its pipes are gone; attachments are refused).
    pub(crate) closed: Cell<bool>,
    connecters: RefCell<Vec<Rc<Control>>>,
    pub(crate) accepted: RefCell<Vec<Rc<StopSignal>>>,
    /// Connecters and accepted connections still running (close waits for them).
    pub(crate) live: Cell<usize>,
    all_done: tokio::sync::Notify,
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

    /// ZMQ_IMMEDIATE as the option table holds it.
    pub(crate) fn immediate(&self) -> bool {
        self.core.borrow().options().immediate
    }

    /// A monitor event on the connecter or accepted connection `path`.
    pub(crate) fn monitor_event(&self, path: &str, event: MonitorEvent) {
        if self.opts.skip_disconnected && event == MonitorEvent::Disconnected {
            return; // the deliberate bug
        }
        let t = sim_now();
        self.record.with(|r| {
            r.monitor
                .entry(path.to_string())
                .or_default()
                .push((t, event))
        });
    }

    /// A connecter or accepted connection finished.
    pub(crate) fn session_done(&self) {
        self.live.set(self.live.get().saturating_sub(1));
        self.all_done.notify_one();
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
        let incarnation = record.with(|r| {
            r.sockets_made += 1;
            r.sockets_made
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
                incarnation,
                closed: Cell::new(false),
                connecters: RefCell::default(),
                accepted: RefCell::default(),
                live: Cell::new(0),
                all_done: tokio::sync::Notify::new(),
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
        let control = Rc::new(Control::default());
        self.inner.connecters.borrow_mut().push(control.clone());
        self.inner.live.set(self.inner.live.get() + 1);
        tokio::task::spawn_local(session::run_connecter(
            self.inner.clone(),
            host.to_string(),
            port,
            key,
            kept,
            control,
        ));
    }

    /// Connects to `binder` (a socket on the same host) over inproc, as `zmq_connect` to an
    /// inproc endpoint that `binder` bound: the production pipe pair
    /// ([`zeroring::attach::inproc_pair`]) attached to both sockets through their command
    /// queues. (The simulator has no `Context`: the name registry is the caller's.)
    pub fn connect_inproc(&self, binder: &SimSocket, name: &str) {
        let side = |s: &SimSocket| {
            let core = s.inner.core.borrow();
            let o = core.options();
            InprocSide {
                socket_type: o.socket_type,
                routing_id: o.routing_id.clone(),
                sndhwm: o.sndhwm,
                rcvhwm: o.rcvhwm,
                conflate: o.conflate,
            }
        };
        let uri = format!("inproc://{name}");
        let (mine, theirs) = inproc_pair(&side(self), None, &side(binder), &uri);
        binder.inner.shared.post(Command::Attach(Box::new(theirs)));
        self.inner.shared.post(Command::Attach(Box::new(mine)));
        self.inner
            .event(format_args!("connect {uri} to {}", binder.inner.host));
    }

    /// zmq_close followed by waiting for the context's term: the socket's pipes close, and
    /// every connection delivers what was queued within ZMQ_LINGER (`linger_ms`: −1 no
    /// limit, 0 drop at once), reconnecting meanwhile if it must. Returns when every
    /// connection is done; the time it took is recorded.
    pub async fn close(&self, linger_ms: i32) {
        let inner = &self.inner;
        if inner.closed.replace(true) {
            return;
        }
        let started = sim_now();
        let limit = (linger_ms >= 0).then(|| Duration::from_millis(linger_ms as u64));
        // The pattern's pipes close when it drops; attachments not yet taken close with them.
        {
            let mut core = inner.core.borrow_mut();
            let fresh = SocketCore::new(inner.shared.socket_type).expect("the same type");
            drop(std::mem::replace(&mut *core, fresh));
            inner.shared.drain();
        }
        inner.event(format_args!("close (linger {linger_ms} ms)"));
        let order = if inner.opts.drop_on_close || limit == Some(Duration::ZERO) {
            Order::Stop
        } else {
            Order::Linger(limit)
        };
        for c in inner.connecters.borrow().iter() {
            c.order(order);
        }
        let deadline = limit.map(|l| tokio::time::Instant::now().into_std() + l);
        for a in inner.accepted.borrow().iter() {
            match (order, deadline) {
                (Order::Stop, _) => a.stop(),
                (_, Some(d)) => a.stop_at(d),
                (_, None) => {}
            }
        }
        while inner.live.get() > 0 {
            inner.all_done.notified().await;
        }
        let took = sim_now().saturating_sub(started);
        inner.record.with(|r| r.close_took = Some(took));
        inner.event(format_args!("closed after {took:?}"));
    }

    /// Runs `f` on the core after taking in what the links posted, and records the counters.
    fn with_core<R>(&self, f: impl FnOnce(&mut SocketCore) -> R) -> R {
        let mut core = self.inner.core.borrow_mut();
        if self.inner.closed.get() {
            self.inner.shared.drain();
        }
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
                Command::Hiccup(key) => {
                    if let Some(a) = core.hiccup(key) {
                        let wake: NotifyHandle = Arc::new(Wake(self.inner.app_wake.clone()));
                        core.attach(a, Some(wake));
                    }
                }
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
    let mut accepted = 0u64;
    loop {
        match listener.accept().await {
            Ok(_) if inner.closed.get() => return,
            Ok((stream, remote)) => {
                let endpoint = format!("tcp://0.0.0.0:{port}");
                inner.event(format_args!("accepted {}", connection::host_of(remote)));
                accepted += 1;
                let path = format!("s{} accepted {endpoint} #{accepted}", inner.incarnation);
                inner.monitor_event(&path, MonitorEvent::Accepted);
                let stop = Rc::new(StopSignal::default());
                inner.accepted.borrow_mut().push(stop.clone());
                inner.live.set(inner.live.get() + 1);
                let me = inner.clone();
                tokio::task::spawn_local(async move {
                    connection::run(me.clone(), stream, remote, endpoint, None, stop, path).await;
                    me.session_done();
                });
            }
            Err(e) => {
                inner.event(format_args!("accept failed: {e}"));
                return;
            }
        }
    }
}
