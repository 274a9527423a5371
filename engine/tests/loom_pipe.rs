//! loom models of the SPSC pipe. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p zeroring-engine --release --test loom_pipe`.
//! Under loom a chunk holds 2 items, so a handful of items crosses chunk boundaries and
//! exercises the recycling of finished chunks.
#![cfg(loom)]

mod loom_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use loom::thread;
use zeroring_engine::pipe::{
    pipe, CreditEpoch, Fill, Lend, Notify, PipeConfig, PipeItem, PipeReader, ReadError, WriteError,
};
use zeroring_engine::signal::Signal;

use loom_common::model;

/// Forwards to a signal and counts the calls.
#[derive(Debug)]
struct Counted {
    signal: Signal,
    calls: AtomicUsize,
}

impl Counted {
    fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            signal: Signal::new().unwrap(),
            calls: AtomicUsize::new(0),
        })
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Notify for Counted {
    fn notify(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.signal.notify();
    }
}

/// Reads everything until `Closed`, sleeping on `sig` whenever the pipe is empty. Returns the
/// items and how many times the reader went to sleep.
fn drain<T: PipeItem>(r: &mut PipeReader<T>, sig: &Counted) -> (Vec<T>, usize) {
    let mut got = Vec::new();
    let mut sleeps = 0;
    loop {
        match r.read() {
            Ok(v) => got.push(v),
            Err(ReadError::Empty) => {
                sleeps += 1;
                sig.signal.wait(None, Duration::ZERO);
            }
            Err(ReadError::Closed) => return (got, sleeps),
        }
    }
}

/// (1) FIFO across chunk boundaries (and chunk recycling), with close after the last flush.
#[test]
fn fifo_across_chunks() {
    model(|| {
        let rn = Counted::new();
        let (mut w, mut r) = pipe::<u64>(PipeConfig {
            reader_notify: Some(rn.clone()),
            ..PipeConfig::default()
        });
        let t = thread::spawn(move || {
            w.write(0).unwrap();
            w.flush();
            w.write(1).unwrap();
            w.write(2).unwrap();
            w.flush();
            w.write(3).unwrap();
            w.write(4).unwrap();
            // drop: flushes 3, 4 and closes
        });
        let (got, sleeps) = drain(&mut r, &rn);
        t.join().unwrap();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
        assert!(rn.calls() <= sleeps, "more notifies than sleeps");
    });
}

/// (2) The flush/sleep/wake handshake (after a non-arming `try_read` spin round): a reader that
/// goes to sleep concurrently with a flush is always woken (a lost wakeup would block the reader forever: loom reports a deadlock), and
/// it is woken at most once per sleep.
#[test]
fn flush_wakes_sleeping_reader() {
    model(|| {
        let rn = Counted::new();
        let (mut w, mut r) = pipe::<u64>(PipeConfig {
            reader_notify: Some(rn.clone()),
            ..PipeConfig::default()
        });
        let t = thread::spawn(move || {
            w.write(1).unwrap();
            w.flush();
            w.write(2).unwrap();
            w.flush();
            w
        });
        let mut got = Vec::new();
        let mut sleeps = 0;
        // One round of the spin phase (does not arm the wakeup), then the arming read.
        if let Ok(v) = r.try_read() {
            got.push(v);
        }
        while got.len() < 2 {
            match r.read() {
                Ok(v) => got.push(v),
                Err(ReadError::Empty) => {
                    sleeps += 1;
                    rn.signal.wait(None, Duration::ZERO);
                }
                Err(ReadError::Closed) => panic!("not closed"),
            }
        }
        let w = t.join().unwrap();
        assert_eq!(got, vec![1, 2]);
        assert!(rn.calls() <= sleeps, "more notifies than sleeps");
        drop(w);
    });
}

/// (3) HWM blocking and low-water resume: a writer that hits `Full` sleeps on its signal and is
/// always woken once the reader drains (hwm 1: the resume point is the empty pipe).
#[test]
fn hwm_full_writer_is_resumed() {
    model(|| {
        let (mut w, mut r, rn, wn) = hwm_pipe(1);
        let wn2 = wn.clone();
        let t = thread::spawn(move || {
            let mut fulls = 0;
            for i in 0..3 {
                let mut item = i;
                loop {
                    match w.write(item) {
                        Ok(()) => break,
                        Err(WriteError::Full(back)) => {
                            fulls += 1;
                            item = back;
                            wn2.signal.wait(None, Duration::ZERO);
                        }
                        Err(WriteError::Closed(_)) => panic!("reader closed"),
                    }
                }
                w.flush();
            }
            fulls
        });
        let (got, _) = drain(&mut r, &rn);
        let fulls = t.join().unwrap();
        assert_eq!(got, vec![0, 1, 2]);
        assert!(wn.calls() <= fulls, "writer notified without waiting");
    });
}

/// (3c) `write_with` (the item built in its slot once the pipe took it): FIFO across chunk
/// boundaries (CHUNK is 2 under loom, so the slot-first path moves to a new or recycled chunk),
/// HWM refusals that build nothing, and the low-water resume — the same guarantees as `write`.
#[test]
fn write_with_in_place_fifo_and_resume() {
    model(|| {
        let (mut w, mut r, rn, wn) = hwm_pipe(2);
        let wn2 = wn.clone();
        let t = thread::spawn(move || {
            let mut built = 0;
            for i in 0..3u64 {
                loop {
                    match w.write_with(|| {
                        built += 1;
                        i
                    }) {
                        Ok(()) => break,
                        Err(WriteError::Full(())) => {
                            wn2.signal.wait(None, Duration::ZERO);
                        }
                        Err(WriteError::Closed(())) => panic!("reader closed"),
                    }
                }
                w.flush();
            }
            built
        });
        let (got, _) = drain(&mut r, &rn);
        let built = t.join().unwrap();
        assert_eq!(got, vec![0, 1, 2]);
        assert_eq!(built, 3, "an item was built for a refused write");
    });
}

/// (3d) Runs: the writer writes with `write_run` (one look at the reader's progress per run)
/// and falls back to `write` for what a run leaves, as the stream's decoder does; the reader
/// drains with `read_run`, sleeping when it reports `Empty`. FIFO across chunk boundaries, a
/// run never takes a message past the mark (the fallback's full check arms the low-water
/// resume), and no wakeup is lost on either side.
#[test]
fn runs_fifo_and_resume() {
    model(|| {
        let (mut w, mut r, rn, wn) = hwm_pipe(2);
        let wn2 = wn.clone();
        let t = thread::spawn(move || {
            let mut next = 0u64;
            while next < 4 {
                let n = w.write_run(|slot| {
                    if next == 4 {
                        return None;
                    }
                    next += 1;
                    Some(slot.write(next - 1))
                });
                if n > 0 {
                    w.flush();
                    continue;
                }
                match w.write(next) {
                    Ok(()) => {
                        next += 1;
                        w.flush();
                    }
                    Err(WriteError::Full(_)) => {
                        wn2.signal.wait(None, Duration::ZERO);
                    }
                    Err(WriteError::Closed(_)) => panic!("reader closed"),
                }
            }
        });
        let mut got = Vec::new();
        loop {
            match r.read_run(|v| {
                got.push(*v);
                true
            }) {
                Ok(_) => unreachable!("the closure never stops the run"),
                Err(ReadError::Empty) => {
                    rn.signal.wait(None, Duration::ZERO);
                }
                Err(ReadError::Closed) => break,
            }
        }
        t.join().unwrap();
        assert_eq!(got, vec![0, 1, 2, 3]);
    });
}

/// (3b) Multipart messages at the mark: hwm 2, lwm 1; a 2-part message may exceed the mark.
#[test]
fn hwm_multipart_resume() {
    #[derive(Debug, PartialEq)]
    struct Part(u8, bool);
    impl PipeItem for Part {
        fn ends_message(&self) -> bool {
            !self.1
        }
    }
    model(|| {
        let rn = Counted::new();
        let wn = Counted::new();
        let (mut w, mut r) = pipe::<Part>(PipeConfig {
            hwm: 2,
            reader_notify: Some(rn.clone()),
            writer_notify: Some(wn.clone()),
            ..PipeConfig::default()
        });
        let wn2 = wn.clone();
        let t = thread::spawn(move || {
            // messages: [0], [1a 1b], [2]
            let parts = [
                Part(0, false),
                Part(1, true),
                Part(2, false),
                Part(3, false),
            ];
            for p in parts {
                let mut item = p;
                loop {
                    match w.write(item) {
                        Ok(()) => break,
                        Err(WriteError::Full(back)) => {
                            assert!(!back.1 || back.0 == 1, "Full only at message start");
                            item = back;
                            wn2.signal.wait(None, Duration::ZERO);
                        }
                        Err(WriteError::Closed(_)) => panic!("reader closed"),
                    }
                }
            }
        });
        let (got, _) = drain(&mut r, &rn);
        t.join().unwrap();
        assert_eq!(
            got,
            vec![
                Part(0, false),
                Part(1, true),
                Part(2, false),
                Part(3, false)
            ]
        );
    });
}

/// Records drops by id.
#[derive(Debug)]
struct Tracked(usize, std::sync::Arc<Mutex<Vec<usize>>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.lock().unwrap().push(self.0);
    }
}

impl PipeItem for Tracked {
    fn ends_message(&self) -> bool {
        true
    }
}

/// (4) Reader close racing writes: every item is dropped exactly once, whichever end drops it
/// (the reader's read, the reader's close, a `Closed` write handed back, or the last end's
/// drop), and what the reader read is a prefix of what was written.
#[test]
fn reader_close_races_writes() {
    model(|| {
        let log = std::sync::Arc::new(Mutex::new(Vec::new()));
        let (mut w, mut r) = pipe::<Tracked>(PipeConfig::default());
        let wlog = log.clone();
        let t = thread::spawn(move || {
            for id in 0..3 {
                match w.write(Tracked(id, wlog.clone())) {
                    Ok(()) => {}
                    Err(WriteError::Closed(item)) => drop(item),
                    Err(WriteError::Full(_)) => unreachable!(),
                }
                if id != 1 {
                    w.flush();
                }
            }
        });
        let mut read = Vec::new();
        if let Ok(item) = r.read() {
            read.push(item.0);
        }
        drop(r);
        t.join().unwrap();
        assert!(read.is_empty() || read == [0]);
        let mut log = log.lock().unwrap().clone();
        log.sort_unstable();
        assert_eq!(log, vec![0, 1, 2], "each item dropped exactly once");
    });
}

/// (4b) Writer close racing the reader: the reader sees `Closed` only after every item flushed
/// before the close, and a sleeping reader is woken by the close.
#[test]
fn writer_close_after_items() {
    model(|| {
        let rn = Counted::new();
        let (mut w, mut r) = pipe::<u64>(PipeConfig {
            reader_notify: Some(rn.clone()),
            ..PipeConfig::default()
        });
        let t = thread::spawn(move || {
            w.write(1).unwrap();
            w.flush();
            w.write(2).unwrap();
            w.write(3).unwrap();
            w.close();
        });
        let (got, _) = drain(&mut r, &rn);
        t.join().unwrap();
        assert_eq!(got, vec![1, 2, 3]);
    });
}

/// (3c) Low-water resume with a publish step above 1 (hwm 3, lwm 2: the reader publishes every
/// 2 messages and at the writer's resume point); the writer sleeps on `Full` and is resumed.
#[test]
fn hwm_lwm_step_resume() {
    model(|| {
        let (mut w, mut r, rn, wn) = hwm_pipe(3);
        let wn2 = wn.clone();
        let t = thread::spawn(move || {
            for i in 0..5 {
                let mut item = i;
                loop {
                    match w.write(item) {
                        Ok(()) => break,
                        Err(WriteError::Full(back)) => {
                            item = back;
                            wn2.signal.wait(None, Duration::ZERO);
                        }
                        Err(WriteError::Closed(_)) => panic!("reader closed"),
                    }
                }
            }
        });
        let (got, _) = drain(&mut r, &rn);
        t.join().unwrap();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    });
}

/// (4c) Reader close racing a writer that is full: the writer is always woken (a lost wakeup
/// is a loom deadlock) and then sees `Closed`; every item is dropped exactly once.
#[test]
fn reader_close_wakes_full_writer() {
    model(|| {
        let log = std::sync::Arc::new(Mutex::new(Vec::new()));
        let wn = Counted::new();
        let (mut w, r) = pipe::<Tracked>(PipeConfig {
            hwm: 1,
            writer_notify: Some(wn.clone()),
            ..PipeConfig::default()
        });
        let wlog = log.clone();
        let t = thread::spawn(move || {
            if let Err(WriteError::Closed(back)) = w.write(Tracked(0, wlog.clone())) {
                drop(back);
            }
            let mut item = Tracked(1, wlog);
            loop {
                match w.write(item) {
                    Ok(()) => panic!("hwm 1 and nothing read: must not be writable"),
                    Err(WriteError::Full(back)) => {
                        item = back;
                        wn.signal.wait(None, Duration::ZERO);
                    }
                    Err(WriteError::Closed(back)) => {
                        drop(back);
                        return;
                    }
                }
            }
        });
        drop(r);
        t.join().unwrap();
        let mut log = log.lock().unwrap().clone();
        log.sort_unstable();
        assert_eq!(log, vec![0, 1]);
    });
}

/// A pipe (of `u64` unless said) with high-water mark `hwm` whose reader and writer notify
/// counted signals.
#[allow(clippy::type_complexity)]
fn hwm_pipe<T: PipeItem>(
    hwm: usize,
) -> (
    zeroring_engine::pipe::PipeWriter<T>,
    zeroring_engine::pipe::PipeReader<T>,
    std::sync::Arc<Counted>,
    std::sync::Arc<Counted>,
) {
    let rn = Counted::new();
    let wn = Counted::new();
    let (w, r) = pipe::<T>(PipeConfig {
        hwm,
        reader_notify: Some(rn.clone()),
        writer_notify: Some(wn.clone()),
        ..PipeConfig::default()
    });
    (w, r, rn, wn)
}

/// Writes `items` in order, sleeping on `wn` whenever the pipe is full; flushes after each.
fn write_all_blocking<T: PipeItem>(
    w: &mut zeroring_engine::pipe::PipeWriter<T>,
    wn: &Counted,
    items: impl IntoIterator<Item = T>,
) {
    write_all(w, wn, None, items);
}

/// Writes `items` in order, sleeping on `wn` whenever the pipe is full; flushes after each.
/// With an epoch (lazy credit), as a socket does (`sockets/src/socket.rs`, `send_returning`):
/// on a full pipe it advances the epoch and tries once more before it waits, and advances it
/// again after every wake.
fn write_all<T: PipeItem>(
    w: &mut zeroring_engine::pipe::PipeWriter<T>,
    wn: &Counted,
    epoch: Option<&CreditEpoch>,
    items: impl IntoIterator<Item = T>,
) {
    for i in items {
        let mut item = i;
        let mut refreshed = false;
        loop {
            match w.write(item) {
                Ok(()) => break,
                Err(WriteError::Full(back)) => {
                    item = back;
                    if let Some(epoch) = epoch {
                        if !refreshed {
                            refreshed = true;
                            epoch.advance();
                            continue;
                        }
                    }
                    wn.signal.wait(None, Duration::ZERO);
                    if let Some(epoch) = epoch {
                        epoch.advance();
                    }
                }
                Err(WriteError::Closed(_)) => panic!("reader closed"),
            }
        }
        w.flush();
    }
}

/// (5) The reader raises the writer's mark while the writer is full at the old one and nothing
/// is read (libzmq's inproc bind boosting a pipe its connecter filled first): the writer is
/// always woken (a lost wakeup is a loom deadlock) and its write then succeeds at the new mark.
/// The raise is published on the same word, by the same RMW, as the reader's progress, so the
/// writer's arming CAS either sees it (and finds room) or is seen by it (and is notified).
#[test]
fn raised_mark_wakes_full_writer() {
    model(|| {
        let wn = Counted::new();
        let (mut w, mut r) = pipe::<u64>(PipeConfig {
            hwm: 1,
            writer_notify: Some(wn.clone()),
            ..PipeConfig::default()
        });
        let wn2 = wn.clone();
        let t = thread::spawn(move || {
            write_all_blocking(&mut w, &wn2, [0, 1]);
            // Full again at the raised mark (2 queued, nothing read).
            assert!(matches!(w.write(2), Err(WriteError::Full(2))));
            w
        });
        r.adjust_writer_hwm(1);
        let w = t.join().unwrap();
        assert_eq!(r.read(), Ok(0));
        assert_eq!(r.read(), Ok(1));
        drop(w);
        assert_eq!(r.read(), Err(ReadError::Closed));
    });
}

/// (5b) A raise racing the reader's own progress and a writer that blocks and resumes: FIFO
/// holds and the writer is always woken.
#[test]
fn raised_mark_races_reads() {
    model(|| {
        let (mut w, mut r, rn, wn) = hwm_pipe(1);
        let wn2 = wn.clone();
        let t = thread::spawn(move || {
            write_all_blocking(&mut w, &wn2, [0, 1, 2]);
        });
        let mut got = Vec::new();
        let mut raised = false;
        loop {
            match r.read() {
                Ok(v) => got.push(v),
                Err(ReadError::Empty) => {
                    rn.signal.wait(None, Duration::ZERO);
                }
                Err(ReadError::Closed) => break,
            }
            if !raised && got.len() == 1 {
                raised = true;
                r.adjust_writer_hwm(1);
            }
        }
        t.join().unwrap();
        assert_eq!(got, vec![0, 1, 2]);
    });
}

/// (5c) The reader lowers the writer's mark (negative credit) while the writer fills the pipe:
/// the writer never gets past the lowered mark once it sees it, and is still resumed by reads.
#[test]
fn lowered_mark_still_resumes_writer() {
    model(|| {
        let (mut w, mut r, rn, wn) = hwm_pipe(2);
        let wn2 = wn.clone();
        let t = thread::spawn(move || {
            write_all_blocking(&mut w, &wn2, [0, 1, 2]);
        });
        r.adjust_writer_hwm(-1);
        let (got, _) = drain(&mut r, &rn);
        t.join().unwrap();
        assert_eq!(got, vec![0, 1, 2]);
    });
}

/// A part that records its drop by id.
#[derive(Debug)]
struct TrackedPart(usize, bool, std::sync::Arc<Mutex<Vec<usize>>>);

impl Drop for TrackedPart {
    fn drop(&mut self) {
        self.2.lock().unwrap().push(self.0);
    }
}

impl PipeItem for TrackedPart {
    fn ends_message(&self) -> bool {
        !self.1
    }
}

/// Reads ids until `Closed`, sleeping on `rn` when empty; the items are dropped as read.
fn drain_ids(r: &mut PipeReader<TrackedPart>, rn: &Counted) -> Vec<usize> {
    let mut got = Vec::new();
    loop {
        match r.read() {
            Ok(p) => got.push(p.0),
            Err(ReadError::Empty) => {
                rn.signal.wait(None, Duration::ZERO);
            }
            Err(ReadError::Closed) => return got,
        }
    }
}

/// (6) Rollback of an unfinished message that spans a chunk boundary (2 slots per chunk under
/// loom), while the reader drains what was flushed before it: the reader never sees a part of
/// it, the writer goes on from the boundary (chunks unlinked and freed, a later message links
/// fresh ones), and every item is dropped exactly once.
#[test]
fn rollback_takes_back_an_unfinished_message() {
    model(|| {
        let log = std::sync::Arc::new(Mutex::new(Vec::new()));
        let rn = Counted::new();
        let (mut w, mut r) = pipe::<TrackedPart>(PipeConfig {
            reader_notify: Some(rn.clone()),
            ..PipeConfig::default()
        });
        let wlog = log.clone();
        let t = thread::spawn(move || {
            w.write(TrackedPart(0, false, wlog.clone())).unwrap();
            w.flush();
            for id in 1..4 {
                w.write(TrackedPart(id, true, wlog.clone())).unwrap();
            }
            assert_eq!(w.rollback(), 3);
            w.write(TrackedPart(4, true, wlog.clone())).unwrap();
            w.write(TrackedPart(5, false, wlog.clone())).unwrap();
            w.flush();
            // Closing mid-message takes the unfinished one back too.
            w.write(TrackedPart(6, true, wlog)).unwrap();
        });
        let got = drain_ids(&mut r, &rn);
        t.join().unwrap();
        assert_eq!(got, vec![0, 4, 5]);
        drop(r);
        let mut log = log.lock().unwrap().clone();
        log.sort_unstable();
        assert_eq!(log, vec![0, 1, 2, 3, 4, 5, 6]);
    });
}

/// (7) Lazy credit: a writer that judges "full" by its old view of the reader's progress, and
/// looks again only when its owner advances the epoch, is never left waiting with room it has
/// not seen. A stale "full" does not arm; the look after the advance does, against the live
/// count (a lost wakeup is a loom deadlock), and FIFO holds.
#[test]
fn lazy_credit_writer_is_resumed() {
    model(|| {
        let (mut w, mut r, rn, wn) = hwm_pipe(1);
        let epoch = std::sync::Arc::new(CreditEpoch::default());
        w.set_credit_epoch(Some(epoch.clone()));
        let wn2 = wn.clone();
        let t = thread::spawn(move || {
            write_all(&mut w, &wn2, Some(&epoch), [0, 1, 2]);
        });
        let (got, _) = drain(&mut r, &rn);
        t.join().unwrap();
        assert_eq!(got, vec![0, 1, 2]);
    });
}

/// (7b) Lazy credit and a raised mark: the reader grants credit while the writer, full at the
/// old mark by a stale view, goes to wait; the writer is woken (or sees the credit through
/// `mark_moves`) and its write succeeds at the new mark.
#[test]
fn lazy_credit_writer_sees_a_raised_mark() {
    model(|| {
        let (mut w, mut r, _rn, wn) = hwm_pipe(1);
        let epoch = std::sync::Arc::new(CreditEpoch::default());
        w.set_credit_epoch(Some(epoch.clone()));
        let wn2 = wn.clone();
        let t = thread::spawn(move || {
            write_all(&mut w, &wn2, Some(&epoch), [0, 1]);
            w
        });
        r.adjust_writer_hwm(1);
        let w = t.join().unwrap();
        assert_eq!(r.read(), Ok(0));
        assert_eq!(r.read(), Ok(1));
        drop(w);
        assert_eq!(r.read(), Err(ReadError::Closed));
    });
}

/// A part with nothing to drop, for the fast paths (`lend_ready` leaves its husk undropped).
#[derive(Debug, PartialEq, Eq)]
struct Plain(u64);

impl PipeItem for Plain {
    fn ends_message(&self) -> bool {
        true
    }
    fn drop_is_noop(&self) -> bool {
        true
    }
}

struct Put(u64);

impl Fill<Plain> for Put {
    fn fill(self, slot: &mut std::mem::MaybeUninit<Plain>) -> &mut Plain {
        slot.write(Plain(self.0))
    }
}

struct Take;

impl Lend<Plain> for Take {
    type Out = u64;
    fn lend(self, p: &mut Plain) -> u64 {
        p.0
    }
}

/// (8) The fast paths against each other and against the full ones, as PUSH and PULL use
/// them: the writer sends by `write_flush_ready` and wakes the reader itself when that reports
/// it asleep, else (at the mark, at a chunk's end) writes and flushes as usual, sleeping while
/// full; the reader takes by `lend_ready`, else reads, sleeping on `Empty`. Everything arrives
/// in order, neither side's wake-up is lost (a lost one is a loom deadlock), and the reader is
/// woken at most once per sleep. hwm 2 over 2-item chunks: the mark, the low-water resume and
/// the chunk's end all fall inside the 4 items.
#[test]
fn fast_paths_keep_order_and_lose_no_wakeup() {
    model(|| {
        let (mut w, mut r, rn, wn) = hwm_pipe::<Plain>(2);
        let wn2 = wn.clone();
        let t = thread::spawn(move || {
            for i in 0..4 {
                match w.write_flush_ready(Put(i)).ok() {
                    Some(true) => w.wake_reader(),
                    Some(false) => {}
                    None => write_all_blocking(&mut w, &wn2, [Plain(i)]),
                }
            }
            // drop: closes
        });
        let mut got = Vec::new();
        let mut sleeps = 0;
        loop {
            if let Some(v) = r.lend_ready(Take) {
                got.push(v);
                continue;
            }
            match r.read() {
                Ok(p) => got.push(p.0),
                Err(ReadError::Empty) => {
                    sleeps += 1;
                    rn.signal.wait(None, Duration::ZERO);
                }
                Err(ReadError::Closed) => break,
            }
        }
        t.join().unwrap();
        assert_eq!(got, vec![0, 1, 2, 3]);
        assert!(rn.calls() <= sleeps, "more notifies than sleeps");
    });
}
