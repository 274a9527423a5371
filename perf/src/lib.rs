//! zeroring-perf: the perf harness (the `[perf]` issue).
//!
//! Today it holds the engine micro-benchmarks' shared helpers; the socket-level throughput and
//! latency suite arrives with the `[perf]` issue.
