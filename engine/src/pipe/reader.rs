//! The reading end of a [pipe](super): reads in order, the sleep announcement when it finds
//! nothing, the read count it publishes for the writer's high-water mark, chunk recycling, and
//! the reader's half of termination.
//!
//! Owns: the reader's cursor and counters, which no other thread touches. Must never: read a
//! slot the writer has not published, or wake the writer more than once per resume point.

use super::*;

/// The reading end of a [pipe](super). `Send`, not `Sync`.
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
        self.read_lend(WithFn(f))
    }

    /// [`read_with`](Self::read_with) with a [`Lend`] of the caller's instead of a closure.
    #[inline(always)]
    pub fn read_lend<L: Lend<T>>(&mut self, l: L) -> Result<L::Out, ReadError> {
        if self.items == self.available {
            self.refill(true)?;
        }
        if self.idx == CHUNK {
            self.next_chunk();
        }
        let (chunk, idx) = (self.chunk, self.idx);
        // SAFETY: `items < available`, so the slot under the cursor was filled by the writer and
        // published by a release swap that our acquire load saw; it belongs to the reader
        // alone. `l` borrows it for its call only (if `l` panics, the cursor has not moved and
        // the slot still holds a valid item).
        let (ends, r) = unsafe { Chunk::slot(chunk, idx).with_mut(|p| lend(p, l)) };
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

    /// A receiver's fast path: lends the next item to `l` when it is at hand with nothing else
    /// to do — flushed items are left in the current chunk (no look at the writer's word, no
    /// move to the next chunk), reading it does not reach the next publication of the read
    /// count, and `l` [accepts](Lend::accepts) it — and returns `l`'s result; `None`, with
    /// nothing read and nothing changed, otherwise (the caller then reads by
    /// [`read_lend`](Self::read_lend)). Nothing in it calls out of line, so a caller that
    /// inlines it keeps a path with no call at all.
    ///
    /// What `l` leaves in the slot is not dropped: `l` must leave an item whose drop does
    /// nothing ([`PipeItem::drop_is_noop`]; checked in debug builds). One that needed its drop
    /// would leak, never be freed twice.
    #[inline(always)]
    pub fn lend_ready<L: Lend<T>>(&mut self, l: L) -> Option<L::Out> {
        if self.items == self.available || self.idx == CHUNK {
            return None;
        }
        let (chunk, idx) = (self.chunk, self.idx);
        // The slot's address, used after `with_mut` returns: a closure doing the work inside
        // it was not inlined (a call on the path this method exists to keep call-free). Under
        // loom the access is still recorded where it happens: `with_mut` records it, and loom
        // switches threads only at synchronisation points, of which there is none between it
        // and the use below (`loom_pipe.rs`, "fast paths").
        // SAFETY: `chunk` is the reader's live chunk and `idx < CHUNK` (checked above).
        let p = unsafe { Chunk::slot(chunk, idx) }.with_mut(|p| p);
        // SAFETY: as in `read_lend`: `items < available`, so the slot under the cursor holds a
        // published item that belongs to the reader alone. The cursor moves past it below,
        // and the item left there is not dropped (its drop does nothing, per the contract).
        let item = unsafe { (*p).assume_init_mut() };
        let ends = item.ends_message();
        if (ends && self.track_hwm && self.messages.wrapping_add(1) == self.publish_at)
            || !l.accepts(item)
        {
            return None;
        }
        let r = l.lend(item);
        debug_assert!(item.drop_is_noop(), "lend_ready's item left one to drop");
        self.idx += 1;
        self.items = self.items.wrapping_add(1);
        if ends {
            self.messages = self.messages.wrapping_add(1);
        }
        Some(r)
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
                let (ends, more) =
                    unsafe { Chunk::slot(chunk, idx).with_mut(|p| lend(p, WithFnMut(&mut f))) };
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

impl<T: PipeItem> PipeReader<T> {
    /// The reading end over `shared`, its cursor at the start of `first` ([`pipe`](super::pipe)).
    pub(super) fn new(
        shared: Arc<Shared<T>>,
        first: *mut Chunk<T>,
        hwm: usize,
        step: usize,
    ) -> Self {
        PipeReader {
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
            track_hwm: hwm != 0,
            closed: false,
        }
    }
}
