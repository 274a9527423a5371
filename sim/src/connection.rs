//! The simulator's I/O half of one connection: turmoil TCP driving the production
//! [`StreamCore`], as the engine's `Stream` drives it on an I/O thread.
//!
//! It reads while the core wants input, writes what the core hands out (one send at a time),
//! sleeps until the core's deadline on the simulated clock, wakes on the pipes' notifications,
//! routes ZAP requests to the socket's link, and records what happened (handshake, end, why)
//! in the host's [`Record`](crate::record::Record) and the trace.
//!
//! Must never: decide anything about the protocol or the pipes (that is the core's), or read
//! the wall clock.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::TcpStream;
use zeroring_engine::SendBuf;
use zeroring_transports::driver::{Kept, Link, Status, StreamCore, StreamEnd};
use zeroring_transports::monitor::MonitorEvent;
use zeroring_transports::zmtp::{ZapError, ZapReply};

use crate::record::ConnRecord;
use crate::socket::{ConnLink, Inner, LinkEvent, Wake};
use crate::trace::sim_now;

/// Bytes read from the stream at a time.
pub const READ_BUF: usize = 8 * 1024;
/// Most buffers gathered into one write (one turmoil segment).
pub const MAX_SEND_CHUNKS: usize = 8;

/// The simulated clock as the sans-IO code wants it.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The host name behind an address.
pub(crate) fn host_of(addr: SocketAddr) -> String {
    turmoil::reverse_lookup(addr.ip()).unwrap_or_else(|| addr.ip().to_string())
}

/// Ends a running connection from outside: at once ([`StopSignal::stop`]) or at a deadline
/// (an accepted connection lingering after its socket closed).
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    stopped: Cell<bool>,
    deadline: Cell<Option<Instant>>,
    wake: tokio::sync::Notify,
}

impl StopSignal {
    pub(crate) fn stop(&self) {
        self.stopped.set(true);
        self.wake.notify_one();
    }

    pub(crate) fn stop_at(&self, deadline: Instant) {
        self.deadline.set(Some(deadline));
        self.wake.notify_one();
    }
}

/// Runs one connection until it ends; returns the pipes a connecter keeps for its next
/// connection and how it ended (whether the connecter may retry). `keep` is set for a
/// connecter: its key and the pipes it kept so far. Its monitor events are recorded under
/// `path` (one path per connecter, or per accepted connection).
pub(crate) async fn run(
    sock: Rc<Inner>,
    stream: TcpStream,
    remote: SocketAddr,
    endpoint: String,
    keep: Option<(u64, Option<Kept>)>,
    stop: Rc<StopSignal>,
    path: String,
) -> (Option<Kept>, StreamEnd) {
    let peer = host_of(remote);
    let record = sock.record.clone();
    let conn_no = record.with(|r| {
        let n = r.next_conn;
        r.next_conn += 1;
        r.connections.insert(
            n,
            ConnRecord {
                peer_host: peer.clone(),
                started_at: sim_now(),
                ready_at: None,
                ready_seq: None,
                ended_at: None,
            },
        );
        r.in_handshake.insert(n, sim_now());
        n
    });
    let mut config = sock.connection_config();
    config.peer_address = Bytes::from(remote.ip().to_string());
    let conn_link = Arc::new(ConnLink::new(sock.shared.clone()));
    let link: Link = conn_link.clone();
    let mut core =
        match StreamCore::new(config, link.clone(), endpoint.into(), conn_no as u32, now()) {
            Ok(c) => c,
            Err(e) => {
                sock.trace
                    .violation(&sock.host, format_args!("bad connection config: {e}"));
                return (keep.and_then(|(_, k)| k), StreamEnd::Lost);
            }
        };
    let readable = Arc::new(tokio::sync::Notify::new());
    let writable = Arc::new(tokio::sync::Notify::new());
    core.set_notify(
        Arc::new(Wake(readable.clone())),
        Arc::new(Wake(writable.clone())),
    );
    if let Some((key, kept)) = keep {
        core.keep_pipes(key, kept);
    }
    core.start();
    // The send fast path's hand-over is offered to the simulated socket as on an I/O thread,
    // with /dev/null standing for the connection: the production patterns claim it and try a
    // direct write, which fails there (ENOTSOCK) and falls back to the pipe, so every
    // simulated message still crosses turmoil; what runs is the hand-over itself — released
    // when idle, claimed back before each step, the pipe left unread while the application
    // holds it — under every fault a scenario injects.
    let direct_conn: Option<zeroring::engine::SharedFd> = std::fs::File::open("/dev/null")
        .ok()
        .map(|f| Arc::new(std::os::fd::OwnedFd::from(f)));
    let direct_wake: zeroring::engine::pipe::NotifyHandle = Arc::new(Wake(readable.clone()));

    let (mut rd, mut wr) = stream.into_split();
    let mut buf = vec![0u8; READ_BUF];
    let mut out = Bytes::new();
    let far = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let zap_replies: Arc<Mutex<Vec<Result<ZapReply, ZapError>>>> = Arc::default();
    // The I/O error that ended the stream, if one did: the core records no protocol error
    // for a failed write (the peer reset or closed the connection under us).
    let mut io_error: Option<String> = None;
    loop {
        if stop.stopped.get() || stop.deadline.get().is_some_and(|d| now() >= d) {
            core.stop();
        }
        core.claim_output();
        let status = core.drive();
        while let Some(request) = core.poll_zap_request() {
            let slot = zap_replies.clone();
            link.zap(
                request,
                Box::new(move |reply| slot.lock().unwrap_or_else(|e| e.into_inner()).push(reply)),
            );
        }
        let replies: Vec<Result<ZapReply, ZapError>> =
            std::mem::take(&mut *zap_replies.lock().unwrap_or_else(|e| e.into_inner()));
        record_link_events(&sock, conn_no, &peer, &conn_link, &core, &path);
        if status == Status::Done {
            break;
        }
        if !replies.is_empty() {
            for reply in replies {
                core.zap_reply(reply, now());
            }
            continue;
        }
        if out.is_empty() {
            if let Some(bufs) = core.poll_transmit(MAX_SEND_CHUNKS) {
                out = concat(bufs);
            }
        }
        core.offer_output(|| Some((direct_conn.clone()?, direct_wake.clone())));
        let deadline = match (core.poll_timeout(), stop.deadline.get()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map_or(far, tokio::time::Instant::from_std);
        let reading = core.wants_recv();
        let writing = !out.is_empty();
        tokio::select! {
            biased;
            r = wr.write(&out), if writing => match r {
                Ok(n) => {
                    out.advance(n);
                    if out.is_empty() {
                        core.handle_send_result(true);
                    }
                }
                Err(e) => {
                    sock.event(format_args!("write to {peer} failed: {}", e.kind()));
                    io_error.get_or_insert_with(|| format!("write failed: {}", e.kind()));
                    out.clear();
                    core.handle_send_result(false);
                }
            },
            r = rd.read(&mut buf), if reading => match r {
                Ok(0) => core.handle_eof(now()),
                Ok(n) => core.handle_input(Bytes::copy_from_slice(&buf[..n]), now()),
                Err(e) => {
                    sock.event(format_args!("read from {peer} failed: {}", e.kind()));
                    io_error.get_or_insert_with(|| format!("read failed: {}", e.kind()));
                    core.handle_eof(now());
                }
            },
            _ = tokio::time::sleep_until(deadline) => core.handle_timeout(now()),
            _ = writable.notified() => core.pipe_writable(now()),
            _ = readable.notified() => {}
            _ = stop.wake.notified() => {}
        }
    }
    let ended = sim_now();
    let error = core.error().map(|e| e.to_string()).or(io_error);
    record.with(|r| {
        r.in_handshake.remove(&conn_no);
        r.handshake_phase.remove(&conn_no);
        if let Some(c) = r.connections.get_mut(&conn_no) {
            c.ended_at = Some(ended);
        }
        let why = error.clone().unwrap_or_else(|| "closed".into());
        if core.handshake_done() {
            r.closes.push((ended, why));
        } else {
            r.handshake_failures.push((ended, why));
        }
    });
    sock.event(format_args!(
        "connection {conn_no} to {peer} ended: {}",
        error.as_deref().unwrap_or("closed")
    ));
    (core.take_kept(), core.end())
}

/// Records what the link saw since the last step, and where the handshake is.
fn record_link_events(
    sock: &Inner,
    conn_no: u64,
    peer: &str,
    link: &ConnLink,
    core: &StreamCore,
    path: &str,
) {
    for event in link.take_log() {
        if let LinkEvent::Monitor(ev) = &event {
            sock.monitor_event(path, *ev);
        }
        match event {
            LinkEvent::Attached(id) => sock.event(format_args!(
                "connection {conn_no} to {peer}: new pipe (routing id {:?})",
                id.as_deref().map(String::from_utf8_lossy)
            )),
            LinkEvent::Hiccup => {
                sock.record.with(|r| r.hiccups += 1);
                sock.event(format_args!(
                    "connection {conn_no} to {peer}: kept pipe reconnected (hiccup)"
                ));
            }
            LinkEvent::Zap(code) => {
                sock.event(format_args!("zap {code} for {peer}"));
            }
            LinkEvent::Monitor(MonitorEvent::HandshakeSucceeded) => {
                let t = sim_now();
                sock.record.with(|r| {
                    r.handshakes_ok += 1;
                    r.in_handshake.remove(&conn_no);
                    if let Some(c) = r.connections.get_mut(&conn_no) {
                        c.ready_at = Some(t);
                        c.ready_seq = Some(r.handshakes_ok);
                    }
                });
                sock.event(format_args!("connection {conn_no} to {peer}: handshake ok"));
            }
            LinkEvent::Monitor(ev) => {
                sock.event(format_args!("connection {conn_no} to {peer}: {ev:?}"));
            }
        }
    }
    let phase = if core.is_ready() || core.handshake_done() {
        None
    } else if core.in_greeting() {
        Some("greeting")
    } else {
        Some("mechanism")
    };
    sock.record.with(|r| match phase {
        Some(p) => {
            r.handshake_phase.insert(conn_no, p);
        }
        None => {
            r.handshake_phase.remove(&conn_no);
        }
    });
}

fn concat(bufs: Vec<SendBuf>) -> Bytes {
    if bufs.len() == 1 {
        return bufs.into_iter().next().unwrap_or_default().into_bytes();
    }
    let mut b = BytesMut::with_capacity(bufs.iter().map(|c| c.len()).sum());
    for chunk in bufs {
        b.extend_from_slice(&chunk);
    }
    b.freeze()
}
