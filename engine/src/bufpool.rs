//! The per-thread pool of receive buffers, and the leases that let received bytes outlive it.
//!
//! One I/O thread owns one pool: a single allocation cut into `count` buffers of `size` bytes.
//! The io_uring backend lends the free buffers to the kernel through a provided-buffer ring;
//! the epoll backend reads into them itself. A received chunk becomes [`bytes::Bytes`] backed
//! by a [`Lease`]; when the last clone drops — on any thread — the buffer id goes back to the
//! pool's return list, and the owning thread re-provides it. If the thread is starved (every
//! buffer lent out) the return also wakes it, so a dry ring recovers without polling.
//!
//! This module must never hand one buffer to two owners: a buffer id is either free (owned by
//! the thread or lent to the kernel) or leased, and only the lease's drop frees it.

use std::alloc::{self, Layout};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

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
        // a pinned thread's pool stays in its L2/L3 working set.
        BufPoolConfig {
            count: 256,
            size: 16 * 1024,
        }
    }
}

impl BufPoolConfig {
    pub(crate) fn validate(&self) -> std::io::Result<()> {
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

/// The memory and the return list, shared by the pool and every outstanding lease.
pub(crate) struct PoolShared {
    base: NonNull<u8>,
    layout: Layout,
    size: usize,
    count: u16,
    returned: Mutex<Vec<u16>>,
    has_returns: AtomicBool,
    /// Set by the owning thread when it ran out of buffers; the next return wakes it.
    starved: AtomicBool,
    waker: OnceLock<Box<dyn Fn() + Send + Sync>>,
    leased: AtomicU64,
}

// SAFETY: the raw buffer memory is only written by the owning thread (or the kernel on its
// behalf) while a buffer is free, and only read through a `Lease` while it is leased; a buffer
// id is in exactly one of those states (module invariant), so sharing the pointer across
// threads never creates a data race. Everything else in PoolShared is Sync on its own.
unsafe impl Send for PoolShared {}
// SAFETY: see the Send impl above.
unsafe impl Sync for PoolShared {}

impl PoolShared {
    fn give_back(&self, bid: u16) {
        self.returned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(bid);
        self.leased.fetch_sub(1, Ordering::Relaxed);
        self.has_returns.store(true, Ordering::Release);
        if self.starved.swap(false, Ordering::AcqRel) {
            if let Some(wake) = self.waker.get() {
                wake();
            }
        }
    }
}

impl Drop for PoolShared {
    fn drop(&mut self) {
        // SAFETY: `base` came from `alloc::alloc` with exactly this layout, and this is the last
        // reference to the memory (the pool and every lease hold an Arc to self).
        unsafe { alloc::dealloc(self.base.as_ptr(), self.layout) };
    }
}

/// Ownership of one leased buffer's received bytes; the backing owner of a received `Bytes`.
pub(crate) struct Lease {
    shared: Arc<PoolShared>,
    bid: u16,
    len: usize,
}

impl AsRef<[u8]> for Lease {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `bid < count` and `len <= size` were checked when the lease was made, so the
        // range lies inside the allocation; the buffer is leased, so nothing writes it until
        // this lease drops (module invariant), and the Arc keeps the memory alive.
        unsafe {
            std::slice::from_raw_parts(
                self.shared
                    .base
                    .as_ptr()
                    .add(self.bid as usize * self.shared.size),
                self.len,
            )
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.shared.give_back(self.bid);
    }
}

/// The owning thread's handle on its pool.
pub(crate) struct BufPool {
    shared: Arc<PoolShared>,
    /// Buffers the thread holds and has not lent to the kernel.
    free: Vec<u16>,
}

impl fmt::Debug for BufPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufPool")
            .field("count", &self.shared.count)
            .field("size", &self.shared.size)
            .field("free", &self.free.len())
            .field("leased", &self.shared.leased.load(Ordering::Relaxed))
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
        let shared = Arc::new(PoolShared {
            base,
            layout,
            size,
            count: config.count,
            returned: Mutex::new(Vec::with_capacity(config.count as usize)),
            has_returns: AtomicBool::new(false),
            starved: AtomicBool::new(false),
            waker: OnceLock::new(),
            leased: AtomicU64::new(0),
        });
        Ok(BufPool {
            shared,
            free: (0..config.count).rev().collect(),
        })
    }

    /// Installs the function a return calls to wake a starved owner (set once).
    pub(crate) fn set_waker(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.shared.waker.set(wake);
    }

    pub(crate) fn buf_size(&self) -> usize {
        self.shared.size
    }

    pub(crate) fn count(&self) -> u16 {
        self.shared.count
    }

    /// Start address of buffer `bid`, for the kernel ring or a read(2).
    pub(crate) fn addr(&self, bid: u16) -> *mut u8 {
        debug_assert!(bid < self.shared.count);
        // SAFETY: bid < count, so the offset stays inside the single allocation.
        unsafe {
            self.shared
                .base
                .as_ptr()
                .add(bid as usize * self.shared.size)
        }
    }

    /// Takes a free buffer for a read the thread performs itself.
    pub(crate) fn take_free(&mut self) -> Option<u16> {
        self.free.pop()
    }

    /// Buffers the thread holds and has not lent out.
    pub(crate) fn free_len(&self) -> usize {
        self.free.len()
    }

    /// Gives an unused free buffer back (a read that got nothing).
    pub(crate) fn put_free(&mut self, bid: u16) {
        self.free.push(bid);
    }

    /// Moves every free buffer out, for lending to the kernel.
    pub(crate) fn drain_free(&mut self) -> std::vec::Drain<'_, u16> {
        self.free.drain(..)
    }

    /// Collects buffers whose leases have dropped into the free list; returns how many.
    pub(crate) fn collect_returns(&mut self) -> usize {
        if !self.shared.has_returns.swap(false, Ordering::Acquire) {
            return 0;
        }
        let mut returned = self
            .shared
            .returned
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = returned.len();
        self.free.append(&mut returned);
        n
    }

    /// Marks the thread starved: the next return calls the waker. Returns false when buffers
    /// came back in the meantime (no need to wait).
    pub(crate) fn mark_starved(&mut self) -> bool {
        self.shared.starved.store(true, Ordering::Release);
        if self.shared.has_returns.load(Ordering::Acquire) {
            self.shared.starved.store(false, Ordering::Release);
            return false;
        }
        true
    }

    /// Turns `len` received bytes in buffer `bid` into refcounted bytes that return the buffer
    /// to this pool when the last clone drops. `bid` must be a buffer the kernel or the thread
    /// has just filled (so it is neither free nor leased).
    pub(crate) fn lease(&self, bid: u16, len: usize) -> Bytes {
        assert!(
            bid < self.shared.count && len <= self.shared.size,
            "bad buffer lease"
        );
        self.shared.leased.fetch_add(1, Ordering::Relaxed);
        Bytes::from_owner(Lease {
            shared: self.shared.clone(),
            bid,
            len,
        })
    }

    /// Buffers currently leased out.
    #[cfg(test)]
    pub(crate) fn leased(&self) -> u64 {
        self.shared.leased.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn lease_returns_on_last_drop_from_another_thread() {
        let mut pool = BufPool::new(BufPoolConfig { count: 4, size: 64 }).unwrap();
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        pool.set_waker(Box::new(move || {
            w.fetch_add(1, Ordering::SeqCst);
        }));
        let bid = pool.take_free().unwrap();
        // SAFETY: bid is free and owned by this thread; 5 bytes fit in a 64-byte buffer.
        unsafe { std::ptr::copy_nonoverlapping(b"hello".as_ptr(), pool.addr(bid), 5) };
        let bytes = pool.lease(bid, 5);
        let slice = bytes.slice(1..3);
        drop(bytes);
        assert_eq!(pool.collect_returns(), 0, "a slice still holds the buffer");
        assert!(pool.mark_starved());
        std::thread::spawn(move || assert_eq!(&slice[..], b"el"))
            .join()
            .unwrap();
        assert_eq!(woken.load(Ordering::SeqCst), 1);
        assert_eq!(pool.collect_returns(), 1);
        assert_eq!(pool.leased(), 0);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(BufPool::new(BufPoolConfig { count: 3, size: 64 }).is_err());
        assert!(BufPool::new(BufPoolConfig { count: 4, size: 0 }).is_err());
    }
}
