//! zeroring: ZeroMQ for Rust.
//!
//! This crate is what users add. It will own the `Context`, the `Socket`, the classic socket
//! types and their patterns (see the `[sockets]` issue); today it only re-exports the layers
//! below it, so that nothing here pretends to work before it does.

pub use zeroring_engine as engine;
pub use zeroring_transports as transports;
