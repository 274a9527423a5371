//! LINGER: connections that go on delivering after their socket closed.
//!
//! Owns: the order a closing socket gives its connections ("deliver what is queued, within
//! this long"), and the count of connections still doing so, which `Context::term` waits on
//! before it stops the I/O threads. Must never: let a lingering connection outlive its
//! deadline, or let the count miss one (a guard is held for exactly as long as the
//! connection lingers).

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The number of connections still lingering, shared by a context's sockets.
#[derive(Clone, Default)]
pub struct Lingering(Arc<(Mutex<usize>, Condvar)>);

impl fmt::Debug for Lingering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Lingering").field(&self.count()).finish()
    }
}

impl Lingering {
    /// Counts one more lingering connection until the guard drops.
    pub fn guard(&self) -> LingerGuard {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        LingerGuard(self.clone())
    }

    /// Connections lingering now.
    pub fn count(&self) -> usize {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until no connection lingers, or until `deadline`; true when none lingers.
    pub fn wait(&self, deadline: Option<Instant>) -> bool {
        let (lock, cv) = &*self.0;
        let mut n = lock.lock().unwrap_or_else(|e| e.into_inner());
        while *n > 0 {
            match deadline {
                None => n = cv.wait(n).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let Some(left) = d.checked_duration_since(Instant::now()) else {
                        return false;
                    };
                    n = cv
                        .wait_timeout(n, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        true
    }
}

/// One lingering connection; dropping it ends the linger.
#[derive(Debug)]
pub struct LingerGuard(Lingering);

impl Drop for LingerGuard {
    fn drop(&mut self) {
        let (lock, cv) = &*self.0 .0;
        let mut n = lock.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        cv.notify_all();
    }
}

/// What a closing socket tells a connection.
#[derive(Debug)]
pub(crate) struct LingerOrder {
    /// How long to go on; `None` = until everything is delivered (LINGER −1).
    pub(crate) limit: Option<Duration>,
    pub(crate) guard: LingerGuard,
}

impl LingerOrder {
    /// The count this order is part of (a listener passes the order on to its sessions).
    pub(crate) fn lingering(&self) -> &Lingering {
        &self.guard.0
    }
}

/// Where a handle leaves a linger order for its session (read on the I/O thread).
pub(crate) type LingerSlot = Arc<Mutex<Option<LingerOrder>>>;

/// Leaves an order in `slot`.
pub(crate) fn order(slot: &LingerSlot, limit: Option<Duration>, lingering: &Lingering) {
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(LingerOrder {
        limit,
        guard: lingering.guard(),
    });
}

/// Takes the order left in `slot`.
pub(crate) fn take(slot: &LingerSlot) -> Option<LingerOrder> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_every_guard() {
        let l = Lingering::default();
        let g1 = l.guard();
        let g2 = l.guard();
        assert_eq!(l.count(), 2);
        assert!(!l.wait(Some(Instant::now())), "not done while guards live");
        drop(g1);
        let t = std::thread::spawn(move || drop(g2));
        assert!(l.wait(Some(Instant::now() + Duration::from_secs(10))));
        t.join().unwrap();
        assert_eq!(l.count(), 0);
    }
}
