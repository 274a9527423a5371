//! Listeners: bind synchronously (so the caller learns the real address of a wildcard bind,
//! for LAST_ENDPOINT), then accept on an I/O thread and hand each connection to an accepted
//! session on the least-loaded thread its socket's affinity allows.
//!
//! Must never: leave its own ipc socket file behind after unbind, remove one that a later bind
//! of the same path made, or remove a file at a bound path that is not a socket.

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use zeroring_engine::{Completion, Cx, Handler, HandlerId, IoThreadHandle, Op, OpId, SharedFd};

use super::accepted::{AcceptedEndpoints, AcceptedSession, Registry};
use super::handshakes::{HandshakeGate, Ticket};
use super::linger::{self, LingerSlot, Lingering};
use super::netopts::TransportOptions;
use super::session::{TOKEN_LINGER, TOKEN_STOP};
use super::Link;
use crate::monitor::MonitorEvent;
use crate::zmtp::ConnectionConfig;

/// What to bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindAddr {
    /// A tcp address (port 0 = any free port).
    Tcp(SocketAddr),
    /// A filesystem ipc path.
    Ipc(PathBuf),
    /// A Linux abstract-namespace ipc name (`ipc://@name`), without the leading `@`.
    IpcAbstract(Vec<u8>),
}

/// The accept loop of one bound endpoint.
pub struct Listener {
    /// The listening socket; taken (closed, when no operation still holds it) as the listener
    /// finishes stopping.
    fd: Option<SharedFd>,
    tcp: bool,
    threads: Arc<[IoThreadHandle]>,
    opts: TransportOptions,
    config: ConnectionConfig,
    link: Link,
    endpoint: Arc<str>,
    registry: Registry,
    ipc_file: Option<IpcFile>,
    accept: Option<OpId>,
    slot: LingerSlot,
    stopped: Arc<StopLatch>,
    /// Stopped, waiting for the cancelled accept's last completion before closing.
    stopping: bool,
    /// ZR_MAX_HANDSHAKES: the accepted connections still in their handshake.
    gate: Arc<HandshakeGate>,
}

/// Set once the listener has stopped (its ipc file removed, CLOSED reported), so that unbind
/// and close can return only then: a bind of the same endpoint right after succeeds, and the
/// CLOSED event comes before a monitor's MONITOR_STOPPED, as with libzmq.
#[derive(Debug, Default)]
struct StopLatch {
    done: Mutex<bool>,
    cv: Condvar,
}

impl StopLatch {
    fn set(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    fn wait(&self, limit: Duration) -> bool {
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let (done, _) = self
            .cv
            .wait_timeout_while(done, limit, |d| !*d)
            .unwrap_or_else(|e| e.into_inner());
        *done
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Listener {
    /// Starts the session of an admitted connection on the least loaded I/O thread.
    fn start_session(
        &self,
        cx: &mut Cx<'_>,
        fd: SharedFd,
        config: ConnectionConfig,
        connection: Arc<str>,
        ticket: Arc<Ticket>,
    ) {
        let endpoints = AcceptedEndpoints {
            listener: self.endpoint.clone(),
            connection,
        };
        let session = AcceptedSession::new(
            fd,
            config,
            self.link.clone(),
            endpoints,
            self.registry.clone(),
            (self.gate.clone(), ticket),
        );
        let thread = zeroring_engine::io_thread::least_loaded(&self.threads, self.opts.affinity);
        if thread.index() == cx.handle().index() {
            cx.spawn(Box::new(session));
        } else {
            let _ = thread.execute(move |cx| {
                cx.spawn(Box::new(session));
            });
        }
    }

    /// The endpoint an accepted connection's monitor events name, as libzmq's do: a tcp
    /// connection's own local address (`tcp://127.0.0.1:5555` when the bind was
    /// `tcp://*:5555`), an ipc connection its listener's endpoint.
    fn connection_endpoint(&self, fd: &std::os::fd::OwnedFd) -> Arc<str> {
        if !self.tcp {
            return self.endpoint.clone();
        }
        match SockRef::from(fd).local_addr().map(|a| a.as_socket()) {
            Ok(Some(local)) => Arc::from(format_tcp(local)),
            _ => self.endpoint.clone(),
        }
    }

    fn fd_value(&self) -> u32 {
        self.fd
            .as_ref()
            .map_or(u32::MAX, |fd| std::os::fd::AsRawFd::as_raw_fd(&**fd) as u32)
    }

    /// Stops accepting. `immediate`: the I/O thread is shutting down, and no completion will
    /// come to wait for.
    fn stop(&mut self, cx: &mut Cx<'_>, immediate: bool) {
        if self.stopping {
            if immediate {
                self.finish_stop(cx);
            }
            return;
        }
        // On socket close the accepted connections linger; on unbind they stop.
        let order = linger::take(&self.slot);
        let sessions: Vec<_> = self
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for (thread, id, slot) in sessions {
            match &order {
                Some(o) => {
                    linger::order(&slot, o.limit, o.lingering());
                    let _ = thread.notify(id, TOKEN_LINGER);
                }
                None => {
                    let _ = thread.notify(id, TOKEN_STOP);
                }
            }
        }
        if let Some(op) = self.accept {
            cx.cancel(op);
        }
        if let Some(file) = self.ipc_file.take() {
            file.remove();
        }
        self.link
            .monitor(MonitorEvent::Closed, self.fd_value(), &self.endpoint);
        // The address is free only once the socket is closed, and an accept still under way
        // holds it (io_uring's request keeps a reference to the file; the epoll backend's
        // operation holds our descriptor) until its last completion, which the reactor
        // delivers after dropping the operation. Unbind and close wait for `stopped`, so a
        // bind of the same address right after them must find it free: finish only then.
        self.stopping = true;
        if self.accept.is_none() || immediate {
            self.finish_stop(cx);
        }
    }

    /// Closes the listening socket (when nothing else holds it) and reports the listener
    /// stopped.
    fn finish_stop(&mut self, cx: &mut Cx<'_>) {
        self.stopping = false;
        self.fd = None;
        self.stopped.set();
        cx.close();
    }
}

impl Handler for Listener {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        self.link
            .monitor(MonitorEvent::Listening, self.fd_value(), &self.endpoint);
        let Some(fd) = self.fd.clone() else {
            return;
        };
        self.accept = Some(cx.submit(Op::Accept { fd }));
    }

    fn on_completion(
        &mut self,
        cx: &mut Cx<'_>,
        _op: OpId,
        completion: Completion<'_>,
        more: bool,
    ) {
        match completion {
            // Accepted as the listener stopped (the accept won the race with its cancel):
            // closed, as a connection accepted after close would never be served.
            Completion::Accepted(Ok(fd)) if self.stopping => drop(fd),
            Completion::Accepted(Ok(fd)) if !self.opts.accept_filters.admits(&fd, self.tcp) => {
                // Filtered out (TCP_ACCEPT_FILTER, IPC_FILTER_*): closed at once, as libzmq.
                drop(fd);
            }
            Completion::Accepted(Ok(fd)) => {
                let _ = self.opts.apply(SockRef::from(&fd), self.tcp);
                let connection = self.connection_endpoint(&fd);
                self.link.monitor(
                    MonitorEvent::Accepted,
                    std::os::fd::AsRawFd::as_raw_fd(&fd) as u32,
                    &connection,
                );
                let mut config = self.config.clone();
                config.peer_address = if self.tcp {
                    match SockRef::from(&fd).peer_addr().map(|a| a.as_socket()) {
                        Ok(Some(peer)) => bytes::Bytes::from(peer.ip().to_string()),
                        _ => bytes::Bytes::new(),
                    }
                } else {
                    super::address::ipc_peer_address(&fd)
                };
                // Its place among the handshakes, taken now (before its session starts on
                // some thread) so that the gate never holds more than its cap.
                let fd = Arc::new(fd);
                match self.gate.admit(&fd) {
                    Some(ticket) => self.start_session(cx, fd, config, connection, ticket),
                    // Refused (every handshake under way is protected): closed before a byte
                    // is sent, so its peer reconnects with what it queued.
                    None => self.link.monitor(
                        MonitorEvent::Disconnected,
                        std::os::fd::AsRawFd::as_raw_fd(&*fd) as u32,
                        &connection,
                    ),
                }
            }
            Completion::Accepted(Err(e)) => {
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                if errno == libc::EMFILE || errno == libc::ENFILE {
                    // Out of descriptors (the accept is retried): free one held by the oldest
                    // handshake, so that a cap above the descriptor limit cannot lock
                    // healthy clients out either.
                    self.gate.evict_oldest();
                }
                if errno != libc::ECANCELED {
                    self.link
                        .monitor(MonitorEvent::AcceptFailed, errno as u32, &self.endpoint);
                }
            }
            _ => {}
        }
        if !more {
            self.accept = None;
            if self.stopping {
                self.finish_stop(cx);
            }
        }
    }

    fn on_notify(&mut self, cx: &mut Cx<'_>, token: u64) {
        if token == TOKEN_STOP || token == TOKEN_LINGER {
            self.stop(cx, false);
        }
    }

    fn on_shutdown(&mut self, cx: &mut Cx<'_>) {
        self.stop(cx, true);
    }
}

/// A bound endpoint: its real address and how to unbind it.
#[derive(Clone, Debug)]
pub struct ListenerHandle {
    thread: IoThreadHandle,
    id: HandlerId,
    endpoint: String,
    slot: LingerSlot,
    stopped: Arc<StopLatch>,
    gate: Arc<HandshakeGate>,
}

impl ListenerHandle {
    /// ZR_MAX_HANDSHAKES's counts: connections in their handshake now, the peak, evictions.
    pub fn handshakes(&self) -> super::HandshakeCounts {
        self.gate.counts()
    }

    /// The endpoint as bound, with the real port of a wildcard bind (`tcp://127.0.0.1:41234`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Unbinds: stops accepting, closes the connections this listener accepted, removes the
    /// ipc socket file. Returns false when the I/O thread is gone (nothing to wait for).
    pub fn stop(&self) -> bool {
        self.thread.notify(self.id, TOKEN_STOP).is_ok()
    }

    /// The socket closed: stop accepting, and let the accepted connections deliver what the
    /// socket queued within `limit` (`None` = no limit), counted in `lingering`. Returns false
    /// when the I/O thread is gone.
    pub fn linger(&self, limit: Option<Duration>, lingering: &Lingering) -> bool {
        linger::order(&self.slot, limit, lingering);
        self.thread.notify(self.id, TOKEN_LINGER).is_ok()
    }

    /// Waits (at most `limit`) until the listener has stopped after [`stop`](Self::stop) or
    /// [`linger`](Self::linger): it accepts no more, its ipc file is gone and CLOSED has been
    /// reported. Returns whether it has.
    pub fn wait_stopped(&self, limit: Duration) -> bool {
        self.stopped.wait(limit)
    }
}

/// A tcp address as LAST_ENDPOINT writes it (libzmq's `tcp_address_t::to_string`).
pub(crate) fn format_tcp(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => format!("tcp://{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("tcp://[{}]:{}", a.ip(), a.port()),
    }
}

/// The socket file a filesystem ipc bind made, and which file it is (device, inode and change
/// time: a file system may give a removed file's inode number to the next file at once).
///
/// zmq_ipc(7): "any existing binding to the same endpoint shall be overridden": a second bind
/// of the path, in this process or another, replaces the file and takes the new connections,
/// and the first listener keeps only the connections it has. So the listener removes the file
/// when it stops only while the path still names the file it made; libzmq 4.3 leaves an
/// explicit path's file behind instead (it removes only `ipc://*`'s), which the next bind then
/// replaces.
#[derive(Debug)]
struct IpcFile {
    path: PathBuf,
    id: Option<FileId>,
}

/// Which file: device, inode, change time (seconds, nanoseconds).
type FileId = (u64, u64, i64, i64);

impl IpcFile {
    fn new(path: &Path) -> Self {
        IpcFile {
            path: path.to_path_buf(),
            id: file_id(path),
        }
    }

    /// Removes the file if it is still ours, and `ipc://*`'s private directory with it.
    fn remove(self) {
        if self.id.is_some() && file_id(&self.path) == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
        // `ipc://*` made a private directory for its socket: remove it too (only when empty).
        let ours = format!("zeroring-{}-", std::process::id());
        if let Some(dir) = self.path.parent().filter(|d| {
            d.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&ours))
        }) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Which socket file is at `path`, if there is one.
fn file_id(path: &Path) -> Option<FileId> {
    let m = std::fs::symlink_metadata(path).ok()?;
    m.file_type()
        .is_socket()
        .then(|| (m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
}

/// Makes way for a bind of `path`: an existing socket file is removed, whether a crashed
/// process left it or a live listener holds it (zmq_ipc(7): the new binding overrides the
/// old; libzmq unlinks the path before it binds). Anything else at the path is left alone,
/// and the bind then fails with EADDRINUSE: libzmq would unlink a regular file too.
fn take_over_ipc_path(path: &Path) -> io::Result<()> {
    if file_id(path).is_none() {
        return Ok(());
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Binds `addr`, starts accepting on a thread that `opts.affinity` allows, and returns the
/// bound endpoint.
/// ZMQ_USE_FD: takes a duplicate of a listening socket made elsewhere (its kind must match
/// the endpoint's: tcp or ipc), and reads its endpoint from it.
fn adopt(fd: i32, addr: &BindAddr) -> io::Result<(Socket, bool, Option<IpcFile>, String)> {
    use std::os::fd::{BorrowedFd, OwnedFd};
    // SAFETY: the caller promised a live descriptor (libzmq's contract for USE_FD); it is
    // only borrowed for the duplication, which fails with EBADF if it is not open.
    let owned: OwnedFd = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
    let s = Socket::from(owned);
    s.set_nonblocking(true)?;
    let local = s.local_addr()?;
    match (addr, local.as_socket()) {
        (BindAddr::Tcp(_), Some(inet)) => Ok((s, true, None, format_tcp(inet))),
        (BindAddr::Ipc(_) | BindAddr::IpcAbstract(_), None) if local.is_unix() => {
            let path = local.as_pathname().map(|p| p.to_path_buf());
            let endpoint = match &path {
                Some(p) => format!("ipc://{}", p.display()),
                None => match addr {
                    BindAddr::IpcAbstract(name) => {
                        format!("ipc://@{}", String::from_utf8_lossy(name))
                    }
                    _ => "ipc://".to_string(),
                },
            };
            // The path belongs to whoever made the socket: never unlinked by us.
            Ok((s, false, None, endpoint))
        }
        _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

pub fn bind(
    threads: Arc<[IoThreadHandle]>,
    addr: BindAddr,
    opts: TransportOptions,
    config: ConnectionConfig,
    link: Link,
) -> io::Result<ListenerHandle> {
    let (sock, tcp, ipc_file, endpoint) = match &addr {
        _ if opts.use_fd >= 0 => adopt(opts.use_fd, &addr)?,
        BindAddr::Tcp(sa) => {
            let s = Socket::new(Domain::for_address(*sa), Type::STREAM.nonblocking(), None)?;
            s.set_reuse_address(true)?;
            if sa.is_ipv6() {
                let _ = s.set_only_v6(false);
            }
            opts.apply(SockRef::from(&s), true)?;
            s.bind(&SockAddr::from(*sa))?;
            let local = s
                .local_addr()?
                .as_socket()
                .ok_or_else(|| io::Error::other("tcp listener without an inet address"))?;
            (s, true, None, format_tcp(local))
        }
        BindAddr::Ipc(path) => {
            take_over_ipc_path(path)?;
            let s = Socket::new(Domain::UNIX, Type::STREAM.nonblocking(), None)?;
            opts.apply(SockRef::from(&s), false)?;
            s.bind(&SockAddr::unix(path)?)?;
            (
                s,
                false,
                Some(IpcFile::new(path)),
                format!("ipc://{}", path.display()),
            )
        }
        BindAddr::IpcAbstract(name) => {
            let mut raw = vec![0u8];
            raw.extend_from_slice(name);
            let s = Socket::new(Domain::UNIX, Type::STREAM.nonblocking(), None)?;
            s.bind(&SockAddr::unix(
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&raw),
            )?)?;
            (
                s,
                false,
                None,
                format!("ipc://@{}", String::from_utf8_lossy(name)),
            )
        }
    };
    sock.listen(opts.backlog)?;
    let thread = zeroring_engine::io_thread::least_loaded(&threads, opts.affinity).clone();
    let link2 = link.clone();
    let ep: Arc<str> = Arc::from(endpoint.as_str());
    let listener_fd: SharedFd = Arc::new(sock.into());
    let registry: Registry = Arc::new(Mutex::new(Vec::new()));
    let slot = LingerSlot::default();
    let slot2 = slot.clone();
    let stopped = Arc::new(StopLatch::default());
    let stopped2 = stopped.clone();
    let gate = Arc::new(HandshakeGate::new(opts.max_handshakes));
    // An accepted connection's handshake may be ended by the gate: READY only after the
    // peer's, so that ending it never drops a message the peer sent.
    let config = ConnectionConfig {
        ready_after_peer: true,
        ..config
    };
    let gate2 = gate.clone();
    let id = thread
        .spawn(move || Listener {
            fd: Some(listener_fd),
            tcp,
            threads,
            opts,
            config,
            link: link2,
            endpoint: ep,
            registry,
            ipc_file,
            accept: None,
            slot: slot2,
            stopped: stopped2,
            stopping: false,
            gate: gate2,
        })
        .map_err(|_| io::Error::other("the I/O thread has shut down"))?;
    Ok(ListenerHandle {
        thread,
        id,
        endpoint,
        slot,
        stopped,
        gate,
    })
}
