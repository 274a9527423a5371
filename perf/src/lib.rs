//! zeroring-perf: throughput and latency of zeroring, side by side with libzmq and with the
//! raw-socket floor, measured the way libzmq's own perf tools do.
//!
//! - Throughput: PUSH→PULL; the receiver times the first to the last message; the sender runs
//!   in another process (inproc: another thread).
//! - Latency: REQ/REP round trips, each recorded in an HdrHistogram; the echoing side runs in
//!   another process.
//! - The floor: the same workloads over plain blocking sockets (no library at all).
//! - The pure-Rust peers, opt-in: zmq.rs (feature `zmqrs`), rzmq (feature `rzmq`) and omq.rs
//!   (feature `omq`), each side on a current-thread tokio runtime of its own.
//! - `async`: the async API against the blocking one ([`asynch`]).
//!
//! Each measurement runs in a process of its own ([`isolate`]), so that no subject inherits
//! the allocator state another left; rounds of the subjects are interleaved, so a noisy machine disturbs all of them alike, and
//! results are reported as medians and ratios with their spread.
//!
//! Must never: report a figure it did not measure, or time work that is not the workload
//! (set-up and connection are outside the timed region).

pub mod asynch;
pub mod conns;
pub mod isolate;
pub mod measure;
pub mod plot;
pub mod report;
pub mod soak;
pub mod subject;
