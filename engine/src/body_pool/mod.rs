//! Bodies for message parts of more than [`Msg::INLINE_CAP`](crate::Msg::INLINE_CAP) and at
//! most [`MAX_POOLED`] bytes, recycled per thread instead of going through the global
//! allocator each time.
//!
//! Why: a part is allocated on one thread and freed on another — the I/O thread decodes it
//! and the application drops it, or the application sends it and the I/O thread encodes it —
//! and glibc's malloc serves that pattern from its slow path: every free goes to the other
//! thread's arena under its lock, and every malloc misses the thread cache. Measured under
//! callgrind with 64-byte messages over tcp, malloc and free took ~270 instructions per
//! message on each side. Large parts cost more still: glibc gives the memory of a freed 64 KiB
//! part back to the kernel (it trims its heap) and the next one faults its pages in again,
//! zeroed — about five page faults per 64 KiB message over tcp, measured with `perf stat`.
//!
//! How: every thread that allocates a pooled body has a *home*: one [`FreeStack`] per size
//! class. A body is a block (a header, then the bytes) with a reference count (cloning a part
//! shares it, as PUB's fan-out needs). Whoever drops the last reference gives the block back
//! to its home: onto the thread's private list when it is the home thread, else pushed onto the
//! home's stack, which the home thread empties when its private list runs dry. Blocks of up to
//! 1 KiB go home in *batches* of up to 17 per push, gathered in the freeing thread's outbox
//! and recorded by address, so that neither thread touches a block's lines to pass it back
//! (`body_pool/local.rs` has the why and the bounds). When a thread ends, its home is closed
//! (blocks given back later are freed at once) and kept for the next thread that needs one. A
//! body is written once: copied whole ([`PooledBody::copy_from`]), or filled piece by piece
//! through a [`BodyBuf`] (the ZMTP decoder assembling a frame split across receive buffers)
//! and then frozen.
//!
//! Bounds: a thread keeps a limited number of free blocks. Per class up to 1 KiB:
//! [`KEPT_BYTES`] of body, or [`KEPT_MIN_BLOCKS`] blocks where that is more (a full pipe at the
//! default high-water mark of 1,000 parts comes back whole, so a stream of 1 KiB parts does
//! not send every fourth block back to the allocator). Above 1 KiB: [`KEPT_LARGE_BYTES`] of
//! body in all those classes together (128 blocks of 64 KiB), so that a thread that once
//! streamed large parts keeps at most 8 MiB of them idle. Beyond that, blocks go back to the
//! global allocator. Blocks pushed back by other threads wait on the home's stack until the
//! home thread allocates again, so they are bounded by the parts that were alive at once
//! (which the pipes' high-water marks bound); a thread's outboxes hold at most 17 blocks per
//! class up to 1 KiB until it frees more or ends.
//!
//! Must never: hand a block to two owners, free one twice, or keep one after its home closed.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::free_stack::{FreeStack, Link};

mod local;

#[cfg(test)]
use local::{addresses, batch_cap, batch_len, free_chain, LOCAL};
use local::{release, take_block};

/// Body sizes of the classes (bytes): powers of two, so a body wastes less than half its block.
const CLASSES: [usize; 11] = [
    64,
    128,
    256,
    512,
    1024,
    2048,
    4096,
    8192,
    16 * 1024,
    32 * 1024,
    64 * 1024,
];

/// The largest body served from the pools. It is also the most a ZMTP decoder holds for a
/// frame it is still assembling (its `ASSEMBLY_CHUNK`), so a pooled assembly block does not
/// let a slow peer pin more memory than before.
pub const MAX_POOLED: usize = 64 * 1024;

/// The largest class kept by [`KEPT_BYTES`] and [`KEPT_MIN_BLOCKS`]; larger ones by
/// [`KEPT_LARGE_BYTES`].
const SMALL_MAX: usize = 1024;

/// Free blocks a thread keeps per class up to 1 KiB, in bytes of body (but see
/// [`KEPT_MIN_BLOCKS`]).
pub const KEPT_BYTES: usize = 256 * 1024;

/// Free blocks a thread keeps per class up to 1 KiB at the least: a pipe's worth at the
/// default SNDHWM/RCVHWM (1,000), so that the parts a full pipe held all come home to be
/// reused.
pub const KEPT_MIN_BLOCKS: usize = 1024;

/// Free blocks a thread keeps in the classes above 1 KiB, together, in bytes of body: a
/// burst of a hundred 64 KiB parts (what an application sends before it reads the replies,
/// or what one send gives back at once) comes back and is reused, instead of going back to
/// the allocator, whose next allocation faults fresh pages in.
pub const KEPT_LARGE_BYTES: usize = 8 * 1024 * 1024;

/// How many free blocks of a class up to 1 KiB a thread keeps (at most 1 MiB of body).
const fn kept_cap(class: usize) -> usize {
    let by_bytes = KEPT_BYTES / CLASSES[class];
    if by_bytes > KEPT_MIN_BLOCKS {
        by_bytes
    } else {
        KEPT_MIN_BLOCKS
    }
}

/// The index of the first class above 1 KiB (kept by [`KEPT_LARGE_BYTES`]).
const FIRST_LARGE: usize = {
    let mut i = 0;
    while i < CLASSES.len() && CLASSES[i] <= SMALL_MAX {
        i += 1;
    }
    i
};

/// [`kept_cap`] of every class up to 1 KiB (0 above: those count by bytes), computed once.
const KEPT_CAPS: [usize; CLASSES.len()] = {
    let mut caps = [0; CLASSES.len()];
    let mut i = 0;
    while i < FIRST_LARGE {
        caps[i] = kept_cap(i);
        i += 1;
    }
    caps
};

/// A block's header; the body follows at [`DATA_OFFSET`].
#[repr(C)]
struct Header {
    /// First, so that a block pointer is a [`Link`] pointer.
    link: Link,
    refs: AtomicUsize,
    home: &'static Home,
    class: u8,
    /// How far the block starts past what the allocator gave (to align it to [`LINE`]).
    shift: u8,
}

/// Where the body starts in a block (16-aligned, as the global allocator would give).
const DATA_OFFSET: usize = std::mem::size_of::<Header>().next_multiple_of(16);

/// Blocks start on a cache line of their own.
///
/// Why: a block's lines move between the core that writes a part and the one that drops it.
/// Blocks packed at the allocator's 16-byte alignment share lines with their neighbours, so
/// writing one block took back a line the other core was still reading the block next to it
/// from. Measured: inproc 64 B, zeroring alone, +23–30 % from this alone (docs/performance.md,
/// "Pooled blocks on lines of their own, and batches home").
const LINE: usize = 64;

/// What a block of `class` takes from the global allocator: room for the header and the body,
/// plus what aligning the block to [`LINE`] may skip. The allocator's own alignment (16) is
/// asked for, not the line's: a 64-aligned request goes to glibc's slower `memalign` path
/// and splits its chunks, which cost the fan-in of 100 connections 7–9 % in two runs.
fn layout(class: usize) -> Layout {
    // The sizes are small constants: this cannot fail.
    Layout::from_size_align(DATA_OFFSET + CLASSES[class] + (LINE - 16), 16)
        .unwrap_or(Layout::new::<Header>())
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

/// # Safety
///
/// `block` came from [`new_block`] with `class`, is free and referred to by nothing.
unsafe fn dealloc_block(block: NonNull<Header>, class: usize) {
    #[cfg(test)]
    LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    // SAFETY: per the contract; the header holds no resources of its own (the home is
    // 'static), so it needs no drop. The allocation starts `shift` bytes before the block.
    unsafe {
        let shift = usize::from(block.as_ref().shift);
        alloc::dealloc(block.as_ptr().cast::<u8>().sub(shift), layout(class));
    }
}

/// Blocks allocated and not yet freed (tests: nothing leaks).
#[cfg(test)]
static LIVE_BLOCKS: AtomicUsize = AtomicUsize::new(0);

#[cfg(test)]
thread_local! {
    /// Blocks this thread took from the global allocator (tests: reuse, not reallocation).
    static MADE_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn new_block(class: usize, home: &'static Home) -> NonNull<Header> {
    #[cfg(test)]
    {
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        MADE_HERE.with(|m| m.set(m.get() + 1));
    }
    let layout = layout(class);
    // SAFETY: the layout has a non-zero size.
    let raw = unsafe { alloc::alloc(layout) };
    if raw.is_null() {
        alloc::handle_alloc_error(layout)
    }
    // 0, 16, 32 or 48: the allocation is 16-aligned.
    let shift = raw.addr().wrapping_neg() % LINE;
    debug_assert!(shift <= LINE - 16);
    // SAFETY: `shift <= LINE - 16` bytes into the allocation, which has that much room
    // before the header and the body (see `layout`).
    let block = unsafe { NonNull::new_unchecked(raw.add(shift)) }.cast::<Header>();
    // SAFETY: room and alignment (LINE) for a header, ours alone.
    unsafe {
        block.as_ptr().write(Header {
            link: Link::new(),
            refs: AtomicUsize::new(1),
            home,
            class: class as u8,
            shift: shift as u8,
        })
    };
    block
}

/// Where a block's body starts.
#[inline(always)]
fn data_ptr(block: NonNull<Header>) -> *mut u8 {
    // SAFETY: every block has DATA_OFFSET bytes of header room before its body.
    unsafe { block.as_ptr().cast::<u8>().add(DATA_OFFSET) }
}

/// A body in a pooled block: an immutable, reference-counted byte string of at most
/// [`MAX_POOLED`] bytes.
pub struct PooledBody {
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
    pub fn copy_from(data: &[u8]) -> Option<PooledBody> {
        Self::copy_with(data, false)
    }

    /// [`PooledBody::copy_from`], with a large body written past the cache when `streamed`
    /// ([`crate::stream_copy`]): for a body whose next reader takes it only after a queue of
    /// others (a connection's send pipe, read by the kernel).
    #[inline(always)]
    pub fn copy_with(data: &[u8], streamed: bool) -> Option<PooledBody> {
        let block = take_block(class_of(data.len())?)?;
        let dst = data_ptr(block);
        if streamed {
            // SAFETY: the block has `CLASSES[class] >= data.len()` bytes at DATA_OFFSET, ours
            // alone until this body is shared; 16-aligned (DATA_OFFSET is a multiple of 16 past
            // a line-aligned block); `data` cannot overlap a free block.
            unsafe { crate::stream_copy::copy(data, dst) };
        } else {
            // SAFETY: as above.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        }
        Some(PooledBody {
            block,
            len: data.len() as u32,
        })
    }

    /// A pooled body of `len` zero bytes, or `None` as for [`PooledBody::copy_from`].
    pub fn zeroed(len: usize) -> Option<PooledBody> {
        let block = take_block(class_of(len)?)?;
        // SAFETY: as in `copy_from`: `len` bytes of room, ours alone.
        unsafe { std::ptr::write_bytes(data_ptr(block), 0, len) };
        Some(PooledBody {
            block,
            len: len as u32,
        })
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the block is live while this reference exists, and its first `len` body
        // bytes were written before the body was created.
        unsafe { std::slice::from_raw_parts(data_ptr(self.block), self.len as usize) }
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the body is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether this is the only reference to the block (no clone shares it).
    pub fn is_unique(&self) -> bool {
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
        // The only reference (the common case: a part received and dropped): no other owner
        // exists or can appear, so the count needs no read-modify-write, which would take
        // the header's line over from the core that wrote it. Acquire as in `is_unique`:
        // other owners' drops (their reads) happen before the block's reuse.
        if self.header().refs.load(Ordering::Acquire) == 1 {
            // SAFETY: the last reference: nothing refers to the block any more.
            unsafe { release(self.block) };
            return;
        }
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

impl AsRef<[u8]> for PooledBody {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody")
            .field("len", &self.len)
            .finish()
    }
}

impl PartialEq for PooledBody {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for PooledBody {}

/// A pooled body being written: a block of room for a known length, filled in order by one
/// owner, then [frozen](BodyBuf::freeze) into a [`PooledBody`]. For the ZMTP decoder, which
/// assembles a frame split across receive buffers straight into the block the part keeps
/// (one copy, into memory the pool keeps warm, instead of an assembly buffer and a copy).
pub struct BodyBuf {
    block: NonNull<Header>,
    len: u32,
    /// The body's final length (not the block's: the writer can never go past it).
    want: u32,
}

// SAFETY: a BodyBuf is the only reference to its block; moving it moves that ownership.
unsafe impl Send for BodyBuf {}

impl BodyBuf {
    /// Room for a body of `want` bytes, or `None` when it is larger than [`MAX_POOLED`] or this
    /// thread is ending.
    #[inline]
    pub fn with_len(want: usize) -> Option<BodyBuf> {
        let block = take_block(class_of(want)?)?;
        Some(BodyBuf {
            block,
            len: 0,
            want: want as u32,
        })
    }

    /// Appends as much of `data` as the body still has room for; returns how much.
    #[inline]
    pub fn extend_from_slice(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.remaining());
        // SAFETY: `len + n <= want <= CLASSES[class]`: inside the block's body, which is ours
        // alone (no PooledBody exists yet); `data` cannot overlap a block we own.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                data_ptr(self.block).add(self.len as usize),
                n,
            )
        };
        self.len += n as u32;
        n
    }

    /// Where the next byte goes: [`BodyBuf::remaining`] bytes from here are this buffer's
    /// to write (for a receive that the kernel fills; see [`BodyBuf::assume_written`]).
    #[inline]
    pub fn spare_ptr(&mut self) -> *mut u8 {
        // SAFETY: `len <= want <= CLASSES[class]`: at most one past the body's room.
        unsafe { data_ptr(self.block).add(self.len as usize) }
    }

    /// Counts `n` more bytes as written (at most [`BodyBuf::remaining`]; more is clamped).
    ///
    /// # Safety
    ///
    /// The first `n` bytes at [`BodyBuf::spare_ptr`] were written (a receive filled them).
    #[inline]
    pub unsafe fn assume_written(&mut self, n: usize) {
        self.len += n.min(self.remaining()) as u32;
    }

    /// Bytes written so far.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the block is ours alone and its first `len` body bytes were written.
        unsafe { std::slice::from_raw_parts(data_ptr(self.block), self.len as usize) }
    }

    /// Whether nothing was written yet.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes still to write before the body is whole.
    #[inline]
    pub fn remaining(&self) -> usize {
        (self.want - self.len) as usize
    }

    /// The body as written so far (`len()` bytes), immutable and shareable from now on.
    #[inline]
    pub fn freeze(self) -> PooledBody {
        let this = std::mem::ManuallyDrop::new(self);
        PooledBody {
            block: this.block,
            len: this.len,
        }
    }
}

impl Drop for BodyBuf {
    fn drop(&mut self) {
        // SAFETY: never frozen, so this is the block's only reference and nothing else refers
        // to it (`release` does not read the count, which the next owner resets).
        unsafe { release(self.block) };
    }
}

impl std::fmt::Debug for BodyBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyBuf")
            .field("len", &self.len)
            .field("want", &self.want)
            .finish()
    }
}

#[cfg(test)]
mod tests;
