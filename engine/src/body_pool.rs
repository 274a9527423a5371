//! Bodies for mid-size message parts (more than [`Msg::INLINE_CAP`](crate::Msg::INLINE_CAP),
//! at most [`MAX_POOLED`] bytes), recycled per thread instead of going through the global
//! allocator each time.
//!
//! Why: a part is allocated on one thread and freed on another — the I/O thread decodes it
//! and the application drops it, or the application sends it and the I/O thread encodes it —
//! and glibc's malloc serves that pattern from its slow path: every free goes to the other
//! thread's arena under its lock, and every malloc misses the thread cache. Measured under
//! callgrind with 64-byte messages over tcp, malloc and free took ~270 instructions per
//! message on each side.
//!
//! How: every thread that allocates a pooled body has a *home*: one [`FreeStack`] per size
//! class. A body is a block (a header, then the bytes) with a reference count (cloning a part
//! shares it, as PUB's fan-out needs). Whoever drops the last reference gives the block back
//! to its home: onto the thread's private list when it is the home thread, else pushed onto the
//! home's stack, which the home thread empties when its private list runs dry. When a thread
//! ends, its home is closed (blocks given back later are freed at once) and kept for the next
//! thread that needs one.
//!
//! Bounds: a thread keeps at most `kept_cap(class)` free blocks per size class ([`KEPT_BYTES`] of
//! body, or [`KEPT_MIN_BLOCKS`] blocks where that is more: a full pipe at the default
//! high-water mark of 1,000 parts comes back whole, so a stream of 1 KiB parts does not send
//! every fourth block back to the allocator); beyond that, blocks go back to the global
//! allocator. Blocks pushed back by other threads wait on the
//! home's stack until the home thread allocates again, so they are bounded by the parts that
//! were alive at once (which the pipes' high-water marks bound).
//!
//! Must never: hand a block to two owners, free one twice, or keep one after its home closed.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::free_stack::{FreeStack, Link};

/// Body sizes of the classes (bytes).
const CLASSES: [usize; 5] = [64, 128, 256, 512, 1024];

/// The largest body served from the pools.
pub const MAX_POOLED: usize = 1024;

/// Free blocks a thread keeps per class, in bytes of body (but see [`KEPT_MIN_BLOCKS`]).
pub const KEPT_BYTES: usize = 256 * 1024;

/// Free blocks a thread keeps per class at the least: a pipe's worth at the default
/// SNDHWM/RCVHWM (1,000), so that the parts a full pipe held all come home to be reused.
pub const KEPT_MIN_BLOCKS: usize = 1024;

/// How many free blocks of `class` a thread keeps (at most 1 MiB of body, for the largest).
const fn kept_cap(class: usize) -> usize {
    let by_bytes = KEPT_BYTES / CLASSES[class];
    if by_bytes > KEPT_MIN_BLOCKS {
        by_bytes
    } else {
        KEPT_MIN_BLOCKS
    }
}

/// A block's header; the body follows at [`DATA_OFFSET`].
#[repr(C)]
struct Header {
    /// First, so that a block pointer is a [`Link`] pointer.
    link: Link,
    refs: AtomicUsize,
    home: &'static Home,
    class: u8,
}

/// Where the body starts in a block (16-aligned, as the global allocator would give).
const DATA_OFFSET: usize = std::mem::size_of::<Header>().next_multiple_of(16);

fn layout(class: usize) -> Layout {
    // The sizes are small constants: this cannot fail.
    Layout::from_size_align(DATA_OFFSET + CLASSES[class], 16).unwrap_or(Layout::new::<Header>())
}

fn class_of(len: usize) -> Option<usize> {
    CLASSES.iter().position(|&c| len <= c)
}

/// One stack per class, each on its own cache line (pushes of different classes do not
/// contend).
#[repr(align(64))]
struct Padded(FreeStack);

/// A thread's return stacks. Lives for the process (a home is kept for reuse when its thread
/// ends), so a block's `&'static Home` never dangles.
struct Home {
    stacks: [Padded; CLASSES.len()],
}

/// Homes whose threads ended, closed, for the next thread.
static RETIRED: Mutex<Vec<&'static Home>> = Mutex::new(Vec::new());

impl Home {
    fn acquire() -> &'static Home {
        let reused = RETIRED.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match reused {
            Some(home) => {
                for s in &home.stacks {
                    s.0.reopen();
                }
                home
            }
            None => Box::leak(Box::new(Home {
                stacks: std::array::from_fn(|_| Padded(FreeStack::new())),
            })),
        }
    }
}

/// A thread's private free lists (its home's side that needs no atomics).
struct Local {
    home: Cell<Option<&'static Home>>,
    free: [Cell<Option<NonNull<Link>>>; CLASSES.len()],
    count: [Cell<usize>; CLASSES.len()],
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            home: Cell::new(None),
            free: [const { Cell::new(None) }; CLASSES.len()],
            count: [const { Cell::new(0) }; CLASSES.len()],
        }
    };
}

impl Local {
    fn home(&self) -> &'static Home {
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
    fn pop(&self, class: usize) -> Option<NonNull<Header>> {
        let head = match self.free[class].get() {
            Some(h) => h,
            None => self.adopt(class)?,
        };
        // SAFETY: blocks in the private list are live, free, and linked only here.
        self.free[class].set(unsafe { FreeStack::next(head) });
        self.count[class].set(self.count[class].get().saturating_sub(1));
        Some(head.cast())
    }

    /// Takes the blocks other threads gave back as the private list, freeing those past
    /// the limit; returns the list's first block.
    fn adopt(&self, class: usize) -> Option<NonNull<Link>> {
        let first = self.home().stacks[class].0.take_all()?;
        let cap = kept_cap(class);
        let (mut last, mut n) = (first, 1);
        // SAFETY: the taken list is ours alone; each block is live until freed here.
        unsafe {
            while let Some(next) = FreeStack::next(last) {
                if n == cap {
                    FreeStack::set_next(last, None);
                    free_list(Some(next), class);
                    break;
                }
                last = next;
                n += 1;
            }
        }
        self.count[class].set(n);
        Some(first)
    }

    /// Keeps a free block of this thread's home, or frees it past the limit.
    fn keep(&self, block: NonNull<Header>, class: usize) {
        if self.count[class].get() >= kept_cap(class) {
            // SAFETY: the block is free and ours.
            unsafe { dealloc_block(block, class) };
            return;
        }
        let link = block.cast::<Link>();
        // SAFETY: the block is free, ours, and in no list.
        unsafe { FreeStack::set_next(link, self.free[class].get()) };
        self.free[class].set(Some(link));
        self.count[class].set(self.count[class].get() + 1);
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let Some(home) = self.home.get() else {
            return;
        };
        for (class, stack) in home.stacks.iter().enumerate() {
            // SAFETY: the private lists and what the closed stack held are ours alone.
            unsafe {
                free_list(self.free[class].take(), class);
                free_list(stack.0.close(), class);
            }
        }
        RETIRED.lock().unwrap_or_else(|e| e.into_inner()).push(home);
    }
}

/// Frees every block of a list.
///
/// # Safety
///
/// The list (of free blocks of `class`) is the caller's alone.
unsafe fn free_list(mut node: Option<NonNull<Link>>, class: usize) {
    while let Some(n) = node {
        // SAFETY: per the contract: read the link before the block goes.
        unsafe {
            node = FreeStack::next(n);
            dealloc_block(n.cast(), class);
        }
    }
}

/// # Safety
///
/// `block` came from [`new_block`] with `class`, is free and referred to by nothing.
unsafe fn dealloc_block(block: NonNull<Header>, class: usize) {
    #[cfg(test)]
    LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    // SAFETY: per the contract; the header holds no resources of its own (the home is
    // 'static), so it needs no drop.
    unsafe { alloc::dealloc(block.as_ptr().cast(), layout(class)) };
}

/// Blocks allocated and not yet freed (tests: nothing leaks).
#[cfg(test)]
static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);

#[cfg(test)]
thread_local! {
    /// Blocks this thread took from the global allocator (tests: reuse, not reallocation).
    static MADE_HERE: Cell<usize> = const { Cell::new(0) };
}

fn new_block(class: usize, home: &'static Home) -> NonNull<Header> {
    #[cfg(test)]
    {
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        MADE_HERE.with(|m| m.set(m.get() + 1));
    }
    let layout = layout(class);
    // SAFETY: the layout has a non-zero size.
    let p = unsafe { alloc::alloc(layout) }.cast::<Header>();
    let Some(block) = NonNull::new(p) else {
        alloc::handle_alloc_error(layout)
    };
    // SAFETY: freshly allocated with room and alignment for a header.
    unsafe {
        block.as_ptr().write(Header {
            link: Link::new(),
            refs: AtomicUsize::new(1),
            home,
            class: class as u8,
        })
    };
    block
}

/// Gives a block whose last reference went back to its home.
///
/// # Safety
///
/// The block is live, its count reached zero, and nothing refers to it any more.
unsafe fn release(block: NonNull<Header>) {
    // SAFETY: live per the contract.
    let (home, class) = unsafe {
        let h = block.as_ref();
        (h.home, usize::from(h.class))
    };
    let kept_here = LOCAL
        .try_with(|l| {
            if l.home.get().is_some_and(|h| std::ptr::eq(h, home)) {
                l.keep(block, class);
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    if kept_here {
        return;
    }
    // SAFETY: the block is free and ours to give; a closed home refuses it and we free it.
    if let Err(link) = unsafe { home.stacks[class].0.push(block.cast()) } {
        // SAFETY: refused: still ours alone.
        unsafe { dealloc_block(link.cast(), class) };
    }
}

/// A body in a pooled block: an immutable, reference-counted byte string of at most
/// [`MAX_POOLED`] bytes.
pub(crate) struct PooledBody {
    block: NonNull<Header>,
    len: u32,
}

// SAFETY: the bytes are written once, before the body is shared, and only read afterwards;
// the reference count is atomic and the release path is safe from any thread.
unsafe impl Send for PooledBody {}
// SAFETY: as above: shared access only reads.
unsafe impl Sync for PooledBody {}

impl PooledBody {
    /// A pooled copy of `data`, or `None` when it is larger than [`MAX_POOLED`] or this thread
    /// is ending (its home is gone): the caller allocates as usual then.
    #[inline]
    pub(crate) fn copy_from(data: &[u8]) -> Option<PooledBody> {
        let class = class_of(data.len())?;
        let block = LOCAL
            .try_with(|l| match l.pop(class) {
                Some(b) => {
                    // SAFETY: a free block of ours: nothing else refers to it.
                    unsafe { (*b.as_ptr()).refs.store(1, Ordering::Relaxed) };
                    b
                }
                None => new_block(class, l.home()),
            })
            .ok()?;
        // SAFETY: the block has `CLASSES[class] >= data.len()` bytes at DATA_OFFSET, ours
        // alone until this body is shared; `data` cannot overlap a free block.
        unsafe {
            let dst = block.as_ptr().cast::<u8>().add(DATA_OFFSET);
            std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len());
        }
        Some(PooledBody {
            block,
            len: data.len() as u32,
        })
    }

    /// The bytes.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: the block is live while this reference exists, and its first `len` body
        // bytes were written before the body was created.
        unsafe {
            std::slice::from_raw_parts(
                self.block.as_ptr().cast::<u8>().add(DATA_OFFSET),
                self.len as usize,
            )
        }
    }

    /// Length in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether this is the only reference to the block (no clone shares it).
    pub(crate) fn is_unique(&self) -> bool {
        // Acquire, as `Arc::get_mut`'s check: drops of other references happen before.
        self.header().refs.load(Ordering::Acquire) == 1
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: live while this reference exists.
        unsafe { self.block.as_ref() }
    }
}

impl Clone for PooledBody {
    fn clone(&self) -> Self {
        // Relaxed as in `Arc::clone`: a new reference is made from an existing one.
        let old = self.header().refs.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            std::process::abort();
        }
        PooledBody {
            block: self.block,
            len: self.len,
        }
    }
}

impl Drop for PooledBody {
    #[inline]
    fn drop(&mut self) {
        // As `Arc`'s drop: Release so that our reads happen before the block's reuse, Acquire
        // (the fence) so that the last owner sees every other owner's reads finished.
        if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: the last reference: nothing refers to the block any more.
        unsafe { release(self.block) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held by the tests that count live blocks.
    static LEAK_CHECK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    /// Blocks other tests of this crate (which make a few pooled parts and do not take the
    /// lock) may hold while a count is taken.
    const OTHER_TESTS_SLACK: usize = 64;

    fn kept(class: usize) -> usize {
        LOCAL.with(|l| l.count[class].get())
    }

    #[test]
    fn classes_cover_every_pooled_length() {
        let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(class_of(1), Some(0));
        assert_eq!(class_of(64), Some(0));
        assert_eq!(class_of(65), Some(1));
        assert_eq!(class_of(MAX_POOLED), Some(CLASSES.len() - 1));
        assert_eq!(class_of(MAX_POOLED + 1), None);
        assert!(PooledBody::copy_from(&[0; MAX_POOLED + 1]).is_none());
        assert_eq!(DATA_OFFSET % 16, 0);
    }

    #[test]
    fn copies_are_exact_and_blocks_are_reused_on_their_thread() {
        let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
        for len in [0usize, 1, 39, 64, 65, 500, 1024] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let a = PooledBody::copy_from(&data).unwrap();
            assert_eq!(a.as_slice(), &data[..]);
            let first = a.block;
            drop(a);
            let b = PooledBody::copy_from(&data).unwrap();
            assert_eq!(
                b.block, first,
                "the block freed here is the next one given out"
            );
            assert_eq!(b.as_slice(), &data[..]);
        }
    }

    #[test]
    fn clones_share_the_block_until_the_last_drop() {
        let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
        let a = PooledBody::copy_from(&[7; 100]).unwrap();
        let b = a.clone();
        assert_eq!(a.block, b.block);
        let before = kept(1);
        drop(a);
        assert_eq!(kept(1), before, "still referenced");
        assert_eq!(b.as_slice(), &[7; 100][..]);
        drop(b);
        assert_eq!(kept(1), before + 1);
    }

    #[test]
    fn blocks_dropped_elsewhere_come_home_through_the_stack() {
        let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
        let bodies: Vec<_> = (0..100)
            .map(|i| PooledBody::copy_from(&[i as u8; 200]).unwrap())
            .collect();
        let blocks: Vec<_> = bodies.iter().map(|b| b.block).collect();
        std::thread::spawn(move || drop(bodies)).join().unwrap();
        // This thread's list of class 2 may hold older blocks; drain it, then the pushed
        // ones come back (in some order) once the private list is empty.
        LOCAL.with(|l| {
            // SAFETY: the private list is this thread's own.
            unsafe { free_list(l.free[2].take(), 2) };
            l.count[2].set(0);
        });
        let again: Vec<_> = (0..100)
            .map(|_| PooledBody::copy_from(&[1; 200]).unwrap())
            .collect();
        let mut got: Vec<_> = again.iter().map(|b| b.block).collect();
        let mut want = blocks;
        got.sort();
        want.sort();
        assert_eq!(got, want, "every block given back is reused, none twice");
    }

    #[test]
    fn a_thread_keeps_at_most_its_limit() {
        let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
        let n = kept_cap(4) + 10;
        std::thread::spawn(move || {
            let bodies: Vec<_> = (0..n)
                .map(|_| PooledBody::copy_from(&[3; 1000]).unwrap())
                .collect();
            drop(bodies);
            assert_eq!(kept(4), kept_cap(4));
        })
        .join()
        .unwrap();
    }

    /// A pipe's worth of parts (the default HWM, 1,000) made on one thread and dropped on
    /// another all come home and are all reused: making them again takes no block from the
    /// allocator. (A cap
    /// of 256 KiB alone kept 256 of 1 KiB and sent the rest back to the allocator.)
    #[test]
    fn a_full_pipe_of_the_largest_class_comes_home_whole() {
        let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
        assert!(kept_cap(CLASSES.len() - 1) >= 1_000);
        std::thread::spawn(|| {
            let make = || -> Vec<PooledBody> {
                (0..1_000)
                    .map(|i| PooledBody::copy_from(&[i as u8; MAX_POOLED]).unwrap())
                    .collect()
            };
            let first = make();
            assert_eq!(MADE_HERE.with(Cell::get), 1_000);
            std::thread::spawn(move || drop(first)).join().unwrap();
            let again = make();
            assert_eq!(
                MADE_HERE.with(Cell::get),
                1_000,
                "every block came back and was reused, none made anew"
            );
            drop(again);
        })
        .join()
        .unwrap();
    }

    /// Bodies made, cloned and dropped on many threads at once, passed around by channels
    /// (PUB's fan-out, inproc pairs): every byte reads as written, and once every thread has
    /// ended, every block is back with the allocator except those this thread keeps.
    #[test]
    fn threads_trading_clones_lose_nothing_and_leak_nothing() {
        use std::sync::mpsc;
        const THREADS: usize = 6;
        const BODIES: usize = 3_000;
        let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
        let (txs, rxs): (Vec<_>, Vec<_>) =
            (0..THREADS).map(|_| mpsc::channel::<PooledBody>()).unzip();
        let handles: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(me, rx)| {
                let txs = txs.clone();
                std::thread::spawn(move || {
                    let mut kept = Vec::new();
                    for i in 0..BODIES {
                        let len = 39 + (i * 7 + me) % (MAX_POOLED - 38);
                        let fill = (i + me) as u8;
                        let b = PooledBody::copy_from(&vec![fill; len]).unwrap();
                        // Fan out: a clone to the next thread, one to the one after.
                        let _ = txs[(me + 1) % THREADS].send(b.clone());
                        let _ = txs[(me + 2) % THREADS].send(b.clone());
                        if i % 5 == 0 {
                            kept.push(b);
                        }
                        while let Ok(got) = rx.try_recv() {
                            let d = got.as_slice();
                            assert!(d.len() >= 39 && d.iter().all(|&x| x == d[0]));
                        }
                        if kept.len() > 50 {
                            kept.drain(..25);
                        }
                    }
                    drop(txs);
                    // A last burst made and freed here: the thread ends with a full private
                    // list, which its end must free.
                    let burst: Vec<_> = (0..200)
                        .map(|_| PooledBody::copy_from(&[1; 100]).unwrap())
                        .collect();
                    drop(burst);
                    kept
                })
            })
            .collect();
        drop(txs);
        let leftovers: Vec<Vec<PooledBody>> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        for (t, bodies) in leftovers.iter().enumerate() {
            for b in bodies {
                let d = b.as_slice();
                assert!(
                    d.iter().all(|&x| x == d[0]),
                    "thread {t}'s kept body intact"
                );
            }
        }
        // Their homes are closed: these go straight back to the allocator.
        drop(leftovers);
        // What is still live: blocks on this thread's private lists, and bodies other tests
        // running now hold (hence the lock: the tests that count run one at a time).
        let here: usize = LOCAL.with(|l| (0..CLASSES.len()).map(|c| l.count[c].get()).sum());
        assert!(
            LIVE_BLOCKS.load(Ordering::Relaxed) <= here + OTHER_TESTS_SLACK,
            "{} blocks live, {here} kept here",
            LIVE_BLOCKS.load(Ordering::Relaxed)
        );
    }

    #[test]
    fn bodies_outlive_the_thread_that_made_them() {
        let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
        let bodies = std::thread::spawn(|| {
            (0..50)
                .map(|i| PooledBody::copy_from(&[i as u8; 300]).unwrap())
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        // The home is closed now: these go back to the allocator (or to a thread that took
        // the home over), and read fine until then.
        for (i, b) in bodies.iter().enumerate() {
            assert_eq!(b.as_slice(), &[i as u8; 300][..]);
        }
        let clones: Vec<_> = bodies.to_vec();
        drop(bodies);
        std::thread::spawn(move || drop(clones)).join().unwrap();
    }
}
