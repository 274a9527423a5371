//! Per-thread timers: deadlines that call a handler back.
//!
//! A binary heap ordered by deadline with lazy cancellation (a cancelled timer's heap entry is
//! skipped when it surfaces, recognised by its generation). The I/O loop asks for the earliest
//! deadline on every iteration to bound its wait, which a heap answers in O(1); a hashed wheel
//! would need a scan for that, and a connection has only a handful of timers (handshake,
//! heartbeat, reconnect), so insertion cost is not the bottleneck.
//!
//! This module never reads the clock: `now` is always passed in.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use slab::Slab;

/// A timer armed by a handler; pass it to `cancel_timer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    key: u32,
    gen: u32,
}

#[derive(Debug)]
struct Entry<T> {
    gen: u32,
    payload: T,
}

/// Deadlines carrying a payload (the owning handler).
#[derive(Debug)]
pub(crate) struct Timers<T> {
    heap: BinaryHeap<Reverse<(Instant, u64, u32, u32)>>,
    entries: Slab<Entry<T>>,
    next_gen: u32,
    seq: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            entries: Slab::new(),
            next_gen: 0,
            seq: 0,
        }
    }
}

impl<T> Timers<T> {
    pub(crate) fn insert(&mut self, deadline: Instant, payload: T) -> TimerId {
        self.next_gen = self.next_gen.wrapping_add(1);
        let gen = self.next_gen;
        let key = self.entries.insert(Entry { gen, payload }) as u32;
        self.seq += 1;
        // The sequence number keeps equal deadlines in arming order.
        self.heap.push(Reverse((deadline, self.seq, key, gen)));
        TimerId { key, gen }
    }

    /// Cancels a timer; false if it already fired or was cancelled.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        match self.entries.get(id.key as usize) {
            Some(e) if e.gen == id.gen => {
                self.entries.remove(id.key as usize);
                true
            }
            _ => false,
        }
    }

    fn drop_stale_top(&mut self) {
        while let Some(Reverse((_, _, key, gen))) = self.heap.peek() {
            match self.entries.get(*key as usize) {
                Some(e) if e.gen == *gen => return,
                _ => {
                    self.heap.pop();
                }
            }
        }
    }

    /// The earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_stale_top();
        self.heap.peek().map(|Reverse((d, ..))| *d)
    }

    /// Removes and returns one timer due at `now`, earliest first.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(TimerId, T)> {
        self.drop_stale_top();
        match self.heap.peek() {
            Some(Reverse((d, _, key, gen))) if *d <= now => {
                let (key, gen) = (*key, *gen);
                self.heap.pop();
                let e = self.entries.remove(key as usize);
                Some((TimerId { key, gen }, e.payload))
            }
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_order_and_skips_cancelled() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        let a = t.insert(t0 + Duration::from_millis(30), "a");
        let _b = t.insert(t0 + Duration::from_millis(10), "b");
        let c = t.insert(t0 + Duration::from_millis(20), "c");
        assert!(t.cancel(c));
        assert!(!t.cancel(c), "double cancel is refused");
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert!(t.pop_expired(t0).is_none());
        let now = t0 + Duration::from_millis(100);
        assert_eq!(t.pop_expired(now).map(|(_, p)| p), Some("b"));
        assert_eq!(t.pop_expired(now), Some((a, "a")));
        assert!(t.pop_expired(now).is_none());
        assert_eq!(t.len(), 0);
        assert!(!t.cancel(a), "a fired timer cannot be cancelled");
    }

    #[test]
    fn reused_slots_do_not_resurrect_old_ids() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        let old = t.insert(t0, 1);
        assert!(t.cancel(old));
        let new = t.insert(t0, 2);
        assert!(!t.cancel(old));
        assert_eq!(t.pop_expired(t0), Some((new, 2)));
    }
}
