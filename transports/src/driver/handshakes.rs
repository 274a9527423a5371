//! A listener's bound on connections still in their ZMTP handshake (ZR_MAX_HANDSHAKES).
//!
//! Every accepted connection takes a `Ticket` at accept time, before its session starts on
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
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use zeroring_engine::{HandlerId, IoThreadHandle};

/// Default ZR_MAX_HANDSHAKES.
pub const DEFAULT_MAX_HANDSHAKES: usize = 4096;

/// Failed accepts (EMFILE) that wait for the connection evicted for the first one to close its
/// descriptor before another is evicted: its session ends at once when notified, so this is
/// only a backstop against one that never ends.
const EMFILE_PATIENCE: u32 = 64;

/// Handler notification token: the session's handshake was evicted.
pub(crate) const TOKEN_EVICT: u64 = super::stream::TOKEN_OWNER_BASE + 2;

/// One accepted connection's place among those in their handshake.
#[derive(Debug)]
pub(crate) struct Ticket {
    seq: u64,
    state: Mutex<TicketState>,
    /// The connection's descriptor: gone once the connection is closed.
    fd: Weak<OwnedFd>,
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
    /// The descriptor of the connection evicted for a failed accept (EMFILE), while it is
    /// open, and how many failed accepts have waited for it since.
    emfile: (Weak<OwnedFd>, u32),
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

    /// A new connection on `fd`: evicts the oldest handshakes while `cap` are under way, then
    /// hands out its ticket.
    pub(crate) fn admit(&self, fd: &Arc<OwnedFd>) -> Arc<Ticket> {
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
            fd: Arc::downgrade(fd),
        });
        inner.queue.push_back(ticket.clone());
        inner.peak = inner.peak.max(inner.queue.len());
        ticket
    }

    /// The listener ran out of descriptors (EMFILE): evicts the oldest handshake, if any,
    /// unless the descriptor of the one evicted for an earlier failed accept is still open (it
    /// is the one the retried accept is waiting for: evicting on every retry would push out
    /// several connections for one). Returns whether it evicted one.
    pub(crate) fn evict_oldest(&self) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.emfile.0.strong_count() > 0 && inner.emfile.1 < EMFILE_PATIENCE {
            inner.emfile.1 += 1;
            return false;
        }
        let Some(t) = inner.queue.pop_front() else {
            return false;
        };
        inner.emfile = (t.fd.clone(), 0);
        drop(inner);
        self.evict(&t);
        true
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

    fn fd() -> Arc<OwnedFd> {
        Arc::new(std::fs::File::open("/dev/null").unwrap().into())
    }

    #[test]
    fn never_more_than_cap_and_oldest_goes_first() {
        let gate = HandshakeGate::new(3);
        let fds: Vec<_> = (0..5).map(|_| fd()).collect();
        let t: Vec<_> = fds.iter().map(|f| gate.admit(f)).collect();
        let c = gate.counts();
        assert_eq!((c.in_handshake, c.peak, c.evicted), (3, 3, 2));
        for (i, t) in t.iter().enumerate() {
            let evicted = t.state.lock().unwrap().evicted;
            assert_eq!(evicted, i < 2, "ticket {i}");
        }
        gate.leave(&t[3]);
        gate.leave(&t[0]); // evicted already: nothing
        assert_eq!(gate.counts().in_handshake, 2);
        assert!(gate.evict_oldest());
        assert!(t[2].state.lock().unwrap().evicted);
        assert!(!t[4].state.lock().unwrap().evicted);
        assert_eq!(gate.counts().evicted, 3);
    }

    #[test]
    fn a_failed_accept_waits_for_the_connection_evicted_for_the_last_one() {
        let gate = HandshakeGate::new(100);
        let mut fds: Vec<Option<Arc<OwnedFd>>> = (0..4).map(|_| Some(fd())).collect();
        let t: Vec<_> = fds
            .iter()
            .map(|f| gate.admit(f.as_ref().unwrap()))
            .collect();
        assert!(gate.evict_oldest());
        // Connection 0's descriptor is still open: the retries evict nothing more.
        for _ in 0..EMFILE_PATIENCE {
            assert!(!gate.evict_oldest());
        }
        assert_eq!(gate.counts().evicted, 1);
        // Its descriptor is closed: the next failed accept evicts the next oldest.
        fds[0] = None;
        assert!(gate.evict_oldest());
        assert!(t[1].state.lock().unwrap().evicted);
        // A connection that never closes holds the gate back for EMFILE_PATIENCE retries only.
        for _ in 0..EMFILE_PATIENCE {
            assert!(!gate.evict_oldest());
        }
        assert!(gate.evict_oldest());
        assert!(t[2].state.lock().unwrap().evicted);
        assert!(!t[3].state.lock().unwrap().evicted);
    }
}
