//! The subjects measured and the two roles each plays in each workload.
//!
//! Owns: the workload code per subject, one file each under `subject/` — zeroring (`zr.rs`),
//! libzmq (feature `libzmq`, `libzmq.rs`), zmq.rs (feature `zmqrs`, `zmqrs.rs`), rzmq (feature
//! `rzmq`, `rzmq.rs`), omq.rs (feature `omq`, `omq.rs`) and the raw blocking-socket floor
//! (`raw.rs`) — behind one small interface, so that `measure` treats them alike.
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

mod raw;

#[cfg(feature = "libzmq")]
mod libzmq;

mod zr;
