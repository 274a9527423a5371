//! Contexts: `zmq_ctx_new/term/shutdown/set/get` and the deprecated `zmq_init`, `zmq_term`,
//! `zmq_ctx_destroy`.
//!
//! Owns: the C handle of a context (a tagged box around `zeroring::Context`). Must never: free
//! the handle before `zmq_ctx_term` has returned (other threads may still be in calls on it).

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU32, Ordering};

use zeroring::{Context, Error};

use crate::guard;

const CTX_TAG: u32 = 0xabad_cafe;
const ZMQ_THREAD_PRIORITY: c_int = 3;
const ZMQ_THREAD_SCHED_POLICY: c_int = 4;

/// What a `void *context` points to.
#[derive(Debug)]
pub struct CContext {
    tag: AtomicU32,
    /// The process that made it: a forked child owns none of its I/O threads.
    pid: u32,
    pub(crate) ctx: Context,
}

/// The context behind a C handle; EFAULT for null or something that is not a live context
/// (libzmq's check).
///
/// # Safety
/// `p` is null or a pointer this library returned and that is not yet terminated (or points
/// to readable memory at least as large as a `CContext`).
pub(crate) unsafe fn ctx_ref<'a>(p: *mut c_void) -> Result<&'a CContext, Error> {
    if p.is_null() {
        return Err(Error::EFAULT);
    }
    // SAFETY: per the contract above.
    let c = unsafe { &*(p as *const CContext) };
    if c.tag.load(Ordering::Relaxed) != CTX_TAG {
        return Err(Error::EFAULT);
    }
    Ok(c)
}

fn new_context() -> *mut c_void {
    Box::into_raw(Box::new(CContext {
        tag: AtomicU32::new(CTX_TAG),
        pid: std::process::id(),
        ctx: Context::new(),
    }))
    .cast()
}

#[no_mangle]
pub extern "C" fn zmq_ctx_new() -> *mut c_void {
    guard(std::ptr::null_mut(), || Ok(new_context()))
}

/// Shuts the context down, waits for every socket to be closed, then frees it.
#[no_mangle]
pub unsafe extern "C" fn zmq_ctx_term(context: *mut c_void) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a context handle.
        let c = unsafe { ctx_ref(context) }?;
        if c.pid != std::process::id() {
            // A forked child: the I/O threads stayed in the parent, so nothing can be shut
            // down or waited for here. Like libzmq, let the child's copy go without a term
            // (its memory and the parent's descriptors stay as the fork left them).
            c.tag.store(0, Ordering::Relaxed);
            return Ok(0);
        }
        c.ctx.clone().term();
        c.tag.store(0, Ordering::Relaxed);
        // SAFETY: the handle came from Box::into_raw in `new_context`, and term has returned:
        // every socket of it is closed, so nothing else refers to the box.
        drop(unsafe { Box::from_raw(context as *mut CContext) });
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_ctx_shutdown(context: *mut c_void) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a context handle.
        unsafe { ctx_ref(context) }?.ctx.shutdown();
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_ctx_set(context: *mut c_void, option: c_int, optval: c_int) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a context handle.
        let c = unsafe { ctx_ref(context) }?;
        // libzmq takes only values >= 0 for the scheduling options (its -1 "default" is not
        // a value one can set).
        if matches!(option, ZMQ_THREAD_PRIORITY | ZMQ_THREAD_SCHED_POLICY) && optval < 0 {
            return Err(Error::EINVAL);
        }
        c.ctx.set(option, optval)?;
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_ctx_get(context: *mut c_void, option: c_int) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a context handle.
        unsafe { ctx_ref(context) }?.ctx.get(option)
    })
}

#[no_mangle]
pub extern "C" fn zmq_init(io_threads: c_int) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        if io_threads < 0 {
            return Err(Error::EINVAL);
        }
        let p = new_context();
        // SAFETY: `p` was just made by `new_context`.
        let c = unsafe { ctx_ref(p) }?;
        c.ctx.set_io_threads(io_threads)?;
        Ok(p)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_term(context: *mut c_void) -> c_int {
    // SAFETY: same contract as zmq_ctx_term.
    unsafe { zmq_ctx_term(context) }
}

#[no_mangle]
pub unsafe extern "C" fn zmq_ctx_destroy(context: *mut c_void) -> c_int {
    // SAFETY: same contract as zmq_ctx_term.
    unsafe { zmq_ctx_term(context) }
}
