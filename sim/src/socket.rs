//! The adapter: a simulated socket that runs zeroring's sans-IO [`Connection`]s over turmoil TCP
//! on one simulated host, with the same driver rules as the production stream driver
//! (`transports/src/driver/stream.rs` and `session.rs`):
//!
//! - a pipe pair per connection, attached when the handshake succeeds, terminated at teardown;
//! - inbound: frames are assembled into messages and written to the pipe; subscriptions become
//!   `\x01topic` / `\x00topic` messages; when the pipe is at RCVHWM, decoded messages are held
//!   and reading pauses (turmoil's TCP flow control then stops the sender);
//! - outbound: messages are encoded only while less than [`OUT_HIGH_WATER`] bytes are queued;
//!   a subscriber's single-frame `\x01`/`\x00` messages become SUBSCRIBE/CANCEL;
//! - timers come from [`Connection::poll_timeout`] on the simulated clock (HANDSHAKE_IVL,
//!   heartbeats); a connecting socket reconnects on the transports crate's [`Backoff`];
//! - PLAIN servers get a ZAP verdict from an in-process handler checking fixed credentials.
//!
//! Must never: read the wall clock (time is `tokio::time::Instant::now()`, which turmoil
//! drives), use unbiased `select!` or hash-ordered iteration (both would break replay).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use turmoil::net::{TcpListener, TcpStream};
use zeroring_transports::driver::Backoff;
use zeroring_transports::zmtp::{
    Connection, ConnectionConfig, Event, HeartbeatConfig, MechanismConfig, ZapReply, ZapSettings,
};
use zeroring_transports::{Errno, SocketType};

use crate::pattern::SimPattern;
use crate::pipe::{Message, PipeId, Pipes, Record};
use crate::trace::{sim_now, Trace};

/// Encode from the pipe only while less than this much output is queued (the production
/// driver uses 256 KiB; the simulation keeps it small so back-pressure shows quickly).
pub const OUT_HIGH_WATER: usize = 16 * 1024;
/// Bytes read from the stream at a time.
pub const READ_BUF: usize = 8 * 1024;
/// Largest single write (one turmoil segment).
pub const WRITE_BATCH: usize = 16 * 1024;

/// The simulated clock as the sans-IO code wants it.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Options of a simulated socket (the subset of libzmq's that the driver uses).
#[derive(Clone, Debug)]
pub struct SocketOptions {
    pub mechanism: MechanismConfig,
    /// PLAIN server: the credentials its ZAP handler accepts.
    pub plain_accept: Option<(Bytes, Bytes)>,
    /// ZMQ_ROUTING_ID.
    pub routing_id: Bytes,
    /// ZMQ_HANDSHAKE_IVL.
    pub handshake_ivl: Option<Duration>,
    /// ZMQ_HEARTBEAT_IVL / _TTL / _TIMEOUT.
    pub heartbeat: HeartbeatConfig,
    /// ZMQ_RECONNECT_IVL (`None`: never reconnect).
    pub reconnect_ivl: Option<Duration>,
    /// ZMQ_RECONNECT_IVL_MAX.
    pub reconnect_ivl_max: Duration,
    /// ZMQ_CONNECT_TIMEOUT.
    pub connect_timeout: Option<Duration>,
    /// ZMQ_SNDHWM / ZMQ_RCVHWM, in messages, per pipe.
    pub sndhwm: usize,
    pub rcvhwm: usize,
    /// Seed of the reconnect jitter (the scenario derives it from the run's seed).
    pub backoff_seed: u64,
    /// Test-only driver bug: silently lose every n-th inbound message (the simulator must
    /// notice). `None` in every real run.
    pub test_lose_inbound_every: Option<u64>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            mechanism: MechanismConfig::Null,
            plain_accept: None,
            routing_id: Bytes::new(),
            handshake_ivl: Some(Duration::from_secs(30)),
            heartbeat: HeartbeatConfig::default(),
            reconnect_ivl: Some(Duration::from_millis(100)),
            reconnect_ivl_max: Duration::ZERO,
            connect_timeout: None,
            sndhwm: 1000,
            rcvhwm: 1000,
            backoff_seed: 1,
            test_lose_inbound_every: None,
        }
    }
}

struct Core {
    host: String,
    pattern: Box<dyn SimPattern>,
    pipes: Pipes,
    opts: SocketOptions,
    trace: Trace,
    record: Record,
}

/// A socket on a simulated host: one pattern, any number of connections.
#[derive(Clone)]
pub struct SimSocket {
    core: Rc<RefCell<Core>>,
}

impl fmt::Debug for SimSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.core.borrow();
        f.debug_struct("SimSocket")
            .field("host", &core.host)
            .field("pattern", &core.pattern)
            .finish()
    }
}

impl SimSocket {
    /// A socket named after its `host`, with `pattern`, writing to `trace` and `record`.
    pub fn new(
        host: &str,
        pattern: Box<dyn SimPattern>,
        opts: SocketOptions,
        trace: Trace,
        record: Record,
    ) -> Self {
        let pipes = Pipes::new(record.clone());
        SimSocket {
            core: Rc::new(RefCell::new(Core {
                host: host.to_string(),
                pattern,
                pipes,
                opts,
                trace,
                record,
            })),
        }
    }

    fn trace(&self, text: impl fmt::Display) {
        let core = self.core.borrow();
        core.trace.event(&core.host, text);
    }

    /// Binds `0.0.0.0:port` and accepts connections in the background.
    pub async fn bind(&self, port: u16) -> io::Result<()> {
        let listener = TcpListener::bind(("0.0.0.0", port)).await?;
        self.trace(format_args!("bind :{port}"));
        tokio::task::spawn_local(accept_loop(self.core.clone(), listener));
        Ok(())
    }

    /// Connects to `host:port` in the background, reconnecting after every disconnect.
    pub fn connect(&self, host: &str, port: u16) {
        tokio::task::spawn_local(connect_loop(self.core.clone(), host.to_string(), port));
    }

    /// Sends without waiting: the pipes the message was queued on, or EAGAIN.
    pub fn send(&self, msg: Message) -> Result<Vec<PipeId>, Errno> {
        let mut core = self.core.borrow_mut();
        let Core { pattern, pipes, .. } = &mut *core;
        pattern.send(msg, pipes)
    }

    /// Sends, waiting while the pattern says EAGAIN (blocking send).
    pub async fn send_wait(&self, msg: Message) -> Result<Vec<PipeId>, Errno> {
        loop {
            let writable = self.core.borrow().pipes.writable.clone();
            match self.send(msg.clone()) {
                Err(Errno::EAGAIN) => writable.notified().await,
                other => return other,
            }
        }
    }

    /// Receives without waiting.
    pub fn try_recv(&self) -> Option<Message> {
        let mut core = self.core.borrow_mut();
        let Core { pattern, pipes, .. } = &mut *core;
        pattern.recv(pipes)
    }

    /// Receives, waiting for a message.
    pub async fn recv(&self) -> Message {
        loop {
            let readable = self.core.borrow().pipes.readable.clone();
            if let Some(m) = self.try_recv() {
                return m;
            }
            readable.notified().await;
        }
    }

    /// Runs `f` on the pipes (inspection by scenarios).
    pub fn with_pipes<R>(&self, f: impl FnOnce(&Pipes) -> R) -> R {
        f(&self.core.borrow().pipes)
    }
}

async fn accept_loop(core: Rc<RefCell<Core>>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                {
                    let c = core.borrow();
                    c.trace
                        .event(&c.host, format_args!("accepted {}", host_of(remote)));
                }
                tokio::task::spawn_local(run_connection(core.clone(), stream, remote));
            }
            Err(e) => {
                let c = core.borrow();
                c.trace.event(&c.host, format_args!("accept failed: {e}"));
                return;
            }
        }
    }
}

async fn connect_loop(core: Rc<RefCell<Core>>, host: String, port: u16) {
    let (opts, trace, record, me) = {
        let c = core.borrow();
        (
            c.opts.clone(),
            c.trace.clone(),
            c.record.clone(),
            c.host.clone(),
        )
    };
    let mut backoff = Backoff::new(
        opts.reconnect_ivl.unwrap_or_default(),
        opts.reconnect_ivl_max,
        opts.backoff_seed,
    );
    loop {
        record.with(|r| r.connect_attempts.push(sim_now()));
        trace.event(&me, format_args!("connect {host}:{port}"));
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
                trace.event(&me, format_args!("connected to {}", host_of(remote)));
                run_connection(core.clone(), stream, remote).await;
            }
            Err(e) => {
                record.with(|r| r.connect_failures += 1);
                trace.event(&me, format_args!("connect failed: {}", e.kind()));
            }
        }
        if opts.reconnect_ivl.is_none() {
            return;
        }
        let delay = backoff.next_delay();
        record.with(|r| r.reconnect_delays.push(delay));
        trace.event(&me, format_args!("reconnect in {}ms", delay.as_millis()));
        tokio::time::sleep(delay).await;
    }
}

fn host_of(addr: SocketAddr) -> String {
    turmoil::reverse_lookup(addr.ip()).unwrap_or_else(|| addr.ip().to_string())
}

/// Per-connection driver state.
struct Driver {
    core: Rc<RefCell<Core>>,
    host: String,
    trace: Trace,
    record: Record,
    conn_no: u64,
    remote: SocketAddr,
    remote_host: String,
    subscriber: bool,
    plain_accept: Option<(Bytes, Bytes)>,
    lose_every: Option<u64>,
    inbound_count: u64,
    wake: Rc<Notify>,
    pipe: Option<PipeId>,
    parts: Message,
    held: VecDeque<Message>,
    out: Bytes,
    finishing: Option<String>,
    eof: bool,
}

async fn run_connection(core: Rc<RefCell<Core>>, stream: TcpStream, remote: SocketAddr) {
    let (config, mut d) = {
        let c = core.borrow();
        let conn_no = c.record.with(|r| {
            let n = r.next_conn;
            r.next_conn += 1;
            r.in_handshake.insert(n, sim_now());
            n
        });
        let plain_server = c.opts.mechanism == MechanismConfig::PlainServer;
        let config = ConnectionConfig {
            mechanism: c.opts.mechanism.clone(),
            routing_id: c.opts.routing_id.clone(),
            handshake_ivl: c.opts.handshake_ivl,
            heartbeat: c.opts.heartbeat,
            zap: ZapSettings {
                handler_available: plain_server,
                ..Default::default()
            },
            peer_address: Bytes::from(remote.ip().to_string()),
            ..ConnectionConfig::new(c.pattern.socket_type())
        };
        let d = Driver {
            core: core.clone(),
            host: c.host.clone(),
            trace: c.trace.clone(),
            record: c.record.clone(),
            conn_no,
            remote,
            remote_host: host_of(remote),
            subscriber: matches!(c.pattern.socket_type(), SocketType::Sub | SocketType::XSub),
            plain_accept: c.opts.plain_accept.clone(),
            lose_every: c.opts.test_lose_inbound_every,
            inbound_count: 0,
            wake: Rc::new(Notify::new()),
            pipe: None,
            parts: Vec::new(),
            held: VecDeque::new(),
            out: Bytes::new(),
            finishing: None,
            eof: false,
        };
        (config, d)
    };
    let mut conn = match Connection::new(config, now()) {
        Ok(c) => c,
        Err(e) => {
            d.trace
                .violation(&d.host, format_args!("bad connection config: {e}"));
            return;
        }
    };
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = vec![0u8; READ_BUF];
    let far = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
    loop {
        d.process(&mut conn);
        if d.out.is_empty() {
            d.out = gather(&mut conn);
        }
        if d.finishing.is_some() {
            // Best effort, never waiting: what is queued (an ERROR command) goes out if the
            // stream takes it now.
            if !d.out.is_empty() && !d.eof {
                tokio::select! {
                    biased;
                    _ = wr.write(&d.out) => {}
                    _ = std::future::ready(()) => {}
                }
            }
            break;
        }
        let deadline = conn
            .poll_timeout()
            .map_or(far, tokio::time::Instant::from_std);
        let reading = d.held.is_empty() && !d.eof;
        let writing = !d.out.is_empty() && !d.eof;
        tokio::select! {
            biased;
            r = wr.write(&d.out), if writing => match r {
                Ok(n) => d.out.advance(n),
                Err(e) => {
                    d.eof = true;
                    d.trace.event(&d.host, format_args!("write to {} failed: {}", d.remote_host, e.kind()));
                    conn.handle_eof(now());
                }
            },
            r = rd.read(&mut buf), if reading => match r {
                Ok(0) => {
                    d.eof = true;
                    conn.handle_eof(now());
                }
                Ok(n) => conn.handle_input(Bytes::copy_from_slice(&buf[..n]), now()),
                Err(e) => {
                    d.eof = true;
                    d.trace.event(&d.host, format_args!("read from {} failed: {}", d.remote_host, e.kind()));
                    conn.handle_eof(now());
                }
            },
            _ = tokio::time::sleep_until(deadline) => conn.handle_timeout(now()),
            _ = d.wake.notified() => {}
        }
    }
    d.teardown();
}

/// Gathers queued output into one write (one turmoil segment).
fn gather(conn: &mut Connection) -> Bytes {
    let Some(first) = conn.poll_transmit() else {
        return Bytes::new();
    };
    if first.len() >= WRITE_BATCH {
        return first;
    }
    let mut b = BytesMut::from(&first[..]);
    while b.len() < WRITE_BATCH {
        match conn.poll_transmit() {
            Some(chunk) => b.extend_from_slice(&chunk),
            None => break,
        }
    }
    b.freeze()
}

impl Driver {
    fn event(&self, text: impl fmt::Display) {
        self.trace.event(&self.host, text);
    }

    fn finish(&mut self, why: String) {
        if self.finishing.is_none() {
            self.finishing = Some(why);
        }
    }

    /// Moves everything that can move: events → pipe, held → pipe, pipe → encoder.
    fn process(&mut self, conn: &mut Connection) {
        self.retry_held();
        while let Some(ev) = conn.poll_event() {
            match ev {
                Event::HandshakeSucceeded(peer) => {
                    self.record.with(|r| {
                        r.in_handshake.remove(&self.conn_no);
                        r.handshakes_ok += 1;
                    });
                    let ty = peer.socket_type.map_or("?", |t| t.name());
                    let mut core = self.core.borrow_mut();
                    let (sndhwm, rcvhwm) = (core.opts.sndhwm, core.opts.rcvhwm);
                    let Core { pattern, pipes, .. } = &mut *core;
                    let id = pipes.attach(
                        *peer,
                        self.remote,
                        self.remote_host.clone(),
                        sndhwm,
                        rcvhwm,
                        self.wake.clone(),
                    );
                    let accepted = pattern.attached(id, pipes);
                    pipes.writable.notify_one();
                    drop(core);
                    self.pipe = Some(id);
                    self.event(format_args!(
                        "handshake ok with {} ({ty}) -> {id}",
                        self.remote_host
                    ));
                    if !accepted {
                        self.finish("refused by the pattern".into());
                    }
                }
                Event::HandshakeFailed(e) => {
                    let t = sim_now();
                    self.record.with(|r| {
                        r.in_handshake.remove(&self.conn_no);
                        r.handshake_failures.push((t, e.to_string()));
                    });
                    self.event(format_args!(
                        "handshake with {} failed: {e}",
                        self.remote_host
                    ));
                    self.finish(format!("handshake failed: {e}"));
                }
                Event::ZapRequest(req) => {
                    let ok = match (&self.plain_accept, req.credentials.as_slice()) {
                        (Some((u, p)), [cu, cp]) => u == cu && p == cp,
                        (None, _) => true,
                        _ => false,
                    };
                    let reply = if ok {
                        ZapReply {
                            request_id: req.request_id.clone(),
                            ..ZapReply::ok(req.credentials.first().cloned().unwrap_or_default())
                        }
                    } else {
                        ZapReply {
                            request_id: req.request_id.clone(),
                            ..ZapReply::deny(400)
                        }
                    };
                    self.event(format_args!(
                        "zap {} for {}",
                        reply.status_code, self.remote_host
                    ));
                    conn.zap_reply(reply, now());
                }
                Event::Frame { body, more } => {
                    self.parts.push(body);
                    if !more {
                        let msg = std::mem::take(&mut self.parts);
                        self.inbound_count += 1;
                        if self
                            .lose_every
                            .is_some_and(|n| self.inbound_count % n.max(1) == 0)
                        {
                            continue; // the deliberate bug
                        }
                        self.deliver(msg);
                    }
                }
                Event::Subscribe(topic) => {
                    self.note_subscription(true, &topic);
                    self.deliver(vec![prefixed(1, &topic)]);
                }
                Event::Cancel(topic) => {
                    self.note_subscription(false, &topic);
                    self.deliver(vec![prefixed(0, &topic)]);
                }
                Event::Join(_) | Event::Leave(_) => {}
                Event::Closed(e) => {
                    let t = sim_now();
                    self.record.with(|r| r.closes.push((t, e.to_string())));
                    self.event(format_args!(
                        "connection to {} closed: {e}",
                        self.remote_host
                    ));
                    self.finish(format!("closed: {e}"));
                }
            }
        }
        self.activate();
        self.encode_outbound(conn);
        let phase = if conn.is_ready() || conn.is_closed() {
            None
        } else if conn.version().is_none() {
            Some("greeting")
        } else {
            Some("mechanism")
        };
        self.record.with(|r| match phase {
            Some(p) => {
                r.handshake_phase.insert(self.conn_no, p);
            }
            None => {
                r.handshake_phase.remove(&self.conn_no);
            }
        });
    }

    fn note_subscription(&self, subscribe: bool, topic: &Bytes) {
        if let Some(pipe) = self.pipe {
            let t = sim_now();
            self.record
                .with(|r| r.subscriptions.push((t, pipe, subscribe, topic.clone())));
        }
        let verb = if subscribe { "subscribe" } else { "cancel" };
        self.event(format_args!(
            "{verb} {:?} from {}",
            String::from_utf8_lossy(topic),
            self.remote_host
        ));
    }

    fn deliver(&mut self, msg: Message) {
        if !self.held.is_empty() {
            self.held.push_back(msg);
            return;
        }
        let Some(pipe) = self.pipe else { return };
        let refused = self.core.borrow_mut().pipes.deliver(pipe, msg).err();
        if let Some(msg) = refused {
            self.held.push_back(msg);
            self.record.with(|r| r.pauses += 1);
        }
        let held = self.held.len();
        self.record.with(|r| r.max_held = r.max_held.max(held));
    }

    fn retry_held(&mut self) {
        let Some(pipe) = self.pipe else { return };
        let mut core = self.core.borrow_mut();
        while let Some(msg) = self.held.pop_front() {
            if let Err(msg) = core.pipes.deliver(pipe, msg) {
                self.held.push_front(msg);
                break;
            }
        }
    }

    /// Lets the pattern look at new inbound messages (a publisher consumes subscriptions).
    fn activate(&mut self) {
        let Some(pipe) = self.pipe else { return };
        let mut core = self.core.borrow_mut();
        let Core { pattern, pipes, .. } = &mut *core;
        if pipes.peek(pipe).is_some() {
            pattern.read_activated(pipe, pipes);
        }
    }

    fn encode_outbound(&mut self, conn: &mut Connection) {
        let Some(pipe) = self.pipe else { return };
        if self.finishing.is_some() || !conn.is_ready() {
            return;
        }
        while conn.pending_transmit_bytes() < OUT_HIGH_WATER {
            let Some(msg) = self.core.borrow_mut().pipes.take_outbound(pipe) else {
                return;
            };
            let result = match msg.as_slice() {
                [one] if self.subscriber && matches!(one.first(), Some(0) | Some(1)) => {
                    let topic = one.slice(1..);
                    if one[0] == 1 {
                        conn.send_subscribe(&topic)
                    } else {
                        conn.send_cancel(&topic)
                    }
                }
                _ => conn.send_message(msg),
            };
            if let Err(e) = result {
                self.finish(format!("send failed: {e}"));
                return;
            }
        }
    }

    fn teardown(&mut self) {
        let why = self.finishing.clone().unwrap_or_else(|| "stopped".into());
        self.record.with(|r| {
            r.in_handshake.remove(&self.conn_no);
            r.handshake_phase.remove(&self.conn_no);
        });
        let Some(pipe) = self.pipe.take() else {
            self.event(format_args!("connection to {} ended", self.remote_host));
            return;
        };
        let held = self.held.len() as u64;
        self.held.clear();
        let lost = {
            let mut core = self.core.borrow_mut();
            let Core { pattern, pipes, .. } = &mut *core;
            pattern.terminated(pipe, pipes);
            pipes.terminate(pipe, &why)
        };
        self.record.with(|r| r.dropped_held += held);
        self.event(format_args!(
            "{pipe} to {} terminated: {lost} queued outbound lost, {held} held inbound lost",
            self.remote_host
        ));
    }
}

fn prefixed(first: u8, topic: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(topic.len() + 1);
    b.extend_from_slice(&[first]);
    b.extend_from_slice(topic);
    b.freeze()
}
