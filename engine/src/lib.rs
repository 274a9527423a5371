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

pub mod free_stack;
pub mod handover;
pub mod mailbox;
pub mod pipe;
pub mod signal;

// The I/O side talks to the kernel; under loom only the lock-free plumbing is modelled.
#[cfg(not(loom))]
pub mod backend;
#[cfg(not(loom))]
pub mod body_pool;
#[cfg(not(loom))]
pub mod bufpool;
#[cfg(not(loom))]
pub mod io_thread;
#[cfg(not(loom))]
pub mod msg;
#[cfg(not(loom))]
mod msg_metadata;
#[cfg(not(loom))]
pub mod reactor;
#[cfg(not(loom))]
pub mod send_buf;
#[cfg(not(loom))]
pub mod stream_copy;
#[cfg(not(loom))]
pub mod thread;
#[cfg(not(loom))]
pub mod timers;

#[cfg(not(loom))]
pub use backend::{BackendChoice, BackendInfo, SharedFd};
#[cfg(not(loom))]
pub use bufpool::{BufPoolConfig, RECV_ONCE_MAX};
#[cfg(not(loom))]
pub use io_thread::{Engine, EngineConfig, IoThreadHandle, ThreadGone, ThreadInfo, ThreadStats};
#[cfg(not(loom))]
pub use msg::{CopyHint, Msg, MsgMetadata};
#[cfg(not(loom))]
pub use reactor::{Completion, Cx, Handler, HandlerId, Op, OpId};
#[cfg(not(loom))]
pub use send_buf::SendBuf;
#[cfg(not(loom))]
pub use timers::TimerId;

/// The old name of [`MsgMetadata`], kept so that code written against it still builds.
#[cfg(not(loom))]
#[deprecated(
    since = "0.1.0",
    note = "renamed MsgMetadata (ZMTP's wire property list is zeroring_transports::zmtp::Metadata)"
)]
pub type Metadata = MsgMetadata;
