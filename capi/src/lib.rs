//! libzmq 4.3's C ABI on zeroring: the `zmq_*` functions of `include/zmq.h`, built as
//! `libzmq.so.5` / `libzmq.a`, so that C programs and every ZeroMQ binding run on zeroring.
//!
//! Owns: the translation between C (raw pointers, `int` returns, errno) and the `zeroring`
//! crate's Rust API. Every function is a thin wrapper; the behaviour lives in `zeroring`.
//! Must never: re-implement socket behaviour here, unwind a panic into C, or touch errno on
//! success (libzmq leaves a stale EINVAL after some successful calls; bindings that read errno
//! after success then misreport — this library does not).
//!
//! Modules: [`ctx`] (contexts), [`socket`] (sockets, options, send/recv), [`msg`]
//! (`zmq_msg_t`), [`poll`] (poll, proxy, device), [`util`] (errno, version, z85, curve keys,
//! counters, timers, stopwatch, threads).

// The exported functions take raw pointers from C by design; each checks them as libzmq does.
#![allow(clippy::missing_safety_doc)]
#![allow(non_camel_case_types)]

pub mod ctx;
pub mod msg;
pub mod poll;
pub mod socket;
pub mod util;

use std::panic::{catch_unwind, AssertUnwindSafe};

pub use zeroring::Error;

/// The C errno of this thread (libc's, so `errno` in C reads what we set).
pub(crate) fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    unsafe { *libc::__errno_location() }
}

/// Sets this thread's C errno.
pub(crate) fn set_errno(e: i32) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}

/// Runs the body of an exported function: on `Err` sets errno and returns `fail`; on success
/// restores errno to what it was on entry (system calls inside may have left a value there);
/// a panic never crosses into C (it reports EFAULT, libzmq's word for a broken object).
pub(crate) fn guard<R>(fail: R, f: impl FnOnce() -> Result<R, Error>) -> R {
    let saved = errno();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => {
            set_errno(saved);
            v
        }
        Ok(Err(e)) => {
            set_errno(e.errno());
            fail
        }
        Err(_) => {
            set_errno(Error::EFAULT.errno());
            fail
        }
    }
}

/// The bytes of a NUL-terminated C string; EINVAL when null or not UTF-8 (endpoints and
/// property names are text).
///
/// # Safety
/// `s` is null or points to a NUL-terminated string that outlives the returned borrow.
pub(crate) unsafe fn c_str<'a>(s: *const libc::c_char) -> Result<&'a str, Error> {
    if s.is_null() {
        return Err(Error::EINVAL);
    }
    // SAFETY: the caller promises a NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(s) }
        .to_str()
        .map_err(|_| Error::EINVAL)
}

/// A byte slice from C; a null pointer is only allowed with length 0.
///
/// # Safety
/// `p` is null or valid for reads of `len` bytes for the returned borrow.
pub(crate) unsafe fn c_bytes<'a>(p: *const libc::c_void, len: usize) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::EFAULT);
    }
    // SAFETY: the caller promises `len` readable bytes at `p`.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}
