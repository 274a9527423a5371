//! The writing end of a [pipe](super): staging, the batched publish ([`PipeWriter::flush`]),
//! the high-water check with its lazy credit, and the writer's half of termination.
//!
//! Owns: the writer's cursor and counters, which no other thread touches. Must never: touch a
//! published slot again, or block (a full pipe is an error the caller waits on).

use super::*;

/// Result of the writer's high-water check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    Yes,
    Full,
    Closed,
}

/// The writing end of a [pipe](super). `Send`, not `Sync`.
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
            // SAFETY: `c` is live and `i < CHUNK` (it moved to the next chunk at CHUNK
            // above); slot `i` holds a part of the message in progress, written by this writer
            // and never published: only the writer refers to it; dropped once, since the
            // cursor moves back before it below.
            unsafe { Chunk::slot(c, i).with_mut(|p| (*p).assume_init_drop()) };
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

    /// A sender's fast path: writes the single-part message `init` fills in its slot and
    /// flushes it, when that takes no call — no message under way, the pipe below its mark by
    /// one look at the reader's word, neither end closed, a free slot in the current chunk.
    /// Returns whether the reader was asleep: the caller then wakes it with
    /// [`wake_reader`](Self::wake_reader), out of line and last, so that its own path stays
    /// call-free. `Err(init)`, with nothing done and `init` given back unused, otherwise (the
    /// caller then writes by [`write`](Self::write) or
    /// [`write_in_place`](Self::write_in_place) and flushes): an `init` that holds the item
    /// itself (a part moved in) loses nothing.
    ///
    /// The item must end its message. One that does not is staged as the first part of a
    /// message, as `write_in_place` would, and not flushed (`Ok(false)`).
    ///
    /// # Panics
    ///
    /// As `write_in_place`, when `init` returns anything but its slot.
    #[inline(always)]
    pub fn write_flush_ready<F: Fill<T>>(&mut self, init: F) -> Result<bool, F> {
        let head = self.shared.head.word.load(Ordering::Acquire);
        if self.closed
            || head & READER_CLOSED != 0
            || self.in_message
            || self.idx == CHUNK
            || (self.hwm != 0 && diff(self.messages, self.count_of(head)) >= self.hwm)
        {
            return Err(init);
        }
        let (chunk, idx, items) = (self.chunk, self.idx, self.items);
        // The slot's address, used after `with_mut` returns (as in `PipeReader::lend_ready`,
        // and recorded by loom the same way: the write below comes before the flush's swap).
        // SAFETY: `chunk` is the writer's live chunk and `idx < CHUNK` (checked above).
        let p = unsafe { Chunk::slot(chunk, idx) }.with_mut(|p| p);
        // SAFETY: as in `stage_in_place`: the slot is beyond the published count, empty and
        // the writer's alone; it counts as written only once `init` returned it.
        let item = init.fill(unsafe { &mut *p });
        assert!(
            ptr::eq(item, p.cast::<T>().cast_const()),
            "write_flush_ready: init must return its slot"
        );
        let ends = item.ends_message();
        self.idx += 1;
        self.items = self.items.wrapping_add(1);
        if !ends {
            debug_assert!(false, "write_flush_ready: a part with more to follow");
            self.msg_start = (chunk, idx, items);
            self.in_message = true;
            return Ok(false);
        }
        self.messages = self.messages.wrapping_add(1);
        self.flushed = self.items;
        let old = self
            .shared
            .tail
            .swap((self.items & COUNT_MASK) << SHIFT, Ordering::AcqRel);
        Ok(old & ASLEEP != 0)
    }

    /// Wakes the reader, after [`write_flush_ready`](Self::write_flush_ready) found it asleep
    /// (its flush took the mark, as every flush that finds the reader asleep does).
    #[cold]
    #[inline(never)]
    pub fn wake_reader(&self) {
        call(&self.shared.reader_notify);
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

    /// Lazy credit (see the [module docs](super)): with `Some`, the full check uses the read
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

impl<T: PipeItem> PipeWriter<T> {
    /// The writing end over `shared`, its cursor at the start of `first` ([`pipe`](super::pipe)).
    pub(super) fn new(
        shared: Arc<Shared<T>>,
        first: *mut Chunk<T>,
        hwm: usize,
        lwm: usize,
    ) -> Self {
        PipeWriter {
            shared,
            chunk: first,
            idx: 0,
            items: 0,
            flushed: 0,
            messages: 0,
            in_message: false,
            closed: false,
            hwm,
            lwm,
            limited: hwm != 0,
            armed_at: None,
            msg_start: (first, 0, 0),
            lazy: None,
            view: 0,
            view_moves: 0,
        }
    }
}
