//! tcp:// and ipc://: the socket's side of the stream driver.
//!
//! Owns: the [`SocketLink`] through which a connection's pipes reach the socket
//! (its [`AttachHandle`] mailbox, like inproc peers), and the socket's bound and connected
//! endpoints (so that unbind, disconnect and close stop the right listener or connecter).
//!
//! Must never: block the I/O thread (attachments are mailbox posts; a ZAP exchange runs on a
//! helper thread), or let a connection outlive its socket (close stops them all).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use zeroring_engine::Msg;

use zeroring_transports::driver::{
    self, ConnectHandle, ListenerHandle, PipeEnds, SocketLink, ZapResponder,
};
use zeroring_transports::endpoint::{self as ep, Direction};
use zeroring_transports::monitor::MonitorEvent;
use zeroring_transports::zmtp::{PeerInfo, ZapRequest};
use zeroring_transports::SocketType;

use crate::attach::{AttachHandle, Peer, PeerAttachment};
use crate::config::{bytes, connection_config, transport_options};
use crate::context::WeakContext;

/// How long unbind and close wait for a listener to stop (an I/O thread answers in
/// microseconds; the bound keeps a wedged one from hanging the caller).
const LISTENER_STOP_WAIT: Duration = Duration::from_secs(2);
use crate::error::{Error, Result};
use crate::monitor::MonitorSink;
use crate::options::{num, Options};
use crate::Context;

/// ZMQ_SOCKS_PROXY (`host:port`, or `source:port;host:port` to bind a local address first, as
/// libzmq; resolved here) with SOCKS_USERNAME/PASSWORD, for a tcp endpoint; `None` without a
/// proxy or for ipc. A proxy that does not resolve → EINVAL.
fn socks_request(o: &Options, endpoint: &ep::Endpoint) -> Result<Option<driver::SocksRequest>> {
    let (Some(proxy), ep::Endpoint::Tcp(tcp)) = (bytes(o, num::SOCKS_PROXY), endpoint) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&proxy)
        .map_err(|_| Error::EINVAL)?
        .trim_end_matches('\0');
    let resolve = |t: &str| {
        std::net::ToSocketAddrs::to_socket_addrs(t)
            .ok()
            .and_then(|mut a| a.next())
            .ok_or(Error::EINVAL)
    };
    let (source, text) = match text.split_once(';') {
        Some((src, proxy)) => (Some(resolve(src)?), proxy),
        None => (None, text),
    };
    let proxy = resolve(text)?;
    let auth = bytes(o, num::SOCKS_USERNAME).map(|user| {
        let pass = bytes(o, num::SOCKS_PASSWORD).unwrap_or_default();
        (user.to_vec(), pass.to_vec())
    });
    let mut req = driver::SocksRequest::for_addr(proxy, &tcp.addr, auth).ok_or(Error::EINVAL)?;
    req.source = source;
    Ok(Some(req))
}

/// How a connection's pipes reach its socket.
pub(crate) struct Link {
    attach: AttachHandle,
    sndhwm: usize,
    rcvhwm: usize,
    conflate: bool,
    monitor: MonitorSink,
    ctx: WeakContext,
    /// CONNECT_ROUTING_ID as it was at connect: the routing id this socket gives the peer
    /// (ROUTER, STREAM), whatever the peer calls itself.
    connect_rid: Option<Bytes>,
    /// ZMQ_PROBE_ROUTER (ROUTER, DEALER, REQ): each pipe starts with an empty message.
    probe: bool,
}

impl Link {
    /// A pipe pair for `peer`, the socket's ends posted to it; `zmtp`: not a raw (STREAM)
    /// connection, where a probe would be data.
    fn pipes(&self, peer: Peer, zmtp: bool) -> Option<PipeEnds> {
        let (mut socket_ends, ours) = PeerAttachment::pipe_pair(peer, self.sndhwm, self.rcvhwm);
        if zmtp && self.probe && socket_ends.writer.write(Msg::new()).is_ok() {
            // libzmq's socket writes the probe as it attaches the pipe (at connect, or at the
            // handshake for a ROUTER that must learn the peer's id). Written here, on the I/O
            // thread, it goes out with the handshake even while the socket's thread is busy
            // elsewhere and has not taken the pipe from its mailbox yet (test_probe_router:
            // the client ROUTER is never called after its connect).
            socket_ends.writer.flush();
        }
        self.attach.attach(socket_ends).ok()?;
        Some(ours)
    }
}

impl SocketLink for Link {
    fn attach(&self, info: &PeerInfo, endpoint: &str, key: Option<u64>) -> Option<PipeEnds> {
        let ours = self.attach.socket_type();
        let mut peer = Peer::from_handshake(info, ours, endpoint, key, self.conflate);
        if self.connect_rid.is_some() {
            peer.routing_id = self.connect_rid.clone();
        }
        self.pipes(peer, true)
    }

    fn attach_early(&self, endpoint: &str, key: u64) -> Option<PipeEnds> {
        let ours = self.attach.socket_type();
        if matches!(ours, SocketType::Router | SocketType::Stream) {
            // libzmq's ROUTER and STREAM attach at connect under CONNECT_ROUTING_ID
            // (IMMEDIATE off), so the peer can be sent to at once; without one, a ROUTER
            // learns the id in the handshake and a STREAM announces each connection.
            let rid = self.connect_rid.clone()?;
            return self.pipes(
                Peer {
                    routing_id: Some(rid),
                    key: Some(key),
                    conflate: self.conflate,
                    ..Peer::new(ours, endpoint)
                },
                ours == SocketType::Router,
            );
        }
        self.pipes(Peer::early(ours, endpoint, key, self.conflate), true)
    }

    fn hiccup(&self, key: u64) {
        let _ = self.attach.hiccup(key);
    }

    fn ended(&self, _key: u64, ends: PipeEnds) {
        self.attach.ended(ends);
    }

    fn gave_up(&self, key: u64) {
        self.attach.gave_up(key);
    }

    fn attach_raw(
        &self,
        endpoint: &str,
        key: Option<u64>,
        metadata: Option<Arc<zeroring_engine::MsgMetadata>>,
    ) -> Option<PipeEnds> {
        self.pipes(
            Peer {
                routing_id: self.connect_rid.clone(),
                key,
                metadata,
                ..Peer::new(SocketType::Stream, endpoint)
            },
            false,
        )
    }

    fn monitor(&self, event: MonitorEvent, value: u32, endpoint: &str) {
        self.monitor.emit(event, value, endpoint);
    }

    fn zap(&self, request: ZapRequest, respond: ZapResponder) {
        crate::zap::ask(self.ctx.clone(), request, respond);
    }
}

/// A bound or connected tcp/ipc endpoint of one socket.
#[derive(Debug)]
enum Handle {
    Listener(ListenerHandle),
    Connecter(ConnectHandle),
}

#[derive(Debug)]
struct Entry {
    /// As the user wrote it (connect) or as LAST_ENDPOINT reports it (bind).
    endpoint: String,
    handle: Handle,
}

/// A socket's tcp and ipc endpoints.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    entries: Vec<Entry>,
}

fn io_error(e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(n) => Error::from_errno(n),
        None => Error::EINVAL,
    }
}

fn endpoint_error(e: ep::EndpointError) -> Error {
    Error::from_errno(e.errno.0)
}

impl Wire {
    /// Binds a tcp/ipc endpoint; returns LAST_ENDPOINT (the real port of a wildcard bind).
    pub(crate) fn bind(
        &mut self,
        ctx: &Context,
        endpoint: &str,
        o: &Options,
        attach: AttachHandle,
        monitor: MonitorSink,
    ) -> Result<String> {
        // libzmq reports BIND_FAILED for whatever fails once the transport is known (a
        // malformed address, a name that does not resolve, the bind itself), naming the
        // address without its scheme (`127.0.0.1:5555`, `/tmp/x.sock`).
        let address = endpoint.split_once("://").map_or(endpoint, |(_, a)| a);
        let failed = |errno: i32| monitor.emit(MonitorEvent::BindFailed, errno as u32, address);
        let parsed = ep::parse(endpoint, Direction::Bind).map_err(|e| {
            failed(e.errno.0);
            endpoint_error(e)
        })?;
        let topts = transport_options(o, ctx.ipv6());
        let addr = match driver::bind_addr(&parsed, topts.ipv6) {
            Ok(a) => a,
            Err(e) => {
                failed(e.raw_os_error().unwrap_or(0));
                return Err(io_error(e));
            }
        };
        let config = connection_config(o, crate::zap::handler_bound(ctx));
        let link = Arc::new(self.link(ctx, o, attach, monitor.clone()));
        let threads = ctx.with_engine(|e| Arc::<[_]>::from(e.threads().to_vec()))?;
        let handle = match driver::bind(threads, addr, topts, config, link) {
            Ok(h) => h,
            Err(e) => {
                failed(e.raw_os_error().unwrap_or(0));
                return Err(io_error(e));
            }
        };
        let last = handle.endpoint().to_string();
        self.entries.push(Entry {
            endpoint: last.clone(),
            handle: Handle::Listener(handle),
        });
        Ok(last)
    }

    /// Starts connecting to a tcp/ipc endpoint (asynchronous, reconnecting).
    pub(crate) fn connect(
        &mut self,
        ctx: &Context,
        endpoint: &str,
        o: &Options,
        attach: AttachHandle,
        monitor: MonitorSink,
    ) -> Result<()> {
        let parsed = ep::parse(endpoint, Direction::Connect).map_err(endpoint_error)?;
        let mut topts = transport_options(o, ctx.ipv6());
        topts.socks = socks_request(o, &parsed)?;
        let mut target = driver::connect_target(&parsed, topts.ipv6).map_err(io_error)?;
        target.endpoint = endpoint.to_string();
        let config = connection_config(o, crate::zap::handler_bound(ctx));
        let mut link = self.link(ctx, o, attach, monitor);
        link.connect_rid = o.connect_routing_id.clone();
        let link = Arc::new(link);
        let handle = ctx
            .with_engine(|e| driver::connect(e.threads(), target, topts, config, link))?
            .map_err(|_| Error::ETERM)?;
        self.entries.push(Entry {
            endpoint: endpoint.to_string(),
            handle: Handle::Connecter(handle),
        });
        Ok(())
    }

    fn link(&self, ctx: &Context, o: &Options, attach: AttachHandle, monitor: MonitorSink) -> Link {
        Link {
            attach,
            sndhwm: o.sndhwm.max(0) as usize,
            rcvhwm: o.rcvhwm.max(0) as usize,
            conflate: o.conflate,
            monitor,
            ctx: ctx.downgrade(),
            connect_rid: None,
            probe: o.probe_router
                && matches!(
                    o.socket_type,
                    SocketType::Router | SocketType::Dealer | SocketType::Req
                ),
        }
    }

    /// ZR_MAX_HANDSHAKES's counts over every bound endpoint.
    pub(crate) fn handshakes(&self) -> driver::HandshakeCounts {
        let mut sum = driver::HandshakeCounts::default();
        for e in &self.entries {
            if let Handle::Listener(h) = &e.handle {
                sum += h.handshakes();
            }
        }
        sum
    }

    /// Unbinds and disconnects every entry for `endpoint`, listeners and connecters alike
    /// (libzmq's `term_endpoint`, behind both `zmq_unbind` and `zmq_disconnect`); ENOENT when
    /// there is none. An endpoint is looked up as written (a connect) or as LAST_ENDPOINT
    /// wrote it (a bind), then, for tcp, by its resolved forms
    /// ([`driver::tcp_lookup_forms`]; `ipv6` is ZMQ_IPV6's for the resolver). Returns the
    /// entry key it found (the pipes made for that connect, or accepted by that bind, carry it
    /// as their endpoint) and whether a connecter was among those stopped.
    pub(crate) fn stop(&mut self, endpoint: &str, ipv6: bool) -> Result<(String, bool)> {
        let known = |key: &str| self.entries.iter().any(|e| e.endpoint == key);
        let key = if known(endpoint) {
            endpoint.to_string()
        } else {
            driver::tcp_lookup_forms(endpoint, ipv6)
                .into_iter()
                .find(|f| known(f))
                .ok_or(Error::ENOENT)?
        };
        let mut stopping = Vec::new();
        let mut connecter = false;
        self.entries.retain(|e| {
            if e.endpoint != key {
                return true;
            }
            match &e.handle {
                Handle::Listener(h) => {
                    if h.stop() {
                        stopping.push(h.clone());
                    }
                }
                Handle::Connecter(h) => {
                    h.stop();
                    connecter = true;
                }
            }
            false
        });
        // Unbind returns once the endpoint is free again (libzmq's rebind-at-once works).
        for h in stopping {
            h.wait_stopped(LISTENER_STOP_WAIT);
        }
        Ok((key, connecter))
    }

    /// Forgets the connect whose session has `key`: it gave up on a refused connect
    /// (RECONNECT_STOP_CONN_REFUSED), and libzmq's socket then runs `term_endpoint` on it.
    /// Its session has closed already; another connect to the same endpoint stays.
    pub(crate) fn forget(&mut self, key: u64) {
        self.entries
            .retain(|e| !matches!(&e.handle, Handle::Connecter(h) if h.key() == key));
    }

    /// The socket closes: every connection delivers what is queued within `linger_ms`
    /// (ZMQ_LINGER: −1 no limit, 0 drop at once), counted in `lingering` until done.
    pub(crate) fn linger_all(&mut self, linger_ms: i32, lingering: &driver::Lingering) {
        let limit = (linger_ms >= 0).then(|| Duration::from_millis(linger_ms as u64));
        let mut stopping = Vec::new();
        for e in self.entries.drain(..) {
            match e.handle {
                Handle::Listener(h) => {
                    if h.linger(limit, lingering) {
                        stopping.push(h);
                    }
                }
                Handle::Connecter(h) => h.linger(limit, lingering),
            }
        }
        // Listeners stop at once (their connections linger on): wait for that, so the
        // endpoint is free when close returns and the monitor sees CLOSED before
        // MONITOR_STOPPED.
        for h in stopping {
            h.wait_stopped(LISTENER_STOP_WAIT);
        }
    }

    /// Stops everything at once.
    pub(crate) fn stop_all(&mut self) {
        for e in self.entries.drain(..) {
            match e.handle {
                Handle::Listener(h) => {
                    h.stop();
                }
                Handle::Connecter(h) => h.stop(),
            }
        }
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop_all();
    }
}
