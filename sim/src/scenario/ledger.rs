//! The message ledger: which numbered message was sent by whom and when, and where it
//! arrived; its flow check decides whether every loss and every reordering is one ZeroMQ
//! allows (a disconnect explains it).
//!
//! Must never: excuse a loss or a reordering without a disconnect of the two hosts to explain
//! it.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use crate::record::Record;
use crate::trace::Trace;

/// What [`Ledger::check_flow`] counted.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Flow {
    /// Owed messages that arrived.
    pub delivered: usize,
    /// Owed messages lost in flight at a disconnect (or counted drops).
    pub lost: usize,
    /// Messages that arrived after a later one because the sender had abandoned the
    /// connection they were written to (stale bytes read after a stall).
    pub late: usize,
}

/// Sent and received sequence numbers of the messages of one scenario.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ledger(Rc<RefCell<LedgerInner>>);

#[derive(Debug, Default)]
pub(crate) struct LedgerInner {
    /// Next sequence number to send (survives a bounce of the sender).
    pub next_seq: u64,
    /// seq → (sender host, simulated time it was sent).
    pub sent: BTreeMap<u64, (String, Duration)>,
    /// Receiver host → (seq, arrival time) in arrival order.
    pub received: BTreeMap<String, Vec<(u64, Duration)>>,
    seen: BTreeMap<String, BTreeSet<u64>>,
}

impl Ledger {
    pub fn with<R>(&self, f: impl FnOnce(&mut LedgerInner) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }

    /// Takes the next sequence number.
    pub fn next_seq(&self) -> u64 {
        self.with(|l| {
            let s = l.next_seq;
            l.next_seq += 1;
            s
        })
    }

    /// The socket took message `seq` from `sender`.
    pub fn sent(&self, seq: u64, sender: &str) {
        let t = crate::trace::sim_now();
        self.with(|l| {
            l.sent.insert(seq, (sender.to_string(), t));
        });
    }

    /// The sender of `seq`, if it was sent.
    pub fn sender_of(&self, seq: u64) -> Option<String> {
        self.with(|l| l.sent.get(&seq).map(|(h, _)| h.clone()))
    }

    /// Records an arrival; a duplicate is a violation at once.
    pub fn received(&self, trace: &Trace, receiver: &str, seq: u64) {
        let t = crate::trace::sim_now();
        let dup = self.with(|l| {
            l.received
                .entry(receiver.to_string())
                .or_default()
                .push((seq, t));
            !l.seen.entry(receiver.to_string()).or_default().insert(seq)
        });
        if dup {
            trace.violation(receiver, format_args!("message {seq} delivered twice"));
        }
    }

    /// End-of-run check of the messages `sender` sent to `receiver` (those `owed` selects):
    /// - everything that arrived was sent, in the order it was sent (per-peer order);
    /// - every message that never arrived is explained: a connection (of either host, from
    ///   `disconnects`) ended after it was sent and before the next message got through, or
    ///   within `grace` after (the side that notices a dead connection last may route to it
    ///   meanwhile): lost in flight at a disconnect; or it is one of `policy_drops` drops the
    ///   socket counted (PUB at its HWM).
    ///
    /// - a message arrives after a later one only if a connection of the sender (from
    ///   `sender_cuts`) ended after it was sent and before the later one arrived: bytes
    ///   written to a connection the sender abandoned, read after the stall that made it
    ///   give up (ZeroMQ orders per connection; libzmq behaves the same).
    ///
    /// Returns what it counted.
    #[allow(clippy::too_many_arguments)]
    pub fn check_flow(
        &self,
        trace: &Trace,
        t_end: Duration,
        sender: &str,
        receiver: &str,
        owed: impl Fn(u64) -> bool,
        disconnects: &[Duration],
        sender_cuts: &[Duration],
        grace: Duration,
        policy_drops: u64,
    ) -> Flow {
        let l = self.0.borrow();
        let arrivals: Vec<(u64, Duration)> = l
            .received
            .get(receiver)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|(s, _)| l.sent.get(s).is_none_or(|(h, _)| h == sender))
                    .collect()
            })
            .unwrap_or_default();
        for (s, t) in &arrivals {
            if !l.sent.contains_key(s) {
                trace.violation_at(*t, receiver, format_args!("got message {s} nobody sent"));
            }
        }
        // Order: ZeroMQ orders messages per connection. A sender that abandons a connection
        // (heartbeat timeout during a stall) cannot recall what it already wrote into it; if
        // the receiver has not noticed, it still reads those bytes when the stall ends — after
        // what the sender's next connection delivered meanwhile (libzmq does the same:
        // `sim/tests/libzmq_evidence.rs`). So a message may arrive after a later one only if a
        // connection of the sender ended after it was sent and before the later one arrived.
        let mut late = 0;
        // The highest sequence number so far; below it, an arrival was overtaken.
        let mut highest: Option<(u64, Duration)> = None;
        // The last late arrival and what overtook it: late ones keep their own order.
        let mut last_late: Option<(u64, u64)> = None;
        for (i, &(m, t_m)) in arrivals.iter().enumerate() {
            match highest {
                Some((n, _)) if n >= m => {
                    // The first arrival of anything above m: when m was overtaken.
                    let (over, t_over) = arrivals[..i]
                        .iter()
                        .copied()
                        .find(|(s, _)| *s > m)
                        .unwrap_or((n, t_m));
                    let sent_at = l.sent.get(&m).map(|(_, t)| *t);
                    let abandoned = sent_at.is_some_and(|sent_at| {
                        sender_cuts.iter().any(|d| *d >= sent_at && *d <= t_over)
                    });
                    let in_order = last_late.is_none_or(|(prev, o)| o != over || prev < m);
                    if abandoned && in_order {
                        late += 1;
                        if last_late.is_none_or(|(_, o)| o != over) {
                            trace.at(
                                t_m,
                                receiver,
                                format_args!(
                                    "message {m} from {sender} arrived after {over}: it was sent on a connection {sender} abandoned before {over} arrived (late arrivals follow)"
                                ),
                            );
                        }
                        last_late = Some((m, over));
                    } else {
                        trace.violation_at(
                            t_m,
                            receiver,
                            format_args!(
                                "from {sender}: message {m} arrived after {over} (out of order)"
                            ),
                        );
                        break;
                    }
                }
                _ => highest = Some((m, t_m)),
            }
        }
        let got: BTreeSet<u64> = arrivals.iter().map(|(s, _)| *s).collect();
        let (mut delivered, mut lost, mut unexplained) = (0, 0, Vec::new());
        for (&s, (from, sent_at)) in &l.sent {
            if from != sender || !owed(s) {
                continue;
            }
            if got.contains(&s) {
                delivered += 1;
                continue;
            }
            lost += 1;
            let next = arrivals
                .iter()
                .find(|(n, _)| *n > s)
                .map_or(t_end, |(_, t)| *t);
            if !disconnects
                .iter()
                .any(|d| *d >= *sent_at && *d <= next + grace)
            {
                unexplained.push((s, *sent_at));
            }
        }
        if unexplained.len() as u64 > policy_drops {
            let (s, at) = unexplained[0];
            trace.violation_at(
                t_end,
                receiver,
                format_args!(
                    "{} messages from {sender} never arrived with no disconnect to explain them{} (first: {s}, sent at {at:?})",
                    unexplained.len(),
                    if policy_drops > 0 {
                        format!(" beyond the {policy_drops} drops counted")
                    } else {
                        String::new()
                    }
                ),
            );
        }
        Flow {
            delivered,
            lost,
            late,
        }
    }
}

impl Ledger {
    /// [`Ledger::check_flow`] for a flow where every message is owed and whoever notices a
    /// dead connection first stops routing to it: losses only around the two hosts'
    /// disconnects.
    pub fn check_whole_flow(
        &self,
        trace: &Trace,
        t_end: Duration,
        (sender, sender_rec): (&str, &Record),
        (receiver, receiver_rec): (&str, &Record),
    ) -> Flow {
        let cuts = disconnects(sender_rec, receiver_rec);
        let sender_cuts = sender_rec.with(|r| r.disconnects());
        self.check_flow(
            trace,
            t_end,
            sender,
            receiver,
            |_| true,
            &cuts,
            &sender_cuts,
            Duration::ZERO,
            0,
        )
    }
}

/// The disconnect times of both hosts of a flow.
pub(crate) fn disconnects(a: &Record, b: &Record) -> Vec<Duration> {
    let mut d = a.with(|r| r.disconnects());
    d.extend(b.with(|r| r.disconnects()));
    d.sort();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A ledger where "s" sent 1..=6 at 10 ms apart and "r" got them in `order`, 10 ms apart
    /// from 100 ms.
    fn ledger(order: &[u64]) -> Ledger {
        let l = Ledger::default();
        l.with(|l| {
            for s in 1..=6 {
                l.sent.insert(s, ("s".into(), ms(10 * s)));
            }
            let got: Vec<(u64, Duration)> = order
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, ms(100 + 10 * i as u64)))
                .collect();
            l.received.insert("r".into(), got);
        });
        l
    }

    fn check(order: &[u64], sender_cuts: &[Duration]) -> (Vec<String>, Flow) {
        let trace = Trace::new();
        let flow = ledger(order).check_flow(
            &trace,
            ms(1000),
            "s",
            "r",
            |_| true,
            sender_cuts,
            sender_cuts,
            Duration::ZERO,
            0,
        );
        (trace.violations(), flow)
    }

    #[test]
    fn in_order_passes() {
        let (v, flow) = check(&[1, 2, 3, 4, 5, 6], &[]);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!((flow.delivered, flow.late), (6, 0));
    }

    #[test]
    fn an_inversion_without_a_sender_disconnect_is_a_violation() {
        let (v, _) = check(&[1, 4, 5, 2, 3, 6], &[]);
        assert!(v.iter().any(|v| v.contains("out of order")), "{v:?}");
        // A receiver-side disconnect explains nothing about order.
        let trace = Trace::new();
        ledger(&[1, 4, 5, 2, 3, 6]).check_flow(
            &trace,
            ms(1000),
            "s",
            "r",
            |_| true,
            &[ms(25)],
            &[],
            Duration::ZERO,
            0,
        );
        assert!(!trace.violations().is_empty());
    }

    #[test]
    fn bytes_of_a_connection_the_sender_abandoned_may_arrive_late_in_their_own_order() {
        // 2 and 3 were sent (20, 30 ms) before the sender's connection ended at 35 ms; 4
        // overtook them at 110 ms.
        let (v, flow) = check(&[1, 4, 5, 2, 3, 6], &[ms(35)]);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(flow.late, 2);
        // Not in their own order: a violation.
        let (v, _) = check(&[1, 4, 5, 3, 2, 6], &[ms(35)]);
        assert!(v.iter().any(|v| v.contains("out of order")), "{v:?}");
        // The disconnect came after the overtaking arrival: no excuse.
        let (v, _) = check(&[1, 4, 5, 2, 3, 6], &[ms(115)]);
        assert!(v.iter().any(|v| v.contains("out of order")), "{v:?}");
        // The late message was sent after the disconnect: no excuse.
        let (v, _) = check(&[1, 4, 5, 2, 3, 6], &[ms(15)]);
        assert!(v.iter().any(|v| v.contains("out of order")), "{v:?}");
    }
}
