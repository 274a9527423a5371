//! The socket: the public [`Socket`] type, its bind/connect and send/recv calls. What a call
//! does lives in the blocking driver (`driver.rs`: mailbox, pattern, waits); the options
//! (`accessors.rs`), inproc's meeting of the two sides (`inproc.rs`) and the ends of pipes a
//! session left behind (`ended.rs`) have files of their own.
//!
//! A `Socket` is `Send` and not `Sync` (like a libzmq socket: one thread at a time).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use zeroring_engine::pipe::{pipe, PipeConfig};
use zeroring_engine::signal::Signal;
use zeroring_engine::Msg;
use zeroring_transports::socket_type::SocketType;

use crate::attach::{
    hwm_share, inproc_pair, writer_hwm, AttachHandle, Command, InprocSide, PeerAttachment,
};
use crate::context::{Bound, Context, InprocInfo, Pending};
use crate::endpoint::TransportAddr;
use crate::error::{Error, Result};
use crate::options::{num, Options, Value};
use crate::pattern::{Peer, Stats};

mod accessors;
mod driver;
mod ended;
mod inproc;
mod sendable;

pub(crate) use driver::poll_spin;
use driver::Driver;
pub use driver::DEFAULT_SPIN;
pub use sendable::Sendable;

/// Send/recv flag: do not block (zmq.h `ZMQ_DONTWAIT`).
pub const DONTWAIT: i32 = 1;
/// Send flag: more parts follow (zmq.h `ZMQ_SNDMORE`).
pub const SNDMORE: i32 = 2;
/// ZMQ_EVENTS bit: a message can be received.
pub const POLLIN: i32 = 1;
/// ZMQ_EVENTS bit: a message can be sent.
pub const POLLOUT: i32 = 2;

/// A ZeroMQ socket. `Send`, not `Sync`.
///
/// ```
/// use zeroring::{Context, SocketType};
///
/// let ctx = Context::new();
/// let pull = ctx.socket(SocketType::Pull)?;
/// pull.bind("inproc://pipeline")?;
/// let push = ctx.socket(SocketType::Push)?;
/// push.connect("inproc://pipeline")?;
/// push.send_multipart(["a", "b"], 0)?;
/// assert_eq!(pull.recv_multipart(0)?, vec![b"a".to_vec(), b"b".to_vec()]);
/// # Ok::<(), zeroring::Error>(())
/// ```
pub struct Socket {
    core: RefCell<Driver>,
    socket_type: SocketType,
    _not_sync: PhantomData<Cell<()>>,
}

impl Socket {
    pub(crate) fn new(ctx: Context, t: SocketType) -> Result<Socket> {
        Ok(Socket {
            core: RefCell::new(Driver::new(ctx, t)?),
            socket_type: t,
            _not_sync: PhantomData,
        })
    }

    #[inline]
    fn core(&self) -> std::cell::RefMut<'_, Driver> {
        self.core
            .try_borrow_mut()
            .expect("a zeroring Socket is used re-entrantly")
    }

    /// Closes the socket (`zmq_close`); the same as dropping it. Messages already handed to
    /// inproc pipes stay readable by the peers.
    pub fn close(self) {}

    /// The socket type (ZMQ_TYPE).
    pub fn socket_type(&self) -> SocketType {
        self.socket_type
    }

    /// The context this socket belongs to.
    pub fn context(&self) -> Context {
        self.core().ctx.clone()
    }

    // ----- bind / connect -------------------------------------------------------------------

    /// Binds to an endpoint (`zmq_bind`): `inproc://name`, `tcp://interface:port` (`*` for
    /// any interface or an ephemeral port) or `ipc://path` (`ipc://*` picks a fresh path).
    /// EINVAL for a malformed endpoint, EPROTONOSUPPORT for another transport, EADDRINUSE
    /// when the address is taken, ENODEV for an unknown interface name.
    ///
    /// ```
    /// use zeroring::{Context, Error, SocketType};
    ///
    /// let ctx = Context::new();
    /// let s = ctx.socket(SocketType::Pull)?;
    /// s.bind("tcp://127.0.0.1:*")?;
    /// let taken = s.get_last_endpoint()?.unwrap();
    /// let other = ctx.socket(SocketType::Pull)?;
    /// assert_eq!(other.bind(&taken), Err(Error::EADDRINUSE));
    /// assert_eq!(other.bind("tcp://127.0.0.1"), Err(Error::EINVAL));
    /// assert_eq!(other.bind("pgm://127.0.0.1:5555"), Err(Error::EPROTONOSUPPORT));
    /// assert_eq!(other.bind("tcp://no-such-interface:5555"), Err(Error::ENODEV));
    /// s.bind("inproc://doc-bind")?;
    /// assert_eq!(other.bind("inproc://doc-bind"), Err(Error::EADDRINUSE));
    /// # Ok::<(), zeroring::Error>(())
    /// ```
    pub fn bind(&self, endpoint: &str) -> Result<()> {
        let mut c = self.core();
        c.process_commands()?;
        match TransportAddr::parse(endpoint)? {
            TransportAddr::Inproc(name) => c.bind_inproc(&name, endpoint),
            TransportAddr::Tcp(_) | TransportAddr::Ipc(_) => {
                let handle = c.handle();
                // Through `&mut Driver`, so the wire and the options it reads borrow apart.
                let c = &mut *c;
                let last =
                    c.wire
                        .bind(&c.ctx, endpoint, &c.sc.options, handle, c.monitor.clone())?;
                c.sc.options.last_endpoint = last;
                Ok(())
            }
        }
    }

    /// Connects to an endpoint (`zmq_connect`): `inproc://name` (connecting before the bind
    /// works), `tcp://host:port` (optionally `tcp://source;host:port`) or `ipc://path`. The
    /// connection is made in the background and remade after a failure (RECONNECT_IVL), so
    /// nobody needs to listen yet; as in libzmq, a host *name* is resolved on every attempt,
    /// and one that does not resolve (yet) is retried like a refused connection (monitor
    /// event CONNECT_RETRIED), not refused here. EINVAL for a malformed endpoint (no port, a
    /// port of `*`), EPROTONOSUPPORT for another transport.
    ///
    /// ```
    /// use zeroring::{Context, Error, SocketType};
    ///
    /// let ctx = Context::new();
    /// let s = ctx.socket(SocketType::Push)?;
    /// s.connect("tcp://no-such-host.invalid:5555")?; // retried in the background
    /// s.connect("ipc:///nobody/listens/here")?;
    /// assert_eq!(s.connect("tcp://localhost:*"), Err(Error::EINVAL));
    /// assert_eq!(s.connect("tcp://localhost"), Err(Error::EINVAL));
    /// assert_eq!(s.connect("udp://localhost:5555"), Err(Error::ENOCOMPATPROTO)); // RADIO/DISH only
    /// # Ok::<(), zeroring::Error>(())
    /// ```
    pub fn connect(&self, endpoint: &str) -> Result<()> {
        let mut c = self.core();
        c.process_commands()?;
        match TransportAddr::parse(endpoint)? {
            TransportAddr::Inproc(name) => c.connect_inproc(&name, endpoint),
            TransportAddr::Tcp(_) | TransportAddr::Ipc(_) => {
                let handle = c.handle();
                let c = &mut *c;
                c.wire
                    .connect(&c.ctx, endpoint, &c.sc.options, handle, c.monitor.clone())?;
                c.sc.options.last_endpoint = endpoint.to_string();
                // As libzmq: CONNECT_ROUTING_ID names the peer of one connect only.
                c.sc.options.connect_routing_id = None;
                // Take the early pipe now, as libzmq's connect does: a SUB's subscriptions
                // made before the connect go down it without waiting for another call.
                let _ = c.process_commands();
                Ok(())
            }
        }
    }

    /// Stops accepting connections on an endpoint (`zmq_unbind`). For inproc, peers already
    /// attached stay attached (as in libzmq); ENOENT when not bound there, EINVAL for a
    /// malformed endpoint.
    ///
    /// As in libzmq 4.3.5, `unbind` and [`disconnect`](Self::disconnect) are one operation
    /// (its `term_endpoint`): either ends whatever this socket bound or connected under
    /// `endpoint`. A tcp endpoint not found as written is looked for by its resolved address
    /// (`tcp://localhost:5555` finds a bind that LAST_ENDPOINT names `tcp://127.0.0.1:5555`).
    ///
    /// ```
    /// use zeroring::{Context, Error, SocketType};
    ///
    /// let ctx = Context::new();
    /// let s = ctx.socket(SocketType::Pull)?;
    /// s.bind("tcp://127.0.0.1:*")?;
    /// let ep = s.get_last_endpoint()?.unwrap();
    /// s.unbind(&ep)?;
    /// assert_eq!(s.unbind(&ep), Err(Error::ENOENT));
    /// assert_eq!(s.unbind("tcp://"), Err(Error::EINVAL));
    /// # Ok::<(), zeroring::Error>(())
    /// ```
    pub fn unbind(&self, endpoint: &str) -> Result<()> {
        self.term_endpoint(endpoint)
    }

    /// Closes the connections made to an endpoint (`zmq_disconnect`); ENOENT when there are
    /// none. The same operation as [`unbind`](Self::unbind), as in libzmq.
    ///
    /// ```
    /// use zeroring::{Context, Error, SocketType};
    ///
    /// let ctx = Context::new();
    /// let s = ctx.socket(SocketType::Push)?;
    /// s.connect("tcp://127.0.0.1:5555")?;
    /// s.disconnect("tcp://127.0.0.1:5555")?;
    /// assert_eq!(s.disconnect("tcp://127.0.0.1:5555"), Err(Error::ENOENT));
    /// # Ok::<(), zeroring::Error>(())
    /// ```
    pub fn disconnect(&self, endpoint: &str) -> Result<()> {
        self.term_endpoint(endpoint)
    }

    /// libzmq's `socket_base_t::term_endpoint`: unbinds or disconnects `endpoint`.
    fn term_endpoint(&self, endpoint: &str) -> Result<()> {
        let mut c = self.core();
        c.process_commands()?;
        match TransportAddr::parse(endpoint)? {
            TransportAddr::Inproc(name) => {
                let id = c.id;
                let mut removed = {
                    let mut reg = c.ctx.inproc();
                    if reg.bound.get(&name).is_some_and(|b| b.info.socket_id == id) {
                        reg.bound.remove(&name);
                        return Ok(());
                    }
                    let mut n = 0;
                    if let Some(list) = reg.pending.get_mut(&name) {
                        let before = list.len();
                        list.retain(|p| p.connector.socket_id != id);
                        n = before - list.len();
                    }
                    n
                };
                let uri = TransportAddr::Inproc(name).uri();
                let (p, mut cx) = c.sc.cx();
                removed += p.disconnect(&uri, &mut cx);
                if removed == 0 {
                    Err(Error::ENOENT)
                } else {
                    Ok(())
                }
            }
            TransportAddr::Tcp(_) | TransportAddr::Ipc(_) => {
                let ipv6 = crate::config::ipv6(&c.sc.options, c.ctx.ipv6());
                let (key, connecter) = c.wire.stop(endpoint, ipv6)?;
                let immediate = c.sc.options.immediate;
                let (p, mut cx) = c.sc.cx();
                if connecter && !immediate {
                    // The connecter's pipe was the socket's from `connect` on (IMMEDIATE off):
                    // libzmq's disconnect terminates it at once (`pipe_t::terminate(false)`),
                    // so what it still holds is never read — a message queued before the
                    // disconnect must not surface after a reconnect (test_spec_pushpull's
                    // multipart_atomic_drop). Under IMMEDIATE the session lets the socket
                    // read what it delivered, as libzmq's does. `disconnect` covers `ended_by_socket`.
                    p.disconnect(&key, &mut cx);
                } else {
                    // Its connections' pipes close as the transport lets go of them.
                    p.ended_by_socket(&key);
                }
                Ok(())
            }
        }
    }

    /// Publishes this socket's events (the `MonitorEvent` codes in mask `events`) on a PAIR
    /// socket bound at `endpoint` (`zmq_socket_monitor`; inproc endpoints, as libzmq allows).
    /// Each event is two frames: `[u16 LE event][u32 LE value]`, then the endpoint. An empty
    /// `endpoint` stops monitoring (the last event is MONITOR_STOPPED), and so does a new
    /// `endpoint` before it is bound (when that bind fails, as for the endpoint of the
    /// monitor it replaces, EADDRINUSE, no monitor is left, as in libzmq). Events are never
    /// allowed to block the connection that reports them: when the PAIR's queue is full they
    /// are dropped and counted.
    pub fn monitor(&self, endpoint: &str, events: u32) -> Result<()> {
        let c = self.core();
        if endpoint.is_empty() {
            c.monitor.stop();
            return Ok(());
        }
        if !matches!(TransportAddr::parse(endpoint)?, TransportAddr::Inproc(_)) {
            return Err(Error::EPROTONOSUPPORT);
        }
        // As libzmq's `socket_base_t::monitor`: a monitor already running stops first (its
        // reader gets MONITOR_STOPPED), then the new one binds, and when that fails none is
        // left. The old PAIR is closed only after the bind: libzmq's close, asynchronous,
        // still holds its endpoint then, so asking again for the same one is EADDRINUSE.
        let old = c.monitor.detach();
        let pair = c.ctx.socket(SocketType::Pair)?;
        pair.set_linger(0)?;
        let bound = pair.bind(endpoint);
        drop(old);
        bound?;
        c.monitor.start(Box::new(pair), events);
        Ok(())
    }

    /// Monitor events dropped because the monitor's queue was full.
    pub fn monitor_dropped(&self) -> u64 {
        self.core().monitor.dropped()
    }

    // ----- send / recv ----------------------------------------------------------------------

    /// Sends one part (`zmq_send`); `flags`: [`DONTWAIT`], [`SNDMORE`]. Blocks while the
    /// message cannot be queued, up to SNDTIMEO. EAGAIN when it cannot be queued now
    /// (DONTWAIT) or by the timeout; EINTR when a signal handler ran on this thread while it
    /// was blocked (as libzmq: nothing was queued, retry if you like); EFSM out of sequence
    /// (REQ, REP); ENOTSUP for socket types that do not send; ETERM after shutdown.
    ///
    /// ```
    /// use zeroring::{Context, Error, SocketType, DONTWAIT};
    ///
    /// let ctx = Context::new();
    /// let push = ctx.socket(SocketType::Push)?;
    /// assert_eq!(push.send("no peer", DONTWAIT), Err(Error::EAGAIN));
    /// let req = ctx.socket(SocketType::Req)?;
    /// req.connect("inproc://doc-send")?;
    /// req.send("request", 0)?;
    /// assert_eq!(req.send("again", 0), Err(Error::EFSM));
    /// let pull = ctx.socket(SocketType::Pull)?;
    /// assert_eq!(pull.send("x", 0), Err(Error::ENOTSUP));
    /// # Ok::<(), zeroring::Error>(())
    /// ```
    #[inline]
    pub fn send(&self, data: impl Sendable, flags: i32) -> Result<()> {
        match data.body_to_copy() {
            Some(body) => self.core().send_slice(body, flags),
            None => self.core().send(data.into_msg(), flags),
        }
    }

    /// Sends one part given as a [`Msg`] (`zmq_msg_send`).
    pub fn send_msg(&self, msg: Msg, flags: i32) -> Result<()> {
        self.core().send(msg, flags)
    }

    /// [`Socket::send_msg`] that gives the part back, with the error, when it was not sent —
    /// `zmq_msg_send`'s contract, where the caller keeps a message that was not sent — so a
    /// caller that must keep it need not send a clone.
    pub fn try_send_msg(&self, msg: Msg, flags: i32) -> std::result::Result<(), (Error, Msg)> {
        self.core()
            .send_returning(msg, flags)
            .map_err(|e| (e.error, e.msg))
    }

    /// Sends every item as one part of a single message; `flags` may add [`DONTWAIT`] (and
    /// [`SNDMORE`] to leave the message open).
    pub fn send_multipart<I>(&self, parts: I, flags: i32) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Sendable,
    {
        let mut c = self.core();
        let mut it = parts.into_iter().peekable();
        while let Some(p) = it.next() {
            let more = if it.peek().is_some() {
                SNDMORE
            } else {
                flags & SNDMORE
            };
            c.send(p.into_msg(), (flags & !SNDMORE) | more)?;
        }
        Ok(())
    }

    /// Receives one part (`zmq_msg_recv`); `flags`: [`DONTWAIT`]. Blocks up to RCVTIMEO.
    /// EAGAIN when nothing comes now (DONTWAIT) or by the timeout; EINTR when a signal handler
    /// ran on this thread while it was blocked (nothing is lost: the next message is still
    /// there); EFSM out of sequence (REQ, REP); ENOTSUP for socket types that do not receive;
    /// ETERM after shutdown.
    ///
    /// ```
    /// use zeroring::{Context, Error, SocketType, DONTWAIT};
    ///
    /// let ctx = Context::new();
    /// let pull = ctx.socket(SocketType::Pull)?;
    /// assert_eq!(pull.recv_msg(DONTWAIT).err(), Some(Error::EAGAIN));
    /// pull.set_rcvtimeo(10)?;
    /// assert_eq!(pull.recv_msg(0).err(), Some(Error::EAGAIN));
    /// let req = ctx.socket(SocketType::Req)?;
    /// assert_eq!(req.recv_msg(0).err(), Some(Error::EFSM));
    /// let push = ctx.socket(SocketType::Push)?;
    /// assert_eq!(push.recv_msg(0).err(), Some(Error::ENOTSUP));
    /// # Ok::<(), zeroring::Error>(())
    /// ```
    pub fn recv_msg(&self, flags: i32) -> Result<Msg> {
        self.core().recv(flags)
    }

    /// Receives one part into `msg`, rust-zmq style.
    #[inline]
    pub fn recv(&self, msg: &mut Msg, flags: i32) -> Result<()> {
        self.core().recv_into(msg, flags)
    }

    /// Receives one part as bytes.
    pub fn recv_bytes(&self, flags: i32) -> Result<Vec<u8>> {
        Ok(self.core().recv(flags)?.data().to_vec())
    }

    /// Receives one part as text: `Ok(Err(bytes))` when it is not UTF-8.
    pub fn recv_string(&self, flags: i32) -> Result<std::result::Result<String, Vec<u8>>> {
        let b = self.recv_bytes(flags)?;
        Ok(String::from_utf8(b).map_err(|e| e.into_bytes()))
    }

    /// Receives every part of the next message.
    pub fn recv_multipart(&self, flags: i32) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .recv_multipart_msg(flags)?
            .into_iter()
            .map(|m| m.data().to_vec())
            .collect())
    }

    /// Receives every part of the next message as [`Msg`]s.
    pub fn recv_multipart_msg(&self, flags: i32) -> Result<Vec<Msg>> {
        let mut c = self.core();
        let mut parts = vec![c.recv(flags)?];
        while parts.last().is_some_and(|m| m.more()) {
            // The rest of a message is already there: never blocks for long.
            parts.push(c.recv(flags & !DONTWAIT)?);
        }
        Ok(parts)
    }

    /// ZMQ_RCVMORE: whether the last part received has more parts after it.
    pub fn get_rcvmore(&self) -> Result<bool> {
        Ok(self.core().rcvmore)
    }

    /// ZMQ_EVENTS: [`POLLIN`] | [`POLLOUT`] as they are now.
    ///
    /// Edge-triggered, as libzmq's ZMQ_FD: the call re-arms the socket's [`signal`](Self::signal),
    /// and after it, anything that changes the socket's readiness (a message arrives, room to
    /// send appears, a peer attaches) makes the signal's fd readable. So a poll loop does: read
    /// EVENTS; if what it wants is not there, block on the fd; on wake, read EVENTS again.
    pub fn get_events(&self) -> Result<i32> {
        let mut c = self.core();
        // First arm, then look: what changes after the look is sure to make the fd readable.
        c.signal.rearm();
        c.process_all_commands()?;
        c.refresh_credit();
        let (p, mut cx) = c.sc.cx();
        let mut ev = 0;
        if p.has_in(&mut cx) {
            ev |= POLLIN;
        }
        if p.has_out(&mut cx) {
            ev |= POLLOUT;
        }
        Ok(ev)
    }

    /// The socket's counters: messages sent and received, and every drop by cause.
    pub fn stats(&self) -> Stats {
        let mut c = self.core();
        let _ = c.process_commands();
        c.sc.stats
    }

    /// Accepted tcp/ipc connections still in their ZMTP handshake, summed over the socket's
    /// bound endpoints: now, the most at once per endpoint (summed), the caps
    /// (ZR_MAX_HANDSHAKES, summed) and how many were evicted to make room for newer ones.
    pub fn handshakes(&self) -> zeroring_transports::driver::HandshakeCounts {
        self.core().wire.handshakes()
    }

    /// Number of peers (pipes) attached now.
    pub fn peer_count(&self) -> usize {
        let mut c = self.core();
        let _ = c.process_commands();
        c.sc.peers()
    }

    /// ZMQ_FD: the file descriptor that becomes readable when the socket's readiness may have
    /// changed, edge-triggered as libzmq's: read [`get_events`](Self::get_events) after it
    /// fires (and before blocking on it), never the descriptor itself. For event loops (mio,
    /// tokio's `AsyncFd`, the bindings' pollers) and [`crate::poll`](fn@crate::poll).
    ///
    /// The first call arms the fd for a poller that waits on it before it reads EVENTS, as
    /// libzmq's (its mailbox) can be waited on: whatever happens from then on makes it
    /// readable, and it is readable at once when something already happened since the
    /// socket was made (a peer attached, a message came).
    pub fn get_fd(&self) -> std::os::fd::RawFd {
        let mut c = self.core();
        if !c.fd_handed_out {
            c.fd_handed_out = true;
            c.signal.arm_for_poller();
        }
        c.signal.fd()
    }

    /// The socket's readiness signal: notified when a pipe becomes readable or writable, a peer
    /// attaches, or the context shuts down (the future ZMQ_FD is its eventfd).
    pub fn signal(&self) -> Arc<Signal> {
        self.core().signal.clone()
    }

    /// How long a blocking call spins before sleeping (default [`DEFAULT_SPIN`]).
    pub fn set_spin(&self, spin: Duration) {
        self.core().spin = spin;
    }

    /// For transports: a handle that attaches pipe pairs to this socket from any thread.
    #[doc(hidden)]
    pub fn attach_handle(&self) -> AttachHandle {
        self.core().handle()
    }

    /// A snapshot of the socket's options (for transports: HWMs, routing id, metadata…).
    #[doc(hidden)]
    pub fn options_snapshot(&self) -> Options {
        self.core().sc.options.clone()
    }
}

// `Context::socket` lives here, beside what it makes, so that the context (below the
// sockets in this crate's layers) does not depend on them.
impl Context {
    /// Creates a socket (`zmq_socket`): every libzmq 4.3 stable type, STREAM included. EINVAL
    /// for the draft types (SERVER, CLIENT, RADIO, DISH, GATHER, SCATTER, DGRAM), EMFILE beyond
    /// MAX_SOCKETS, ETERM after shutdown.
    ///
    /// ```
    /// use zeroring::{Context, Error, SocketType};
    ///
    /// let ctx = Context::new();
    /// assert!(ctx.socket(SocketType::Stream).is_ok());
    /// assert_eq!(ctx.socket(SocketType::Server).err(), Some(Error::EINVAL));
    /// ctx.set_max_sockets(1)?;
    /// let _one = ctx.socket(SocketType::Pair)?;
    /// assert_eq!(ctx.socket(SocketType::Pair).err(), Some(Error::EMFILE));
    /// ctx.shutdown();
    /// assert_eq!(ctx.socket(SocketType::Pair).err(), Some(Error::ETERM));
    /// # Ok::<(), zeroring::Error>(())
    /// ```
    pub fn socket(&self, t: SocketType) -> Result<Socket> {
        Socket::new(self.clone(), t)
    }
}

/// A monitor's PAIR socket: events go out without blocking the connection that reports them.
impl crate::monitor::EventTarget for Socket {
    fn publish(&self, head: &[u8], endpoint: &str) -> bool {
        self.send(head, SNDMORE | DONTWAIT)
            .and_then(|()| self.send(endpoint.as_bytes(), DONTWAIT))
            .is_ok()
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.core.try_borrow() {
            Ok(c) => f
                .debug_struct("Socket")
                .field("type", &self.socket_type)
                .field("stats", &c.sc.stats)
                .field("pattern", &c.sc.pattern)
                .finish(),
            Err(_) => f
                .debug_struct("Socket")
                .field("type", &self.socket_type)
                .finish_non_exhaustive(),
        }
    }
}
