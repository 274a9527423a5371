//! A listener's bound on connections still in their ZMTP handshake (ZR_MAX_HANDSHAKES).
//!
//! Every accepted connection takes a [`Ticket`] at accept time, before its session starts on
//! whichever I/O thread carries it, and gives it back when its handshake completes or the
//! connection ends. When the listener accepts a connection while `cap` tickets are out, the
//! oldest ticket is evicted first: its session ends its handshake as HANDSHAKE_IVL running
//! out would (HANDSHAKE_FAILED_NO_DETAIL with ETIMEDOUT, then DISCONNECTED, as libzmq reports
//! a handshake timeout). So slow-loris connections filling the cap are pushed out by new ones
//! instead of locking healthy clients out until HANDSHAKE_IVL frees a slot, and an honest
//! client, which finishes its handshake within a few round trips, is only evicted when `cap`
//! newer connections arrive during its own handshake.
//!
//! Must never: hold more than `cap` tickets, block an I/O thread beyond one short lock, or
//! lose an eviction (a session that starts after its ticket was evicted ends at once).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use zeroring_engine::{HandlerId, IoThreadHandle};

/// Default ZR_MAX_HANDSHAKES.
pub const DEFAULT_MAX_HANDSHAKES: usize = 4096;

/// Handler notification token: the session's handshake was evicted.
pub(crate) const TOKEN_EVICT: u64 = super::stream::TOKEN_OWNER_BASE + 2;

/// One accepted connection's place among those in their handshake.
#[derive(Debug)]
pub(crate) struct Ticket {
    seq: u64,
    state: Mutex<TicketState>,
}

#[derive(Debug, Default)]
struct TicketState {
    /// The session, once it started.
    handler: Option<(IoThreadHandle, HandlerId)>,
    evicted: bool,
}

impl Ticket {
    /// The session started as `handler`: returns true when the ticket was evicted already
    /// (the session should end its handshake at once).
    pub(crate) fn started(&self, thread: IoThreadHandle, id: HandlerId) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.handler = Some((thread, id));
        s.evicted
    }
}

/// What a listener's gate counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HandshakeCounts {
    /// ZR_MAX_HANDSHAKES of the listener (summed over listeners).
    pub cap: usize,
    /// Connections in their handshake now.
    pub in_handshake: usize,
    /// The most ever in their handshake at once.
    pub peak: usize,
    /// Connections evicted from their handshake to make room.
    pub evicted: u64,
}

impl std::ops::AddAssign for HandshakeCounts {
    fn add_assign(&mut self, o: Self) {
        self.cap += o.cap;
        self.in_handshake += o.in_handshake;
        self.peak += o.peak;
        self.evicted += o.evicted;
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Oldest first; sorted by `seq`.
    queue: VecDeque<Arc<Ticket>>,
    next: u64,
    peak: usize,
}

/// The tickets of one listener.
#[derive(Debug)]
pub(crate) struct HandshakeGate {
    cap: usize,
    inner: Mutex<Inner>,
    evicted: AtomicU64,
}

impl HandshakeGate {
    /// A gate of `cap` tickets (at least 1).
    pub(crate) fn new(cap: usize) -> Self {
        HandshakeGate {
            cap: cap.max(1),
            inner: Mutex::new(Inner::default()),
            evicted: AtomicU64::new(0),
        }
    }

    /// A new connection: evicts the oldest handshakes while `cap` are under way, then hands
    /// out its ticket.
    pub(crate) fn admit(&self) -> Arc<Ticket> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while inner.queue.len() >= self.cap {
            let Some(oldest) = inner.queue.pop_front() else {
                break;
            };
            self.evict(&oldest);
        }
        let seq = inner.next;
        inner.next += 1;
        let ticket = Arc::new(Ticket {
            seq,
            state: Mutex::new(TicketState::default()),
        });
        inner.queue.push_back(ticket.clone());
        inner.peak = inner.peak.max(inner.queue.len());
        ticket
    }

    /// Evicts the oldest handshake, if any (the listener ran out of descriptors: EMFILE).
    pub(crate) fn evict_oldest(&self) {
        let oldest = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .queue
            .pop_front();
        if let Some(t) = oldest {
            self.evict(&t);
        }
    }

    fn evict(&self, ticket: &Ticket) {
        self.evicted.fetch_add(1, Ordering::Relaxed);
        let mut s = ticket.state.lock().unwrap_or_else(|e| e.into_inner());
        s.evicted = true;
        if let Some((thread, id)) = &s.handler {
            let _ = thread.notify(*id, TOKEN_EVICT);
        }
    }

    /// The ticket's handshake completed or its connection ended: it leaves the gate.
    pub(crate) fn leave(&self, ticket: &Ticket) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(i) = inner.queue.binary_search_by_key(&ticket.seq, |t| t.seq) {
            inner.queue.remove(i);
        }
    }

    /// Its counts now.
    pub(crate) fn counts(&self) -> HandshakeCounts {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        HandshakeCounts {
            cap: self.cap,
            in_handshake: inner.queue.len(),
            peak: inner.peak,
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_cap_and_oldest_goes_first() {
        let gate = HandshakeGate::new(3);
        let t: Vec<_> = (0..5).map(|_| gate.admit()).collect();
        let c = gate.counts();
        assert_eq!((c.in_handshake, c.peak, c.evicted), (3, 3, 2));
        for (i, t) in t.iter().enumerate() {
            let evicted = t.state.lock().unwrap().evicted;
            assert_eq!(evicted, i < 2, "ticket {i}");
        }
        gate.leave(&t[3]);
        gate.leave(&t[0]); // evicted already: nothing
        assert_eq!(gate.counts().in_handshake, 2);
        gate.evict_oldest();
        assert!(t[2].state.lock().unwrap().evicted);
        assert!(!t[4].state.lock().unwrap().evicted);
        assert_eq!(gate.counts().evicted, 3);
    }
}
