//! I/O threads: start, pin, run the reactor loop, shut down.
//!
//! [`Engine::start`] spawns `n` threads. Pinning happens only where asked: with
//! [`EngineConfig::cpus`] set, thread *i* is pinned (core_affinity) to `cpus[i % len]`; by
//! default nothing is pinned, as in libzmq, so two processes never pile their I/O threads onto
//! the same core. A pinning failure is reported in the thread's info, never fatal.
//! Each thread creates its own backend (io_uring rings want their single issuer to create them),
//! its buffer pool, timers and mailbox, then loops: commands, timers, buffer returns, then a
//! bounded spin, then sleep in the backend until a completion, a timer or a mailbox wakeup.
//!
//! Other threads reach a thread only through its [`IoThreadHandle`] (the mailbox); nothing else
//! of a thread is shared except its statistics.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::backend::epoll::EpollBackend;
use crate::backend::uring::UringBackend;
use crate::backend::{Backend, BackendChoice, BackendInfo, RawCompletion};
use crate::bufpool::{BufPool, BufPoolConfig};
use crate::mailbox::{Mailbox, MailboxSender};
use crate::reactor::{Core, Cx, Handler, HandlerId};
use crate::signal::Signal;

/// How to build an [`Engine`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Number of I/O threads (libzmq's ZMQ_IO_THREADS); at least 1.
    pub io_threads: usize,
    /// Cores to pin to, round-robin (thread *i* to `cpus[i % len]`); `None` or an empty list:
    /// no pinning, the scheduler places the threads (libzmq's default). Pinning every process's
    /// first thread to the first allowed core made two processes on one machine share a core.
    pub cpus: Option<Vec<usize>>,
    /// Which backend to use (`ZERORING_BACKEND` refines `Auto`).
    pub backend: BackendChoice,
    /// Receive-buffer pool per thread.
    pub pool: BufPoolConfig,
    /// Submission-queue entries per io_uring (the CQ gets four times as many).
    pub ring_entries: u32,
    /// How long a thread keeps polling without sleeping after its last work. Zero sleeps at
    /// once; a small budget keeps a busy pair of threads from paying a wakeup per message.
    pub spin: Duration,
    /// Thread names are `{prefix}{index}`.
    pub thread_name_prefix: String,
    /// Scheduling policy, priority and CPU set each thread applies to itself at start
    /// (zmq_ctx_set's thread options); a refusal is logged, never fatal.
    pub sched: crate::thread::ThreadSched,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            io_threads: 1,
            cpus: None,
            backend: BackendChoice::Auto,
            pool: BufPoolConfig::default(),
            ring_entries: 256,
            spin: spin_from_env().unwrap_or_else(default_spin),
            thread_name_prefix: "zeroring-io-".into(),
            sched: crate::thread::ThreadSched::default(),
        }
    }
}

/// The default spin budget: 20 µs wherever there is more than one core, none on one.
///
/// The spin yields the CPU on each idle turn whose look at the backend found nothing, so on a
/// core it shares with the thread it waits for, that thread runs first (a spin that kept the
/// core cost latency on 2 cores: REQ/REP p50 26 → 61 µs). What it buys where the two run on
/// different cores: the thread that hands this one work does not pay a cross-core wake-up for
/// each batch (docs/performance.md, "Yielding spins").
pub fn default_spin() -> Duration {
    match std::thread::available_parallelism() {
        Ok(n) if n.get() > 1 => Duration::from_micros(20),
        _ => Duration::ZERO,
    }
}

/// `ZERORING_IO_SPIN_US`: the I/O threads' spin budget in µs, for tuning without a rebuild
/// (how much busy-polling pays depends on how many cores the threads share).
fn spin_from_env() -> Option<Duration> {
    std::env::var("ZERORING_IO_SPIN_US")
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_micros)
}

/// Counters of one I/O thread, readable from any thread (relaxed, for metrics and tests).
#[derive(Debug, Default)]
pub struct ThreadStats {
    /// Handlers alive on the thread (the load used to place new connections).
    pub handlers: AtomicUsize,
    /// Operations submitted.
    pub ops_submitted: AtomicU64,
    /// Backend completions processed.
    pub completions: AtomicU64,
    /// Times a receive found no free buffer and was parked.
    pub recv_starved: AtomicU64,
    /// Parked receives restarted after buffers came back.
    pub recv_rearmed: AtomicU64,
    /// Times the thread blocked in its backend.
    pub sleeps: AtomicU64,
    /// io_uring completion-queue overflows seen (kernel kept the CQEs: NODROP).
    pub cq_overflow: AtomicU64,
    /// io_uring submits refused with EBUSY and retried.
    pub ebusy_retries: AtomicU64,
    /// Times the io_uring submission queue was full and was flushed to make room.
    pub sq_full_flushes: AtomicU64,
    /// Zero-timeout io_uring polls that made no system call (nothing to submit or reap).
    pub enters_skipped: AtomicU64,
}

pub(crate) enum Command {
    Run(Box<dyn FnOnce(&mut Cx<'_>) + Send>),
    Notify(HandlerId, u64),
    Shutdown,
}

/// Error returned when a thread no longer accepts commands (it has shut down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadGone;

impl fmt::Display for ThreadGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the I/O thread has shut down")
    }
}

impl std::error::Error for ThreadGone {}

/// A cloneable, thread-safe handle on one I/O thread.
#[derive(Clone)]
pub struct IoThreadHandle {
    index: usize,
    sender: MailboxSender<Command>,
    stats: Arc<ThreadStats>,
    info: Arc<ThreadInfo>,
}

/// What a thread found at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadInfo {
    /// The backend in use.
    pub backend: BackendInfo,
    /// The core it is pinned to, if pinning worked.
    pub pinned_to: Option<usize>,
    /// Why pinning failed, if it was asked for and failed.
    pub pin_error: Option<String>,
}

impl fmt::Debug for IoThreadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoThreadHandle")
            .field("index", &self.index)
            .field("info", &self.info)
            .finish()
    }
}

impl IoThreadHandle {
    /// The thread's index in its engine (bit `index` of a ZMQ_AFFINITY mask).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Runs `f` on the thread (e.g. to spawn a handler with [`Cx::spawn`]).
    pub fn execute(&self, f: impl FnOnce(&mut Cx<'_>) + Send + 'static) -> Result<(), ThreadGone> {
        self.sender
            .send(Command::Run(Box::new(f)))
            .map_err(|_| ThreadGone)
    }

    /// Builds a handler on the thread and spawns it; returns its id once it has started.
    pub fn spawn<H: Handler>(
        &self,
        make: impl FnOnce() -> H + Send + 'static,
    ) -> Result<HandlerId, ThreadGone> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.execute(move |cx| {
            let id = cx.spawn(Box::new(make()));
            let _ = tx.send(id);
        })?;
        rx.recv().map_err(|_| ThreadGone)
    }

    /// Calls [`Handler::on_notify`] of `handler` with `token`, on the thread.
    pub fn notify(&self, handler: HandlerId, token: u64) -> Result<(), ThreadGone> {
        self.sender
            .send(Command::Notify(handler, token))
            .map_err(|_| ThreadGone)
    }

    /// Handlers alive on the thread.
    pub fn load(&self) -> usize {
        self.stats.handlers.load(Ordering::Relaxed)
    }

    /// The thread's counters.
    pub fn stats(&self) -> &ThreadStats {
        &self.stats
    }

    /// What the thread found at start.
    pub fn info(&self) -> &ThreadInfo {
        &self.info
    }
}

/// A set of running I/O threads. Dropping it shuts them down.
pub struct Engine {
    threads: Vec<IoThreadHandle>,
    joins: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("threads", &self.threads)
            .finish()
    }
}

static CHOICE_LOGGED: Once = Once::new();

/// The least-loaded thread among those whose bit is set in `affinity` (ZMQ_AFFINITY: 0 means
/// any thread; bits beyond the thread count are ignored, and a mask naming no existing thread
/// means any thread, as in libzmq).
///
/// # Panics
/// When `threads` is empty.
pub fn least_loaded(threads: &[IoThreadHandle], affinity: u64) -> &IoThreadHandle {
    let allowed = |i: usize| affinity == 0 || (i < 64 && affinity & (1u64 << i) != 0);
    threads
        .iter()
        .filter(|t| allowed(t.index))
        .min_by_key(|t| t.load())
        .or_else(|| threads.iter().min_by_key(|t| t.load()))
        .expect("least_loaded needs at least one thread")
}

/// Builds the backend a thread will use, falling back to epoll when allowed.
fn make_backend(
    choice: BackendChoice,
    config: &EngineConfig,
    pool: &mut BufPool,
) -> io::Result<(Backend, BackendInfo)> {
    let epoll = |reason: Option<String>| -> io::Result<(Backend, BackendInfo)> {
        Ok((
            Backend::Epoll(EpollBackend::new()?),
            BackendInfo {
                kind: "epoll",
                features: vec![],
                fallback_reason: reason,
            },
        ))
    };
    match choice {
        BackendChoice::Epoll => epoll(None),
        BackendChoice::Uring | BackendChoice::Auto => {
            match UringBackend::new(config.ring_entries, pool) {
                Ok(b) => {
                    let features = b.features.clone();
                    Ok((
                        Backend::Uring(Box::new(b)),
                        BackendInfo {
                            kind: "io_uring",
                            features,
                            fallback_reason: None,
                        },
                    ))
                }
                Err(e) if choice == BackendChoice::Auto => epoll(Some(e.to_string())),
                Err(e) => Err(io::Error::new(
                    e.kind(),
                    format!("io_uring refused (ZERORING_BACKEND=uring): {e}"),
                )),
            }
        }
    }
}

impl Engine {
    /// Starts the threads; returns once every thread has its backend (or the first error).
    pub fn start(config: EngineConfig) -> io::Result<Engine> {
        if config.io_threads == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an engine needs at least one I/O thread",
            ));
        }
        config.pool.validate()?;
        let choice = config.backend.resolve()?;
        let cpus: Vec<usize> = config.cpus.clone().unwrap_or_default();
        let mut threads = Vec::with_capacity(config.io_threads);
        let mut joins = Vec::with_capacity(config.io_threads);
        for index in 0..config.io_threads {
            let cpu = if cpus.is_empty() {
                None
            } else {
                Some(cpus[index % cpus.len()])
            };
            let (ready_tx, ready_rx) = mpsc::sync_channel(1);
            let cfg = config.clone();
            // Signals never run on an I/O thread (as libzmq's): the application's handlers run
            // on its own threads, where they interrupt blocking calls with EINTR.
            let join =
                crate::thread::spawn(format!("{}{index}", config.thread_name_prefix), move || {
                    for e in cfg.sched.apply_to_current() {
                        log::warn!("zeroring I/O thread {index}: scheduling refused: {e}");
                    }
                    thread_main(index, cpu, choice, cfg, ready_tx)
                })?;
            match ready_rx.recv() {
                Ok(Ok(handle)) => {
                    threads.push(handle);
                    joins.push(join);
                }
                Ok(Err(e)) => {
                    let _ = join.join();
                    let engine = Engine { threads, joins };
                    drop(engine);
                    return Err(e);
                }
                Err(_) => {
                    let _ = join.join();
                    return Err(io::Error::other("I/O thread died during start"));
                }
            }
        }
        CHOICE_LOGGED.call_once(|| {
            if let Some(t) = threads.first() {
                log::info!(
                    "zeroring engine: {} I/O thread(s), backend {}",
                    threads.len(),
                    t.info.backend
                );
            }
        });
        Ok(Engine { threads, joins })
    }

    /// The threads, by index.
    pub fn threads(&self) -> &[IoThreadHandle] {
        &self.threads
    }

    /// The least-loaded thread among those whose bit is set in `affinity` (ZMQ_AFFINITY: 0 means
    /// any thread; bits beyond the thread count are ignored, and a mask naming no existing
    /// thread means any thread, as in libzmq).
    pub fn choose(&self, affinity: u64) -> &IoThreadHandle {
        least_loaded(&self.threads, affinity)
    }

    /// Asks every thread to shut down and waits for them: handlers get `on_shutdown`, then
    /// every operation is cancelled and drained (bounded; see the module docs).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for t in &self.threads {
            let _ = t.sender.send(Command::Shutdown);
        }
        let me = std::thread::current().id();
        for j in self.joins.drain(..) {
            // Dropped from one of its own threads (a handler held the last reference): that
            // thread exits by itself after this callback, on the Shutdown just sent.
            if j.thread().id() != me {
                let _ = j.join();
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a shutting-down thread waits for cancelled operations to complete before it
/// leaks their memory (rather than freeing what the kernel might still write).
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

fn thread_main(
    index: usize,
    cpu: Option<usize>,
    choice: BackendChoice,
    config: EngineConfig,
    ready: mpsc::SyncSender<io::Result<IoThreadHandle>>,
) {
    let (pinned_to, pin_error) = match cpu {
        None => (None, None),
        // core_affinity indexes a fixed cpu_set_t and panics past it: check first.
        Some(id) if id >= libc::CPU_SETSIZE as usize => {
            let msg = format!(
                "could not pin I/O thread {index} to core {id}: beyond CPU_SETSIZE ({})",
                libc::CPU_SETSIZE
            );
            log::warn!("zeroring engine: {msg}");
            (None, Some(msg))
        }
        Some(id) => {
            if core_affinity::set_for_current(core_affinity::CoreId { id }) {
                (Some(id), None)
            } else {
                let msg = format!("could not pin I/O thread {index} to core {id}");
                log::warn!("zeroring engine: {msg}");
                (None, Some(msg))
            }
        }
    };
    let setup = (|| -> io::Result<_> {
        let mut pool = BufPool::new(config.pool)?;
        let (backend, info) = make_backend(choice, &config, &mut pool)?;
        let signal = Arc::new(Signal::new()?);
        Ok((pool, backend, info, signal))
    })();
    let (pool, backend, info, signal) = match setup {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mailbox: Mailbox<Command> = Mailbox::new(signal.clone());
    let stats = Arc::new(ThreadStats::default());
    let handle = IoThreadHandle {
        index,
        sender: mailbox.sender(),
        stats: stats.clone(),
        info: Arc::new(ThreadInfo {
            backend: info,
            pinned_to,
            pin_error,
        }),
    };
    let mut core = Core::new(backend, pool, stats, handle.clone());
    core.submit_wake(signal.fd());
    if ready.send(Ok(handle)).is_err() {
        return;
    }
    drop(ready);
    run(&mut core, &mailbox, &signal, config.spin);
    mailbox.close();
}

fn run(core: &mut Core, mailbox: &Mailbox<Command>, signal: &Signal, spin: Duration) {
    let mut commands: Vec<Command> = Vec::new();
    let mut completions: Vec<RawCompletion> = Vec::with_capacity(256);
    let mut last_work = Instant::now();
    let mut drain_deadline: Option<Instant> = None;
    loop {
        let now = Instant::now();
        core.now = now;
        let mut busy = false;

        signal.clear();
        mailbox.drain(&mut commands);
        for command in commands.drain(..) {
            busy = true;
            match command {
                Command::Run(f) => f(&mut Cx::detached(core)),
                Command::Notify(id, token) => core.dispatch(id, |h, cx| h.on_notify(cx, token)),
                Command::Shutdown => {
                    if drain_deadline.is_none() {
                        core.shutting_down = true;
                        core.shutdown_handlers();
                        core.drop_handlers();
                        core.cancel_all(true);
                        drain_deadline = Some(now + SHUTDOWN_DRAIN);
                    }
                }
            }
        }
        while let Some((timer, owner)) = core.timers.pop_expired(now) {
            busy = true;
            core.dispatch(owner, |h, cx| h.on_timer(cx, timer));
        }
        busy |= core.refill_buffers();

        if let Some(deadline) = drain_deadline {
            if core.total_ops() == 0 {
                break;
            }
            if now >= deadline {
                let leaked = core.leak_in_flight();
                log::error!("zeroring engine: {leaked} operation(s) did not finish at shutdown; their memory is leaked");
                break;
            }
        }

        let mut timeout = core
            .timers
            .next_deadline()
            .map(|d| d.saturating_duration_since(now));
        if let Some(deadline) = drain_deadline {
            let left = deadline.saturating_duration_since(now);
            timeout = Some(timeout.map_or(left, |t| t.min(left)));
        }
        // A spinning turn (nothing done yet, within the spin since the last work) polls the
        // backend without waiting; it yields below, after the poll.
        let spinning = !busy && now.duration_since(last_work) < spin;
        if busy || spinning || core.has_synthetic() {
            timeout = Some(Duration::ZERO);
        }
        let sleeping = timeout != Some(Duration::ZERO) && signal.prepare_sleep();
        if timeout != Some(Duration::ZERO) && !sleeping {
            timeout = Some(Duration::ZERO);
        }
        if sleeping {
            core.stats.sleeps.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = core.wait(timeout, &mut completions) {
            // Only a broken ring or epoll instance gets here; report it and do not spin hot.
            log::error!("zeroring engine: I/O thread wait failed: {e}");
            std::thread::sleep(Duration::from_millis(10));
        }
        if sleeping {
            // Awake again: notifiers stop writing the eventfd from here on.
            signal.end_sleep();
        }
        core.take_synthetic(&mut completions);
        if !completions.is_empty() {
            busy = true;
        }
        for rc in completions.drain(..) {
            core.complete(rc);
        }
        if spinning && !busy {
            // Nothing came: give the core to a thread that wants it (often the application
            // thread this one waits for, on the same core). Not before the look: completions
            // usually wait already when a turn starts (a stream of large receives finds its
            // next one queued), and a yield first would switch away from a thread with work
            // for nothing (docs/performance.md, "An I/O thread looks before it yields").
            crate::sync::yield_cpu();
        }
        // The eventfd is read only when its readiness was reported (a notifier wrote it), not
        // after every sleep: a wake by network I/O costs no read(2).
        if core.take_wake_fired() {
            signal.drain_fd();
        }
        let counters = core.backend.counters();
        core.stats
            .cq_overflow
            .store(counters.cq_overflow, Ordering::Relaxed);
        core.stats
            .ebusy_retries
            .store(counters.ebusy_retries, Ordering::Relaxed);
        core.stats
            .sq_full_flushes
            .store(counters.sq_full_flushes, Ordering::Relaxed);
        core.stats
            .enters_skipped
            .store(counters.enters_skipped, Ordering::Relaxed);
        if busy {
            last_work = now;
        }
    }
}

/// A reactor core driven by hand, for white-box tests of the reactor's invariants.
#[cfg(test)]
pub(crate) fn test_core(choice: BackendChoice, pool: BufPoolConfig) -> (Core, Mailbox<Command>) {
    let config = EngineConfig {
        pool,
        ..EngineConfig::default()
    };
    let mut pool = BufPool::new(pool).unwrap();
    let (backend, info) = make_backend(choice, &config, &mut pool).unwrap();
    let signal = Arc::new(Signal::new().unwrap());
    let mailbox: Mailbox<Command> = Mailbox::new(signal);
    let stats = Arc::new(ThreadStats::default());
    let handle = IoThreadHandle {
        index: 0,
        sender: mailbox.sender(),
        stats: stats.clone(),
        info: Arc::new(ThreadInfo {
            backend: info,
            pinned_to: None,
            pin_error: None,
        }),
    };
    (Core::new(backend, pool, stats, handle), mailbox)
}
