//! loom models of the I/O thread's mailbox.
#![cfg(loom)]

mod loom_common;

use std::sync::Arc;

use loom::thread;
use zeroring_engine::mailbox::Mailbox;
use zeroring_engine::signal::Signal;

use loom_common::model;

/// How the consuming thread sleeps and wakes in the models below.
#[derive(Clone, Copy)]
enum Waking {
    /// `after_wake`: consume the notification and read the eventfd after every sleep.
    AfterWake,
    /// The I/O thread's loop: `end_sleep`, and read the eventfd only when the poller reported
    /// it readable (here: the blocking poll returned, or a zero-timeout poll on a turn where
    /// the thread did not sleep).
    DrainOnReport,
}

/// Two senders (1, 2 and 10) racing the consuming thread going to sleep: the thread never
/// sleeps on a queued command (a lost wakeup would be a loom deadlock), and gets every command
/// in per-sender order.
fn sends_vs_sleep(waking: Waking) {
    model(move || {
        let signal = Arc::new(Signal::new().unwrap());
        let mailbox = Mailbox::<u32>::new(signal.clone());
        let tx = mailbox.sender();
        let tx2 = tx.clone();
        let t = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        let t2 = thread::spawn(move || tx2.send(10).unwrap());
        let mut got = Vec::new();
        while got.len() < 3 {
            signal.clear();
            mailbox.drain(&mut got);
            let sleeping = got.len() < 3 && signal.prepare_sleep();
            match waking {
                Waking::AfterWake => {
                    if sleeping {
                        signal.poll_fd(None);
                        signal.after_wake();
                    }
                }
                Waking::DrainOnReport => {
                    let reported = if sleeping {
                        let r = signal.poll_fd(None);
                        signal.end_sleep();
                        r
                    } else {
                        signal.poll_fd(Some(std::time::Duration::ZERO))
                    };
                    if reported {
                        signal.drain_fd();
                    }
                }
            }
        }
        t.join().unwrap();
        t2.join().unwrap();
        let ones: Vec<_> = got.iter().copied().filter(|&c| c < 10).collect();
        assert_eq!(ones, vec![1, 2]);
        assert!(got.contains(&10));
        if let Waking::DrainOnReport = waking {
            // A token left behind is visible to the next poll (so the next turn drains it).
            let left = signal.poll_fd(Some(std::time::Duration::ZERO));
            assert_eq!(left, signal.drain_fd());
        }
    });
}

/// (6) The blocking waiter's way.
#[test]
fn send_vs_thread_going_to_sleep() {
    sends_vs_sleep(Waking::AfterWake);
}

/// (6a) The I/O thread's loop as it now runs (`end_sleep`, drain on the poller's report).
#[test]
fn send_vs_thread_going_to_sleep_drain_on_report() {
    sends_vs_sleep(Waking::DrainOnReport);
}

/// (6b) `close` racing `send`: the command is either refused (handed back) or queued and still
/// drainable after the close — never lost, never duplicated.
#[test]
fn close_vs_send() {
    model(|| {
        let signal = Arc::new(Signal::new().unwrap());
        let mailbox = Mailbox::<u32>::new(signal);
        let tx = mailbox.sender();
        let t = thread::spawn(move || tx.send(7));
        mailbox.close();
        let sent = t.join().unwrap();
        let mut got = Vec::new();
        mailbox.drain(&mut got);
        match sent {
            Ok(()) => assert_eq!(got, vec![7]),
            Err(cmd) => {
                assert_eq!(cmd, 7);
                assert!(got.is_empty());
            }
        }
    });
}
