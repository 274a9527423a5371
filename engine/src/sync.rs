//! The loom shim: the synchronisation primitives the lock-free plumbing is written against.
//!
//! Owns: the choice between `loom`'s model-checked primitives (under `cfg(loom)`) and `std`'s
//! (otherwise), behind one API, so that [`pipe`](crate::pipe), [`signal`](crate::signal) and
//! [`mailbox`](crate::mailbox) compile unchanged against either and every interleaving of their
//! atomic protocols can be explored by loom.
//!
//! Must never: add behaviour of its own. Everything here is a re-export or a zero-cost wrapper;
//! [`UnsafeCell`] outside loom is `core::cell::UnsafeCell` with loom's closure-based API
//! (`with` / `with_mut`), which compiles down to the raw pointer access.
//!
//! Handles to notification objects (`Arc<dyn Notify>`) deliberately use `std::sync::Arc` even
//! under loom: loom's `Arc` cannot coerce to a trait object, and the reference count of a
//! notification target is not part of any protocol checked here.

#[cfg(loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Atomic types and fences (loom's under `cfg(loom)`, `std`'s otherwise).
pub mod atomic {
    #[cfg(loom)]
    pub use loom::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
    #[cfg(not(loom))]
    pub use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
}

pub use atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// Threads (loom's model threads under `cfg(loom)`, OS threads otherwise).
pub mod thread {
    #[cfg(loom)]
    pub use loom::thread::*;
    #[cfg(not(loom))]
    pub use std::thread::*;
}

/// One turn of a waiting loop that must not keep the CPU from the thread it waits for: outside
/// loom `sched_yield(2)` (another runnable thread on this core runs first; with none it
/// returns at once), under loom a model yield.
#[inline]
pub fn yield_cpu() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// A hint inside a busy-wait loop. Under loom it yields to the model scheduler, so that a
/// spinning thread lets the others make progress (loom treats a spin as a yield point).
#[inline(always)]
pub fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

#[cfg(loom)]
pub use loom::cell::UnsafeCell;

/// `core::cell::UnsafeCell` with loom's access API.
///
/// Access goes through [`with`](UnsafeCell::with) (shared) and
/// [`with_mut`](UnsafeCell::with_mut) (exclusive), which hand the closure a raw pointer. Under
/// loom the same calls are checked for concurrent conflicting access; here they are free.
#[cfg(not(loom))]
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct UnsafeCell<T: ?Sized>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    #[inline(always)]
    pub const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    /// Unwraps the value.
    #[inline(always)]
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[cfg(not(loom))]
impl<T: ?Sized> UnsafeCell<T> {
    /// Calls `f` with a pointer for reading. The caller of any dereference must guarantee that
    /// no write to the value runs concurrently.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a pointer for writing. The caller of any dereference must guarantee
    /// exclusive access for its duration.
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
