//! zeroring-engine: the thread-per-core I/O engine underneath zeroring.
//!
//! It owns the I/O threads (pinned, one backend each), the two backends (io_uring, and an
//! epoll-readiness fallback with the same completion-style API), the provided-buffer ring and
//! the `Msg` type built on it, timers, and the lock-free plumbing between threads: the
//! single-producer single-consumer [`pipe`], the per-thread [`mailbox`] and the [`signal`] that
//! wakes a sleeping thread.
//!
//! It knows nothing of ZeroMQ: no frames, no socket types, no errno vocabulary beyond the OS's.

pub mod sync;

pub mod mailbox;
pub mod pipe;
pub mod signal;

pub mod backend;
pub mod bufpool;
pub mod io_thread;
pub mod msg;
pub mod reactor;
pub mod timers;

pub use backend::{BackendChoice, BackendInfo, SharedFd};
pub use bufpool::BufPoolConfig;
pub use io_thread::{Engine, EngineConfig, IoThreadHandle, ThreadGone, ThreadInfo, ThreadStats};
pub use msg::{Metadata, Msg};
pub use reactor::{Completion, Cx, Handler, HandlerId, Op, OpId};
pub use timers::TimerId;
