//! zeroring-sim: deterministic network-fault simulation of zeroring's own code.
//!
//! Each simulated host runs a [`SimSocket`]: zeroring's sans-IO ZMTP [`Connection`]s
//! (`zeroring_transports::zmtp`) over turmoil's simulated TCP, with the production driver's
//! rules (pipes attached at handshake, back-pressure, HANDSHAKE_IVL and heartbeat timers on the
//! simulated clock, reconnects on the transports crate's `Backoff`). A [`SimPattern`] decides
//! where messages go; the ones here are stand-ins until the `zeroring` pattern cores can be
//! driven (see `docs/simulation.md`).
//!
//! Scenarios inject faults drawn from a seed (latency, partitions, holds, link failures,
//! crashes, bounces) and check invariants during and after the run. The same seed gives the
//! same [`Trace`] byte for byte.
//!
//! [`Connection`]: zeroring_transports::zmtp::Connection

pub mod pattern;
pub mod pipe;
pub mod rng;
pub mod scenario;
pub mod socket;
pub mod trace;

pub use pattern::SimPattern;
pub use pipe::{Message, PipeId, Pipes, Record};
pub use scenario::{run, scenarios, Outcome, ScenarioInfo, SimOptions};
pub use socket::{SimSocket, SocketOptions};
pub use trace::Trace;
