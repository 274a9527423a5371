//! libzmq's utility functions: the API version, Z85, the stopwatch, atomic counters and the
//! timers set (`zmq_timers_*`).
//!
//! Owns: nothing shared with sockets; each item is self-contained. Must never: block, or read
//! the clock more than a call needs.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Whole milliseconds until `deadline`, rounded up (from nanoseconds), so that a wait of that
/// many milliseconds never ends just short of it; 0 once it has passed.
pub(crate) fn ms_until(deadline: Instant) -> u128 {
    deadline
        .saturating_duration_since(Instant::now())
        .as_nanos()
        .div_ceil(1_000_000)
}

/// `zmq_version`: the libzmq API level zeroring implements, (major, minor, patch).
pub fn version() -> (i32, i32, i32) {
    (4, 3, 5)
}

/// `zmq_z85_encode`: Z85 text of `data` (EINVAL unless its length is a multiple of 4).
pub fn z85_encode(data: &[u8]) -> Result<String> {
    zeroring_transports::z85::encode(data).map_err(|_| Error::EINVAL)
}

/// `zmq_z85_decode`: the bytes of Z85 `text` (EINVAL unless valid, length a multiple of 5).
pub fn z85_decode(text: &str) -> Result<Vec<u8>> {
    zeroring_transports::z85::decode(text).map_err(|_| Error::EINVAL)
}

/// `zmq_stopwatch_start` / `_intermediate` / `_stop`: microseconds since the start.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts measuring.
    pub fn start() -> Self {
        Stopwatch(Instant::now())
    }

    /// Microseconds since [`Stopwatch::start`], leaving the watch running.
    pub fn intermediate(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }

    /// Microseconds since [`Stopwatch::start`], ending the watch.
    pub fn stop(self) -> u64 {
        self.intermediate()
    }
}

/// `zmq_atomic_counter_*`: a thread-safe integer counter.
#[derive(Debug, Default)]
pub struct AtomicCounter(AtomicI32);

impl AtomicCounter {
    /// A counter at zero (`zmq_atomic_counter_new`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the value (`zmq_atomic_counter_set`).
    pub fn set(&self, value: i32) {
        self.0.store(value, Ordering::SeqCst);
    }

    /// Adds one; returns the value before (`zmq_atomic_counter_inc`).
    pub fn inc(&self) -> i32 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }

    /// Subtracts one; returns whether the counter is not zero after it
    /// (`zmq_atomic_counter_dec` returns 1 then, 0 when it reached zero). Below zero counts as
    /// not zero, as libzmq's `atomic_counter_t::sub` answers.
    pub fn dec(&self) -> bool {
        self.0.fetch_sub(1, Ordering::SeqCst).wrapping_sub(1) != 0
    }

    /// The value (`zmq_atomic_counter_value`).
    pub fn value(&self) -> i32 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Timer {
    id: i32,
    interval: Duration,
    due: Instant,
    handler: Box<dyn FnMut(i32) + Send>,
}

/// `zmq_timers_*`: a set of repeating timers for an application's own poll loop. Pass
/// [`Timers::timeout`] to [`crate::poll`](fn@crate::poll), then call [`Timers::execute`].
#[derive(Default)]
pub struct Timers {
    timers: Vec<Timer>,
    next_id: i32,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers")
            .field("timers", &self.timers.len())
            .finish()
    }
}

impl Timers {
    /// An empty set (`zmq_timers_new`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a timer that calls `handler(id)` every `interval` (`zmq_timers_add`). Returns its
    /// id. A zero interval is taken, as libzmq takes it: such a timer is due at every
    /// [`execute`](Self::execute), which calls each due handler once (libzmq's would loop).
    pub fn add(
        &mut self,
        interval: Duration,
        handler: impl FnMut(i32) + Send + 'static,
    ) -> Result<i32> {
        self.next_id += 1;
        let id = self.next_id;
        self.timers.push(Timer {
            id,
            interval,
            due: Instant::now() + interval,
            handler: Box::new(handler),
        });
        Ok(id)
    }

    fn find(&mut self, id: i32) -> Result<&mut Timer> {
        self.timers
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or(Error::EINVAL)
    }

    /// Removes a timer (`zmq_timers_cancel`); EINVAL for an unknown id.
    pub fn cancel(&mut self, id: i32) -> Result<()> {
        let before = self.timers.len();
        self.timers.retain(|t| t.id != id);
        if self.timers.len() == before {
            return Err(Error::EINVAL);
        }
        Ok(())
    }

    /// Changes a timer's interval; it next fires one new interval from now
    /// (`zmq_timers_set_interval`).
    pub fn set_interval(&mut self, id: i32, interval: Duration) -> Result<()> {
        let t = self.find(id)?;
        t.interval = interval;
        t.due = Instant::now() + interval;
        Ok(())
    }

    /// Restarts a timer's interval from now (`zmq_timers_reset`).
    pub fn reset(&mut self, id: i32) -> Result<()> {
        let t = self.find(id)?;
        t.due = Instant::now() + t.interval;
        Ok(())
    }

    /// Milliseconds until the next timer is due, 0 if one is due now, −1 when there are none
    /// (`zmq_timers_timeout`): what to give [`crate::poll`](fn@crate::poll).
    pub fn timeout(&self) -> i64 {
        let Some(due) = self.timers.iter().map(|t| t.due).min() else {
            return -1;
        };
        ms_until(due).min(i64::MAX as u128) as i64
    }

    /// Calls the handler of every due timer and schedules its next run
    /// (`zmq_timers_execute`).
    pub fn execute(&mut self) {
        let now = Instant::now();
        for t in &mut self.timers {
            if t.due <= now {
                t.due = now + t.interval;
                (t.handler)(t.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn counter_as_libzmq() {
        let c = AtomicCounter::new();
        assert_eq!(c.inc(), 0);
        assert_eq!(c.inc(), 1);
        assert_eq!(c.value(), 2);
        assert!(c.dec(), "still 1");
        assert!(!c.dec(), "reached zero");
        assert!(c.dec(), "-1 is not zero, as libzmq answers");
        c.set(5);
        assert_eq!(c.value(), 5);
    }

    #[test]
    fn z85_and_version() {
        let text = z85_encode(&[0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]).unwrap();
        assert_eq!(text, "HelloWorld");
        assert_eq!(z85_decode("HelloWorld").unwrap().len(), 8);
        assert_eq!(z85_encode(&[1, 2, 3]), Err(Error::EINVAL));
        assert_eq!(z85_decode("Hell"), Err(Error::EINVAL));
        assert_eq!(version(), (4, 3, 5));
    }

    #[test]
    fn timers_fire_when_due_and_can_be_cancelled() {
        let mut timers = Timers::new();
        assert_eq!(timers.timeout(), -1);
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        let id = timers
            .add(Duration::from_millis(1), move |_| {
                f.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        assert!(timers.timeout() <= 1);
        // Wait for it to be due by the clock (the timeout says how long), then run it.
        let start = Instant::now();
        while timers.timeout() > 0 {
            assert!(start.elapsed() < Duration::from_secs(10));
            std::thread::yield_now();
        }
        timers.execute();
        assert_eq!(fired.load(Ordering::SeqCst), 1);
        timers.set_interval(id, Duration::from_secs(3600)).unwrap();
        timers.execute();
        assert_eq!(fired.load(Ordering::SeqCst), 1, "not due for an hour");
        assert!(timers.timeout() > 1000);
        timers.reset(id).unwrap();
        timers.cancel(id).unwrap();
        assert_eq!(timers.cancel(id), Err(Error::EINVAL));
        // A zero interval: due at every execute, called once per execute.
        let zero = Arc::new(AtomicUsize::new(0));
        let z = zero.clone();
        let id0 = timers
            .add(Duration::ZERO, move |_| {
                z.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        assert_eq!(timers.timeout(), 0);
        timers.execute();
        timers.execute();
        assert_eq!(zero.load(Ordering::SeqCst), 2);
        timers.cancel(id0).unwrap();
        let sw = Stopwatch::start();
        assert!(sw.stop() < 10_000_000);
    }
}
