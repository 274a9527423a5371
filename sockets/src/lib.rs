//! zeroring: ZeroMQ for Rust — libzmq 4.3 socket semantics and the ZMTP 3.1 protocol on a
//! thread-per-core io_uring engine.
//!
//! ```
//! use zeroring::{Context, SocketType};
//!
//! let ctx = Context::new();
//! let publisher = ctx.socket(SocketType::Pub)?;
//! publisher.bind("inproc://weather")?;
//! let subscriber = ctx.socket(SocketType::Sub)?;
//! subscriber.connect("inproc://weather")?;
//! subscriber.set_subscribe(b"10001 ")?;
//! // The subscription travels to the publisher as a message; once the publisher has
//! // seen it, matching updates flow.
//! while publisher.get_topics_count()? == 0 {
//!     std::thread::yield_now();
//! }
//! publisher.send("10002 hot", 0)?;
//! publisher.send("10001 mild", 0)?;
//! assert_eq!(subscriber.recv_string(0)?.unwrap(), "10001 mild");
//! # Ok::<(), zeroring::Error>(())
//! ```
//!
//! - [`Context`]: sockets, context options, shutdown/term.
//! - [`Socket`]: bind/connect, send/recv, options (typed and raw through one table,
//!   [`options`]).
//! - [`Error`]: libzmq's errno values, one variant each.
//! - [`pattern`]: the sans-IO socket patterns (load-balance, fair-queue, distribute, tries,
//!   one module per socket family).
//! - [`attach`]: how transports hand a connected peer (a pipe pair) to a socket.
//! - [`SocketCore`]: a socket without any I/O (options, pattern, counters, attach/hiccup):
//!   `Socket` drives it blocking, the simulator (`zeroring-sim`) on simulated time.
//! - [`AsyncSocket`], [`poll()`], [`proxy()`]: the async, zmq_poll and proxy drivers over
//!   `Socket`.
//!
//! Transports: `inproc://`, `tcp://` and `ipc://` (ZMTP 3.1: NULL, PLAIN and CURVE), on every
//! socket type STREAM included (STREAM speaks raw tcp/ipc bytes). Any other
//! scheme (`pgm://`, `tipc://`, …) fails with EPROTONOSUPPORT (`udp://` with ENOCOMPATPROTO, as
//! libzmq's classic socket types), a malformed endpoint with EINVAL:
//!
//! ```
//! use zeroring::{Context, Error, SocketType};
//!
//! let ctx = Context::new();
//! let s = ctx.socket(SocketType::Push)?;
//! assert_eq!(s.connect("pgm://eth0;239.192.1.1:5555"), Err(Error::EPROTONOSUPPORT));
//! assert_eq!(s.connect("tcp://127.0.0.1"), Err(Error::EINVAL)); // no port
//! s.connect("tcp://127.0.0.1:5555")?; // asynchronous: nobody needs to listen yet
//! # Ok::<(), zeroring::Error>(())
//! ```

pub mod asynch;
pub mod attach;
mod config;
pub mod context;
pub mod core;
mod curve;
pub mod endpoint;
pub mod error;
pub mod monitor;
pub mod options;
pub mod pattern;
pub mod poll;
pub mod poller;
pub mod proxy;
pub mod socket;
pub mod util;
mod wire;
pub mod zap;

pub use zeroring_engine as engine;
pub use zeroring_transports as transports;

pub use asynch::AsyncSocket;
pub use context::{Context, ContextOptions};
pub use core::SocketCore;
pub use curve::{curve_keypair, curve_public, has, CurveKeyPair};
pub use error::{Error, Result};
pub use pattern::Stats;
pub use poll::{poll, PollItem, POLLERR, POLLPRI};
pub use poller::{Poller, PollerEvent};
pub use proxy::{device, proxy, proxy_steerable, SideStats};
pub use socket::{Sendable, Socket, DONTWAIT, POLLIN, POLLOUT, SNDMORE};
pub use util::{version, z85_decode, z85_encode, AtomicCounter, Stopwatch, Timers};
pub use zeroring_engine::Msg;
pub use zeroring_transports::monitor::MonitorEvent;
pub use zeroring_transports::socket_type::SocketType;

#[cfg(test)]
mod static_checks {
    use super::*;

    fn is_send<T: Send>() {}
    fn is_sync<T: Sync>() {}
    fn is_clone<T: Clone>() {}

    #[test]
    fn thread_safety() {
        is_send::<Socket>();
        is_send::<Context>();
        is_sync::<Context>();
        is_clone::<Context>();
    }

    // `Socket: !Sync`, checked at compile time: this impl would conflict if Socket were Sync.
    trait AmbiguousIfSync<A> {
        fn check() {}
    }
    impl<T: ?Sized> AmbiguousIfSync<()> for T {}
    #[allow(dead_code)]
    struct Invalid;
    impl<T: ?Sized + Sync> AmbiguousIfSync<Invalid> for T {}
    const _: fn() = || {
        <Socket as AmbiguousIfSync<_>>::check();
    };
}

/// The README's example, compiled and run as a doctest so the front page stays true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
