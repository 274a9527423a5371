//! `zmq_poll` over `zmq_pollitem_t`, and the proxies: `zmq_proxy`, `zmq_proxy_steerable`,
//! `zmq_device`.
//!
//! Owns: the C layout of `zmq_pollitem_t`. Must never: wait itself — `zeroring::poll` and
//! `zeroring::proxy` do the waiting.

use std::ffi::{c_int, c_long, c_short, c_void};

use zeroring::{Error, PollItem, Socket};

use crate::guard;
use crate::socket::sock_ref;

/// zmq.h's `zmq_pollitem_t`.
#[repr(C)]
#[derive(Debug)]
pub struct zmq_pollitem_t {
    pub socket: *mut c_void,
    pub fd: c_int,
    pub events: c_short,
    pub revents: c_short,
}

/// Waits until one item is ready or `timeout` ms pass (−1: forever); returns how many are.
#[no_mangle]
pub unsafe extern "C" fn zmq_poll(
    items: *mut zmq_pollitem_t,
    nitems: c_int,
    timeout: c_long,
) -> c_int {
    guard(-1, || {
        let n = usize::try_from(nitems).map_err(|_| Error::EINVAL)?;
        if n > 0 && items.is_null() {
            return Err(Error::EFAULT);
        }
        let c_items: &mut [zmq_pollitem_t] = if n == 0 {
            &mut []
        } else {
            // SAFETY: C passes `nitems` poll items.
            unsafe { std::slice::from_raw_parts_mut(items, n) }
        };
        let mut polled = Vec::with_capacity(n);
        for it in c_items.iter() {
            polled.push(if it.socket.is_null() {
                PollItem::from_fd(it.fd, it.events)
            } else {
                // SAFETY: a non-null socket in a poll item is a socket handle.
                PollItem::from_socket(unsafe { sock_ref(it.socket) }?, it.events)
            });
        }
        let ready = zeroring::poll(&mut polled, timeout)?;
        for (c, p) in c_items.iter_mut().zip(&polled) {
            c.revents = p.revents();
        }
        Ok(ready.min(c_int::MAX as usize) as c_int)
    })
}

/// A socket argument that may be null.
///
/// # Safety
/// As [`sock_ref`].
unsafe fn optional<'a>(s: *mut c_void) -> Result<Option<&'a Socket>, Error> {
    if s.is_null() {
        Ok(None)
    } else {
        // SAFETY: per the contract.
        unsafe { sock_ref(s) }.map(Some)
    }
}

#[no_mangle]
pub unsafe extern "C" fn zmq_proxy(
    frontend: *mut c_void,
    backend: *mut c_void,
    capture: *mut c_void,
) -> c_int {
    // SAFETY: same contract as zmq_proxy_steerable.
    unsafe { zmq_proxy_steerable(frontend, backend, capture, std::ptr::null_mut()) }
}

#[no_mangle]
pub unsafe extern "C" fn zmq_proxy_steerable(
    frontend: *mut c_void,
    backend: *mut c_void,
    capture: *mut c_void,
    control: *mut c_void,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes socket handles (capture and control may be null).
        let (f, b) = unsafe { (sock_ref(frontend)?, sock_ref(backend)?) };
        // SAFETY: as above.
        let (cap, ctl) = unsafe { (optional(capture)?, optional(control)?) };
        zeroring::proxy_steerable(f, b, cap, ctl)?;
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_device(
    kind: c_int,
    frontend: *mut c_void,
    backend: *mut c_void,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes socket handles.
        let (f, b) = unsafe { (sock_ref(frontend)?, sock_ref(backend)?) };
        zeroring::device(kind, f, b)?;
        Ok(0)
    })
}
