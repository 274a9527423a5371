//! The per-thread pool of receive buffers: a landing zone, not storage.
//!
//! One I/O thread owns one pool: a single allocation cut into `count` buffers of `size` bytes.
//! The io_uring backend lends the free buffers to the kernel through a provided-buffer ring;
//! the epoll backend reads into them itself. A receive completion hands its handler a slice of
//! the filled buffer for the length of one callback ([`crate::Completion::Received`]); the
//! reactor takes the buffer back as soon as the handler returns, so nothing a socket keeps —
//! unread messages, idle connections — ever holds one, and returning a buffer costs no
//! allocation, no refcount and no cross-thread traffic.
//!
//! This module must never hand one buffer to two owners: a buffer id is either free (owned by
//! the thread), lent to the kernel, or being read by the handler of the completion that
//! carried it, and only the reactor moves it between those states.

use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::NonNull;

/// Shape of a thread's receive-buffer pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufPoolConfig {
    /// Number of buffers; a power of two, 1..=32768 (the kernel's provided-ring limit).
    pub count: u16,
    /// Bytes per buffer.
    pub size: u32,
}

impl Default for BufPoolConfig {
    fn default() -> Self {
        // 4 MiB per I/O thread: enough for many connections' in-flight reads, small enough that
        // a pinned thread's pool stays in its L2/L3 working set. Cut in 64 KiB buffers, not
        // more smaller ones: a stream moves in fewer, larger receives, each a system call or
        // a completion, a decode run, a pipe flush and perhaps a wake-up of the reader. 1 KiB
        // and 16 KiB messages ran 1.4-1.6x faster than with 256 x 16 KiB, 64-byte ones
        // 1.1x (docs/performance.md, "omq.rs measured, and receive buffers of 64 KiB"). A single-shot receive
        // still reads at most [`RECV_ONCE_MAX`], so a paused connection's intake stays
        // bounded as before.
        BufPoolConfig {
            count: 64,
            size: 64 * 1024,
        }
    }
}

/// The most a single-shot receive ([`Op::RecvOnce`](crate::Op::RecvOnce)) reads, whatever
/// the pool's buffer size: a connection that has paused (its pipe to the socket full) or has
/// just started receives this much at a time, so it takes in at most this much past the
/// point where it stops asking (libzmq's engine reads 8 KiB batches).
pub const RECV_ONCE_MAX: usize = 16 * 1024;

impl BufPoolConfig {
    /// Checks the shape: a power-of-two count in 1..=32768 (the provided-buffer ring's limit)
    /// and a non-zero size.
    pub fn validate(&self) -> std::io::Result<()> {
        if self.count == 0 || !self.count.is_power_of_two() || self.count > 32768 || self.size == 0
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("buffer pool needs a power-of-two count in 1..=32768 and a non-zero size, got {self:?}"),
            ));
        }
        Ok(())
    }
}

/// The owning thread's pool.
pub(crate) struct BufPool {
    base: NonNull<u8>,
    layout: Layout,
    size: usize,
    count: u16,
    /// Buffers the thread holds and has not lent to the kernel.
    free: Vec<u16>,
}

// SAFETY: the pool is owned and used by one I/O thread; it is only moved to that thread when
// the thread starts. The raw memory is written only by that thread or by the kernel on its
// behalf.
unsafe impl Send for BufPool {}

impl Drop for BufPool {
    fn drop(&mut self) {
        // SAFETY: `base` came from `alloc::alloc` with exactly this layout and is freed once;
        // no slice of it outlives the completion callback that borrowed it.
        unsafe { alloc::dealloc(self.base.as_ptr(), self.layout) };
    }
}

impl fmt::Debug for BufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufPool")
            .field("count", &self.count)
            .field("size", &self.size)
            .field("free", &self.free.len())
            .finish()
    }
}

impl BufPool {
    pub(crate) fn new(config: BufPoolConfig) -> std::io::Result<Self> {
        config.validate()?;
        let size = config.size as usize;
        let total = size.checked_mul(config.count as usize).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "buffer pool too large")
        })?;
        let layout = Layout::from_size_align(total, 4096)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // SAFETY: the layout has a non-zero size (count and size are both non-zero).
        let base = NonNull::new(unsafe { alloc::alloc(layout) })
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::OutOfMemory))?;
        Ok(BufPool {
            base,
            layout,
            size,
            count: config.count,
            free: (0..config.count).rev().collect(),
        })
    }

    pub(crate) fn buf_size(&self) -> usize {
        self.size
    }

    /// What a single-shot receive reads at most: one buffer, capped at [`RECV_ONCE_MAX`].
    /// Both backends take it from here.
    pub(crate) fn once_size(&self) -> usize {
        self.size.min(RECV_ONCE_MAX)
    }

    pub(crate) fn count(&self) -> u16 {
        self.count
    }

    /// Start address of buffer `bid`, for the kernel ring or a read(2).
    pub(crate) fn addr(&self, bid: u16) -> *mut u8 {
        debug_assert!(bid < self.count);
        // SAFETY: bid < count, so the offset stays inside the single allocation.
        unsafe { self.base.as_ptr().add(bid as usize * self.size) }
    }

    /// Takes a free buffer for a read the thread performs itself.
    pub(crate) fn take_free(&mut self) -> Option<u16> {
        self.free.pop()
    }

    /// Buffers the thread holds and has not lent out.
    pub(crate) fn free_len(&self) -> usize {
        self.free.len()
    }

    /// Gives a buffer back: a read that got nothing, or one whose completion was handled.
    pub(crate) fn put_free(&mut self, bid: u16) {
        self.free.push(bid);
    }

    /// Moves every free buffer out, for lending to the kernel.
    pub(crate) fn drain_free(&mut self) -> std::vec::Drain<'_, u16> {
        self.free.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_shapes() {
        assert!(BufPool::new(BufPoolConfig { count: 3, size: 64 }).is_err());
        assert!(BufPool::new(BufPoolConfig { count: 4, size: 0 }).is_err());
    }
}
