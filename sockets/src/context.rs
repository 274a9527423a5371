//! The context: socket registry, inproc endpoint registry, context options, and the (lazily
//! started) I/O engine.
//!
//! `Context` is a cheap handle (`Clone + Send + Sync`); every socket keeps one, so the shared
//! state lives until the last socket and the last handle are gone.
//!
//! Termination: [`Context::shutdown`] makes every blocked and later socket call fail with ETERM
//! (close still works). [`Context::term`] shuts down, then waits until every socket is closed
//! (dropped) — as `zmq_ctx_term` does — and stops the I/O threads. A socket's close never waits
//! longer than its LINGER, whose default in zeroring is bounded (see
//! [`DEFAULT_LINGER_MS`](crate::options::DEFAULT_LINGER_MS)), so `term` cannot hang on pending
//! messages with the default settings; it waits only for sockets the program still holds.
//! Dropping the last `Context` handle does not wait: sockets keep the shared state alive.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use bytes::Bytes;
use zeroring_engine::mailbox::MailboxSender;
use zeroring_engine::pipe::{PipeReader, PipeWriter};
use zeroring_engine::signal::Signal;
use zeroring_engine::{Engine, EngineConfig, Msg};
use zeroring_transports::socket_type::SocketType;

use crate::attach::Command;
use crate::error::{Error, Result};

/// Context option numbers (zmq.h).
#[allow(missing_docs)]
pub mod ctx_opt {
    pub const IO_THREADS: i32 = 1;
    pub const MAX_SOCKETS: i32 = 2;
    pub const SOCKET_LIMIT: i32 = 3;
    pub const THREAD_PRIORITY: i32 = 3;
    pub const THREAD_SCHED_POLICY: i32 = 4;
    pub const MAX_MSGSZ: i32 = 5;
    pub const MSG_T_SIZE: i32 = 6;
    pub const THREAD_AFFINITY_CPU_ADD: i32 = 7;
    pub const THREAD_AFFINITY_CPU_REMOVE: i32 = 8;
    pub const THREAD_NAME_PREFIX: i32 = 9;
    pub const ZERO_COPY_RECV: i32 = 10;
    pub const IPV6: i32 = 42;
    pub const BLOCKY: i32 = 70;
}

/// ZMQ_SOCKET_LIMIT, as libzmq reports it (MAX_SOCKETS may be set above it, as in libzmq).
pub const SOCKET_LIMIT: i32 = 65535;

/// Context options (zmq_ctx_set).
#[derive(Debug, Clone)]
pub struct ContextOptions {
    /// ZMQ_IO_THREADS (default 1); only effective before the engine starts.
    pub io_threads: i32,
    /// ZMQ_MAX_SOCKETS (default 1023): creating more sockets fails with EMFILE.
    pub max_sockets: i32,
    /// ZMQ_MAX_MSGSZ (default i32::MAX): larger messages are refused with EMSGSIZE.
    pub max_msgsz: i32,
    /// ZMQ_BLOCKY (default true). When false, new sockets get LINGER 0.
    pub blocky: bool,
    /// ZMQ_IPV6: the default of new sockets' IPV6 option.
    pub ipv6: bool,
    /// ZMQ_THREAD_AFFINITY_CPU_ADD/REMOVE: the CPUs every I/O thread may run on (the whole
    /// set on each thread, as libzmq; empty = any).
    pub thread_cpus: Vec<usize>,
    /// ZMQ_THREAD_NAME_PREFIX: I/O threads are named `{prefix}-zeroring-io-{n}`.
    pub thread_name_prefix: String,
    /// ZMQ_THREAD_PRIORITY (−1: inherited), applied by each I/O thread as it starts; a
    /// refusal (no CAP_SYS_NICE) is logged and the thread runs on.
    pub thread_priority: i32,
    /// ZMQ_THREAD_SCHED_POLICY (−1: inherited), applied likewise.
    pub thread_sched_policy: i32,
    /// ZMQ_ZERO_COPY_RECV (default on). Received bodies are always shared with the receive
    /// path where zeroring can (large bodies) and copied where that is cheaper (small ones),
    /// whichever this says: the value is kept for zmq_ctx_get.
    pub zero_copy_recv: bool,
    /// Each I/O thread's receive pool (zeroring's own; libzmq has none): what tcp and ipc
    /// receive into before the bytes are decoded. Only effective before the engine starts.
    pub receive_pool: zeroring_engine::BufPoolConfig,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            io_threads: 1,
            max_sockets: 1023,
            max_msgsz: i32::MAX,
            blocky: true,
            ipv6: false,
            thread_cpus: Vec::new(),
            thread_name_prefix: String::new(),
            thread_priority: -1,
            thread_sched_policy: -1,
            zero_copy_recv: true,
            receive_pool: zeroring_engine::BufPoolConfig::default(),
        }
    }
}

/// What a bound inproc endpoint tells connecting sockets.
#[derive(Debug, Clone)]
pub(crate) struct InprocInfo {
    pub socket_id: u64,
    pub socket_type: SocketType,
    pub routing_id: Bytes,
    pub sndhwm: i32,
    pub rcvhwm: i32,
    pub conflate: bool,
}

#[derive(Debug)]
pub(crate) struct Bound {
    pub info: InprocInfo,
    pub sender: MailboxSender<Command>,
}

/// A connect that arrived before the bind.
#[derive(Debug)]
pub(crate) struct Pending {
    pub connector: InprocInfo,
    /// The binder's ends: it writes `writer`, reads `reader`.
    pub writer: PipeWriter<Msg>,
    pub reader: PipeReader<Msg>,
    /// The connector's ends, when they wait for the bind (IMMEDIATE, or a ROUTER that must
    /// learn the binder's routing id), with where to deliver them.
    pub deferred: Option<(PipeWriter<Msg>, PipeReader<Msg>, MailboxSender<Command>)>,
    /// CONNECT_ROUTING_ID the connector chose for the binder.
    pub connect_routing_id: Option<Bytes>,
    pub endpoint: String,
}

#[derive(Debug, Default)]
pub(crate) struct Inproc {
    pub bound: HashMap<String, Bound>,
    pub pending: HashMap<String, Vec<Pending>>,
}

pub(crate) struct Inner {
    options: Mutex<ContextOptions>,
    terminated: AtomicBool,
    sockets: Mutex<HashMap<u64, Arc<Signal>>>,
    sockets_gone: Condvar,
    next_socket_id: AtomicU64,
    pub(crate) inproc: Mutex<Inproc>,
    engine: Mutex<Option<Engine>>,
    /// tcp/ipc connections still delivering for closed sockets (LINGER); the engine stops
    /// only after them.
    pub(crate) lingering: zeroring_transports::driver::Lingering,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A zeroring context. `Clone + Send + Sync`.
///
/// ```
/// use zeroring::{Context, SocketType};
///
/// let ctx = Context::new();
/// let rep = ctx.socket(SocketType::Rep)?;
/// rep.bind("inproc://hello")?;
/// let req = ctx.socket(SocketType::Req)?;
/// req.connect("inproc://hello")?;
/// req.send("Hello", 0)?;
/// assert_eq!(rep.recv_bytes(0)?, b"Hello");
/// rep.send("World", 0)?;
/// assert_eq!(req.recv_string(0)?.unwrap(), "World");
/// # Ok::<(), zeroring::Error>(())
/// ```
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<Inner>,
}

/// A context reference that does not keep it alive: what an I/O thread's handlers hold, so
/// that the last `Context` is never dropped on (and never joins) one of its own I/O threads.
#[derive(Clone)]
pub(crate) struct WeakContext(std::sync::Weak<Inner>);

impl WeakContext {
    /// The context, if it still exists.
    pub(crate) fn upgrade(&self) -> Option<Context> {
        self.0.upgrade().map(|inner| Context { inner })
    }
}

impl fmt::Debug for WeakContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakContext")
    }
}

impl Context {
    /// A reference that does not keep the context alive.
    pub(crate) fn downgrade(&self) -> WeakContext {
        WeakContext(Arc::downgrade(&self.inner))
    }
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Context {
    /// A context with default options.
    pub fn new() -> Context {
        Self::with_options(ContextOptions::default())
    }

    /// A context with the given options.
    pub fn with_options(options: ContextOptions) -> Context {
        Context {
            inner: Arc::new(Inner {
                options: Mutex::new(options),
                terminated: AtomicBool::new(false),
                sockets: Mutex::new(HashMap::new()),
                sockets_gone: Condvar::new(),
                next_socket_id: AtomicU64::new(1),
                inproc: Mutex::new(Inproc::default()),
                engine: Mutex::new(None),
                lingering: Default::default(),
            }),
        }
    }

    /// A copy of the context options.
    pub fn options(&self) -> ContextOptions {
        lock(&self.inner.options).clone()
    }

    /// `zmq_ctx_set` for integer options. THREAD_NAME_PREFIX takes its number as text.
    /// EINVAL for an unknown or read-only option and for a value out of range.
    ///
    /// ```
    /// use zeroring::{context::ctx_opt, Context, Error};
    ///
    /// let ctx = Context::new();
    /// ctx.set(ctx_opt::IO_THREADS, 2)?;
    /// assert_eq!(ctx.set(ctx_opt::IO_THREADS, -1), Err(Error::EINVAL));
    /// assert_eq!(ctx.set(ctx_opt::BLOCKY, -1), Err(Error::EINVAL)); // libzmq takes any value >= 0
    /// assert_eq!(ctx.set(9999, 1), Err(Error::EINVAL));
    /// # Ok::<(), zeroring::Error>(())
    /// ```
    pub fn set(&self, option: i32, value: i32) -> Result<()> {
        let mut o = lock(&self.inner.options);
        match option {
            ctx_opt::IO_THREADS if value >= 0 => o.io_threads = value,
            // Any positive value, as libzmq on Linux (SOCKET_LIMIT is what it reports, not a
            // bound it checks).
            ctx_opt::MAX_SOCKETS if value >= 1 => o.max_sockets = value,
            ctx_opt::MAX_MSGSZ if value >= 0 => o.max_msgsz = value,
            // Any value >= 0, non-zero meaning on, as libzmq.
            ctx_opt::BLOCKY if value >= 0 => o.blocky = value != 0,
            ctx_opt::IPV6 if value == 0 || value == 1 => o.ipv6 = value == 1,
            ctx_opt::THREAD_AFFINITY_CPU_ADD if value >= 0 => {
                if !o.thread_cpus.contains(&(value as usize)) {
                    o.thread_cpus.push(value as usize);
                }
            }
            ctx_opt::THREAD_AFFINITY_CPU_REMOVE if value >= 0 => {
                let before = o.thread_cpus.len();
                o.thread_cpus.retain(|c| *c != value as usize);
                if o.thread_cpus.len() == before {
                    return Err(Error::EINVAL);
                }
            }
            ctx_opt::THREAD_NAME_PREFIX if value >= 0 => o.thread_name_prefix = value.to_string(),
            // Number 3 is both SOCKET_LIMIT (read-only) and THREAD_PRIORITY (write-only), as
            // in zmq.h. libzmq takes values >= 0 for both thread options.
            ctx_opt::THREAD_PRIORITY if value >= 0 => o.thread_priority = value,
            ctx_opt::THREAD_SCHED_POLICY if value >= 0 => o.thread_sched_policy = value,
            ctx_opt::ZERO_COPY_RECV if value == 0 || value == 1 => o.zero_copy_recv = value == 1,
            _ => return Err(Error::EINVAL),
        }
        Ok(())
    }

    /// `zmq_ctx_get`.
    pub fn get(&self, option: i32) -> Result<i32> {
        let o = lock(&self.inner.options);
        Ok(match option {
            ctx_opt::IO_THREADS => o.io_threads,
            ctx_opt::MAX_SOCKETS => o.max_sockets,
            ctx_opt::SOCKET_LIMIT => SOCKET_LIMIT,
            ctx_opt::MAX_MSGSZ => o.max_msgsz,
            ctx_opt::MSG_T_SIZE => 64,
            ctx_opt::BLOCKY => o.blocky as i32,
            ctx_opt::IPV6 => o.ipv6 as i32,
            ctx_opt::THREAD_NAME_PREFIX => o.thread_name_prefix.parse().unwrap_or(0),
            ctx_opt::THREAD_SCHED_POLICY => o.thread_sched_policy,
            ctx_opt::ZERO_COPY_RECV => o.zero_copy_recv as i32,
            _ => return Err(Error::EINVAL),
        })
    }

    /// Sets ZMQ_IO_THREADS (effective before the engine starts).
    pub fn set_io_threads(&self, n: i32) -> Result<()> {
        self.set(ctx_opt::IO_THREADS, n)
    }

    /// ZMQ_IO_THREADS.
    pub fn io_threads(&self) -> i32 {
        lock(&self.inner.options).io_threads
    }

    /// Sets ZMQ_MAX_SOCKETS.
    pub fn set_max_sockets(&self, n: i32) -> Result<()> {
        self.set(ctx_opt::MAX_SOCKETS, n)
    }

    /// ZMQ_MAX_SOCKETS.
    pub fn max_sockets(&self) -> i32 {
        lock(&self.inner.options).max_sockets
    }

    /// Sets ZMQ_MAX_MSGSZ.
    pub fn set_max_msgsz(&self, n: i32) -> Result<()> {
        self.set(ctx_opt::MAX_MSGSZ, n)
    }

    /// ZMQ_MAX_MSGSZ.
    pub fn max_msgsz(&self) -> i32 {
        lock(&self.inner.options).max_msgsz
    }

    /// Sets ZMQ_BLOCKY.
    pub fn set_blocky(&self, on: bool) -> Result<()> {
        self.set(ctx_opt::BLOCKY, on as i32)
    }

    /// ZMQ_BLOCKY.
    pub fn blocky(&self) -> bool {
        lock(&self.inner.options).blocky
    }

    /// Sets ZMQ_IPV6 (the default for new sockets).
    pub fn set_ipv6(&self, on: bool) -> Result<()> {
        self.set(ctx_opt::IPV6, on as i32)
    }

    /// ZMQ_IPV6.
    pub fn ipv6(&self) -> bool {
        lock(&self.inner.options).ipv6
    }

    /// ZMQ_THREAD_AFFINITY_CPU_ADD.
    pub fn add_thread_cpu(&self, cpu: i32) -> Result<()> {
        self.set(ctx_opt::THREAD_AFFINITY_CPU_ADD, cpu)
    }

    /// ZMQ_THREAD_AFFINITY_CPU_REMOVE.
    pub fn remove_thread_cpu(&self, cpu: i32) -> Result<()> {
        self.set(ctx_opt::THREAD_AFFINITY_CPU_REMOVE, cpu)
    }

    /// ZMQ_THREAD_NAME_PREFIX (any text; libzmq takes an integer).
    pub fn set_thread_name_prefix(&self, prefix: &str) -> Result<()> {
        lock(&self.inner.options).thread_name_prefix = prefix.to_string();
        Ok(())
    }

    /// ZMQ_THREAD_NAME_PREFIX.
    pub fn thread_name_prefix(&self) -> String {
        lock(&self.inner.options).thread_name_prefix.clone()
    }

    /// ZMQ_SOCKET_LIMIT.
    pub fn socket_limit(&self) -> i32 {
        SOCKET_LIMIT
    }

    /// ZMQ_THREAD_PRIORITY (>= 0), applied by the I/O threads when they start.
    pub fn set_thread_priority(&self, priority: i32) -> Result<()> {
        self.set(ctx_opt::THREAD_PRIORITY, priority)
    }

    /// ZMQ_THREAD_SCHED_POLICY (`libc::SCHED_*`), applied by the I/O threads when they start.
    pub fn set_thread_sched_policy(&self, policy: i32) -> Result<()> {
        self.set(ctx_opt::THREAD_SCHED_POLICY, policy)
    }

    /// ZMQ_ZERO_COPY_RECV.
    pub fn set_zero_copy_recv(&self, on: bool) -> Result<()> {
        self.set(ctx_opt::ZERO_COPY_RECV, on as i32)
    }

    /// Sets each I/O thread's receive pool: `count` buffers (a power of two, 1–32,768) of
    /// `size` bytes (default 64 × 64 KiB). tcp and ipc receive into it; the bytes are decoded
    /// (and small bodies copied out) as each receive completes, so the pool bounds reads in
    /// flight, not messages queued. A larger pool keeps more connections reading at once under
    /// load; a smaller one costs less memory per thread. Only effective before the engine
    /// starts (the first bind or connect over tcp or ipc). EINVAL for a shape the pool cannot
    /// take.
    pub fn set_receive_pool(&self, count: u16, size: u32) -> Result<()> {
        let pool = zeroring_engine::BufPoolConfig { count, size };
        pool.validate().map_err(|_| Error::EINVAL)?;
        lock(&self.inner.options).receive_pool = pool;
        Ok(())
    }

    /// The receive pool each I/O thread gets (see [`Context::set_receive_pool`]).
    pub fn receive_pool(&self) -> zeroring_engine::BufPoolConfig {
        lock(&self.inner.options).receive_pool
    }

    /// ZMQ_MSG_T_SIZE: the size of the C ABI's `zmq_msg_t`.
    pub fn msg_t_size(&self) -> i32 {
        64
    }

    /// Runs `f` with the I/O engine, starting it on first use (with IO_THREADS, the CPU list
    /// and the thread name prefix as they are then). For transports: inproc never needs it.
    #[doc(hidden)]
    pub fn with_engine<R>(&self, f: impl FnOnce(&Engine) -> R) -> Result<R> {
        if self.is_terminated() {
            return Err(Error::ETERM);
        }
        let mut slot = lock(&self.inner.engine);
        if slot.is_none() {
            let o = self.options();
            if o.io_threads == 0 {
                return Err(Error::EMTHREAD);
            }
            let mut cfg = EngineConfig {
                io_threads: o.io_threads as usize,
                pool: o.receive_pool,
                ..EngineConfig::default()
            };
            cfg.sched = zeroring_engine::thread::ThreadSched {
                policy: o.thread_sched_policy,
                priority: o.thread_priority,
                cpus: o.thread_cpus.clone(),
            };
            if !o.thread_name_prefix.is_empty() {
                cfg.thread_name_prefix = format!("{}-zeroring-io-", o.thread_name_prefix);
            }
            *slot = Some(Engine::start(cfg).map_err(|e| {
                Error::from_errno(e.raw_os_error().unwrap_or(Error::EMTHREAD.errno()))
            })?);
        }
        Ok(f(slot.as_ref().expect("engine just started")))
    }

    /// Whether the I/O threads are running.
    pub fn engine_started(&self) -> bool {
        lock(&self.inner.engine).is_some()
    }

    /// `zmq_ctx_shutdown`: every blocked and later call on this context's sockets fails with
    /// ETERM (closing them still works). Does not wait.
    pub fn shutdown(&self) {
        self.inner.terminated.store(true, Ordering::SeqCst);
        for s in lock(&self.inner.sockets).values() {
            s.notify();
        }
    }

    /// `zmq_ctx_term`: [`shutdown`](Self::shutdown), then waits until every socket of this
    /// context is closed, then stops the I/O threads.
    pub fn term(self) {
        self.shutdown();
        let mut s = lock(&self.inner.sockets);
        while !s.is_empty() {
            s = self
                .inner
                .sockets_gone
                .wait(s)
                .unwrap_or_else(|e| e.into_inner());
        }
        drop(s);
        // Closed sockets' connections deliver within their LINGER, then let go.
        self.inner.lingering.wait(None);
        if let Some(e) = lock(&self.inner.engine).take() {
            e.shutdown();
        }
    }

    /// Whether shutdown or term was called (checked on every send and receive).
    #[inline]
    pub fn is_terminated(&self) -> bool {
        self.inner.terminated.load(Ordering::SeqCst)
    }

    /// Number of open sockets.
    pub fn socket_count(&self) -> usize {
        lock(&self.inner.sockets).len()
    }

    pub(crate) fn register_socket(&self, signal: Arc<Signal>) -> Result<u64> {
        if self.is_terminated() {
            return Err(Error::ETERM);
        }
        let max = self.max_sockets() as usize;
        let mut s = lock(&self.inner.sockets);
        if s.len() >= max {
            return Err(Error::EMFILE);
        }
        let id = self.inner.next_socket_id.fetch_add(1, Ordering::Relaxed);
        s.insert(id, signal);
        Ok(id)
    }

    pub(crate) fn unregister_socket(&self, id: u64) {
        {
            let mut inproc = lock(&self.inner.inproc);
            inproc.bound.retain(|_, b| b.info.socket_id != id);
        }
        let mut s = lock(&self.inner.sockets);
        s.remove(&id);
        if s.is_empty() {
            self.inner.sockets_gone.notify_all();
        }
    }

    pub(crate) fn inproc(&self) -> MutexGuard<'_, Inproc> {
        lock(&self.inner.inproc)
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("sockets", &self.socket_count())
            .field("terminated", &self.is_terminated())
            .field("engine_started", &self.engine_started())
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.lingering.wait(None);
        if let Some(e) = self
            .engine
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            e.shutdown();
        }
    }
}
