//! The event trace of one run: simulated time, host, event text; and the invariant violations
//! found during and after the run.
//!
//! Owns: the text that makes a run reproducible and comparable byte for byte. Must never: read
//! the wall clock, print addresses of heap objects, or iterate a hash map (anything that could
//! differ between two runs of the same seed).

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// Shared, append-only trace of one run (cheap to clone: all clones append to the same trace).
#[derive(Clone, Default)]
pub struct Trace(Rc<RefCell<Inner>>);

#[derive(Default)]
struct Inner {
    lines: Vec<String>,
    violations: Vec<String>,
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.0.borrow();
        f.debug_struct("Trace")
            .field("lines", &inner.lines.len())
            .field("violations", &inner.violations.len())
            .finish()
    }
}

/// Simulated time as the trace prints it: seconds with microseconds.
pub fn stamp(t: Duration) -> String {
    format!("{:>3}.{:06}", t.as_secs(), t.subsec_micros())
}

/// Simulated time now: inside a host, turmoil's clock for the whole simulation.
pub fn sim_now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

impl Trace {
    /// A new, empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an event on `host` at the current simulated time (call from inside a host).
    pub fn event(&self, host: &str, text: impl fmt::Display) {
        self.at(sim_now(), host, text);
    }

    /// Records an event at `t` (the scenario's own loop passes `sim.elapsed()`).
    pub fn at(&self, t: Duration, host: &str, text: impl fmt::Display) {
        let line = format!("{} {:<6} {}", stamp(t), host, text);
        self.0.borrow_mut().lines.push(line);
    }

    /// Records an invariant violation at `t` (also written into the trace).
    pub fn violation_at(&self, t: Duration, host: &str, text: impl fmt::Display) {
        let text = text.to_string();
        let line = format!("{} {:<6} VIOLATION {}", stamp(t), host, text);
        let mut inner = self.0.borrow_mut();
        inner.lines.push(line);
        inner
            .violations
            .push(format!("at {}s on {host}: {text}", stamp(t).trim()));
    }

    /// Records an invariant violation now (from inside a host).
    pub fn violation(&self, host: &str, text: impl fmt::Display) {
        self.violation_at(sim_now(), host, text);
    }

    /// The trace so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.borrow().lines.clone()
    }

    /// The violations so far.
    pub fn violations(&self) -> Vec<String> {
        self.0.borrow().violations.clone()
    }

    /// Number of violations so far.
    pub fn violation_count(&self) -> usize {
        self.0.borrow().violations.len()
    }
}
