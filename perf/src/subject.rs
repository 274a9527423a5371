//! The subjects measured and the two roles each plays in each workload.
//!
//! Owns: the workload code per subject — zeroring, libzmq (feature `libzmq`), zmq.rs (feature
//! `zmqrs`, `subject/zmqrs.rs`), rzmq (feature `rzmq`, `subject/rzmq.rs`), omq.rs (feature `omq`,
//! `subject/omq.rs`) and the raw blocking-socket floor — behind one
//! small interface, so that `measure` treats them alike.
//! Must never: do anything inside a timed region but the workload itself.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// The name by which the command line knows `v` (a subject, transport or mechanism): what
/// a child process of this harness is started with.
pub fn arg_name(v: impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

/// Who is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    /// zeroring's sockets.
    Zeroring,
    /// libzmq 4.3 through the `zmq` crate (needs the `libzmq` feature).
    Libzmq,
    /// Plain blocking sockets: the floor no library can beat.
    Raw,
    /// zmq.rs (crate `zeromq`), pure Rust on a current-thread tokio runtime per side (needs
    /// the `zmqrs` feature).
    Zmqrs,
    /// rzmq, pure Rust on a current-thread tokio runtime per side (needs the `rzmq` feature).
    Rzmq,
    /// omq.rs (crate `omq-tokio`), pure Rust on a current-thread tokio runtime per side (needs
    /// the `omq` feature).
    Omq,
}

/// Which transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Loopback TCP.
    Tcp,
    /// Unix-domain sockets.
    Ipc,
    /// In-process (two threads).
    Inproc,
}

/// The security mechanism of the measured connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    /// No security (ZMTP NULL).
    Null,
    /// CURVE: every frame boxed (XSalsa20-Poly1305). zeroring only: the `zmq` crate's
    /// libzmq is built without CURVE, and raw sockets have none.
    Curve,
}

impl Mechanism {
    /// Why `subject` cannot run with this mechanism, if it cannot.
    pub fn unavailable(self, subject: Subject) -> Option<&'static str> {
        match (self, subject) {
            (Mechanism::Curve, Subject::Libzmq) => {
                Some("the zmq crate's libzmq is built without CURVE")
            }
            (Mechanism::Curve, Subject::Raw) => Some("raw sockets have no CURVE"),
            (Mechanism::Curve, Subject::Zmqrs) => Some("zmq.rs has no CURVE"),
            (Mechanism::Curve, Subject::Rzmq) => Some("rzmq is built here without its CURVE"),
            (Mechanism::Curve, Subject::Omq) => Some("omq.rs is built here without its CURVE"),
            _ => None,
        }
    }
}

/// Why a subject cannot run a workload.
pub fn unavailable(subject: Subject, transport: Transport) -> Option<&'static str> {
    match (subject, transport) {
        (Subject::Raw, Transport::Inproc) => Some("raw sockets have no inproc transport"),
        #[cfg(not(feature = "libzmq"))]
        (Subject::Libzmq, _) => Some("built without the `libzmq` feature (cargo run --release -p zeroring-perf --features libzmq)"),
        (Subject::Zmqrs, Transport::Inproc) => Some("not supported: zmq.rs has no inproc transport"),
        // rzmq's inproc needs both sides' actors on one runtime; the harness gives each side its own.
        (Subject::Rzmq, Transport::Inproc) => Some("not supported: rzmq inproc is not measured (one runtime per side)"),
        #[cfg(not(feature = "rzmq"))]
        (Subject::Rzmq, _) => Some("built without the `rzmq` feature (cargo run --release -p zeroring-perf --features rzmq)"),
        #[cfg(not(feature = "omq"))]
        (Subject::Omq, _) => Some("built without the `omq` feature (cargo run --release -p zeroring-perf --features omq)"),
        #[cfg(not(feature = "zmqrs"))]
        (Subject::Zmqrs, _) => Some("built without the `zmqrs` feature (cargo run --release -p zeroring-perf --features zmqrs)"),
        _ => None,
    }
}

/// Parameters shared by both roles.
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub transport: Transport,
    pub size: usize,
    pub count: u64,
    pub io_threads: i32,
    pub mechanism: Mechanism,
}

/// The measuring side of a throughput run (the receiver, as libzmq's local_thr).
pub trait ThrReceiver {
    /// The endpoint the sender connects to.
    fn endpoint(&self) -> String;
    /// Receives `count` messages; returns the time from the first to the last.
    fn run(&mut self) -> io::Result<Duration>;
    /// For inproc: starts the sender on a thread of this process.
    fn spawn_local_sender(&mut self) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no in-process sender",
        ))
    }
}

/// The measuring side of a latency run (the requester).
pub trait LatClient {
    /// The endpoint the echoing side connects to.
    fn endpoint(&self) -> String;
    /// Performs `warmup` unrecorded and `count` recorded round trips.
    fn run(&mut self, warmup: u64, hist: &mut Histogram<u64>) -> io::Result<()>;
    /// For inproc: starts the echo on a thread of this process.
    fn spawn_local_echo(
        &mut self,
        total: u64,
    ) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
        let _ = total;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no in-process echo",
        ))
    }
}

/// A name no other endpoint of this machine's harness runs uses: the process, `tag` and a
/// sequence number.
fn unique_name(tag: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("zeroring-perf-{}-{tag}-{n}", std::process::id())
}

fn ipc_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}.sock", unique_name(tag)))
}

/// An ipc socket file, removed when the measurement is done.
#[derive(Debug, Default)]
struct IpcFile(Option<PathBuf>);

impl Drop for IpcFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Binds a library socket the way every subject does — loopback tcp on a free port, a fresh
/// ipc path, or an inproc name — and returns the endpoint its peer connects to.
fn bind_endpoint(
    t: Transport,
    tag: &str,
    bind: impl Fn(&str) -> io::Result<()>,
    last_endpoint: impl Fn() -> io::Result<String>,
) -> io::Result<(String, IpcFile)> {
    match t {
        Transport::Tcp => {
            bind("tcp://127.0.0.1:*")?;
            Ok((last_endpoint()?, IpcFile(None)))
        }
        Transport::Ipc => {
            let p = ipc_path(tag);
            let ep = format!("ipc://{}", p.display());
            bind(&ep)?;
            Ok((ep, IpcFile(Some(p))))
        }
        Transport::Inproc => {
            let ep = format!("inproc://{tag}");
            bind(&ep)?;
            Ok((ep, IpcFile(None)))
        }
    }
}

fn unsupported(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, why.to_string())
}

/// Creates the receiver of a throughput run.
pub fn thr_receiver(subject: Subject, p: Params) -> io::Result<Box<dyn ThrReceiver>> {
    if let Some(why) = unavailable(subject, p.transport).or(p.mechanism.unavailable(subject)) {
        return Err(unsupported(why));
    }
    match subject {
        Subject::Raw => raw::thr_receiver(p),
        Subject::Zeroring => zr::thr_receiver(p),
        #[cfg(feature = "libzmq")]
        Subject::Libzmq => libzmq::thr_receiver(p),
        #[cfg(feature = "zmqrs")]
        Subject::Zmqrs => zmqrs::thr_receiver(p),
        #[cfg(feature = "rzmq")]
        Subject::Rzmq => rzmq::thr_receiver(p),
        #[cfg(feature = "omq")]
        Subject::Omq => omq::thr_receiver(p),
        #[allow(unreachable_patterns)] // reachable only when a feature is off
        _ => Err(unsupported("subject unavailable")),
    }
}

/// Runs the sender of a throughput run (in the child process); `received` returns once the
/// receiver has every message, and the sender closes its connection only after it.
pub fn thr_sender(subject: Subject, endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
    match subject {
        Subject::Raw => raw::thr_sender(endpoint, p, received),
        Subject::Zeroring => zr::thr_sender(endpoint, p, received),
        #[cfg(feature = "libzmq")]
        Subject::Libzmq => libzmq::thr_sender(endpoint, p, received),
        #[cfg(feature = "zmqrs")]
        Subject::Zmqrs => zmqrs::thr_sender(endpoint, p, received),
        #[cfg(feature = "rzmq")]
        Subject::Rzmq => rzmq::thr_sender(endpoint, p, received),
        #[cfg(feature = "omq")]
        Subject::Omq => omq::thr_sender(endpoint, p, received),
        #[allow(unreachable_patterns)] // reachable only when a feature is off
        _ => Err(unsupported(
            unavailable(subject, p.transport).unwrap_or("subject unavailable"),
        )),
    }
}

/// Creates the requester of a latency run.
pub fn lat_client(subject: Subject, p: Params) -> io::Result<Box<dyn LatClient>> {
    if let Some(why) = unavailable(subject, p.transport).or(p.mechanism.unavailable(subject)) {
        return Err(unsupported(why));
    }
    match subject {
        Subject::Raw => raw::lat_client(p),
        Subject::Zeroring => zr::lat_client(p),
        #[cfg(feature = "libzmq")]
        Subject::Libzmq => libzmq::lat_client(p),
        #[cfg(feature = "zmqrs")]
        Subject::Zmqrs => zmqrs::lat_client(p),
        #[cfg(feature = "rzmq")]
        Subject::Rzmq => rzmq::lat_client(p),
        #[cfg(feature = "omq")]
        Subject::Omq => omq::lat_client(p),
        #[allow(unreachable_patterns)] // reachable only when a feature is off
        _ => Err(unsupported("subject unavailable")),
    }
}

/// Runs the echoing side of a latency run (in the child process) for `total` round trips.
pub fn lat_echo(subject: Subject, endpoint: &str, p: Params, total: u64) -> io::Result<()> {
    match subject {
        Subject::Raw => raw::lat_echo(endpoint, p, total),
        Subject::Zeroring => zr::lat_echo(endpoint, p, total),
        #[cfg(feature = "libzmq")]
        Subject::Libzmq => libzmq::lat_echo(endpoint, p, total),
        #[cfg(feature = "zmqrs")]
        Subject::Zmqrs => zmqrs::lat_echo(endpoint, p, total),
        #[cfg(feature = "rzmq")]
        Subject::Rzmq => rzmq::lat_echo(endpoint, p, total),
        #[cfg(feature = "omq")]
        Subject::Omq => omq::lat_echo(endpoint, p, total),
        #[allow(unreachable_patterns)] // reachable only when a feature is off
        _ => Err(unsupported(
            unavailable(subject, p.transport).unwrap_or("subject unavailable"),
        )),
    }
}

/// How long a receiver waits for the next message before it calls the run failed.
const PEER_SILENCE_MS: i32 = 20_000;

/// A throughput run that ended early: the sender finished, but not everything arrived.
fn short(received: u64, count: u64, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "received {received} of {count} messages, then nothing for {PEER_SILENCE_MS} ms ({e})"
        ),
    )
}

fn record(hist: &mut Histogram<u64>, started: Instant) {
    let ns = started.elapsed().as_nanos() as u64;
    // Values beyond the histogram's range are clamped rather than lost.
    hist.saturating_record(ns.max(1));
}

/// The runtime each side of a pure-Rust peer runs on: one thread, I/O and timers, nothing
/// else. Its socket's tasks are spawned on it, so they run only while that side is inside
/// `block_on`.
#[cfg(any(feature = "zmqrs", feature = "rzmq", feature = "omq"))]
fn current_thread_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

#[cfg(feature = "zmqrs")]
mod zmqrs;

#[cfg(feature = "rzmq")]
mod rzmq;

#[cfg(feature = "omq")]
mod omq;

/// The floor: blocking sockets, one message = `size` bytes on the stream.
mod raw {
    use super::*;

    enum Listener {
        Tcp(TcpListener),
        /// The listener, and its socket file (removed when the listener goes).
        Unix(UnixListener, IpcFile),
    }

    enum Stream {
        Tcp(TcpStream),
        Unix(UnixStream),
    }

    impl Read for Stream {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self {
                Stream::Tcp(s) => s.read(buf),
                Stream::Unix(s) => s.read(buf),
            }
        }
    }

    impl Write for Stream {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            match self {
                Stream::Tcp(s) => s.write(buf),
                Stream::Unix(s) => s.write(buf),
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Listener {
        fn new(t: Transport) -> io::Result<Listener> {
            match t {
                Transport::Tcp => Ok(Listener::Tcp(TcpListener::bind("127.0.0.1:0")?)),
                Transport::Ipc => {
                    let p = ipc_path("raw");
                    Ok(Listener::Unix(UnixListener::bind(&p)?, IpcFile(Some(p))))
                }
                Transport::Inproc => Err(unsupported("raw inproc")),
            }
        }
        fn endpoint(&self) -> String {
            match self {
                Listener::Tcp(l) => format!("tcp://{}", l.local_addr().expect("bound")),
                Listener::Unix(_, f) => format!(
                    "ipc://{}",
                    f.0.as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
            }
        }
        fn accept(&self) -> io::Result<Stream> {
            match self {
                Listener::Tcp(l) => {
                    let (s, _) = l.accept()?;
                    s.set_nodelay(true)?;
                    Ok(Stream::Tcp(s))
                }
                Listener::Unix(l, _) => Ok(Stream::Unix(l.accept()?.0)),
            }
        }
    }

    fn connect(endpoint: &str) -> io::Result<Stream> {
        if let Some(a) = endpoint.strip_prefix("tcp://") {
            let s = TcpStream::connect(a)?;
            s.set_nodelay(true)?;
            Ok(Stream::Tcp(s))
        } else if let Some(p) = endpoint.strip_prefix("ipc://") {
            Ok(Stream::Unix(UnixStream::connect(p)?))
        } else {
            Err(unsupported("raw endpoints are tcp:// or ipc://"))
        }
    }

    struct Thr(Listener, Params);

    impl ThrReceiver for Thr {
        fn endpoint(&self) -> String {
            self.0.endpoint()
        }
        fn run(&mut self) -> io::Result<Duration> {
            let mut s = BufReader::with_capacity(256 * 1024, self.0.accept()?);
            let mut buf = vec![0u8; self.1.size.max(1)];
            let msg = &mut buf[..self.1.size];
            s.read_exact(msg)?;
            let start = Instant::now();
            for _ in 1..self.1.count {
                s.read_exact(msg)?;
            }
            Ok(start.elapsed())
        }
    }

    pub(super) fn thr_receiver(p: Params) -> io::Result<Box<dyn ThrReceiver>> {
        Ok(Box::new(Thr(Listener::new(p.transport)?, p)))
    }

    pub(super) fn thr_sender(endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
        // Batched writes, as a messaging library batches small messages.
        let mut w = BufWriter::with_capacity(256 * 1024, connect(endpoint)?);
        let msg = vec![0x5Au8; p.size];
        for _ in 0..p.count {
            w.write_all(&msg)?;
        }
        w.flush()?;
        received();
        Ok(())
    }

    struct Lat(Listener, Params);

    impl LatClient for Lat {
        fn endpoint(&self) -> String {
            self.0.endpoint()
        }
        fn run(&mut self, warmup: u64, hist: &mut Histogram<u64>) -> io::Result<()> {
            let mut s = self.0.accept()?;
            let mut msg = vec![0x5Au8; self.1.size.max(1)];
            let n = self.1.size;
            for i in 0..warmup + self.1.count {
                let t = Instant::now();
                s.write_all(&msg[..n])?;
                s.read_exact(&mut msg[..n])?;
                if i >= warmup {
                    record(hist, t);
                }
            }
            Ok(())
        }
    }

    pub(super) fn lat_client(p: Params) -> io::Result<Box<dyn LatClient>> {
        Ok(Box::new(Lat(Listener::new(p.transport)?, p)))
    }

    pub(super) fn lat_echo(endpoint: &str, p: Params, total: u64) -> io::Result<()> {
        let mut s = connect(endpoint)?;
        let mut msg = vec![0u8; p.size];
        for _ in 0..total {
            s.read_exact(&mut msg)?;
            s.write_all(&msg)?;
        }
        Ok(())
    }
}

/// libzmq 4.3, the reference.
#[cfg(feature = "libzmq")]
mod libzmq {
    use super::*;

    fn ctx(p: Params) -> io::Result<zmq::Context> {
        let c = zmq::Context::new();
        c.set_io_threads(p.io_threads).map_err(zerr)?;
        Ok(c)
    }

    fn zerr(e: zmq::Error) -> io::Error {
        io::Error::other(format!("libzmq: {e}"))
    }

    fn bind(s: &zmq::Socket, t: Transport, tag: &str) -> io::Result<(String, IpcFile)> {
        bind_endpoint(
            t,
            tag,
            |ep| s.bind(ep).map_err(zerr),
            || {
                s.get_last_endpoint()
                    .map_err(zerr)?
                    .map_err(|_| io::Error::other("endpoint"))
            },
        )
    }

    struct Thr {
        ctx: zmq::Context,
        sock: zmq::Socket,
        endpoint: String,
        _ipc: IpcFile,
        p: Params,
    }

    impl ThrReceiver for Thr {
        fn endpoint(&self) -> String {
            self.endpoint.clone()
        }
        fn run(&mut self) -> io::Result<Duration> {
            let mut msg = zmq::Message::new();
            self.sock.set_rcvtimeo(PEER_SILENCE_MS).map_err(zerr)?;
            self.sock
                .recv(&mut msg, 0)
                .map_err(|e| short(0, self.p.count, e))?;
            let start = Instant::now();
            for i in 1..self.p.count {
                self.sock
                    .recv(&mut msg, 0)
                    .map_err(|e| short(i, self.p.count, e))?;
            }
            Ok(start.elapsed())
        }
        fn spawn_local_sender(&mut self) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
            let (ctx, ep, p) = (self.ctx.clone(), self.endpoint.clone(), self.p);
            Ok(std::thread::spawn(move || send_all(&ctx, &ep, p, || {})))
        }
    }

    /// Sends the run's messages; `received` runs before the socket closes.
    fn send_all(ctx: &zmq::Context, endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
        let s = ctx.socket(zmq::PUSH).map_err(zerr)?;
        s.connect(endpoint).map_err(zerr)?;
        let body = vec![0x5Au8; p.size];
        for _ in 0..p.count {
            s.send(&body[..], 0).map_err(zerr)?;
        }
        received();
        Ok(())
    }

    pub(super) fn thr_receiver(p: Params) -> io::Result<Box<dyn ThrReceiver>> {
        let ctx = ctx(p)?;
        let sock = ctx.socket(zmq::PULL).map_err(zerr)?;
        let (endpoint, _ipc) = bind(&sock, p.transport, "thr")?;
        Ok(Box::new(Thr {
            ctx,
            sock,
            endpoint,
            _ipc,
            p,
        }))
    }

    pub(super) fn thr_sender(endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
        let ctx = ctx(p)?;
        send_all(&ctx, endpoint, p, received)
        // Dropping the context lingers until every message is delivered (LINGER -1).
    }

    struct Lat {
        ctx: zmq::Context,
        sock: zmq::Socket,
        endpoint: String,
        _ipc: IpcFile,
        p: Params,
    }

    impl LatClient for Lat {
        fn endpoint(&self) -> String {
            self.endpoint.clone()
        }
        fn run(&mut self, warmup: u64, hist: &mut Histogram<u64>) -> io::Result<()> {
            let body = vec![0x5Au8; self.p.size];
            let mut reply = zmq::Message::new();
            for i in 0..warmup + self.p.count {
                let t = Instant::now();
                self.sock.send(&body[..], 0).map_err(zerr)?;
                self.sock.recv(&mut reply, 0).map_err(zerr)?;
                if i >= warmup {
                    record(hist, t);
                }
            }
            Ok(())
        }
        fn spawn_local_echo(
            &mut self,
            total: u64,
        ) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
            let (ctx, ep) = (self.ctx.clone(), self.endpoint.clone());
            Ok(std::thread::spawn(move || echo(&ctx, &ep, total)))
        }
    }

    fn echo(ctx: &zmq::Context, endpoint: &str, total: u64) -> io::Result<()> {
        let s = ctx.socket(zmq::REP).map_err(zerr)?;
        s.connect(endpoint).map_err(zerr)?;
        for _ in 0..total {
            // The request itself goes back (moved, not copied), as the zeroring echo does.
            let mut msg = zmq::Message::new();
            s.recv(&mut msg, 0).map_err(zerr)?;
            s.send(msg, 0).map_err(zerr)?;
        }
        Ok(())
    }

    pub(super) fn lat_client(p: Params) -> io::Result<Box<dyn LatClient>> {
        let ctx = ctx(p)?;
        let sock = ctx.socket(zmq::REQ).map_err(zerr)?;
        let (endpoint, _ipc) = bind(&sock, p.transport, "lat")?;
        Ok(Box::new(Lat {
            ctx,
            sock,
            endpoint,
            _ipc,
            p,
        }))
    }

    pub(super) fn lat_echo(endpoint: &str, p: Params, total: u64) -> io::Result<()> {
        let ctx = ctx(p)?;
        echo(&ctx, endpoint, total)
    }
}

/// zeroring's sockets.
mod zr {
    use super::*;
    use zeroring::{Context, Socket, SocketType};

    fn ctx(p: Params) -> io::Result<Context> {
        let c = Context::new();
        c.set_io_threads(p.io_threads).map_err(zerr)?;
        Ok(c)
    }

    fn zerr(e: zeroring::Error) -> io::Error {
        io::Error::other(format!("zeroring: {e}"))
    }

    /// Fixed benchmark keys: the binding (measuring) side is the CURVE server, its peer
    /// the client. Both processes derive the same pairs.
    const SERVER_SECRET: [u8; 32] = [0x5e; 32];
    const CLIENT_SECRET: [u8; 32] = [0xc1; 32];

    fn secure(s: &Socket, p: Params, server: bool) -> io::Result<()> {
        if p.mechanism != Mechanism::Curve {
            return Ok(());
        }
        let public = |secret: [u8; 32]| {
            let z =
                zeroring::transports::z85::encode(&secret).map_err(|_| io::Error::other("z85"))?;
            zeroring::curve_public(&z).map_err(zerr)
        };
        if server {
            s.set_curve_server(true).map_err(zerr)?;
            s.set_curve_secretkey(SERVER_SECRET).map_err(zerr)?;
        } else {
            s.set_curve_serverkey(public(SERVER_SECRET)?)
                .map_err(zerr)?;
            s.set_curve_publickey(public(CLIENT_SECRET)?)
                .map_err(zerr)?;
            s.set_curve_secretkey(CLIENT_SECRET).map_err(zerr)?;
        }
        Ok(())
    }

    fn bind(s: &Socket, t: Transport, tag: &str) -> io::Result<(String, IpcFile)> {
        bind_endpoint(
            t,
            tag,
            |ep| s.bind(ep).map_err(zerr),
            || {
                s.get_last_endpoint()
                    .map_err(zerr)?
                    .map_err(|_| io::Error::other("endpoint"))
            },
        )
    }

    struct Thr {
        ctx: Context,
        sock: Socket,
        endpoint: String,
        _ipc: IpcFile,
        p: Params,
    }

    impl ThrReceiver for Thr {
        fn endpoint(&self) -> String {
            self.endpoint.clone()
        }
        fn run(&mut self) -> io::Result<Duration> {
            // One reused part, as libzmq's subject (and local_thr) receive.
            let mut msg = zeroring::Msg::new();
            self.sock.set_rcvtimeo(PEER_SILENCE_MS).map_err(zerr)?;
            self.sock
                .recv(&mut msg, 0)
                .map_err(|e| short(0, self.p.count, e))?;
            let start = Instant::now();
            for i in 1..self.p.count {
                self.sock
                    .recv(&mut msg, 0)
                    .map_err(|e| short(i, self.p.count, e))?;
            }
            Ok(start.elapsed())
        }
        fn spawn_local_sender(&mut self) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
            let (ctx, ep, p) = (self.ctx.clone(), self.endpoint.clone(), self.p);
            Ok(std::thread::spawn(move || send_all(&ctx, &ep, p, || {})))
        }
    }

    /// Sends the run's messages; `received` runs before the socket closes.
    fn send_all(ctx: &Context, endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
        let s = ctx.socket(SocketType::Push).map_err(zerr)?;
        // Deliver everything before the process ends, as libzmq's default linger does.
        s.set_linger(-1).map_err(zerr)?;
        secure(&s, p, false)?;
        s.connect(endpoint).map_err(zerr)?;
        let body = vec![0x5Au8; p.size];
        for _ in 0..p.count {
            // A fresh copy of the payload per message, as applications send (and as the
            // libzmq subject's `send(&[u8])` does): small bodies go inline, larger ones are
            // copied into an allocation of their own.
            s.send(&body[..], 0).map_err(zerr)?;
        }
        received();
        Ok(())
    }

    pub(super) fn thr_receiver(p: Params) -> io::Result<Box<dyn ThrReceiver>> {
        let ctx = ctx(p)?;
        let sock = ctx.socket(SocketType::Pull).map_err(zerr)?;
        secure(&sock, p, true)?;
        let (endpoint, _ipc) = bind(&sock, p.transport, "thr")?;
        Ok(Box::new(Thr {
            ctx,
            sock,
            endpoint,
            _ipc,
            p,
        }))
    }

    pub(super) fn thr_sender(endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
        let ctx = ctx(p)?;
        send_all(&ctx, endpoint, p, received)?;
        // Context drop waits for LINGER: every message is delivered before the process exits.
        ctx.term();
        Ok(())
    }

    struct Lat {
        ctx: Context,
        sock: Socket,
        endpoint: String,
        _ipc: IpcFile,
        p: Params,
    }

    impl LatClient for Lat {
        fn endpoint(&self) -> String {
            self.endpoint.clone()
        }
        fn run(&mut self, warmup: u64, hist: &mut Histogram<u64>) -> io::Result<()> {
            let body = vec![0x5Au8; self.p.size];
            for i in 0..warmup + self.p.count {
                let t = Instant::now();
                // A fresh copy per request, as the libzmq subject sends.
                self.sock.send(&body[..], 0).map_err(zerr)?;
                self.sock.recv_msg(0).map_err(zerr)?;
                if i >= warmup {
                    record(hist, t);
                }
            }
            Ok(())
        }
        fn spawn_local_echo(
            &mut self,
            total: u64,
        ) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
            let (ctx, ep, p) = (self.ctx.clone(), self.endpoint.clone(), self.p);
            Ok(std::thread::spawn(move || echo(&ctx, &ep, p, total)))
        }
    }

    fn echo(ctx: &Context, endpoint: &str, p: Params, total: u64) -> io::Result<()> {
        let s = ctx.socket(SocketType::Rep).map_err(zerr)?;
        s.set_linger(-1).map_err(zerr)?;
        secure(&s, p, false)?;
        s.connect(endpoint).map_err(zerr)?;
        for _ in 0..total {
            let m = s.recv_msg(0).map_err(zerr)?;
            s.send_msg(m, 0).map_err(zerr)?;
        }
        Ok(())
    }

    pub(super) fn lat_client(p: Params) -> io::Result<Box<dyn LatClient>> {
        let ctx = ctx(p)?;
        let sock = ctx.socket(SocketType::Req).map_err(zerr)?;
        secure(&sock, p, true)?;
        let (endpoint, _ipc) = bind(&sock, p.transport, "lat")?;
        Ok(Box::new(Lat {
            ctx,
            sock,
            endpoint,
            _ipc,
            p,
        }))
    }

    pub(super) fn lat_echo(endpoint: &str, p: Params, total: u64) -> io::Result<()> {
        let ctx = ctx(p)?;
        echo(&ctx, endpoint, p, total)?;
        ctx.term();
        Ok(())
    }
}
