//! Starting a connecting session, and the handle its socket keeps: `connect` makes the session
//! (its [`SessionCore`] configured from the socket's options, the early pipe attached on the
//! caller's thread) and spawns it on an I/O thread without waiting; [`ConnectHandle`] stops it
//! (`zmq_disconnect`) or lets it linger (socket close).
//!
//! Must never: wait for the I/O thread, or decide anything the session's core decides.

use std::sync::Arc;
use std::time::Duration;

use zeroring_engine::{HandlerId, IoThreadHandle, ThreadGone};

use super::linger::{self, LingerSlot, Lingering};
use super::netopts::{
    TransportOptions, RECONNECT_STOP_CONN_REFUSED, RECONNECT_STOP_HANDSHAKE_FAILED,
};
use super::session::{ConnectSession, ConnectTarget, TOKEN_LINGER, TOKEN_STOP};
use super::session_core::{SessionConfig, SessionCore};
use super::stream_core::Kept;
use super::Link;
use crate::zmtp::ConnectionConfig;

/// Stops a connecting session (zmq_disconnect) or lets it linger (socket close).
#[derive(Clone, Debug)]
pub struct ConnectHandle {
    thread: IoThreadHandle,
    /// The session's id, set on its thread when it is spawned (`connect` does not wait).
    id: Arc<std::sync::OnceLock<HandlerId>>,
    slot: LingerSlot,
    key: u64,
}

impl ConnectHandle {
    /// The session's key: what its pipe's [`SocketLink`](super::SocketLink) calls name it by.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// Stops connecting and closes the connection, if any.
    pub fn stop(&self) {
        self.notify(TOKEN_STOP);
    }

    /// The socket closed: deliver what it queued within `limit` (`None` = no limit), counted
    /// in `lingering` until done; then close. Zero stops at once.
    pub fn linger(&self, limit: Option<Duration>, lingering: &Lingering) {
        linger::order(&self.slot, limit, lingering);
        self.notify(TOKEN_LINGER);
    }

    /// Sends `token` to the session. Before its thread has spawned it, the token goes through
    /// the thread's command queue behind the spawn (the queue is FIFO), so it finds the id set.
    fn notify(&self, token: u64) {
        match self.id.get() {
            Some(&id) => {
                let _ = self.thread.notify(id, token);
            }
            None => {
                let (id, thread) = (self.id.clone(), self.thread.clone());
                let _ = self.thread.execute(move |_cx| {
                    if let Some(&id) = id.get() {
                        let _ = thread.notify(id, token);
                    }
                });
            }
        }
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
    let slot = LingerSlot::default();
    let slot2 = slot.clone();
    static KEYS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let key = KEYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The early pipe is attached here, on the caller's thread, so that the socket can take
    // it before `connect` returns (libzmq attaches it inside zmq_connect: a SUB's earlier
    // subscriptions go down it at once, with no later call on the socket).
    // Asked whenever IMMEDIATE is off: the link declines for ROUTER and STREAM unless the
    // connect named the peer (CONNECT_ROUTING_ID), see `attaches_early`.
    let kept = (!opts.immediate)
        .then(|| link.attach_early(&endpoint, key))
        .flatten()
        .map(Kept::early);
    let session_config = SessionConfig {
        reconnect_ivl: opts.reconnect_ivl,
        reconnect_ivl_max: opts.reconnect_ivl_max,
        connect_timeout: opts.connect_timeout,
        immediate: opts.immediate,
        tcp: target.tcp,
        seed,
        // libzmq 4.3.5's tcp connecter alone looks at it (its ipc connecter retries a refused
        // connect to a stale socket file whatever RECONNECT_STOP says).
        stop_on_refused: target.tcp && opts.reconnect_stop & RECONNECT_STOP_CONN_REFUSED != 0,
        stop_on_handshake_failed: opts.reconnect_stop & RECONNECT_STOP_HANDSHAKE_FAILED != 0,
    };
    // The session starts on its thread without the caller waiting for it (libzmq's
    // zmq_connect only sends its I/O thread a command): a caller that waited would often be
    // woken only after the thread had already run the first connection attempt to its end, so
    // a refused connection without reconnect (RECONNECT_IVL -1) could take the early pipe
    // away before the caller's first send — which libzmq's caller, already past zmq_connect,
    // always makes (libzmq's test_filter_ipc relies on it).
    let id = Arc::new(std::sync::OnceLock::new());
    let id2 = id.clone();
    let core = SessionCore::new(session_config, key, kept);
    let session = move || ConnectSession::new(target, endpoint, opts, config, link, core, slot2);
    thread.execute(move |cx| {
        let _ = id2.set(cx.spawn(Box::new(session())));
    })?;
    Ok(ConnectHandle {
        thread,
        id,
        slot,
        key,
    })
}
