//! zeroring-sim: deterministic network-fault simulation of zeroring's own code.
//!
//! Each simulated host runs a [`SimSocket`]: the production socket core (`zeroring::SocketCore`:
//! option table, socket pattern, engine pipes) whose connections run the production stream
//! core (`zeroring_transports::driver::StreamCore`: ZMTP handshake, NULL/PLAIN, heartbeats,
//! back-pressure, pipes kept across reconnects) over turmoil's simulated TCP, reconnecting on
//! the transports crate's `Backoff`. Only the I/O is the simulator's: turmoil sockets, `async`
//! waits on the simulated clock.
//!
//! Scenarios inject faults drawn from a seed (latency, partitions, holds, link failures,
//! crashes, bounces) and check invariants during and after the run. The same seed gives the
//! same [`Trace`] byte for byte.

pub mod connection;
pub mod options;
pub mod record;
pub mod rng;
pub mod scenario;
pub mod session;
pub mod socket;
pub mod trace;

pub use record::{ConnRecord, Record, SocketRecord};
pub use scenario::{run, scenarios, Outcome, ScenarioInfo, SimOptions};
pub use socket::{Message, SimSocket, SocketOptions};
pub use trace::Trace;
