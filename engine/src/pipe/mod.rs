//! The single-producer single-consumer pipe between a socket and a connection (or between two
//! inproc sockets).
//!
//! Owns: an unbounded, chunked FIFO of items, the batching of writes (a [`PipeWriter::flush`]
//! publishes everything staged with one atomic operation), the sleep/wake handshake between the
//! two ends, the high-water-mark accounting with its low-water resume, and termination from
//! either end.
//!
//! Must never: block, make a system call of its own, allocate in steady state, or call a
//! [`Notify`] when the other end is awake. It knows nothing of what an item is beyond
//! [`PipeItem::ends_message`].
//!
//! # Threads
//!
//! [`pipe`] returns two ends. Each end is `Send` and not `Sync`: at any time one thread owns the
//! [`PipeWriter`] and one thread (possibly the same) owns the [`PipeReader`]; every method takes
//! `&mut self`, so the type system enforces "single producer, single consumer".
//!
//! # Visibility
//!
//! Items passed to [`PipeWriter::write`] are *staged*: the reader cannot see them until the next
//! [`PipeWriter::flush`] (or [`PipeWriter::close`], or the writer's drop). A flush makes all
//! staged items visible at once, in order, and everything the writer did before the flush
//! happens-before the reader's [`PipeReader::read`] of any of them.
//!
//! # Sleep and wake
//!
//! When [`PipeReader::read`] finds nothing it atomically records, in the same atomic word that
//! the writer's flush swaps, that the reader is asleep. The first flush after that sees the mark,
//! clears it and calls the reader's [`Notify`] — once per sleep, not per message. A flush while
//! the reader is awake costs one atomic swap and nothing else.
//!
//! # High-water mark
//!
//! With `hwm > 0`, writing the *first part* of a message fails with [`WriteError::Full`] when
//! `messages_written - messages_read >= hwm`; further parts of a started message always
//! succeed. The reader publishes its count of messages read every `max(lwm, 1)` messages and
//! whenever it finds the pipe empty. A writer that finds itself full flushes, records the read
//! count at which `written - read` falls to the low-water mark and marks itself waiting (both in
//! one atomic compare-and-swap on the word the reader publishes to); the reader calls the
//! writer's [`Notify`] once, when it reaches that count (or when it closes).
//!
//! # Lazy credit
//!
//! A writer given a [`CreditEpoch`] ([`PipeWriter::set_credit_epoch`], what a socket does with
//! the pipes it writes to) judges "full" by the read count it last looked at, not by the live
//! one, and looks again only when its owner has advanced the epoch since: libzmq's writer,
//! which learns of the reader's progress only from `activate_write` commands when its socket
//! processes commands (every blocking wait and poll, and at most once a millisecond while it
//! sends). A stale view only ever shows less room than there is, so the mark still holds; a
//! writer full by a stale view flushes but does not arm, so its owner advances the epoch before
//! it waits (the refreshed check arms as usual). [`PipeWriter::refresh`] takes the live count at
//! once, for the writes whose "full" drops a message instead of refusing it.
//!
//! The mark can change while the pipe is in use (libzmq's `set_hwms`): the writer changes its
//! own with [`PipeWriter::set_hwm`], and the reader moves it with
//! [`PipeReader::adjust_writer_hwm`], which publishes the change as *credit* added to its read
//! count, by the same atomic add on the same word. The writer's full check and its arming
//! compare-and-swap therefore see progress and credit as one value, and a raise wakes a writer
//! waiting at the old mark by the same test as progress does (no separate mark to be read
//! stale: `engine/tests/loom_pipe.rs` models (5)).
//!
//! # Termination
//!
//! [`PipeWriter::close`] (or drop) flushes what is staged, less the staged parts of an
//! unfinished multipart message, which it takes back ([`PipeWriter::rollback`], as libzmq's
//! pipe termination does): a reader never sees the head of a message whose writer went away.
//! The reader gets
//! [`ReadError::Closed`] after it has read everything flushed before. [`PipeReader::close`] (or
//! drop) makes the writer's next write fail with [`WriteError::Closed`] and drops the items
//! queued at that moment; items the writer flushes afterwards are dropped when the writer end is
//! dropped. Every item is dropped exactly once; memory is freed when both ends are gone.

use std::fmt;
use std::mem::MaybeUninit;
use std::ptr;

use crossbeam_utils::CachePadded;

use crate::sync::{Arc, AtomicPtr, AtomicUsize, Ordering, UnsafeCell};

mod reader;
mod writer;

pub use reader::PipeReader;
pub use writer::PipeWriter;

/// Slots per storage chunk. Small under loom so that models cross chunk boundaries.
///
/// 256 slots of 64 bytes (a 56-byte `Msg` on a cache line of its own, see [`Slot`]) are
/// 16 KiB of address space, of which only the pages written are resident; a busy pipe moves to
/// a new chunk every 256 messages, where the recycled spare makes that an exchange of pointers,
/// not an allocation.
#[cfg(not(loom))]
const CHUNK: usize = 256;
#[cfg(loom)]
const CHUNK: usize = 2;

/// Tail word (writer → reader): bit 0, owned by the reader: the reader is asleep.
const ASLEEP: usize = 1;
/// Tail word: bit 1, owned by the writer: the writer has closed.
const WRITER_CLOSED: usize = 2;
/// Head word (reader → writer): bit 0, owned by the writer: the writer waits for writability.
const WAITING: usize = 1;
/// Head word: bit 1, owned by the reader: the reader has closed.
const READER_CLOSED: usize = 2;
/// Counts live in the upper bits of the two words; they wrap modulo 2^(usize::BITS - 2).
const SHIFT: u32 = 2;
const COUNT_MASK: usize = usize::MAX >> SHIFT;

/// `a - b` in the counts' modular arithmetic.
#[inline(always)]
fn diff(a: usize, b: usize) -> usize {
    a.wrapping_sub(b) & COUNT_MASK
}

/// `a >= b` for counts that are known to be less than half the count range apart.
#[inline(always)]
fn reached(a: usize, b: usize) -> bool {
    diff(a, b) <= COUNT_MASK / 2
}

/// Whether a writer that has written `written` messages is at its high-water mark `hwm` when
/// the head word's count is `head_count`. The head count is the reader's messages read plus the
/// credit it granted ([`PipeReader::adjust_writer_hwm`]), so it may run ahead of `written`: that
/// difference, negative in the counts' modular arithmetic, is room.
#[inline(always)]
fn at_mark(written: usize, head_count: usize, hwm: usize) -> bool {
    let d = diff(written, head_count);
    d >= hwm && d <= COUNT_MASK / 2
}

/// Something to call when the other end of a pipe did something this end was waiting for.
///
/// Implementations must be cheap and must not call back into the pipe that invokes them (they
/// run on the other end's thread, inside its `flush`, `write`, `read` or `close`).
pub trait Notify: Send + Sync {
    /// The awaited event happened (the reader became readable, or the writer writable again).
    fn notify(&self);
}

/// A handle to a [`Notify`] object, as stored by a pipe.
pub type NotifyHandle = std::sync::Arc<dyn Notify>;

/// When the writers of one owner may look again at their readers' progress (see "Lazy credit"
/// in the [module docs](self)). The owner [`advance`](Self::advance)s it at the points where
/// libzmq's socket processes its commands; each writer looks again at its next full check after
/// an advance. Written and read only by the thread that owns the writers (a `Relaxed` counter:
/// it orders nothing, the pipe's own atomics do).
#[derive(Debug, Default)]
pub struct CreditEpoch(std::sync::atomic::AtomicU64);

impl CreditEpoch {
    /// The writers' next full check reads the live read count.
    #[inline]
    pub fn advance(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    #[inline]
    fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// An item that travels through a pipe. A multipart message is several items; only its last
/// part returns `true` from [`ends_message`](PipeItem::ends_message). The high-water mark counts
/// messages, not items.
pub trait PipeItem: Send {
    /// Whether this item is the last (or only) part of a message.
    fn ends_message(&self) -> bool;

    /// Whether dropping this item would do nothing (no allocation, no reference count to
    /// release), so that a reader lending items in place ([`PipeReader::read_with`]) may skip
    /// the call to its drop. `false` (the default) is always correct; `true` for an item
    /// whose drop does something leaks it.
    #[inline(always)]
    fn drop_is_noop(&self) -> bool {
        false
    }
}

macro_rules! single_part {
    ($($t:ty),* $(,)?) => {$(
        impl PipeItem for $t {
            #[inline(always)]
            fn ends_message(&self) -> bool {
                true
            }
        }
    )*};
}
single_part!(
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    bool,
    char,
    ()
);
single_part!(String);

impl<T: Send> PipeItem for Vec<T> {
    #[inline(always)]
    fn ends_message(&self) -> bool {
        true
    }
}

impl<T: PipeItem + ?Sized> PipeItem for Box<T> {
    #[inline(always)]
    fn ends_message(&self) -> bool {
        (**self).ends_message()
    }
}

/// How a pipe is built.
#[derive(Clone, Default)]
pub struct PipeConfig {
    /// High-water mark in messages; 0 = unlimited.
    pub hwm: usize,
    /// Low-water mark in messages: a writer that hit the high-water mark is notified when
    /// `written - read` falls to it. `None` = libzmq's `(hwm + 1) / 2`. Clamped to `hwm - 1`.
    pub lwm: Option<usize>,
    /// Called by the writer when the reader, asleep, has something to read (or sees the close).
    pub reader_notify: Option<NotifyHandle>,
    /// Called by the reader when the writer, waiting at the high-water mark, may write again
    /// (or the reader closed).
    pub writer_notify: Option<NotifyHandle>,
}

impl PipeConfig {
    /// A config with the given high-water mark and no notifications.
    pub fn with_hwm(hwm: usize) -> Self {
        Self {
            hwm,
            ..Self::default()
        }
    }

    /// The effective low-water mark.
    pub fn effective_lwm(&self) -> usize {
        if self.hwm == 0 {
            return 0;
        }
        self.lwm.unwrap_or(self.hwm.div_ceil(2)).min(self.hwm - 1)
    }
}

impl fmt::Debug for PipeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeConfig")
            .field("hwm", &self.hwm)
            .field("lwm", &self.lwm)
            .field("reader_notify", &self.reader_notify.is_some())
            .field("writer_notify", &self.writer_notify.is_some())
            .finish()
    }
}

/// Why a write failed; the item is handed back.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteError<T> {
    /// The high-water mark is reached (only ever for the first part of a message). The writer
    /// flushed what it had staged and will be notified once the reader drains to the low-water
    /// mark.
    Full(T),
    /// The reader (or this writer) closed the pipe.
    Closed(T),
}

impl<T> WriteError<T> {
    /// The item that was not written.
    pub fn into_inner(self) -> T {
        match self {
            WriteError::Full(t) | WriteError::Closed(t) => t,
        }
    }
}

impl<T> fmt::Display for WriteError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Full(_) => f.write_str("pipe is at its high-water mark"),
            WriteError::Closed(_) => f.write_str("pipe is closed"),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for WriteError<T> {}

/// Why a read returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// Nothing to read now. The reader is marked asleep: the writer's next flush (or close)
    /// calls the reader's [`Notify`].
    Empty,
    /// The writer closed and everything it flushed has been read (or this reader closed).
    Closed,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Empty => f.write_str("pipe is empty"),
            ReadError::Closed => f.write_str("pipe is closed"),
        }
    }
}

impl std::error::Error for ReadError {}

/// What a [`PipeWriter::flush`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOutcome {
    /// Nothing was staged; no atomic operation was made.
    Nothing,
    /// The staged items are visible; the reader was awake, so nobody was notified.
    Flushed,
    /// The staged items are visible and the reader, asleep, was notified.
    ReaderWoken,
}

/// One item's place in a chunk, on cache lines of its own.
///
/// Why: the reader usually follows the writer closely, on another core. Items packed at their
/// own size (56 bytes for a `Msg`) share lines, so the writer's store to item *n + 1* takes
/// back the line the reader is reading item *n* from, and each line crosses the cores two or
/// three times. Aligned, a line is written once and read once per lap of the chunk. Measured:
/// inproc 64 B throughput +13 % (docs/performance.md, "Pipe slots on lines of their own").
#[repr(align(64))]
struct Slot<T>(UnsafeCell<MaybeUninit<T>>);

struct Chunk<T> {
    slots: [Slot<T>; CHUNK],
    next: AtomicPtr<Chunk<T>>,
}

impl<T> Chunk<T> {
    /// Slot `idx` of chunk `chunk`, without a bounds check: the cursors that index the hot
    /// paths move to the next chunk when they reach `CHUNK`, so they are below it whenever
    /// a slot is taken (checked in debug builds).
    ///
    /// # Safety
    ///
    /// `chunk` points to a live chunk and `idx < CHUNK`.
    #[inline(always)]
    unsafe fn slot<'a>(chunk: *mut Chunk<T>, idx: usize) -> &'a UnsafeCell<MaybeUninit<T>> {
        debug_assert!(idx < CHUNK);
        // SAFETY: the caller's.
        unsafe { &(*chunk).slots.get_unchecked(idx).0 }
    }

    fn alloc() -> *mut Chunk<T> {
        Box::into_raw(Box::new(Chunk {
            slots: std::array::from_fn(|_| Slot(UnsafeCell::new(MaybeUninit::uninit()))),
            next: AtomicPtr::new(ptr::null_mut()),
        }))
    }
}

/// The reader's cursor, handed to the shared state when the reader end is dropped.
struct ReaderCursor<T> {
    chunk: *mut Chunk<T>,
    idx: usize,
    items: usize,
}

/// The reader's side of the shared words.
struct HeadLine {
    /// `messages_read << 2 | READER_CLOSED | WAITING`. The reader owns the count and
    /// `READER_CLOSED` (changed with `fetch_add` / `fetch_or`), the writer owns `WAITING` (set
    /// with compare-and-swap against the reader's latest count; cleared by the reader when it
    /// notifies).
    word: AtomicUsize,
    /// The messages-read count at which a waiting writer wants its notify. Written by the writer
    /// only before the compare-and-swap that (re)sets `WAITING`, read by the reader only after an
    /// RMW on `word` that saw `WAITING`.
    resume_at: AtomicUsize,
    /// How many times the reader moved the writer's mark ([`PipeReader::adjust_writer_hwm`]),
    /// incremented after the credit is published: a lazy writer full by its old view looks
    /// again when this moved, since credit, unlike progress, is not libzmq's lazy
    /// `activate_write` (libzmq's `set_hwms_boost` changes the writer's mark directly).
    mark_moves: AtomicUsize,
}

struct Shared<T> {
    /// `items_flushed << 2 | WRITER_CLOSED | ASLEEP`. The writer owns the count and
    /// `WRITER_CLOSED` (changed only by its `swap` in flush/close), the reader owns `ASLEEP`
    /// (set only by its compare-and-swap against the count it has consumed; cleared by the
    /// writer's swap, which then notifies).
    tail: CachePadded<AtomicUsize>,
    head: CachePadded<HeadLine>,
    /// One recycled chunk: the reader parks the chunk it finished here, the writer takes it
    /// before allocating.
    spare: AtomicPtr<Chunk<T>>,
    reader_notify: std::sync::Mutex<Option<NotifyHandle>>,
    writer_notify: std::sync::Mutex<Option<NotifyHandle>>,
    /// Written once by the reader end's drop, read by `Shared::drop`.
    reader_final: UnsafeCell<Option<ReaderCursor<T>>>,
}

// SAFETY: `Shared` is reached only through the two ends, each owned by one thread. The raw chunk
// pointers it holds are either published through the atomics with release/acquire (the chunk
// list, the spare) or written once before the last `Arc` reference is dropped (`reader_final`,
// ordered by the `Arc` count). Items of type `T` move from the writer's thread to the reader's,
// hence `T: Send`; no `&T` is ever shared, hence no `T: Sync`.
unsafe impl<T: Send> Send for Shared<T> {}
// SAFETY: as above; all shared mutation goes through atomics, std mutexes, or the slot cells
// whose exclusive ownership is transferred by the tail word (see `PipeWriter`/`PipeReader`).
unsafe impl<T: Send> Sync for Shared<T> {}

/// Calls the notify object in `slot`, under its lock: this serialises it with `set_notify` and
/// saves the reference-count traffic of cloning the handle. [`Notify::notify`] must not call
/// back into the pipe, so the lock cannot be re-entered.
///
/// Under loom the handle is cloned and called after the lock is released: loom may switch
/// threads inside `notify` (its atomics are loom's), and a plain `std` mutex held across a
/// switch would block the model's single OS thread.
fn call(slot: &std::sync::Mutex<Option<NotifyHandle>>) {
    #[cfg(not(loom))]
    if let Some(n) = &*slot.lock().unwrap_or_else(|e| e.into_inner()) {
        n.notify();
    }
    #[cfg(loom)]
    {
        let handle = slot.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(n) = handle {
            n.notify();
        }
    }
}

fn set(slot: &std::sync::Mutex<Option<NotifyHandle>>, notify: Option<NotifyHandle>) {
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = notify;
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both ends are gone and `&mut self` is exclusive. The writer's drop flushed everything
        // it had staged, so the live items are exactly the `published - read` items after the
        // reader's final cursor.
        let published = self.tail.load(Ordering::Acquire) >> SHIFT;
        // SAFETY: `&mut self`: no other access to `reader_final` can exist.
        let cursor = self.reader_final.with_mut(|p| unsafe { (*p).take() });
        if let Some(ReaderCursor {
            mut chunk,
            mut idx,
            items,
        }) = cursor
        {
            let mut remaining = diff(published, items);
            while remaining > 0 {
                if idx == CHUNK {
                    // SAFETY: `chunk` is a live chunk of this pipe (owned by us now); the writer
                    // linked `next` before writing the item we are about to drop.
                    let next = unsafe { (*chunk).next.load(Ordering::Acquire) };
                    // SAFETY: every item of `chunk` was read or dropped; nothing points to it.
                    drop(unsafe { Box::from_raw(chunk) });
                    chunk = next;
                    idx = 0;
                }
                // SAFETY: `chunk` is live and `idx < CHUNK` (it moved to the next chunk at
                // CHUNK above); the slot holds an item that was flushed and never read (it is
                // among the last `published - read` items); we drop it exactly once.
                unsafe { Chunk::slot(chunk, idx).with_mut(|p| (*p).assume_init_drop()) };
                idx += 1;
                remaining -= 1;
            }
            while !chunk.is_null() {
                // SAFETY: `chunk` and its successors are live chunks of this pipe, now without
                // items; nothing else refers to them.
                let next = unsafe { (*chunk).next.load(Ordering::Acquire) };
                // SAFETY: as above.
                drop(unsafe { Box::from_raw(chunk) });
                chunk = next;
            }
        }
        let spare = self.spare.swap(ptr::null_mut(), Ordering::Acquire);
        if !spare.is_null() {
            // SAFETY: the spare chunk is owned by the pipe alone and holds no items.
            drop(unsafe { Box::from_raw(spare) });
        }
    }
}

/// What a reader lends an item to in its slot ([`PipeReader::read_lend`],
/// [`PipeReader::lend_ready`]): the closure of [`PipeReader::read_with`] as a type of the
/// caller's, whose methods can be marked `#[inline(always)]`, which a closure cannot. (Measured:
/// the compiler kept the receive path's closure out of line, even alone in its codegen unit.)
pub trait Lend<T> {
    /// What the lending gives back.
    type Out;
    /// Whether [`PipeReader::lend_ready`] may lend `item` (it is not changed if not).
    #[inline(always)]
    fn accepts(&self, _item: &T) -> bool {
        true
    }
    /// Looks at or changes `item` in its slot.
    fn lend(self, item: &mut T) -> Self::Out;
}

/// What fills a writer's slot on [`PipeWriter::write_flush_ready`]: a type of the caller's,
/// whose `fill` can be marked `#[inline(always)]` (see [`Lend`] for why not a closure).
pub trait Fill<T> {
    /// Initialises `slot` and returns it initialised (the very slot: anything else panics).
    fn fill(self, slot: &mut MaybeUninit<T>) -> &mut T;
}

/// A closure as a [`Lend`].
struct WithFn<F>(F);

impl<T, R, F: FnOnce(&mut T) -> R> Lend<T> for WithFn<F> {
    type Out = R;
    #[inline(always)]
    fn lend(self, item: &mut T) -> R {
        (self.0)(item)
    }
}

/// A borrowed `FnMut` closure as a [`Lend`], for a reader's loop that lends one item per turn.
/// It calls the closure itself (`call_mut`), not through `&mut F`'s `FnOnce` shim: the shim
/// was a call LLVM sometimes left out of line, depending on where the caller's code fell.
struct WithFnMut<'a, F>(&'a mut F);

impl<T, R, F: FnMut(&mut T) -> R> Lend<T> for WithFnMut<'_, F> {
    type Out = R;
    #[inline(always)]
    fn lend(self, item: &mut T) -> R {
        (*self.0)(item)
    }
}

/// Lends the item in slot `p` to `l`; returns whether it ends a message (as read, before `l`)
/// and `l`'s result. A function rather than a closure so that it is inlined into the reader's
/// loops whatever `l` holds.
///
/// # Safety
///
/// `p` holds an initialised item that nothing else refers to for the call.
#[inline(always)]
unsafe fn lend<T: PipeItem, L: Lend<T>>(p: *mut MaybeUninit<T>, l: L) -> (bool, L::Out) {
    // SAFETY: the caller's.
    let item = unsafe { (*p).assume_init_mut() };
    let ends = item.ends_message();
    (ends, l.lend(item))
}

/// Drops the item in slot `p`, unless its drop is known to do nothing
/// ([`PipeItem::drop_is_noop`]: a reader that moved the item's contents out leaves a husk).
///
/// # Safety
///
/// `p` holds an initialised item that nothing else refers to and that is not used again.
#[inline(always)]
unsafe fn drop_slot<T: PipeItem>(p: *mut MaybeUninit<T>) {
    // SAFETY: the caller's.
    unsafe {
        if !(*p).assume_init_ref().drop_is_noop() {
            (*p).assume_init_drop();
        }
    }
}

/// Creates a pipe. See the [module documentation](self) for the guarantees.
pub fn pipe<T: PipeItem>(config: PipeConfig) -> (PipeWriter<T>, PipeReader<T>) {
    let first = Chunk::<T>::alloc();
    let (lwm, hwm) = (config.effective_lwm(), config.hwm);
    let shared = Arc::new(Shared {
        tail: CachePadded::new(AtomicUsize::new(0)),
        head: CachePadded::new(HeadLine {
            word: AtomicUsize::new(0),
            resume_at: AtomicUsize::new(0),
            mark_moves: AtomicUsize::new(0),
        }),
        spare: AtomicPtr::new(ptr::null_mut()),
        reader_notify: std::sync::Mutex::new(config.reader_notify),
        writer_notify: std::sync::Mutex::new(config.writer_notify),
        reader_final: UnsafeCell::new(None),
    });
    let step = lwm.max(1);
    let writer = PipeWriter::new(shared.clone(), first, hwm, lwm);
    let reader = PipeReader::new(shared, first, hwm, step);
    (writer, reader)
}
