//! Pipes whose connecting session ended for good on the peer's side, held open for a moment
//! before they are retired.
//!
//! Why: libzmq's socket learns that such a session ended from a `term_endpoint` command, and a
//! sending socket looks at its commands at most once a millisecond. So sends made just after
//! the connection was refused still go to the session's pipe there (and are lost with it), and
//! programs rely on it — libzmq's `test_filter_ipc` sends to a peer whose filter refuses it
//! and expects the sends to succeed. Here the session hands its pipe ends to the socket
//! ([`SocketLink::ended`](zeroring_transports::driver::SocketLink::ended)); the socket keeps
//! them for [`GRACE`] after it first sees them, so its pipe keeps taking messages, then drops
//! them, and the pipe goes the way of any pipe whose peer left. What was queued is counted in
//! [`Stats::dropped_unroutable`].
//!
//! While it holds any, the socket posts itself a command, so that its next call looks again;
//! a call blocked meanwhile is woken by that command and looks again at once, so it wakes
//! repeatedly for at most [`GRACE`] per ended session (rare: a refused or lost connection with
//! reconnection off), and the hot path gets no check of its own.
//!
//! ZMQ_EVENTS retires everything held at once: libzmq's getsockopt always processes its
//! commands (only sends skip them for up to a millisecond), so a socket whose peer went while
//! it was idle reports no POLLOUT at its first look.
//!
//! Must never: deliver what it holds, or hold anything past the first call after [`GRACE`].

use std::time::{Duration, Instant};

use zeroring_transports::driver::PipeEnds;

use crate::pattern::Stats;

/// How long ended pipes are held after the socket first sees them: libzmq's command delay
/// (`max_command_delay`, "about 1 ms"), the longest its sending socket goes without looking at
/// its commands.
pub(super) const GRACE: Duration = Duration::from_millis(1);

/// The ended sessions' pipe ends a socket holds.
#[derive(Default)]
pub(super) struct Ended {
    held: Vec<(Instant, PipeEnds)>,
}

impl Ended {
    /// Holds `ends` until `now + GRACE`. Their reader no longer wakes the I/O thread (its
    /// session is gone).
    pub(super) fn hold(&mut self, mut ends: PipeEnds, now: Instant) {
        ends.from_socket.set_notify(None);
        ends.handover = None;
        self.held.push((now + GRACE, ends));
    }

    /// Whether anything is held (the caller looks again at its next call).
    pub(super) fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Drops what is due at `now` (everything with `None`), counting the messages that were
    /// still queued in it. Returns whether anything is still held.
    pub(super) fn retire_due(&mut self, now: Option<Instant>, stats: &mut Stats) -> bool {
        self.held.retain_mut(|(due, ends)| {
            if now.is_some_and(|now| *due > now) {
                return true;
            }
            while let Ok(m) = ends.from_socket.try_read() {
                if !m.more() {
                    stats.dropped_unroutable += 1;
                }
            }
            false
        });
        self.is_holding()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach::{Peer, PeerAttachment};
    use zeroring_engine::Msg;
    use zeroring_transports::socket_type::SocketType;

    #[test]
    fn held_ends_keep_the_pipe_open_until_the_grace_is_over_and_count_what_they_drop() {
        let (mut ours, theirs) =
            PeerAttachment::pipe_pair(Peer::new(SocketType::Dealer, "ipc://x"), 10, 10);
        let mut ended = Ended::default();
        let mut stats = Stats::default();
        let t0 = Instant::now();
        ended.hold(theirs, t0);
        assert!(
            ended.retire_due(Some(t0), &mut stats),
            "held before the grace ends"
        );
        let w = &mut ours.writer;
        w.write(Msg::copy_from_slice(b"a")).unwrap();
        let mut part = Msg::copy_from_slice(b"b");
        part.set_more(true);
        w.write(part).unwrap();
        w.write(Msg::copy_from_slice(b"c")).unwrap();
        w.flush();
        assert!(!w.is_reader_closed());
        assert!(
            !ended.retire_due(Some(t0 + GRACE), &mut stats),
            "retired at the grace"
        );
        assert_eq!(stats.dropped_unroutable, 2, "two messages, three parts");
        assert!(ours.writer.is_reader_closed());
    }
}
