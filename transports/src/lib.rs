//! zeroring-transports: endpoints and the sans-IO ZMTP protocol (the `[zmtp]` issue).
//!
//! - [`zmtp`]: the ZMTP 3.1 protocol as pure state machines (no I/O, no clocks).
//! - [`endpoint`]: parsing of `tcp://`, `ipc://` and `inproc://` endpoints, plus
//!   the resolution helpers that call into the OS (kept apart from the parser).
//! - [`z85`]: RFC 32 encoding.
//! - [`socket_type`]: socket type numbers, names and compatibility.
//! - [`errno`]: libzmq's errno vocabulary.

pub mod driver;
pub mod endpoint;
pub mod errno;
pub mod monitor;
pub mod socket_type;
pub mod z85;
pub mod zmtp;

pub use errno::Errno;
pub use socket_type::SocketType;
