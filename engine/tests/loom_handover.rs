//! loom models of the hand-over of a connection's writes between its I/O thread and the
//! application thread (`engine/src/handover.rs`: the send fast path).
#![cfg(loom)]

mod loom_common;

use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use zeroring_engine::handover::Handover;
use zeroring_engine::pipe::Notify;
use zeroring_engine::signal::Signal;

use loom_common::model;

/// Wakes the I/O side.
struct Wake(Signal);

impl Notify for Wake {
    fn notify(&self) {
        self.0.notify();
    }
}

/// The connection: bytes in the order they were written. Written only by the word's owner
/// (loom fails the model on any access of two threads at once).
struct Wire(UnsafeCell<Vec<u8>>);

// SAFETY: the models hand the wire between threads through the hand-over only.
unsafe impl Sync for Wire {}

impl Wire {
    fn write(&self, b: &[u8]) {
        // SAFETY: checked by loom: only the word's owner writes.
        self.0.with_mut(|p| unsafe { (*p).extend_from_slice(b) });
    }
    fn take(&self) -> Vec<u8> {
        // SAFETY: called after every writer joined.
        self.0.with_mut(|p| unsafe { std::mem::take(&mut *p) })
    }
}

/// The I/O side's write: it claims the word (sleeping until woken while the application
/// writes), writes what the application handed over first, then its own bytes, and lets go.
fn io_write(h: &Handover<Arc<Wire>>, wire: &Wire, wake: &Wake, own: &[u8]) {
    while !h.io_claim() {
        wake.0.wait(None, Duration::ZERO);
    }
    if let Some(rest) = h.take_leftover() {
        wire.write(&rest);
    }
    wire.write(own);
    h.io_release();
}

/// The application's direct write of `msg`: its first `taken` bytes go out, the rest is
/// handed over; `false` when the word was not free (the message would go through the pipe).
fn app_write(h: &Handover<Arc<Wire>>, msg: &[u8], taken: usize) -> bool {
    let Some(turn) = h.app_claim() else {
        return false;
    };
    let wire = turn
        .conn()
        .expect("an open hand-over has its connection")
        .clone();
    wire.write(&msg[..taken]);
    if taken == msg.len() {
        turn.finish();
    } else {
        turn.hand_over(bytes::Bytes::copy_from_slice(&msg[taken..]));
    }
    true
}

/// An open hand-over the I/O side has let go, and an application thread racing to write `msg`
/// (its first `taken` bytes taken by the connection).
fn racing_app(
    msg: &'static [u8],
    taken: usize,
) -> (
    std::sync::Arc<Wake>,
    Arc<Wire>,
    Arc<Handover<Arc<Wire>>>,
    thread::JoinHandle<bool>,
) {
    let wake = std::sync::Arc::new(Wake(Signal::new().unwrap()));
    let wire = Arc::new(Wire(UnsafeCell::new(Vec::new())));
    let h = Arc::new(Handover::new());
    h.open(wire.clone(), wake.clone());
    h.io_release();
    let app = {
        let h = h.clone();
        thread::spawn(move || app_write(&h, msg, taken))
    };
    (wake, wire, h, app)
}

/// (1) An application write racing the I/O side's: never both at once, the application's
/// message is whole and contiguous on the wire (its handed-over rest goes first), and the I/O
/// side is never left asleep with the word free (a lost wake-up deadlocks the model).
fn racing_writes(taken: usize) {
    model(move || {
        let (wake, wire, h, app) = racing_app(b"AAAA", taken);
        io_write(&h, &wire, &wake, b"i");
        let direct = app.join().unwrap();
        // The application may have gone after the I/O side let go: its hand-over woke the
        // I/O side, which writes the rest.
        io_write(&h, &wire, &wake, b"");
        h.close();
        let got = wire.take();
        match (direct, got.as_slice()) {
            (true, b"AAAAi") | (true, b"iAAAA") | (false, b"i") => {}
            other => panic!("wire {:?}", other),
        }
    });
}

#[test]
fn an_application_write_racing_the_io_side_whole() {
    racing_writes(4);
}

#[test]
fn an_application_write_racing_the_io_side_partial() {
    racing_writes(1);
}

/// (2) The connection closing during an application turn: the turn ends by itself, the I/O
/// side owns the word afterwards, the connection is let go exactly once, and a new connection
/// can be opened on the same hand-over (a reconnect).
#[test]
fn close_during_a_turn_then_reopen() {
    model(|| {
        let (wake, wire, h, app) = racing_app(b"AA", 1);
        h.close();
        let second = Arc::new(Wire(UnsafeCell::new(Vec::new())));
        h.open(second.clone(), wake.clone());
        // The new connection is the I/O side's until it lets go; the old one's leftover, if
        // any, went with it.
        assert!(h.io_claim());
        assert!(h.take_leftover().is_none());
        second.write(b"n");
        h.io_release();
        app.join().unwrap();
        // A turn on the new connection handed its rest over: written next.
        io_write(&h, &second, &wake, b"");
        h.close();
        assert_eq!(Arc::strong_count(&wire), 1, "the old connection let go");
        assert_eq!(Arc::strong_count(&second), 1, "the new one too");
        let (old, new) = (wire.take(), second.take());
        assert!(
            matches!(
                (old.as_slice(), new.as_slice()),
                (b"" | b"A", b"n") | (b"", b"nAA")
            ),
            "old {old:?}, new {new:?}"
        );
    });
}
