//! A thread's side of the pools: its private free lists, the batches other threads gave back
//! to it, and its outboxes (blocks of other threads' homes freed here, on their way back).
//!
//! Everything here is the thread's own (`Cell`s in a thread-local, no atomics) except the
//! homes' stacks, which it pushes batches onto and takes its own batches from.
//!
//! Must never: give out a block of another home, or keep a block on two lists.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use super::{
    data_ptr, dealloc_block, new_block, Header, Home, CLASSES, FIRST_LARGE, KEPT_CAPS,
    KEPT_LARGE_BYTES, RETIRED,
};
use crate::free_stack::{FreeStack, Link};

/// Most addresses a batch's container holds (see [`Outbox`]): a batch of up to 17 blocks
/// goes home with one push.
const MAX_BATCH: usize = 16;

/// Addresses a container of `class` holds: as many as its body has room for, at most
/// [`MAX_BATCH`] (8 in the 64-byte class).
pub(super) const fn batch_cap(class: usize) -> usize {
    let room = CLASSES[class] / std::mem::size_of::<usize>();
    if room < MAX_BATCH {
        room
    } else {
        MAX_BATCH
    }
}

/// A thread's private free lists (its home's side that needs no atomics), and its outboxes.
///
/// The free blocks of a class up to 1 KiB come in two forms: the *free list*, linked through
/// the blocks' headers (blocks freed on this thread), and *batches* that other threads gave
/// back ([`Outbox`]), which stay as they came: a chain of containers, each holding the
/// addresses of the others. A pop serves the free list first (its blocks are the warmest),
/// then the batches, taking each container's addresses before the container itself.
pub(super) struct Local {
    home: Cell<Option<&'static Home>>,
    free: [Cell<Option<NonNull<Link>>>; CLASSES.len()],
    /// Free blocks kept, per class: the free list and the batches together.
    count: [Cell<usize>; CLASSES.len()],
    /// Bytes of body in the private lists of the classes above 1 KiB, together.
    large_bytes: Cell<usize>,
    /// Per class up to 1 KiB: the container being taken apart; the rest of its chain follows
    /// its link.
    batch: [Cell<Option<NonNull<Header>>>; FIRST_LARGE],
    /// Addresses still in that container.
    batch_n: [Cell<usize>; FIRST_LARGE],
    /// Per class up to 1 KiB: blocks of another thread's home freed here, on their way back.
    out: [Outbox; FIRST_LARGE],
}

/// Blocks of one other thread's home, freed on this thread and gathered before they go home,
/// for one class up to 1 KiB.
///
/// Why: a block given back one at a time costs the two threads three cache-line transfers more
/// than the part itself needs. The freeing thread writes the link into the block's header; the
/// home's stack head, which the home thread swaps, moves to it and back; and the home thread,
/// counting what it took, walks the blocks one by one, each a miss that waits for the one
/// before (measured: `adopt` 12–13 % of an inproc 64 B run, `Push::send_slice` stalled on the
/// block it popped). Gathered, the first block freed becomes the batch's *container*, the next
/// ones are recorded by address in its body (the blocks themselves are not written), and the
/// batch goes home with one push when the container is full. The home thread counts a batch
/// from its container, and pops the blocks by the addresses: it writes them without reading
/// them first.
///
/// Bounds: a thread holds at most one batch per class (up to [`MAX_BATCH`] + 1 blocks) that
/// has not gone home yet, until it frees more blocks of that class or ends. A block of another
/// home sends the batch under way home first.
pub(super) struct Outbox {
    home: Cell<Option<&'static Home>>,
    container: Cell<Option<NonNull<Header>>>,
    /// Addresses recorded in the container.
    n: Cell<usize>,
}

thread_local! {
    pub(super) static LOCAL: Local = const {
        Local {
            home: Cell::new(None),
            free: [const { Cell::new(None) }; CLASSES.len()],
            count: [const { Cell::new(0) }; CLASSES.len()],
            large_bytes: Cell::new(0),
            batch: [const { Cell::new(None) }; FIRST_LARGE],
            batch_n: [const { Cell::new(0) }; FIRST_LARGE],
            out: [const {
                Outbox {
                    home: Cell::new(None),
                    container: Cell::new(None),
                    n: Cell::new(0),
                }
            }; FIRST_LARGE],
        }
    };
}

/// The address array in a container's body.
#[inline(always)]
pub(super) fn addresses(container: NonNull<Header>) -> *mut NonNull<Header> {
    data_ptr(container).cast()
}

/// How many addresses a container holds: its header's count, which says nothing while the
/// block is free, carries it home. Written before the push (whose Release publishes it with
/// the addresses), read after the home's Acquire take.
///
/// # Safety
///
/// `container` is a free block of a class up to 1 KiB, in a batch chain.
#[inline(always)]
pub(super) unsafe fn batch_len(container: NonNull<Header>) -> usize {
    // SAFETY: the caller's.
    unsafe { container.as_ref() }.refs.load(Ordering::Relaxed)
}

impl Local {
    pub(super) fn home(&self) -> &'static Home {
        match self.home.get() {
            Some(h) => h,
            None => {
                let h = Home::acquire();
                self.home.set(Some(h));
                h
            }
        }
    }

    /// A free block of `class` with this thread as its home, if one is kept or was given back.
    /// (Inlined into every pooled copy: the common case is one load and two stores.)
    #[inline(always)]
    fn pop(&self, class: usize) -> Option<NonNull<Header>> {
        let Some(head) = self.free[class].get() else {
            return if class < FIRST_LARGE {
                self.pop_batched(class)
            } else {
                self.pop_adopted(class)
            };
        };
        // SAFETY: blocks in the private list are live, free, and linked only here.
        self.free[class].set(unsafe { FreeStack::next(head) });
        self.count[class].set(self.count[class].get().saturating_sub(1));
        if class >= FIRST_LARGE {
            self.large_bytes
                .set(self.large_bytes.get().saturating_sub(CLASSES[class]));
        }
        Some(head.cast())
    }

    /// A block from the batches of a class up to 1 KiB (taking what came home when there are
    /// none): the container's addresses first, then the container.
    #[inline(always)]
    fn pop_batched(&self, class: usize) -> Option<NonNull<Header>> {
        let container = match self.batch[class].get() {
            Some(c) => c,
            None => self.adopt_batches(class)?,
        };
        self.count[class].set(self.count[class].get().saturating_sub(1));
        let n = self.batch_n[class].get();
        if n > 0 {
            self.batch_n[class].set(n - 1);
            // SAFETY: the container is ours (a batch taken home) and holds `n` addresses of
            // free blocks of this class and home, ours alone now.
            return Some(unsafe { addresses(container).add(n - 1).read() });
        }
        // SAFETY: the container heads the rest of the taken chain, all ours.
        let next = unsafe { FreeStack::next(container.cast()) }.map(NonNull::cast::<Header>);
        self.batch[class].set(next);
        // SAFETY: `next` is the next container of that chain.
        self.batch_n[class].set(next.map_or(0, |c| unsafe { batch_len(c) }));
        Some(container)
    }

    /// Takes the batches other threads gave back (classes up to 1 KiB) as this thread's chain,
    /// freeing whole batches past the limit; returns the first container. The walk reads one
    /// header per batch, not per block.
    #[inline(never)]
    fn adopt_batches(&self, class: usize) -> Option<NonNull<Header>> {
        let first = self.home().stacks[class].0.take_all()?.cast::<Header>();
        let room = KEPT_CAPS[class].saturating_sub(self.count[class].get());
        // SAFETY: the taken chain is ours alone; each container is live until freed here.
        let mut kept = unsafe { batch_len(first) } + 1;
        let mut last = first;
        // SAFETY: as above.
        while let Some(next) = unsafe { FreeStack::next(last.cast()) } {
            let next = next.cast::<Header>();
            // SAFETY: as above.
            let n = unsafe { batch_len(next) } + 1;
            if kept + n > room {
                // SAFETY: cut off, then freed: the rest of the chain is ours alone.
                unsafe {
                    FreeStack::set_next(last.cast(), None);
                    free_chain(Some(next.cast()), class);
                }
                break;
            }
            kept += n;
            last = next;
        }
        self.count[class].set(self.count[class].get() + kept);
        self.batch[class].set(Some(first));
        // SAFETY: as above.
        self.batch_n[class].set(unsafe { batch_len(first) });
        Some(first)
    }

    /// Whether one more free block of `class` may be kept: below its class's count for the
    /// small classes, within [`KEPT_LARGE_BYTES`] for the large ones together.
    #[inline(always)]
    fn has_room(&self, class: usize) -> bool {
        if class >= FIRST_LARGE {
            self.large_bytes.get() + CLASSES[class] <= KEPT_LARGE_BYTES
        } else {
            self.count[class].get() < KEPT_CAPS[class]
        }
    }

    /// For the classes above 1 KiB: takes the blocks other threads gave back (one by one) as
    /// the private list, freeing those past the limit, and pops the first. (Out of line: it
    /// runs once per list taken, not per block given out.)
    #[inline(never)]
    fn pop_adopted(&self, class: usize) -> Option<NonNull<Header>> {
        let first = self.home().stacks[class].0.take_all()?;
        let size = CLASSES[class];
        // How many of the list to keep, counted once: at least the first, which is popped
        // at once.
        let room = (KEPT_LARGE_BYTES.saturating_sub(self.large_bytes.get()) / size).max(1);
        let (mut last, mut n) = (first, 1);
        // SAFETY: the taken list is ours alone; each block is live until freed here.
        unsafe {
            while let Some(next) = FreeStack::next(last) {
                if n == room {
                    FreeStack::set_next(last, None);
                    free_list(Some(next), class);
                    break;
                }
                last = next;
                n += 1;
            }
        }
        // The first is given out now, the rest kept.
        self.count[class].set(self.count[class].get() + n - 1);
        self.large_bytes
            .set(self.large_bytes.get() + (n - 1) * size);
        // SAFETY: as above.
        self.free[class].set(unsafe { FreeStack::next(first) });
        Some(first.cast())
    }

    /// Keeps a free block of this thread's home, or frees it past the limit.
    #[inline(always)]
    fn keep(&self, block: NonNull<Header>, class: usize) {
        if !self.has_room(class) {
            // SAFETY: the block is free and ours.
            unsafe { dealloc_block(block, class) };
            return;
        }
        let link = block.cast::<Link>();
        // SAFETY: the block is free, ours, and in no list.
        unsafe { FreeStack::set_next(link, self.free[class].get()) };
        self.free[class].set(Some(link));
        self.count[class].set(self.count[class].get() + 1);
        if class >= FIRST_LARGE {
            self.large_bytes
                .set(self.large_bytes.get() + CLASSES[class]);
        }
    }

    /// Adds a free block of another thread's `home` (a class up to 1 KiB) to this thread's
    /// outbox of its class; a full batch, or one for another home, goes home first.
    #[inline(always)]
    fn send_home(&self, block: NonNull<Header>, home: &'static Home, class: usize) {
        let out = &self.out[class];
        if let Some(container) = out.container.get() {
            if out.home.get().is_some_and(|h| std::ptr::eq(h, home)) {
                let n = out.n.get();
                // SAFETY: the container is a free block of ours with room for
                // `batch_cap(class) > n` addresses; `block` is free and ours to give.
                unsafe { addresses(container).add(n).write(block) };
                out.n.set(n + 1);
                if n + 1 == batch_cap(class) {
                    self.flush_out(class);
                }
                return;
            }
            self.flush_out(class);
        }
        out.container.set(Some(block));
        out.n.set(0);
        out.home.set(Some(home));
    }

    /// Sends the outbox of `class` home, as it is.
    #[inline(never)]
    fn flush_out(&self, class: usize) {
        let out = &self.out[class];
        let (Some(container), Some(home)) = (out.container.take(), out.home.get()) else {
            return;
        };
        // SAFETY: the container and the blocks it records are free and ours to give.
        unsafe { push_home(home, class, container, out.n.replace(0)) };
    }
}

/// Pushes `node` onto `home`'s stack of `class`: for a class up to 1 KiB a batch whose
/// container records `n` addresses (its count, published by the push), above a single block.
/// A closed home refuses it, and it is freed here.
///
/// # Safety
///
/// The node (and the blocks it records) are free and the caller's to give.
unsafe fn push_home(home: &'static Home, class: usize, node: NonNull<Header>, n: usize) {
    if class < FIRST_LARGE {
        // SAFETY: the caller's: a free block of ours.
        unsafe { node.as_ref() }.refs.store(n, Ordering::Relaxed);
    }
    // SAFETY: the caller's.
    if let Err(link) = unsafe { home.stacks[class].0.push(node.cast()) } {
        // SAFETY: refused: still ours alone.
        unsafe { free_refused(link, class) };
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        for class in 0..FIRST_LARGE {
            self.flush_out(class);
        }
        let Some(home) = self.home.get() else {
            return;
        };
        for (class, stack) in home.stacks.iter().enumerate() {
            // SAFETY: the private lists, the batches taken home and what the closed stack
            // held are ours alone.
            unsafe {
                free_list(self.free[class].take(), class);
                if class < FIRST_LARGE {
                    free_batched(self, class);
                }
                free_chain(stack.0.close(), class);
            }
        }
        RETIRED.lock().unwrap_or_else(|e| e.into_inner()).push(home);
    }
}

/// Frees the batches `local` holds of `class` (the container being taken apart, the rest of
/// its addresses, and the chain after it).
///
/// # Safety
///
/// They are `local`'s alone, and `class` is up to 1 KiB.
pub(super) unsafe fn free_batched(local: &Local, class: usize) {
    let Some(container) = local.batch[class].take() else {
        return;
    };
    let n = local.batch_n[class].replace(0);
    // SAFETY: per the contract: the container holds `n` addresses still to give out; record
    // that as its count, so that the chain is freed as any other.
    unsafe {
        container.as_ref().refs.store(n, Ordering::Relaxed);
        free_chain(Some(container.cast()), class);
    }
}

/// Frees a node a closed home refused: a batch (or a block) alone, whatever its link says (a
/// refused push may have left a stale one there).
///
/// # Safety
///
/// The node is the caller's alone.
pub(super) unsafe fn free_refused(node: NonNull<Link>, class: usize) {
    // SAFETY: the caller's: cut the link, then free what the node holds.
    unsafe {
        FreeStack::set_next(node, None);
        free_chain(Some(node), class);
    }
}

/// Frees every node of a chain taken from a home's stack of `class`: batches (containers
/// and the blocks they hold) for the classes up to 1 KiB, single blocks above.
///
/// # Safety
///
/// The chain is the caller's alone.
pub(super) unsafe fn free_chain(mut node: Option<NonNull<Link>>, class: usize) {
    if class >= FIRST_LARGE {
        // SAFETY: the caller's.
        return unsafe { free_list(node, class) };
    }
    while let Some(c) = node {
        let container = c.cast::<Header>();
        // SAFETY: per the contract: read the link and the addresses before the blocks go.
        unsafe {
            node = FreeStack::next(c);
            for i in 0..batch_len(container) {
                dealloc_block(addresses(container).add(i).read(), class);
            }
            dealloc_block(container, class);
        }
    }
}

/// Frees every block of a list.
///
/// # Safety
///
/// The list (of free blocks of `class`) is the caller's alone.
pub(super) unsafe fn free_list(mut node: Option<NonNull<Link>>, class: usize) {
    while let Some(n) = node {
        // SAFETY: per the contract: read the link before the block goes.
        unsafe {
            node = FreeStack::next(n);
            dealloc_block(n.cast(), class);
        }
    }
}

/// Gives a block whose last reference went back to its home.
///
/// # Safety
///
/// The block is live and its last reference is gone: nothing refers to it any more (its
/// count says nothing now: a unique body is released without counting down).
pub(super) unsafe fn release(block: NonNull<Header>) {
    // SAFETY: live per the contract.
    let (home, class) = unsafe {
        let h = block.as_ref();
        (h.home, usize::from(h.class))
    };
    let handled = LOCAL
        .try_with(|l| {
            if l.home.get().is_some_and(|h| std::ptr::eq(h, home)) {
                l.keep(block, class);
            } else if class < FIRST_LARGE {
                l.send_home(block, home, class);
            } else {
                return false;
            }
            true
        })
        .unwrap_or(false);
    if !handled {
        // Alone (a batch of one up to 1 KiB): this thread is ending, its outboxes went home
        // already, or the block is large.
        // SAFETY: the block is free and ours to give.
        unsafe { push_home(home, class, block, 0) };
    }
}

/// A block of `class` with this thread as its home and one reference, or `None` when this
/// thread is ending (its home is gone).
///
/// The thread-local is reached through a closure that only hands back its address: a
/// closure with the pop in it made `LocalKey::try_with` large, and once this function was
/// inlined in two places (the cached and the streamed copy) the compiler stopped inlining
/// `try_with` itself (+14 instructions per 64 B part).
#[inline(always)]
pub(super) fn take_block(class: usize) -> Option<NonNull<Header>> {
    let l = LOCAL.try_with(std::ptr::from_ref).ok()?;
    // SAFETY: this thread's own `Local`, alive while this call runs (its destructor runs
    // only when the thread ends, never inside a call on it); only shared references to it
    // exist (its state is in cells).
    let l = unsafe { &*l };
    Some(match l.pop(class) {
        Some(b) => {
            // SAFETY: a free block of ours: nothing else refers to it.
            unsafe { (*b.as_ptr()).refs.store(1, Ordering::Relaxed) };
            b
        }
        None => new_block(class, l.home()),
    })
}

/// What the tests look at and reset.
#[cfg(test)]
impl Local {
    /// Free blocks kept of `class`.
    pub(super) fn kept(&self, class: usize) -> usize {
        self.count[class].get()
    }

    /// Free blocks kept, all classes.
    pub(super) fn kept_total(&self) -> usize {
        self.count.iter().map(Cell::get).sum()
    }

    /// Blocks of other homes in the outboxes.
    pub(super) fn on_the_way_home(&self) -> usize {
        self.out
            .iter()
            .map(|o| o.container.get().map_or(0, |_| o.n.get() + 1))
            .sum()
    }

    /// Frees every block kept of `class`.
    pub(super) fn drain(&self, class: usize) {
        // SAFETY: the private list and the batches are this thread's own.
        unsafe {
            free_list(self.free[class].take(), class);
            if class < FIRST_LARGE {
                free_batched(self, class);
            }
        }
        self.count[class].set(0);
    }
}
