//! Ordinary (non-loom) tests of the SPSC pipe: FIFO across threads, batching visibility,
//! notify counts, multipart HWM with low-water resume, termination from either end with counted
//! drops. No sleeps are used as synchronisation.
#![cfg(not(loom))]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use zeroring_engine::pipe::{
    pipe, CreditEpoch, Fill, FlushOutcome, Lend, Notify, NotifyHandle, PipeConfig, PipeItem,
    ReadError, WriteError,
};
use zeroring_engine::signal::Signal;

/// Counts allocations made by the current thread (so that concurrently running tests do not
/// disturb each other's counts).
struct CountingAlloc;

thread_local! {
    static ALLOCS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the thread-local counter is a
// const-initialised `Cell` without destructor, so touching it cannot allocate or recurse.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` was allocated by `System` through `alloc` above with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

#[derive(Debug, Default)]
struct Count(AtomicUsize);

impl Count {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Notify for Count {
    fn notify(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A message part: `more` = further parts follow.
#[derive(Debug, PartialEq, Eq)]
struct Part {
    v: u32,
    more: bool,
}

impl PipeItem for Part {
    fn ends_message(&self) -> bool {
        !self.more
    }
    // Nothing to drop (what `lend_ready` requires of what it leaves in a slot).
    fn drop_is_noop(&self) -> bool {
        true
    }
}

fn part(v: u32, more: bool) -> Part {
    Part { v, more }
}

/// Records every drop by id, so that double drops and leaks are both visible.
#[derive(Debug)]
struct Tracked {
    id: usize,
    log: Arc<Mutex<Vec<usize>>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.log.lock().unwrap().push(self.id);
    }
}

impl PipeItem for Tracked {
    fn ends_message(&self) -> bool {
        true
    }
}

/// A part that records its drop by id.
#[derive(Debug)]
struct TrackedPart(usize, bool, Arc<Mutex<Vec<usize>>>);

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

fn assert_each_dropped_once(log: &Mutex<Vec<usize>>, n: usize) {
    let log = log.lock().unwrap();
    assert_eq!(log.len(), n, "drop count");
    let set: HashSet<_> = log.iter().copied().collect();
    assert_eq!(set.len(), n, "an item was dropped twice");
    assert!(set.iter().all(|&id| id < n));
}

fn counted() -> (Arc<Count>, NotifyHandle) {
    let c = Arc::new(Count::default());
    (c.clone(), c)
}

#[test]
fn staged_items_are_invisible_until_flush() {
    let (mut w, mut r) = pipe::<u64>(PipeConfig::default());
    assert_eq!(w.flush(), FlushOutcome::Nothing);
    w.write(1).unwrap();
    w.write(2).unwrap();
    assert_eq!(w.staged(), 2);
    assert_eq!(r.read(), Err(ReadError::Empty));
    assert_eq!(r.len_hint(), 0);
    // The reader went to sleep above, so this flush wakes it (no notify object: just reported).
    assert_eq!(w.flush(), FlushOutcome::ReaderWoken);
    assert_eq!(w.flush(), FlushOutcome::Nothing);
    assert_eq!(r.len_hint(), 2);
    assert_eq!(r.read(), Ok(1));
    assert_eq!(r.read(), Ok(2));
    assert_eq!(r.read(), Err(ReadError::Empty));
    assert_eq!(w.messages_written(), 2);
    assert_eq!(r.messages_read(), 2);
}

#[test]
fn fifo_single_thread_across_many_chunks() {
    let (mut w, mut r) = pipe::<u64>(PipeConfig::default());
    let mut next = 0u64;
    for round in 0..50u64 {
        let n = 1 + round * 37;
        for i in 0..n {
            w.write(i + round * 1_000_000).unwrap();
        }
        w.flush();
        for i in 0..n {
            assert_eq!(r.read(), Ok(i + round * 1_000_000));
            next += 1;
        }
        assert_eq!(r.read(), Err(ReadError::Empty));
    }
    assert_eq!(r.items_read() as u64, next);
}

fn fifo_threads(items: u64, flush_every: u64, hwm: usize) {
    let rsig = Arc::new(Signal::new().unwrap());
    let wsig = Arc::new(Signal::new().unwrap());
    let (mut w, mut r) = pipe::<u64>(PipeConfig {
        hwm,
        reader_notify: Some(rsig.clone()),
        writer_notify: Some(wsig.clone()),
        ..PipeConfig::default()
    });
    let writer = thread::spawn(move || {
        let mut fulls = 0u64;
        for i in 0..items {
            let mut item = i;
            loop {
                match w.write(item) {
                    Ok(()) => break,
                    Err(WriteError::Full(back)) => {
                        fulls += 1;
                        item = back;
                        wsig.wait(None, Duration::from_micros(20));
                    }
                    Err(WriteError::Closed(_)) => panic!("reader closed"),
                }
            }
            if i % flush_every == flush_every - 1 {
                w.flush();
            }
        }
        drop(w); // flushes the rest and closes
        fulls
    });
    let mut expect = 0u64;
    loop {
        match r.read() {
            Ok(v) => {
                assert_eq!(v, expect);
                expect += 1;
                if hwm != 0 {
                    assert!(r.len_hint() <= hwm + 1);
                }
            }
            Err(ReadError::Empty) => {
                rsig.wait(None, Duration::from_micros(20));
            }
            Err(ReadError::Closed) => break,
        }
    }
    assert_eq!(expect, items);
    let fulls = writer.join().unwrap();
    if hwm == 0 {
        assert_eq!(fulls, 0);
    }
}

#[test]
fn fifo_across_threads_millions_flush_64() {
    fifo_threads(3_000_000, 64, 0);
}

#[test]
fn fifo_across_threads_flush_every_item() {
    fifo_threads(500_000, 1, 0);
}

#[test]
fn fifo_across_threads_with_hwm() {
    fifo_threads(1_000_000, 7, 100);
}

#[test]
fn fifo_across_threads_tiny_hwm() {
    fifo_threads(100_000, 1, 1);
}

#[test]
fn burst_while_reader_awake_costs_no_notify() {
    let (rc, rn) = counted();
    let (mut w, mut r) = pipe::<u64>(PipeConfig {
        reader_notify: Some(rn),
        ..PipeConfig::default()
    });
    // The reader has never found the pipe empty: it is awake.
    for i in 0..10_000 {
        w.write(i).unwrap();
        if i % 10 == 0 {
            assert_eq!(w.flush(), FlushOutcome::Flushed);
        }
    }
    w.flush();
    for i in 0..10_000 {
        assert_eq!(r.read(), Ok(i));
    }
    assert_eq!(rc.get(), 0);
}

#[test]
fn one_notify_per_sleep() {
    let (rc, rn) = counted();
    let (mut w, mut r) = pipe::<u64>(PipeConfig {
        reader_notify: Some(rn),
        ..PipeConfig::default()
    });
    assert_eq!(r.read(), Err(ReadError::Empty)); // asleep
    assert_eq!(r.read(), Err(ReadError::Empty)); // still the same sleep
    for round in 0..5 {
        w.write(round).unwrap();
        assert_eq!(w.flush(), FlushOutcome::ReaderWoken);
        for i in 0..100 {
            w.write(i).unwrap();
            assert_eq!(w.flush(), FlushOutcome::Flushed);
        }
        assert_eq!(rc.get(), round as usize + 1);
        assert_eq!(r.read(), Ok(round));
        for i in 0..100 {
            assert_eq!(r.read(), Ok(i));
        }
        assert_eq!(r.read(), Err(ReadError::Empty));
    }
    assert_eq!(rc.get(), 5);
}

#[test]
fn hwm_is_checked_at_message_start_only() {
    let (mut w, r) = pipe::<Part>(PipeConfig::with_hwm(2));
    w.write(part(1, true)).unwrap();
    w.write(part(2, false)).unwrap();
    w.write(part(3, false)).unwrap();
    assert_eq!(w.messages_written(), 2);
    assert!(!w.is_writable());
    assert_eq!(w.write(part(4, true)), Err(WriteError::Full(part(4, true))));
    // Full flushed what was staged.
    assert_eq!(w.staged(), 0);
    assert_eq!(r.len_hint(), 3);

    // A message started below the mark may grow beyond it.
    let (mut w, _r) = pipe::<Part>(PipeConfig::with_hwm(1));
    w.write(part(1, true)).unwrap();
    for i in 2..100 {
        w.write(part(i, true)).unwrap();
    }
    assert!(w.is_writable()); // in the middle of a message
    w.write(part(100, false)).unwrap();
    assert!(!w.is_writable());
    assert!(matches!(
        w.write(part(101, false)),
        Err(WriteError::Full(_))
    ));
}

/// A pipe of parts with high-water mark 10 and low-water mark 3 whose writer notifies a
/// counter.
fn lwm_pipe() -> (
    Arc<Count>,
    zeroring_engine::pipe::PipeWriter<Part>,
    zeroring_engine::pipe::PipeReader<Part>,
) {
    let (wc, wn) = counted();
    let (w, r) = pipe::<Part>(PipeConfig {
        hwm: 10,
        lwm: Some(3),
        writer_notify: Some(wn),
        ..PipeConfig::default()
    });
    (wc, w, r)
}

#[test]
fn low_water_resume_notifies_once_at_the_mark() {
    let (wc, mut w, mut r) = lwm_pipe();
    for i in 0..10 {
        // multipart messages: 2 parts each
        w.write(part(i, true)).unwrap();
        w.write(part(i, false)).unwrap();
    }
    assert!(matches!(w.write(part(99, true)), Err(WriteError::Full(_))));
    assert!(matches!(w.write(part(99, true)), Err(WriteError::Full(_))));
    // written - read must fall to 3, i.e. the reader must read 7 messages.
    for m in 0..7 {
        assert_eq!(wc.get(), 0, "notified early, after {m} messages");
        assert_eq!(r.read().unwrap().v, m);
        assert_eq!(r.read().unwrap().v, m);
    }
    assert_eq!(wc.get(), 1);
    while r.read().is_ok() {}
    assert_eq!(wc.get(), 1, "notified more than once");
    assert!(w.is_writable());
    w.write(part(10, false)).unwrap();
}

#[test]
fn low_water_default_is_half() {
    let (wc, wn) = counted();
    let (mut w, mut r) = pipe::<u64>(PipeConfig {
        hwm: 4,
        writer_notify: Some(wn),
        ..PipeConfig::default()
    });
    for i in 0..4 {
        w.write(i).unwrap();
    }
    assert!(matches!(w.write(4), Err(WriteError::Full(4))));
    assert_eq!(r.read(), Ok(0));
    assert_eq!(wc.get(), 0);
    assert_eq!(r.read(), Ok(1)); // 4 - 2 = 2 = (4 + 1) / 2
    assert_eq!(wc.get(), 1);
    assert_eq!(r.read(), Ok(2));
    assert_eq!(r.read(), Ok(3));
    assert_eq!(r.read(), Err(ReadError::Empty));
    assert_eq!(wc.get(), 1);
}

#[test]
fn hwm_one_resumes_when_empty() {
    let (wc, wn) = counted();
    let (mut w, mut r) = pipe::<u64>(PipeConfig {
        hwm: 1,
        writer_notify: Some(wn),
        ..PipeConfig::default()
    });
    for i in 0..100 {
        w.write(i).unwrap();
        assert!(matches!(w.write(1000), Err(WriteError::Full(1000))));
        assert_eq!(r.read(), Ok(i));
        assert_eq!(wc.get(), i as usize + 1);
    }
}

#[test]
fn writer_not_waiting_is_not_notified() {
    let (wc, wn) = counted();
    let (mut w, mut r) = pipe::<u64>(PipeConfig {
        hwm: 8,
        writer_notify: Some(wn),
        ..PipeConfig::default()
    });
    for round in 0..100 {
        for i in 0..8 {
            w.write(round * 8 + i).unwrap();
        }
        w.flush();
        for i in 0..8 {
            assert_eq!(r.read(), Ok(round * 8 + i));
        }
    }
    assert_eq!(wc.get(), 0);
}

#[test]
fn writer_close_flushes_and_reader_sees_closed_after_items() {
    let (rc, rn) = counted();
    let (mut w, mut r) = pipe::<u64>(PipeConfig {
        reader_notify: Some(rn),
        ..PipeConfig::default()
    });
    assert_eq!(r.read(), Err(ReadError::Empty));
    w.write(1).unwrap();
    w.write(2).unwrap();
    w.close();
    assert_eq!(rc.get(), 1, "sleeping reader notified by close");
    assert_eq!(w.write(3), Err(WriteError::Closed(3)));
    assert!(r.is_writer_closed());
    assert_eq!(r.read(), Ok(1));
    assert_eq!(r.read(), Ok(2));
    assert_eq!(r.read(), Err(ReadError::Closed));
    assert_eq!(r.read(), Err(ReadError::Closed));
    drop(w);
    assert_eq!(rc.get(), 1);
}

#[test]
fn writer_drop_closes() {
    let (mut w, mut r) = pipe::<u64>(PipeConfig::default());
    for i in 0..1000 {
        w.write(i).unwrap();
    }
    drop(w);
    for i in 0..1000 {
        assert_eq!(r.read(), Ok(i));
    }
    assert_eq!(r.read(), Err(ReadError::Closed));
}

#[test]
fn reader_close_drops_everything_exactly_once() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mk = |id| Tracked {
        id,
        log: log.clone(),
    };
    let (mut w, mut r) = pipe::<Tracked>(PipeConfig::default());
    for id in 0..700 {
        w.write(mk(id)).unwrap();
    }
    w.flush();
    for id in 700..703 {
        w.write(mk(id)).unwrap(); // staged
    }
    for id in 0..2 {
        assert_eq!(r.read().unwrap().id, id); // dropped here
    }
    r.close();
    assert_eq!(
        log.lock().unwrap().len(),
        700,
        "published unread items dropped by close"
    );
    assert!(matches!(r.read(), Err(ReadError::Closed)));
    assert!(w.is_reader_closed());
    assert!(!w.is_writable());
    match w.write(mk(703)) {
        Err(WriteError::Closed(t)) => drop(t),
        other => panic!("{other:?}"),
    }
    drop(r);
    assert_eq!(log.lock().unwrap().len(), 701);
    drop(w); // the 3 staged items
    assert_each_dropped_once(&log, 704);
}

#[test]
fn dropping_both_ends_drops_queued_items() {
    for order in 0..2 {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (mut w, mut r) = pipe::<Tracked>(PipeConfig::default());
        for id in 0..1000 {
            w.write(Tracked {
                id,
                log: log.clone(),
            })
            .unwrap();
            if id % 100 == 0 {
                w.flush();
            }
        }
        for id in 0..300 {
            assert_eq!(r.read().unwrap().id, id);
        }
        if order == 0 {
            drop(w);
            drop(r);
        } else {
            drop(r);
            drop(w);
        }
        assert_each_dropped_once(&log, 1000);
    }
}

#[test]
fn reader_close_wakes_waiting_writer() {
    let (wc, wn) = counted();
    let (mut w, r) = pipe::<u64>(PipeConfig {
        hwm: 2,
        writer_notify: Some(wn),
        ..PipeConfig::default()
    });
    w.write(1).unwrap();
    w.write(2).unwrap();
    assert!(!w.is_writable());
    drop(r);
    assert_eq!(wc.get(), 1);
    assert_eq!(w.write(3), Err(WriteError::Closed(3)));
}

#[test]
fn set_notify_replaces_target() {
    let (a, an) = counted();
    let (b, bn) = counted();
    let (mut w, mut r) = pipe::<u64>(PipeConfig {
        reader_notify: Some(an),
        ..PipeConfig::default()
    });
    r.set_notify(Some(bn));
    assert_eq!(r.read(), Err(ReadError::Empty));
    w.write(1).unwrap();
    w.flush();
    assert_eq!((a.get(), b.get()), (0, 1));
}

#[test]
fn reader_closes_concurrently_with_writer() {
    for _ in 0..20 {
        let log = Arc::new(Mutex::new(Vec::new()));
        let wsig = Arc::new(Signal::new().unwrap());
        let (mut w, mut r) = pipe::<Tracked>(PipeConfig {
            hwm: 50,
            writer_notify: Some(wsig.clone()),
            ..PipeConfig::default()
        });
        let wlog = log.clone();
        let writer = thread::spawn(move || {
            let mut created = 0;
            loop {
                let t = Tracked {
                    id: created,
                    log: wlog.clone(),
                };
                created += 1;
                match w.write(t) {
                    Ok(()) => {
                        if created % 3 == 0 {
                            w.flush();
                        }
                    }
                    Err(WriteError::Full(t)) => {
                        drop(t);
                        wsig.wait(None, Duration::ZERO);
                    }
                    Err(WriteError::Closed(t)) => {
                        drop(t);
                        return created;
                    }
                }
            }
        });
        let mut seen = 0;
        while seen < 500 {
            match r.read() {
                Ok(_) => seen += 1,
                Err(_) => thread::yield_now(),
            }
        }
        drop(r);
        let created = writer.join().unwrap();
        assert_each_dropped_once(&log, created);
    }
}

#[test]
fn steady_state_allocates_nothing() {
    let (mut w, mut r) = pipe::<u64>(PipeConfig::default());
    let mut round = |n: u64| {
        for i in 0..n {
            w.write(i).unwrap();
        }
        w.flush();
        for i in 0..n {
            assert_eq!(r.read(), Ok(i));
        }
    };
    // Warm up: the second chunk is allocated once, then chunks cycle through the spare slot.
    for _ in 0..4 {
        round(200);
    }
    let before = allocs();
    for _ in 0..1000 {
        round(200); // crosses a 256-slot chunk boundary most rounds
    }
    assert_eq!(allocs() - before, 0, "steady state allocated");
}

#[test]
fn try_read_does_not_arm_the_wakeup() {
    let (rc, rn) = counted();
    let (mut w, mut r) = pipe::<u64>(PipeConfig {
        reader_notify: Some(rn),
        ..PipeConfig::default()
    });
    assert_eq!(r.try_read(), Err(ReadError::Empty));
    w.write(1).unwrap();
    assert_eq!(w.flush(), FlushOutcome::Flushed);
    assert_eq!(rc.get(), 0);
    assert_eq!(r.try_read(), Ok(1));
    assert_eq!(r.try_read(), Err(ReadError::Empty));
    assert_eq!(r.read(), Err(ReadError::Empty)); // arms
    w.write(2).unwrap();
    assert_eq!(w.flush(), FlushOutcome::ReaderWoken);
    assert_eq!(rc.get(), 1);
    drop(w);
    assert_eq!(r.try_read(), Ok(2));
    assert_eq!(r.try_read(), Err(ReadError::Closed));
}

/// `write_with` builds the item only when the pipe takes it: at the high-water mark and after
/// the reader closed, the builder is not called (a sender copying a borrowed body copies
/// nothing it must then throw away), and what it builds reads back in order with `write`'s.
#[test]
fn write_with_builds_only_what_the_pipe_takes() {
    let (mut w, mut r) = pipe::<Part>(PipeConfig::with_hwm(2));
    let built = std::cell::Cell::new(0);
    let make = |v, more| {
        built.set(built.get() + 1);
        part(v, more)
    };
    assert_eq!(w.write_with(|| make(1, true)), Ok(()));
    // The middle of a message always fits, whatever the mark.
    assert_eq!(w.write_with(|| make(2, false)), Ok(()));
    assert_eq!(w.write(part(3, false)), Ok(()));
    assert_eq!(w.write_with(|| make(4, false)), Err(WriteError::Full(())));
    assert_eq!(built.get(), 2);
    w.flush();
    for want in [1, 2, 3] {
        assert_eq!(r.read().map(|p| p.v), Ok(want));
    }
    assert_eq!(r.read().map(|p| p.v), Err(ReadError::Empty));
    // Two messages read: below the mark again.
    assert_eq!(w.write_with(|| make(5, false)), Ok(()));
    w.flush();
    assert_eq!(r.read().map(|p| p.v), Ok(5));
    r.close();
    assert_eq!(w.write_with(|| make(6, false)), Err(WriteError::Closed(())));
    assert_eq!(built.get(), 3);
}

/// `read_with` lends each item in its slot and then drops what the closure left there, exactly
/// once: an item swapped out lives on with the caller, the one swapped in is dropped by the
/// pipe. The high-water accounting counts the item as read (its MORE flag before the swap).
#[test]
fn read_with_drops_what_is_left_in_the_slot_once() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let tp = |id, more| TrackedPart(id, more, log.clone());
    let (mut w, mut r) = pipe::<TrackedPart>(PipeConfig::with_hwm(2));
    for (id, more) in [(1, true), (2, false), (3, false)] {
        w.write(tp(id, more)).unwrap();
    }
    assert!(matches!(w.write(tp(4, false)), Err(WriteError::Full(_))));
    w.flush();
    assert_eq!(r.read_with(|p| (p.0, p.1)), Ok((1, true)));
    assert_eq!(*log.lock().unwrap(), [4, 1]); // 4 was refused and handed back
    let mut mine = tp(100, false);
    assert_eq!(r.read_with(|p| std::mem::swap(p, &mut mine)), Ok(()));
    assert_eq!(mine.0, 2);
    assert_eq!(*log.lock().unwrap(), [4, 1, 100]);
    assert_eq!(r.messages_read(), 1);
    // One message read: below the mark again (the swapped-in item had no MORE either way).
    assert!(w.is_writable());
    assert_eq!(r.read_with(|p| p.0), Ok(3));
    assert_eq!(r.read_with(|p| p.0), Err(ReadError::Empty));
    drop(w);
    assert_eq!(r.read_with(|p| p.0), Err(ReadError::Closed));
    drop(r);
    drop(mine);
    assert_eq!(*log.lock().unwrap(), [4, 1, 100, 3, 2]);
}

/// Lends a part and gives its value back; `refuse` makes `lend_ready` pass it by.
struct Take {
    refuse: bool,
}

impl Lend<Part> for Take {
    type Out = u32;
    fn accepts(&self, _: &Part) -> bool {
        !self.refuse
    }
    fn lend(self, p: &mut Part) -> u32 {
        p.v
    }
}

const TAKE: Take = Take { refuse: false };

/// `lend_ready` reads only what is at hand without a look at the writer's word: nothing before
/// a `read` has seen the flush, nothing a `Lend` refuses, nothing past the end of a chunk, and
/// not the message whose read publishes the read count. Interleaved with `read`, it keeps the
/// order, counts the messages, and the writer waiting at its mark is woken exactly once, at
/// the low-water mark, as with `read` alone.
#[test]
fn lend_ready_takes_only_what_is_at_hand_and_the_writer_resumes_at_its_mark() {
    let (wc, mut w, mut r) = lwm_pipe();
    assert_eq!(r.lend_ready(TAKE), None, "nothing written");
    for i in 0..10 {
        w.write(part(i, false)).unwrap();
    }
    assert!(matches!(w.write(part(99, false)), Err(WriteError::Full(_))));
    assert_eq!(r.lend_ready(TAKE), None, "written, not flushed");
    w.flush();
    assert_eq!(
        r.lend_ready(TAKE),
        None,
        "flushed, but not seen by a read yet"
    );
    let mut got = vec![r.read().unwrap().v];
    assert_eq!(r.lend_ready(Take { refuse: true }), None);
    let mut lent = 0;
    while got.len() < 10 {
        match r.lend_ready(TAKE) {
            Some(v) => {
                got.push(v);
                lent += 1;
            }
            None => got.push(r.read().unwrap().v),
        }
        // Written minus read falls to the low-water mark of 3 after 7 messages read.
        let want = usize::from(got.len() >= 7);
        assert_eq!(wc.get(), want, "after {} messages", got.len());
    }
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    assert!(lent >= 5, "lent {lent} of 10");
    assert_eq!(r.messages_read(), 10);
    assert_eq!(r.lend_ready(TAKE), None);
    assert_eq!(r.read(), Err(ReadError::Empty));
    assert!(w.is_writable());

    // Past a chunk's end: `lend_ready` stops there, `read` moves on, and the order holds.
    // Multipart parts are lent too; only the last of a message counts as one.
    let (mut w, mut r) = pipe::<Part>(PipeConfig::default());
    for i in 0..1000 {
        w.write(part(i, i % 2 == 0)).unwrap();
    }
    w.flush();
    let mut got = vec![r.read().unwrap().v];
    let mut stops = 0;
    while got.len() < 1000 {
        match r.lend_ready(TAKE) {
            Some(v) => got.push(v),
            None => {
                stops += 1;
                got.push(r.read().unwrap().v);
            }
        }
    }
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert!((1..10).contains(&stops), "{stops} stops");
    assert_eq!(r.messages_read(), 500);
}

/// Fills a slot with a part.
struct Put(Part);

impl Fill<Part> for Put {
    fn fill(self, slot: &mut std::mem::MaybeUninit<Part>) -> &mut Part {
        slot.write(self.0)
    }
}

/// `write_flush_ready` writes and publishes a single-part message only where that takes no
/// call: below the mark, no message under way, neither end closed, a free slot in the current
/// chunk; anywhere else it does nothing and `write` takes over. It reports a reader that was
/// asleep (once per sleep) for the caller to wake, and wakes nobody itself.
#[test]
fn write_flush_ready_writes_only_what_needs_no_call_and_reports_a_sleeping_reader() {
    let (rc, rn) = counted();
    let (mut w, mut r) = pipe::<Part>(PipeConfig {
        hwm: 4,
        reader_notify: Some(rn),
        ..PipeConfig::default()
    });
    assert_eq!(r.read(), Err(ReadError::Empty), "the reader sleeps");
    assert_eq!(w.write_flush_ready(Put(part(1, false))).ok(), Some(true));
    assert_eq!(rc.get(), 0, "the caller wakes it");
    w.wake_reader();
    assert_eq!(rc.get(), 1);
    for i in 2..=4 {
        assert_eq!(w.write_flush_ready(Put(part(i, false))).ok(), Some(false));
    }
    assert_eq!(
        w.write_flush_ready(Put(part(5, false))).ok(),
        None,
        "at the mark"
    );
    assert_eq!(w.messages_written(), 4);
    for i in 1..=4 {
        assert_eq!(r.read().map(|p| p.v), Ok(i));
    }
    // A message under way: the rest goes by `write`.
    w.write(part(5, true)).unwrap();
    assert_eq!(w.write_flush_ready(Put(part(6, false))).ok(), None);
    w.write(part(6, false)).unwrap();
    w.flush();
    assert_eq!(r.read().map(|p| (p.v, p.more)), Ok((5, true)));
    assert_eq!(r.read().map(|p| (p.v, p.more)), Ok((6, false)));
    assert_eq!(r.read(), Err(ReadError::Empty));
    assert_eq!(
        w.write_flush_ready(Put(part(7, false))).ok(),
        Some(true),
        "asleep again"
    );
    assert_eq!(r.read().map(|p| p.v), Ok(7));
    r.close();
    assert_eq!(
        w.write_flush_ready(Put(part(8, false))).ok(),
        None,
        "the reader closed"
    );
    assert_eq!(rc.get(), 1, "nothing woke the reader but the caller");

    // Past a chunk's end: it stops there, `write` moves on, and the order holds.
    let (mut w, mut r) = pipe::<Part>(PipeConfig::default());
    let mut stops = 0;
    for i in 0..1000 {
        if w.write_flush_ready(Put(part(i, false))).ok().is_none() {
            stops += 1;
            w.write(part(i, false)).unwrap();
            w.flush();
        }
    }
    assert!((1..10).contains(&stops), "{stops} stops");
    for i in 0..1000 {
        assert_eq!(r.read().map(|p| p.v), Ok(i));
    }
}

/// `write_run` takes what `write`'s checks would admit and no more: it stops at the mark by
/// its one look (a started message is finished past it, as with `write`), when the closure
/// has nothing (consuming nothing), and takes nothing after either end closed. `read_run`
/// hands items over in order until its closure says stop, then reports `Empty` / `Closed`
/// exactly as `read` would, and the writer sees the reads as progress.
#[test]
fn runs_admit_what_write_would_and_read_in_order() {
    let (mut w, mut r) = pipe::<Part>(PipeConfig::with_hwm(3));
    let src = [(1, false), (2, true), (3, false), (4, false), (5, false)];
    let mut i = 0;
    let n = w.write_run(|slot| {
        let &(v, more) = src.get(i)?;
        i += 1;
        Some(slot.write(part(v, more)))
    });
    // Three messages ([1], [2 3], [4]) fill the mark of 3; 5 is left for `write`.
    assert_eq!((n, i), (4, 4));
    assert_eq!(w.messages_written(), 3);
    assert!(matches!(w.write(part(5, false)), Err(WriteError::Full(_))));
    assert_eq!(w.write_run(|_| unreachable!("no room")), 0);
    w.flush();
    let mut got = Vec::new();
    assert_eq!(
        r.read_run(|p| {
            got.push(p.v);
            p.v != 2
        }),
        Ok(2)
    );
    assert_eq!(
        r.read_run(|p| {
            got.push(p.v);
            true
        }),
        Err(ReadError::Empty)
    );
    assert_eq!(got, [1, 2, 3, 4]);
    // Read to empty: the progress is published, the writer has room again.
    let mut j = 0;
    let more = [(6, false), (7, false)];
    assert_eq!(
        w.write_run(|slot| {
            let &(v, m) = more.get(j)?;
            j += 1;
            Some(slot.write(part(v, m)))
        }),
        2
    );
    assert_eq!(w.write_run(|_| None), 0);
    w.flush();
    r.close();
    assert_eq!(w.write_run(|_| unreachable!("reader closed")), 0);
    assert_eq!(r.read_run(|_| true), Err(ReadError::Closed));
}

/// `write_in_place` initialises the item in its slot: it reads back like `write`'s, the
/// initialiser is not called when the pipe refuses, and an initialiser that returns anything
/// but its slot panics without staging it (the pipe stays usable, nothing is read twice).
#[test]
fn write_in_place_stages_only_its_own_slot() {
    let (mut w, mut r) = pipe::<Part>(PipeConfig::with_hwm(1));
    assert_eq!(w.write_in_place(|s| s.write(part(1, true))), Ok(()));
    assert_eq!(w.write_in_place(|s| s.write(part(2, false))), Ok(()));
    let mut called = false;
    assert_eq!(
        w.write_in_place(|s| {
            called = true;
            s.write(part(3, false))
        }),
        Err(WriteError::Full(()))
    );
    assert!(!called);
    w.flush();
    assert_eq!(r.read().map(|p| p.v), Ok(1));
    assert_eq!(r.read().map(|p| p.v), Ok(2));
    let elsewhere: &'static mut Part = Box::leak(Box::new(part(9, false)));
    let wr = &mut w;
    let stray = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _ = wr.write_in_place(move |_| elsewhere);
    }));
    assert!(stray.is_err());
    assert_eq!(w.items_written(), 2);
    assert_eq!(w.write_in_place(|s| s.write(part(4, false))), Ok(()));
    w.flush();
    assert_eq!(r.read().map(|p| p.v), Ok(4));
    assert_eq!(r.read().map(|p| p.v), Err(ReadError::Empty));
}

#[test]
fn writer_mark_changes_locally_and_by_reader_credit() {
    let (wc, wn) = counted();
    let (mut w, mut r) = pipe::<u32>(PipeConfig {
        hwm: 2,
        writer_notify: Some(wn),
        ..PipeConfig::default()
    });
    w.write(0).unwrap();
    w.write(1).unwrap();
    assert!(matches!(w.write(2), Err(WriteError::Full(2))));
    // The reader grants 3 more without reading: the waiting writer is woken (its low-water
    // point, 1 queued, is passed by the new head count) and may write 3 more.
    r.adjust_writer_hwm(3);
    assert_eq!(wc.get(), 1);
    for i in 2..5 {
        w.write(i).unwrap();
    }
    assert!(matches!(w.write(5), Err(WriteError::Full(5))));
    // The writer lowers its own part to 0... 1: 1 + 3 = 4 queued at most.
    w.set_hwm(1);
    assert_eq!(w.hwm(), 1);
    for i in 0..2 {
        assert_eq!(r.read(), Ok(i));
    }
    // 3 queued, mark 4: one more.
    w.write(5).unwrap();
    assert!(matches!(w.write(6), Err(WriteError::Full(6))));
    // The reader takes its credit back: mark 1; reading everything gives room for 1.
    r.adjust_writer_hwm(-3);
    while r.read().is_ok() {}
    w.write(6).unwrap();
    assert!(matches!(w.write(7), Err(WriteError::Full(7))));
    // A huge credit (the reader's RCVHWM became 0): as good as no mark; 0 lifts the writer's.
    r.adjust_writer_hwm(1 << 40);
    for i in 7..10_000 {
        w.write(i).unwrap();
    }
    w.set_hwm(0);
    w.write(10_000).unwrap();
    assert_eq!(r.read(), Ok(6));
}

#[test]
fn a_pipe_made_without_a_mark_keeps_none() {
    let (mut w, mut r) = pipe::<u32>(PipeConfig::with_hwm(0));
    w.set_hwm(1);
    r.adjust_writer_hwm(-5);
    for i in 0..100 {
        w.write(i).unwrap();
    }
    assert_eq!(w.hwm(), 0);
}

#[test]
fn rollback_drops_the_unfinished_message_across_chunks() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (mut w, mut r) = pipe::<TrackedPart>(PipeConfig::default());
    let mut id = 0;
    let mut part = |more: bool| {
        id += 1;
        TrackedPart(id - 1, more, log.clone())
    };
    // 200 single messages, then a 700-part message (crosses several chunks), rolled back.
    for _ in 0..200 {
        w.write(part(false)).unwrap();
    }
    w.flush();
    for _ in 0..700 {
        w.write(part(true)).unwrap();
    }
    assert_eq!(w.rollback(), 700);
    assert_eq!(w.rollback(), 0, "at a boundary now");
    // The writer goes on: a 3-part message, then one closed unfinished.
    w.write(part(true)).unwrap();
    w.write(part(true)).unwrap();
    w.write(part(false)).unwrap();
    for _ in 0..300 {
        w.write(part(true)).unwrap();
    }
    drop(w);
    let mut got = Vec::new();
    while let Ok(p) = r.read() {
        got.push(p.0);
    }
    let expected: Vec<usize> = (0..200).chain(900..903).collect();
    assert_eq!(got, expected);
    drop(r);
    assert_each_dropped_once(&log, 1203);
}

#[test]
fn rollback_leaves_flushed_parts() {
    let (mut w, mut r) = pipe::<Part>(PipeConfig::default());
    w.write(part(1, true)).unwrap();
    w.flush();
    w.write(part(2, true)).unwrap();
    assert_eq!(
        w.rollback(),
        0,
        "its head is visible: nothing is taken back"
    );
    w.write(part(3, false)).unwrap();
    w.flush();
    assert_eq!(r.read().unwrap().v, 1);
    assert_eq!(r.read().unwrap().v, 2);
    assert_eq!(r.read().unwrap().v, 3);
}

/// A message started with `write_with` (the in-place path) is rolled back like one started with
/// `write`: whichever call wrote its first part, and wherever the chunk boundary fell (the
/// 256-slot chunk is crossed at every offset below).
#[test]
fn rollback_of_a_message_begun_in_place() {
    for lead in [0usize, 1, 255, 256, 257] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (mut w, mut r) = pipe::<TrackedPart>(PipeConfig::default());
        let mut id = 0;
        let mut next = |more: bool| {
            id += 1;
            TrackedPart(id - 1, more, log.clone())
        };
        for _ in 0..lead {
            w.write(next(false)).unwrap();
        }
        w.flush();
        let first = next(true);
        w.write_with(|| first).unwrap();
        for i in 0..300 {
            let p = next(true);
            if i % 2 == 0 {
                w.write_with(|| p).unwrap();
            } else {
                w.write(p).unwrap();
            }
        }
        assert_eq!(w.rollback(), 301, "lead {lead}");
        let last = next(false);
        w.write_with(|| last).unwrap();
        drop(w);
        let mut got = Vec::new();
        while let Ok(p) = r.read() {
            got.push(p.0);
        }
        let expected: Vec<usize> = (0..lead).chain([lead + 301]).collect();
        assert_eq!(got, expected, "lead {lead}");
        drop(r);
        assert_each_dropped_once(&log, lead + 302);
    }
}

/// Lazy credit (libzmq's writer, which sees its reader's progress only when its socket
/// processes commands): a writer given a `CreditEpoch` stays full by its old view after the
/// reader drained, until the epoch advances; the refreshed check then finds room, and a write
/// whose failure would drop looks at once (`refresh`). The mark holds throughout.
#[test]
fn lazy_credit_sees_progress_only_after_the_epoch_advances() {
    let wn = Arc::new(Count(AtomicUsize::new(0)));
    let (mut w, mut r) = pipe::<u64>(PipeConfig {
        hwm: 4,
        writer_notify: Some(wn.clone()),
        ..PipeConfig::default()
    });
    let epoch = Arc::new(CreditEpoch::default());
    w.set_credit_epoch(Some(epoch.clone()));
    for i in 0..4 {
        w.write(i).unwrap();
    }
    assert!(matches!(w.write(4), Err(WriteError::Full(4))));
    w.flush();
    for i in 0..4 {
        assert_eq!(r.read(), Ok(i));
    }
    // Drained, but the writer has not looked: still full, flushed, not armed.
    assert!(matches!(w.write(4), Err(WriteError::Full(4))));
    assert!(!w.is_writable());
    assert_eq!(r.read(), Err(ReadError::Empty));
    assert_eq!(wn.0.load(Ordering::SeqCst), 0);
    // The owner processes its commands: room again, exactly up to the mark.
    epoch.advance();
    for i in 4..8 {
        w.write(i).unwrap();
    }
    assert!(matches!(w.write(8), Err(WriteError::Full(8))));
    w.flush();
    // The reader publishes its progress every low-water-mark messages (2 here).
    assert_eq!(r.read(), Ok(4));
    assert_eq!(r.read(), Ok(5));
    // `refresh` looks at once (the write a full pipe would drop).
    assert!(w.refresh());
    w.write(8).unwrap();
    w.write(9).unwrap();
    assert!(!w.refresh(), "at the mark again");
    // After an advance the failed check arms: the reader's drain to the low-water mark wakes it.
    epoch.advance();
    assert!(matches!(w.write(10), Err(WriteError::Full(10))));
    w.flush();
    for i in 6..10 {
        assert_eq!(r.read(), Ok(i));
    }
    assert_eq!(
        wn.0.load(Ordering::SeqCst),
        1,
        "armed by the refreshed check"
    );
}

/// Credit the reader grants (a raised mark: libzmq's inproc bind boosting a connect-first
/// pipe) is seen by a lazy writer at once, without an advance: libzmq changes the writer's
/// mark directly, not by a lazily processed command.
#[test]
fn lazy_credit_sees_a_raised_mark_at_once() {
    let (mut w, mut r) = pipe::<u64>(PipeConfig::with_hwm(1));
    w.set_credit_epoch(Some(Arc::new(CreditEpoch::default())));
    w.write(0).unwrap();
    assert!(matches!(w.write(1), Err(WriteError::Full(1))));
    r.adjust_writer_hwm(100);
    for i in 1..101 {
        w.write(i).unwrap();
    }
    assert!(matches!(w.write(101), Err(WriteError::Full(101))));
    drop(w);
    assert_eq!((0..101).map(|_| r.read().unwrap()).sum::<u64>(), 5050);
    assert_eq!(r.read(), Err(ReadError::Closed));
}
