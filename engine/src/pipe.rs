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

/// Slots per storage chunk. Small under loom so that models cross chunk boundaries.
///
/// 64 slots of a 56-byte `Msg` are 3.5 KiB: an idle connection's two pipes cost 7 KiB rather
/// than libzmq's 2 × 16 KiB, and a busy pipe moves to a new chunk every 64 messages, where the
/// recycled spare makes that an exchange of pointers, not an allocation.
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

struct Chunk<T> {
    slots: [UnsafeCell<MaybeUninit<T>>; CHUNK],
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
        unsafe { (*chunk).slots.get_unchecked(idx) }
    }

    fn alloc() -> *mut Chunk<T> {
        Box::into_raw(Box::new(Chunk {
            slots: std::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
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
                // SAFETY: slot `idx` of `chunk` holds an item that was flushed and never read
                // (it is among the last `published - read` items); we drop it exactly once.
                unsafe { (*chunk).slots[idx].with_mut(|p| (*p).assume_init_drop()) };
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

/// Lends the item in slot `p` to `f`; returns whether it ends a message (as read, before `f`)
/// and `f`'s result. A function rather than a closure so that it is inlined into the reader's
/// loops whatever `f` holds.
///
/// # Safety
///
/// `p` holds an initialised item that nothing else refers to for the call.
#[inline(always)]
unsafe fn lend<T: PipeItem, R>(p: *mut MaybeUninit<T>, f: impl FnOnce(&mut T) -> R) -> (bool, R) {
    // SAFETY: the caller's.
    let item = unsafe { (*p).assume_init_mut() };
    let ends = item.ends_message();
    (ends, f(item))
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
    let lwm = config.effective_lwm();
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
    let writer = PipeWriter {
        shared: shared.clone(),
        chunk: first,
        idx: 0,
        items: 0,
        flushed: 0,
        messages: 0,
        in_message: false,
        closed: false,
        hwm: config.hwm,
        lwm,
        limited: config.hwm != 0,
        armed_at: None,
        msg_start: (first, 0, 0),
        lazy: None,
        view: 0,
        view_moves: 0,
    };
    let reader = PipeReader {
        shared,
        chunk: first,
        idx: 0,
        items: 0,
        available: 0,
        messages: 0,
        published_messages: 0,
        publish_at: step,
        step,
        credit: 0,
        track_hwm: config.hwm != 0,
        closed: false,
    };
    (writer, reader)
}

/// Result of the writer's high-water check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    Yes,
    Full,
    Closed,
}

/// The writing end of a [pipe](self). `Send`, not `Sync`.
///
/// Writer-only state: the cursor `(chunk, idx)` and the counters live in this struct, so only
/// the thread owning the writer touches them. The slots at and after the cursor are not yet
/// published (their index is beyond the tail count), so the reader never touches them; the
/// writer fills them and then publishes them with the release swap in [`flush`](Self::flush).
pub struct PipeWriter<T: PipeItem> {
    shared: Arc<Shared<T>>,
    chunk: *mut Chunk<T>,
    idx: usize,
    /// Items written (staged or flushed).
    items: usize,
    /// Items published by the last flush.
    flushed: usize,
    /// Complete messages written.
    messages: usize,
    in_message: bool,
    closed: bool,
    hwm: usize,
    lwm: usize,
    /// Made with a high-water mark: the reader reports its progress, so the mark can change.
    limited: bool,
    /// The resume point last stored with `WAITING`.
    armed_at: Option<usize>,
    /// Where the multipart message in progress starts: chunk, slot, items written before it.
    msg_start: (*mut Chunk<T>, usize, usize),
    /// Lazy credit: the owner's epoch, and the epoch at which `view` was read.
    lazy: Option<(std::sync::Arc<CreditEpoch>, u64)>,
    /// Lazy credit: the reader's `mark_moves` when `view` was read.
    view_moves: usize,
    /// Lazy credit: the head word's count (messages read plus credit) when last looked at.
    view: usize,
}

// SAFETY: the writer's raw pointer refers into storage owned by the shared state, which is
// `Send` for `T: Send`; the writer's accesses through it are exclusive to its owning thread as
// argued on the type.
unsafe impl<T: PipeItem> Send for PipeWriter<T> {}

impl<T: PipeItem> PipeWriter<T> {
    /// Stages `item`; it becomes visible to the reader at the next [`flush`](Self::flush).
    ///
    /// Fails with [`WriteError::Full`] when `item` starts a message and the high-water mark is
    /// reached (the writer then flushes and arms its writable notification, see
    /// [`is_writable`](Self::is_writable)); with [`WriteError::Closed`] when either end closed.
    #[inline]
    pub fn write(&mut self, item: T) -> Result<(), WriteError<T>> {
        match self.admit() {
            Room::Yes => {
                self.stage(item);
                Ok(())
            }
            Room::Full => Err(WriteError::Full(item)),
            Room::Closed => Err(WriteError::Closed(item)),
        }
    }

    /// [`write`](Self::write) with the item made by `make` only once the pipe has taken it,
    /// straight into its slot: a sender with a borrowed body (a slice to copy) builds the item
    /// in place instead of moving it through its callers. On failure `make` is not called.
    #[inline]
    pub fn write_with(&mut self, make: impl FnOnce() -> T) -> Result<(), WriteError<()>> {
        self.write_in_place(|slot| slot.write(make()))
    }

    /// [`write_with`](Self::write_with) with the item initialised by `init` in the slot
    /// itself, which it returns initialised: an item whose fields are filled one by one (a
    /// small body copied into a `Msg`'s inline buffer) is then written once, where it stays,
    /// rather than built elsewhere and moved in. On failure `init` is not called.
    ///
    /// # Panics
    ///
    /// When `init` returns a reference to anything but the slot it was given (the slot is
    /// then not taken: nothing is staged).
    #[inline(always)]
    pub fn write_in_place(
        &mut self,
        init: impl FnOnce(&mut MaybeUninit<T>) -> &mut T,
    ) -> Result<(), WriteError<()>> {
        match self.admit() {
            Room::Yes => {
                self.stage_in_place(init);
                Ok(())
            }
            Room::Full => Err(WriteError::Full(())),
            Room::Closed => Err(WriteError::Closed(())),
        }
    }

    /// Writes a run of items, each initialised in its slot by `next` (as by
    /// [`write_in_place`](Self::write_in_place)) until `next` returns `None` (it then must
    /// have consumed nothing) or the pipe has no room for another message by this call's one
    /// look at the reader's progress; returns how many items were written (staged, as by
    /// `write`). A writer with something to write after the run writes it with
    /// [`write`](Self::write) (or `write_in_place`), whose checks then decide: the run takes
    /// only what those checks would admit, with one load of the reader's word and one pass of
    /// the closed and full checks per run instead of per item. Writes nothing when the writer
    /// is closed, the reader has closed, or the pipe is at its mark.
    ///
    /// # Panics
    ///
    /// As `write_in_place`, when `next` returns anything but its slot.
    #[inline]
    pub fn write_run(
        &mut self,
        mut next: impl FnMut(&mut MaybeUninit<T>) -> Option<&mut T>,
    ) -> usize {
        let head = self.shared.head.word.load(Ordering::Acquire);
        if self.closed || head & READER_CLOSED != 0 {
            return 0;
        }
        // Messages that may still start: the full check of `admit`, once (a first part is
        // admitted while `room > 0`; later parts of a started message always are, and its
        // last part uses the room up).
        let mut room = if self.hwm == 0 {
            usize::MAX
        } else {
            let queued = diff(self.messages, self.count_of(head));
            if queued >= self.hwm {
                return 0; // `admit`'s slow path decides (arming, a stale view, credit)
            }
            self.hwm - queued
        };
        let mut written = 0;
        // The cursor and counts are worked on in locals (registers) and stored after each
        // item, so that the writer's state is exact at every point `next` may panic.
        let (mut chunk, mut idx, mut items) = (self.chunk, self.idx, self.items);
        let (mut messages, mut in_message) = (self.messages, self.in_message);
        while room > 0 {
            if idx == CHUNK {
                self.next_chunk();
                (chunk, idx) = (self.chunk, self.idx);
            }
            // SAFETY: as in `stage_in_place`: the slot is beyond the published count, empty
            // and the writer's alone; it counts as written only once `next` returned it.
            let ends = unsafe {
                Chunk::slot(chunk, idx).with_mut(|p| {
                    let item = next(&mut *p)?;
                    assert!(
                        ptr::eq(item, (*p).as_ptr()),
                        "write_run: next must return its slot"
                    );
                    Some(item.ends_message())
                })
            };
            let Some(ends) = ends else { break };
            if !in_message && !ends {
                self.msg_start = (chunk, idx, items);
            }
            idx += 1;
            items = items.wrapping_add(1);
            written += 1;
            self.idx = idx;
            self.items = items;
            if ends {
                messages = messages.wrapping_add(1);
                self.messages = messages;
                room -= 1;
            }
            in_message = !ends;
            self.in_message = in_message;
        }
        written
    }

    /// Whether the next item may be written: the checks of [`write`](Self::write).
    #[inline(always)]
    fn admit(&mut self) -> Room {
        let head = self.shared.head.word.load(Ordering::Acquire);
        if self.closed || head & READER_CLOSED != 0 {
            return Room::Closed;
        }
        if !self.in_message && self.hwm != 0 && diff(self.messages, self.count_of(head)) >= self.hwm
        {
            return self.writable_slow(head);
        }
        Room::Yes
    }

    /// The read count the full check compares with: the live one, or with lazy credit the one
    /// last looked at.
    #[inline(always)]
    fn count_of(&self, head: usize) -> usize {
        if self.lazy.is_some() {
            self.view
        } else {
            head >> SHIFT
        }
    }

    /// Stages an admitted item.
    #[inline(always)]
    fn stage(&mut self, item: T) {
        self.stage_in_place(|slot| slot.write(item));
    }

    /// Stages an admitted item initialised by `init` in its slot: the slot is found before the
    /// item is made, so that the item is built there rather than on the stack and then copied.
    #[inline(always)]
    fn stage_in_place(&mut self, init: impl FnOnce(&mut MaybeUninit<T>) -> &mut T) {
        if self.idx == CHUNK {
            self.next_chunk();
        }
        let (chunk, idx, items) = (self.chunk, self.idx, self.items);
        // SAFETY: slot `idx` of the writer's chunk is beyond the published count, so the reader
        // does not access it (see the type's docs); it is empty (a fresh or recycled chunk,
        // whose items were all moved out by the reader), and `&mut` to it is unique here. It
        // counts as written only once `init` returned it initialised (the pointer check: a
        // reference to anything else leaves it unwritten, and the cursor does not move).
        let ends = unsafe {
            Chunk::slot(self.chunk, self.idx).with_mut(|p| {
                let item = init(&mut *p);
                assert!(
                    ptr::eq(item, (*p).as_ptr()),
                    "write_in_place: init must return its slot"
                );
                item.ends_message()
            })
        };
        self.idx += 1;
        self.items = self.items.wrapping_add(1);
        if ends {
            self.messages = self.messages.wrapping_add(1);
            if self.in_message {
                self.in_message = false;
            }
        } else if !self.in_message {
            // A multipart message starts: where [`rollback`](Self::rollback) goes back to.
            // (Single-part messages, the common case, cost nothing here.)
            self.msg_start = (chunk, idx, items);
            self.in_message = true;
        }
    }

    /// Takes back the staged parts of the message in progress (libzmq's `pipe_t::rollback`):
    /// they are dropped and the writer is at a message boundary again. Returns how many parts
    /// were dropped. Parts of it already flushed cannot be taken back (the reader may hold
    /// them): then nothing is dropped. [`close`](Self::close) does this first, so a reader never
    /// sees the head of a message whose writer went away.
    pub fn rollback(&mut self) -> usize {
        if !self.in_message {
            return 0;
        }
        let (chunk, idx, items) = self.msg_start;
        if diff(self.flushed, items) != 0 && reached(self.flushed, items) {
            return 0; // part of the message is visible already
        }
        self.in_message = false;
        let n = diff(self.items, items);
        let (mut c, mut i) = (chunk, idx);
        for _ in 0..n {
            if i == CHUNK {
                // SAFETY: `c` is a chunk of this writer's: the message's parts were written
                // into it and the chunks `next_chunk` linked after it, which the reader cannot
                // reach (nothing of the message is published).
                c = unsafe { (*c).next.load(Ordering::Relaxed) };
                i = 0;
            }
            // SAFETY: slot `i` of `c` holds a part of the message in progress, written by
            // this writer and never published: only the writer refers to it; dropped once,
            // since the cursor moves back before it below.
            unsafe { (*c).slots[i].with_mut(|p| (*p).assume_init_drop()) };
            i += 1;
        }
        // The chunks linked after the message's first chunk hold only its parts now.
        // SAFETY: `chunk` is live (the writer's, at or before its cursor).
        let mut next = unsafe { (*chunk).next.swap(ptr::null_mut(), Ordering::Relaxed) };
        while !next.is_null() {
            // SAFETY: linked by this writer during the message and unreachable by the
            // reader (see above); empty now, and unlinked from `chunk` above.
            let after = unsafe { (*next).next.load(Ordering::Relaxed) };
            // SAFETY: as above; nothing else refers to it.
            drop(unsafe { Box::from_raw(next) });
            next = after;
        }
        self.chunk = chunk;
        self.idx = idx;
        self.items = items;
        n
    }

    /// Whether a [`write`](Self::write) of a message's first part would succeed now: `false`
    /// when closed or at the high-water mark. Always `true` in the middle of a message.
    ///
    /// When it returns `false` because of the high-water mark it has flushed the staged items
    /// and armed the writable notification: the writer's [`Notify`] will be called once the
    /// reader has drained to the low-water mark (or closed).
    pub fn is_writable(&mut self) -> bool {
        let head = self.shared.head.word.load(Ordering::Acquire);
        if self.closed || head & READER_CLOSED != 0 {
            return false;
        }
        if self.in_message || self.hwm == 0 || diff(self.messages, self.count_of(head)) < self.hwm {
            return true;
        }
        self.writable_slow(head) == Room::Yes
    }

    /// Slow path of the high-water check: flush, then either find room or record the resume
    /// point and mark the writer waiting (atomically with the check of the read count).
    #[cold]
    fn writable_slow(&mut self, mut head: usize) -> Room {
        let stale = match &mut self.lazy {
            Some((epoch, seen)) => {
                let now = epoch.get();
                let stale = now == *seen;
                *seen = now;
                stale
            }
            None => false,
        };
        let stale = stale && {
            // Credit granted since the view was read is seen at once (see `mark_moves`).
            let moves = self.shared.head.mark_moves.load(Ordering::Acquire);
            if moves == self.view_moves {
                true
            } else {
                self.view_moves = moves;
                head = self.shared.head.word.load(Ordering::Acquire);
                false
            }
        };
        if stale {
            // Not allowed to look again yet: full by the old view (libzmq's writer before its
            // socket processes the reader's activate_write). Flushed so the reader drains;
            // not armed: the owner advances the epoch before it waits.
            if head & READER_CLOSED != 0 {
                return Room::Closed;
            }
            if self.hwm != 0 && at_mark(self.messages, self.view, self.hwm) {
                self.flush();
                return Room::Full;
            }
            return Room::Yes;
        }
        self.view = head >> SHIFT;
        if self.hwm == 0 || !at_mark(self.messages, head >> SHIFT, self.hwm) {
            // The reader granted credit beyond what is queued (the fast paths' unsigned
            // difference took it for a full pipe), or the mark was lifted.
            return if head & READER_CLOSED != 0 {
                Room::Closed
            } else {
                Room::Yes
            };
        }
        // The reader can only drain what is flushed: without this, a full writer with staged
        // messages would wait for a notify that never comes.
        self.flush();
        let resume_at = self.messages.wrapping_sub(self.lwm) & COUNT_MASK;
        loop {
            if head & READER_CLOSED != 0 {
                return Room::Closed;
            }
            if !at_mark(self.messages, head >> SHIFT, self.hwm) {
                return Room::Yes;
            }
            if head & WAITING != 0 && self.armed_at == Some(resume_at) {
                // Still armed for this very resume point (the reader clears WAITING when it
                // notifies): a writer polling `is_writable` costs loads only.
                return Room::Full;
            }
            self.armed_at = Some(resume_at);
            // Relaxed: published by the release CAS below, read by the reader after an RMW
            // on the same word that reads from (or after) that CAS.
            self.shared
                .head
                .resume_at
                .store(resume_at, Ordering::Relaxed);
            match self.shared.head.word.compare_exchange(
                head,
                head | WAITING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Room::Full,
                Err(actual) => {
                    head = actual;
                    self.view = head >> SHIFT;
                }
            }
        }
    }

    #[cold]
    fn next_chunk(&mut self) {
        let mut next = self.shared.spare.swap(ptr::null_mut(), Ordering::AcqRel);
        if next.is_null() {
            next = Chunk::alloc();
        } else {
            // SAFETY: the spare chunk was handed over by the reader (acquire swap above pairs
            // with its release swap); nobody else refers to it now.
            unsafe { (*next).next.store(ptr::null_mut(), Ordering::Relaxed) };
        }
        // SAFETY: `self.chunk` is live: the reader recycles a chunk only after moving past it,
        // which needs an item in a later chunk, which the writer has not written yet.
        unsafe { (*self.chunk).next.store(next, Ordering::Release) };
        self.chunk = next;
        self.idx = 0;
    }

    /// Makes every staged item visible to the reader with one atomic swap, and notifies the
    /// reader if it was asleep (once per sleep). After the reader closed, flushed items are
    /// dropped when the writer end is dropped (check [`is_reader_closed`](Self::is_reader_closed)
    /// or the next `write`).
    #[inline]
    pub fn flush(&mut self) -> FlushOutcome {
        if self.items == self.flushed {
            return FlushOutcome::Nothing;
        }
        self.publish(0)
    }

    fn publish(&mut self, closed: usize) -> FlushOutcome {
        self.flushed = self.items;
        let old = self.shared.tail.swap(
            ((self.items & COUNT_MASK) << SHIFT) | closed,
            Ordering::AcqRel,
        );
        if old & ASLEEP != 0 {
            call(&self.shared.reader_notify);
            FlushOutcome::ReaderWoken
        } else {
            FlushOutcome::Flushed
        }
    }

    /// Closes the writing end: takes back the staged parts of an unfinished message
    /// ([`rollback`](Self::rollback)), flushes what is staged and tells the reader that nothing more
    /// will come (it reads [`ReadError::Closed`] after the flushed items). Idempotent; also done
    /// by drop. Later writes fail with [`WriteError::Closed`].
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.rollback();
            self.publish(WRITER_CLOSED);
        }
    }

    /// Whether the reader has read every item written so far and gone to sleep on the empty
    /// pipe (nothing staged here, nothing flushed that it has not taken). For a writer that
    /// would hand an item past the pipe (the send fast path): only then is nothing of its
    /// queued ahead. The reader may wake and find more only after a later flush.
    #[inline]
    pub fn reader_drained(&self) -> bool {
        self.items == self.flushed && self.shared.tail.load(Ordering::Acquire) & ASLEEP != 0
    }

    /// Whether the reader end has closed (or been dropped).
    pub fn is_reader_closed(&self) -> bool {
        self.shared.head.word.load(Ordering::Acquire) & READER_CLOSED != 0
    }

    /// Replaces the object called when the writer may write again. After setting it, call
    /// [`is_writable`](Self::is_writable) before relying on a notification.
    pub fn set_notify(&mut self, notify: Option<NotifyHandle>) {
        set(&self.shared.writer_notify, notify);
    }

    /// Complete messages written (staged or flushed).
    pub fn messages_written(&self) -> usize {
        self.messages
    }

    /// Items written (staged or flushed).
    pub fn items_written(&self) -> usize {
        self.items
    }

    /// Items staged and not yet flushed.
    pub fn staged(&self) -> usize {
        diff(self.items, self.flushed)
    }

    /// The high-water mark (0 = unlimited), not counting the credit the reader granted
    /// ([`PipeReader::adjust_writer_hwm`]).
    pub fn hwm(&self) -> usize {
        self.hwm
    }

    /// Changes this writer's high-water mark (libzmq's `pipe_t::set_hwms` for the writing side,
    /// when SNDHWM changes after the pipe exists). Raising or lowering it is local to the
    /// writer: the new mark applies to the next first part written (messages already queued
    /// stay queued; a lower mark only makes the writer full sooner). 0 lifts the mark. A pipe
    /// made without a mark (`hwm == 0`) keeps none: its reader does not report progress.
    pub fn set_hwm(&mut self, hwm: usize) {
        if !self.limited {
            return;
        }
        self.hwm = hwm;
        self.lwm = PipeConfig::with_hwm(hwm).effective_lwm();
        // A later arm must store the resume point for the new low-water mark.
        self.armed_at = None;
    }

    /// Lazy credit (see the [module docs](self)): with `Some`, the full check uses the read
    /// count last looked at and looks again only after `epoch` advanced. `None` (the default)
    /// reads the live count at every check.
    pub fn set_credit_epoch(&mut self, epoch: Option<std::sync::Arc<CreditEpoch>>) {
        self.view_moves = self.shared.head.mark_moves.load(Ordering::Acquire);
        self.view = self.shared.head.word.load(Ordering::Acquire) >> SHIFT;
        self.lazy = epoch.map(|e| {
            let now = e.get();
            (e, now)
        });
    }

    /// With lazy credit, looks at the reader's progress now (for a write whose failure would
    /// drop the message rather than refuse it); returns whether the writer may write. Does not
    /// arm the writable notification.
    #[inline]
    pub fn refresh(&mut self) -> bool {
        let head = self.shared.head.word.load(Ordering::Acquire);
        self.view = head >> SHIFT;
        !self.closed
            && head & READER_CLOSED == 0
            && (self.in_message || self.hwm == 0 || !at_mark(self.messages, self.view, self.hwm))
    }
}

impl<T: PipeItem> Drop for PipeWriter<T> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<T: PipeItem> fmt::Debug for PipeWriter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeWriter")
            .field("items_written", &self.items)
            .field("staged", &self.staged())
            .field("messages_written", &self.messages)
            .field("in_message", &self.in_message)
            .field("hwm", &self.hwm)
            .field("lwm", &self.lwm)
            .field("closed", &self.closed)
            .finish()
    }
}

/// The reading end of a [pipe](self). `Send`, not `Sync`.
///
/// Reader-only state: the cursor `(chunk, idx)` and the counters live in this struct. The slots
/// before the published count and at or after the cursor belong to the reader alone: the
/// writer's release swap handed them over and the writer never revisits a published slot.
/// Chunks the reader has finished go to the spare slot (release) or are freed.
pub struct PipeReader<T: PipeItem> {
    shared: Arc<Shared<T>>,
    chunk: *mut Chunk<T>,
    idx: usize,
    /// Items read.
    items: usize,
    /// Published item count last seen in the tail word.
    available: usize,
    /// Complete messages read.
    messages: usize,
    /// Messages-read count last published to the head word.
    published_messages: usize,
    /// Next messages-read count at which to publish.
    publish_at: usize,
    step: usize,
    /// Credit granted to the writer ([`adjust_writer_hwm`](Self::adjust_writer_hwm)), in the
    /// counts' modular arithmetic: the head word's count is `published_messages + credit`.
    credit: usize,
    track_hwm: bool,
    closed: bool,
}

// SAFETY: as for `PipeWriter`: the raw pointer refers into storage owned by the shared state and
// the reader's accesses are exclusive to its owning thread.
unsafe impl<T: PipeItem> Send for PipeReader<T> {}

impl<T: PipeItem> PipeReader<T> {
    /// Takes the next item.
    ///
    /// [`ReadError::Empty`]: nothing flushed is left, and the reader is now marked asleep — the
    /// check and the mark are one atomic operation, so the writer's next flush (or close) sees
    /// the mark and calls the reader's [`Notify`]. [`ReadError::Closed`]: the writer closed and
    /// everything it flushed has been read, or this reader closed.
    ///
    /// A reader that spins before sleeping should spin with [`try_read`](Self::try_read) and
    /// call `read` last, just before it sleeps: each `read` that finds the pipe empty while
    /// awake costs a compare-and-swap on the line the writer's flush swaps.
    #[inline(always)]
    pub fn read(&mut self) -> Result<T, ReadError> {
        if self.items == self.available {
            self.refill(true)?;
        }
        Ok(self.next_item())
    }

    /// Like [`read`](Self::read), but an `Empty` result does **not** mark the reader asleep:
    /// no notify will come for it. For the spin phase of a reader that will call `read` before
    /// it really sleeps. Costs a plain load when the pipe is empty.
    #[inline]
    pub fn try_read(&mut self) -> Result<T, ReadError> {
        if self.items == self.available {
            self.refill(false)?;
        }
        Ok(self.next_item())
    }

    /// [`read`](Self::read) that lends the item to `f` in its slot instead of moving it out,
    /// then drops what `f` left there: a consumer that looks at the item (an encoder copying
    /// a small body) or swaps it with one of its own (a receiver reusing its part) costs no
    /// move of the whole item. The high-water accounting is by the item as read, before `f`.
    #[inline(always)]
    pub fn read_with<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> Result<R, ReadError> {
        if self.items == self.available {
            self.refill(true)?;
        }
        if self.idx == CHUNK {
            self.next_chunk();
        }
        let (chunk, idx) = (self.chunk, self.idx);
        // SAFETY: `items < available`, so the slot under the cursor was filled by the writer and
        // published by a release swap that our acquire load saw; it belongs to the reader
        // alone. `f` borrows it for its call only (if `f` panics, the cursor has not moved and
        // the slot still holds a valid item).
        let (ends, r) = unsafe { Chunk::slot(chunk, idx).with_mut(|p| lend(p, f)) };
        self.idx += 1;
        self.items = self.items.wrapping_add(1);
        // SAFETY: the cursor moved past the slot first, so the item is dropped exactly once
        // (if its drop panics, the slot is not visited again).
        unsafe { Chunk::slot(chunk, idx).with_mut(|p| drop_slot(p)) };
        if ends {
            self.messages = self.messages.wrapping_add(1);
            if self.track_hwm && self.messages == self.publish_at {
                self.publish_read();
            }
        }
        Ok(r)
    }

    /// Reads items in a run, each lent to `f` in its slot as by
    /// [`read_with`](Self::read_with), for as long as `f` returns `true`. Returns `Ok` with
    /// the number read once `f` returned `false` (after the item it was given), or the error
    /// the next [`read`](Self::read) would give once nothing is left: `Empty` (the reader now
    /// marked asleep, as by `read`) or `Closed`; the items read before it are consumed either
    /// way. The reader's progress is published at the same counts as by one `read` per item.
    #[inline]
    pub fn read_run(&mut self, mut f: impl FnMut(&mut T) -> bool) -> Result<usize, ReadError> {
        let mut n = 0;
        loop {
            if self.items == self.available {
                self.refill(true)?;
            }
            // The items flushed so far, read without looking at the writer's word again.
            while self.items != self.available {
                if self.idx == CHUNK {
                    self.next_chunk();
                }
                let (chunk, idx) = (self.chunk, self.idx);
                // SAFETY: as in `read_with`.
                let (ends, more) = unsafe { Chunk::slot(chunk, idx).with_mut(|p| lend(p, &mut f)) };
                self.idx += 1;
                self.items = self.items.wrapping_add(1);
                n += 1;
                // SAFETY: as in `read_with`.
                unsafe { Chunk::slot(chunk, idx).with_mut(|p| drop_slot(p)) };
                if ends {
                    self.messages = self.messages.wrapping_add(1);
                    if self.track_hwm && self.messages == self.publish_at {
                        self.publish_read();
                    }
                }
                if !more {
                    return Ok(n);
                }
            }
        }
    }

    #[inline(always)]
    fn next_item(&mut self) -> T {
        let item = self.take();
        if item.ends_message() {
            self.messages = self.messages.wrapping_add(1);
            if self.track_hwm && self.messages == self.publish_at {
                self.publish_read();
            }
        }
        item
    }

    /// Looks for newly flushed items; when there are none, marks the reader asleep if `arm`
    /// (atomically with the check).
    #[cold]
    fn refill(&mut self, arm: bool) -> Result<(), ReadError> {
        if self.closed {
            return Err(ReadError::Closed);
        }
        let mut tail = self.shared.tail.load(Ordering::Acquire);
        loop {
            let published = tail >> SHIFT;
            if published != self.items & COUNT_MASK {
                self.available = self.items.wrapping_add(diff(published, self.items));
                return Ok(());
            }
            if tail & WRITER_CLOSED != 0 {
                return Err(ReadError::Closed);
            }
            if self.track_hwm && self.messages != self.published_messages {
                self.publish_read();
            }
            if !arm || tail & ASLEEP != 0 {
                return Err(ReadError::Empty);
            }
            match self.shared.tail.compare_exchange(
                tail,
                tail | ASLEEP,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Err(ReadError::Empty),
                Err(actual) => tail = actual,
            }
        }
    }

    /// Moves the item under the cursor out and advances. Caller: an item is available.
    #[inline(always)]
    fn take(&mut self) -> T {
        if self.idx == CHUNK {
            self.next_chunk();
        }
        // SAFETY: `items < available`, so the slot under the cursor was filled by the writer and
        // published by a release swap that our acquire load saw; it belongs to the reader alone
        // and is read (moved out) exactly once, as the cursor advances past it.
        let item =
            unsafe { Chunk::slot(self.chunk, self.idx).with_mut(|p| (*p).assume_init_read()) };
        self.idx += 1;
        self.items = self.items.wrapping_add(1);
        item
    }

    #[cold]
    fn next_chunk(&mut self) {
        let done = self.chunk;
        // SAFETY: `done` is live (the reader's own chunk). The writer stored `next` (release)
        // before writing the item we are about to read, which we know is published.
        let next = unsafe { (*done).next.load(Ordering::Acquire) };
        debug_assert!(!next.is_null());
        self.chunk = next;
        self.idx = 0;
        // Every item of `done` has been moved out and the writer has moved on: recycle it.
        let old = self.shared.spare.swap(done, Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: `old` was parked by this reader and not taken by the writer (its swap
            // would have replaced it by null); nobody else refers to it.
            drop(unsafe { Box::from_raw(old) });
        }
    }

    /// Publishes the messages-read count; notifies a waiting writer whose resume point is
    /// reached.
    fn publish_read(&mut self) {
        self.publish(0);
    }

    /// Publishes the messages-read count together with `credit` more (modular: a lowered mark
    /// is a negative credit), in one RMW on the head word: the writer's full check and its
    /// arming compare-and-swap read the read count and the credit as one value, so a change of
    /// either is ordered with them. Then notifies a waiting writer whose resume point the new
    /// head count reached — the same test for progress and for credit, so a writer full at the
    /// old mark is woken exactly when the new count gives it room at its low-water mark.
    fn publish(&mut self, credit: usize) {
        let delta = diff(self.messages, self.published_messages).wrapping_add(credit);
        self.published_messages = self.messages;
        self.credit = self.credit.wrapping_add(credit);
        let old = self
            .shared
            .head
            .word
            .fetch_add(delta << SHIFT, Ordering::AcqRel);
        self.publish_at = self.messages.wrapping_add(self.step);
        if old & WAITING != 0 {
            let count = self.messages.wrapping_add(self.credit) & COUNT_MASK;
            let target = self.shared.head.resume_at.load(Ordering::Relaxed);
            if reached(count, target) {
                let prev = self.shared.head.word.fetch_and(!WAITING, Ordering::AcqRel);
                if prev & WAITING != 0 {
                    call(&self.shared.writer_notify);
                }
            } else if diff(target, count) < self.step {
                self.publish_at = self.messages.wrapping_add(diff(target, count));
            }
        }
    }

    /// Moves the writer's high-water mark by `delta` messages from this side (libzmq's
    /// `set_hwms` on the writing end when the reader's RCVHWM changes, or the inproc bind's
    /// `set_hwms_boost` for a pipe made before it): the reader grants (or, negative, takes back)
    /// credit by publishing it with its read count. A writer waiting at its old mark is woken
    /// when the raise gives it room down to its low-water mark. Ignored for a pipe made without
    /// a mark. The caller keeps the writer's mark plus the credit at 1 or more.
    pub fn adjust_writer_hwm(&mut self, delta: isize) {
        if !self.track_hwm || self.closed || delta == 0 {
            return;
        }
        self.publish(delta as usize);
        // Release: a writer that reads this count reads the head word with the credit.
        self.shared.head.mark_moves.fetch_add(1, Ordering::Release);
    }

    /// Items flushed by the writer and not yet read (a hint: the writer may flush more at any
    /// moment). Does not mark the reader asleep; a plain load.
    pub fn len_hint(&self) -> usize {
        if self.closed {
            return 0;
        }
        diff(
            self.shared.tail.load(Ordering::Acquire) >> SHIFT,
            self.items,
        )
    }

    /// Closes the reading end: the writer's next write fails with [`WriteError::Closed`] (and a
    /// writer waiting for writability is notified), and the items queued now are dropped.
    /// Idempotent; also done by drop. Later reads return [`ReadError::Closed`].
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        let old = self
            .shared
            .head
            .word
            .fetch_or(READER_CLOSED, Ordering::AcqRel);
        if old & WAITING != 0 {
            call(&self.shared.writer_notify);
        }
        let published = self.shared.tail.load(Ordering::Acquire) >> SHIFT;
        while published != self.items & COUNT_MASK {
            drop(self.take());
        }
        self.available = self.items;
    }

    /// Whether the writer end has closed (or been dropped); items may still be left to read.
    pub fn is_writer_closed(&self) -> bool {
        self.shared.tail.load(Ordering::Acquire) & WRITER_CLOSED != 0
    }

    /// Replaces the object called when the reader, asleep, has something to read. After setting
    /// it, call [`read`](Self::read) before relying on a notification.
    pub fn set_notify(&mut self, notify: Option<NotifyHandle>) {
        set(&self.shared.reader_notify, notify);
    }

    /// Complete messages read.
    pub fn messages_read(&self) -> usize {
        self.messages
    }

    /// Items read.
    pub fn items_read(&self) -> usize {
        self.items
    }
}

impl<T: PipeItem> Drop for PipeReader<T> {
    fn drop(&mut self) {
        self.close();
        let cursor = ReaderCursor {
            chunk: self.chunk,
            idx: self.idx,
            items: self.items,
        };
        // SAFETY: `reader_final` is written only here, once, and read only by `Shared::drop`,
        // which runs after this end's `Arc` is dropped (the `Arc` count orders the two).
        self.shared
            .reader_final
            .with_mut(|p| unsafe { *p = Some(cursor) });
    }
}

impl<T: PipeItem> fmt::Debug for PipeReader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeReader")
            .field("items_read", &self.items)
            .field("messages_read", &self.messages)
            .field("len_hint", &self.len_hint())
            .field("closed", &self.closed)
            .finish()
    }
}
