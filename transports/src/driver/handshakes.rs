//! A listener's bound on connections still in their ZMTP handshake (ZR_MAX_HANDSHAKES).
//!
//! Every accepted connection takes a `Ticket` at accept time, before its session starts on
//! whichever I/O thread carries it, and gives it back when its handshake completes or the
//! connection ends. When the listener accepts a connection while `cap` tickets are out, one
//! ticket is evicted first (or, see below, the new connection is refused): its session ends
//! its handshake as HANDSHAKE_IVL running out would (HANDSHAKE_FAILED_NO_DETAIL with
//! ETIMEDOUT, then DISCONNECTED, as libzmq reports a handshake timeout). So slow-loris
//! connections filling the cap are pushed out by new ones instead of locking healthy clients
//! out until HANDSHAKE_IVL frees a slot.
//!
//! Evicting a handshake never drops a message: the peer sends messages only after this side's
//! last handshake command (READY), which completes this side's handshake and gives the ticket
//! back in the same step. PLAIN and CURVE servers speak last by their grammar; an accepted NULL
//! connection sends its READY only once the peer's has arrived
//! ([`ConnectionConfig::ready_after_peer`](crate::zmtp::ConnectionConfig::ready_after_peer)).
//! So an evicted peer reconnects with everything it queued.
//!
//! Which one: the oldest that is not *protected*. A connection is protected while it is
//! younger than [`FRESH_GRACE`], whatever its state: it has not yet had its fair chance to be
//! read. It stays protected while its peer's whole greeting has arrived and it has been in its
//! handshake for less than [`GREETED_GRACE`]: it is the closest to done, and evicting it wastes
//! the most work. When every ticket is protected, the new connection is refused instead (closed
//! before this side sends anything: its peer too reconnects with what it queued, after its
//! RECONNECT_IVL), and counted.
//!
//! So a burst of honest clients larger than `cap` (thousands reconnecting at once after a
//! restart) loses no message, and the connections whose greetings this side has not read yet
//! make room first. A slow-loris peer (its greeting never complete) is evicted oldest first
//! once past the fresh grace; one that stalls after its greeting loses its protection after
//! the greeted grace. What it costs: an attacker that keeps all `cap` tickets protected holds
//! new connections off, refused, for as long as it keeps that up; it takes `cap` new
//! connections per [`FRESH_GRACE`] (40,960 a second at the default cap) or `cap` greetings per
//! [`GREETED_GRACE`] (8,192 a second).
//!
//! Why the fresh grace: without it, a burst far past the cap on an overloaded machine evicted
//! connections a few milliseconds old, before the I/O thread had read their greetings; each
//! eviction's reconnect evicted another, and that churn kept the I/O thread too busy to read
//! greetings at all. With it, evictions come at most `cap` per [`FRESH_GRACE`], and the rest
//! of a burst is refused and comes back after its reconnect interval (the measurements are in
//! docs/performance.md, "A fresh grace: bursts past the cap no longer churn").
//!
//! A session checks its ticket before each step and ends at once when it was evicted (the
//! notification, TOKEN_EVICT, comes later): a connection chosen while its peer's greeting had
//! not arrived must not go on to send READY.
//!
//! Must never: hold more than `cap` tickets, block an I/O thread beyond one short lock, or
//! lose an eviction (a session that starts after its ticket was evicted ends at once).

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use zeroring_engine::{HandlerId, IoThreadHandle};

/// Default ZR_MAX_HANDSHAKES.
pub const DEFAULT_MAX_HANDSHAKES: usize = 4096;

/// Failed accepts (EMFILE) that wait for the connection evicted for the first one to close its
/// descriptor before another is evicted: its session ends at once when notified, so this is
/// only a backstop against one that never ends.
const EMFILE_PATIENCE: u32 = 64;

/// How long a newly admitted connection is protected whatever its state (see the module's
/// docs): long enough for an I/O thread under a burst to read a greeting already sent, and
/// libzmq's default RECONNECT_IVL, so that a refused peer waits no longer than the ticket it
/// could not take has been held.
pub const FRESH_GRACE: Duration = Duration::from_millis(100);

/// How long a connection past its peer's greeting is evicted only after those still in theirs
/// (see the module's docs): an honest peer's READY follows its greeting within a round trip,
/// so this is the I/O thread's own delay under a burst, with room to spare.
pub const GREETED_GRACE: Duration = Duration::from_millis(500);

/// Handler notification token: the session's handshake was evicted.
pub(crate) const TOKEN_EVICT: u64 = super::stream::TOKEN_OWNER_BASE + 2;

/// One accepted connection's place among those in their handshake.
#[derive(Debug)]
pub(crate) struct Ticket {
    seq: u64,
    admitted: Instant,
    /// The peer's whole greeting arrived ([`Ticket::greeted`]).
    greeted: AtomicBool,
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

    /// Whether the gate evicted it.
    pub(crate) fn is_evicted(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).evicted
    }

    /// The peer's whole greeting arrived: protected for [`GREETED_GRACE`].
    pub(crate) fn greeted(&self) {
        self.greeted.store(true, Ordering::Relaxed);
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
    /// New connections refused (closed at once) because every connection in its handshake
    /// was protected: younger than [`FRESH_GRACE`], or past its greeting and younger than
    /// [`GREETED_GRACE`].
    pub refused: u64,
}

impl std::ops::AddAssign for HandshakeCounts {
    fn add_assign(&mut self, o: Self) {
        self.cap += o.cap;
        self.in_handshake += o.in_handshake;
        self.peak += o.peak;
        self.evicted += o.evicted;
        self.refused += o.refused;
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

impl Inner {
    /// The ticket to evict (see the module's docs), out of the queue: the oldest not
    /// protected; `None` when all are.
    fn take_victim(&mut self, now: Instant) -> Option<Arc<Ticket>> {
        let protected = |t: &Arc<Ticket>| {
            let age = now.saturating_duration_since(t.admitted);
            age < FRESH_GRACE || (t.greeted.load(Ordering::Relaxed) && age < GREETED_GRACE)
        };
        let i = self.queue.iter().position(|t| !protected(t))?;
        self.queue.remove(i)
    }
}

/// The tickets of one listener.
#[derive(Debug)]
pub(crate) struct HandshakeGate {
    cap: usize,
    inner: Mutex<Inner>,
    evicted: AtomicU64,
    refused: AtomicU64,
}

impl HandshakeGate {
    /// A gate of `cap` tickets (at least 1).
    pub(crate) fn new(cap: usize) -> Self {
        HandshakeGate {
            cap: cap.max(1),
            inner: Mutex::new(Inner::default()),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// A new connection on `fd`: evicts handshakes while `cap` are under way, then hands out
    /// its ticket; `None` when it is refused (every handshake under way is protected): the
    /// caller closes it at once.
    pub(crate) fn admit(&self, fd: &Arc<OwnedFd>) -> Option<Arc<Ticket>> {
        self.admit_at(fd, Instant::now())
    }

    /// [`admit`](Self::admit) at `now` (tests pass a time past the graces).
    fn admit_at(&self, fd: &Arc<OwnedFd>, now: Instant) -> Option<Arc<Ticket>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while inner.queue.len() >= self.cap {
            match inner.take_victim(now) {
                Some(victim) => self.evict(&victim),
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let seq = inner.next;
        inner.next += 1;
        let ticket = Arc::new(Ticket {
            seq,
            admitted: now,
            greeted: AtomicBool::new(false),
            state: Mutex::new(TicketState::default()),
            fd: Arc::downgrade(fd),
        });
        inner.queue.push_back(ticket.clone());
        inner.peak = inner.peak.max(inner.queue.len());
        Some(ticket)
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
        // Out of descriptors, one must go: the oldest not protected, else the oldest.
        let Some(t) = inner
            .take_victim(Instant::now())
            .or_else(|| inner.queue.pop_front())
        else {
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
            refused: self.refused.load(Ordering::Relaxed),
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
        // Each arrives a fresh grace after the one before: the oldest are no longer fresh.
        let base = Instant::now();
        let t: Vec<_> = (0..5u32)
            .map(|i| {
                gate.admit_at(&fds[i as usize], base + FRESH_GRACE * i)
                    .unwrap()
            })
            .collect();
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
    fn a_fresh_connection_is_not_evicted_the_new_one_is_refused() {
        let gate = HandshakeGate::new(2);
        let fds: Vec<_> = (0..4).map(|_| fd()).collect();
        let base = Instant::now();
        let t0 = gate.admit_at(&fds[0], base).unwrap();
        let t1 = gate.admit_at(&fds[1], base).unwrap();
        // Within the fresh grace, nothing in its greeting yet: refused, none evicted.
        let almost = base + FRESH_GRACE - Duration::from_millis(1);
        assert!(gate.admit_at(&fds[2], almost).is_none());
        let evicted = |t: &Ticket| t.state.lock().unwrap().evicted;
        assert!(!evicted(&t0) && !evicted(&t1));
        let c = gate.counts();
        assert_eq!((c.in_handshake, c.evicted, c.refused), (2, 0, 1));
        // Once the grace has passed, the oldest makes room.
        let t3 = gate.admit_at(&fds[3], base + FRESH_GRACE).unwrap();
        assert!(evicted(&t0) && !evicted(&t1) && !evicted(&t3));
        let c = gate.counts();
        assert_eq!((c.in_handshake, c.evicted, c.refused), (2, 1, 1));
    }

    #[test]
    fn a_connection_past_its_greeting_is_evicted_after_those_still_in_theirs() {
        let gate = HandshakeGate::new(3);
        let fds: Vec<_> = (0..5).map(|_| fd()).collect();
        let base = Instant::now();
        let t: Vec<_> = fds[..3]
            .iter()
            .map(|f| gate.admit_at(f, base).unwrap())
            .collect();
        // The two oldest have their peers' greetings: the third, still in its greeting, makes
        // room for the fourth (all are past the fresh grace).
        t[0].greeted();
        t[1].greeted();
        let t3 = gate.admit_at(&fds[3], base + FRESH_GRACE).unwrap();
        let evicted = |t: &Ticket| t.state.lock().unwrap().evicted;
        assert!(!evicted(&t[0]) && !evicted(&t[1]) && evicted(&t[2]));
        // All in the gate protected (past their greeting, younger than the grace): the new
        // connection is refused, none evicted.
        t3.greeted();
        assert!(gate.admit_at(&fds[4], base + FRESH_GRACE * 2).is_none());
        assert!(!evicted(&t[0]) && !evicted(&t[1]) && !evicted(&t3));
        let c = gate.counts();
        assert_eq!((c.in_handshake, c.evicted, c.refused), (3, 1, 1));
        // Past the grace a greeted connection is one like any other: the oldest goes first.
        let later = base + GREETED_GRACE;
        let mut inner = gate.inner.lock().unwrap();
        let victim = inner.take_victim(later).unwrap();
        assert_eq!(victim.seq, t[0].seq);
    }

    #[test]
    fn a_failed_accept_waits_for_the_connection_evicted_for_the_last_one() {
        let gate = HandshakeGate::new(100);
        let mut fds: Vec<Option<Arc<OwnedFd>>> = (0..4).map(|_| Some(fd())).collect();
        let t: Vec<_> = fds
            .iter()
            .map(|f| gate.admit(f.as_ref().unwrap()).unwrap())
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
