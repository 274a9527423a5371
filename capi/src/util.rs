//! The rest of zmq.h: `zmq_errno`, `zmq_strerror`, `zmq_version`, `zmq_has`, Z85, CURVE key
//! helpers, atomic counters, timers, the stopwatch, `zmq_sleep` and `zmq_threadstart/close`.
//!
//! Owns: the C shapes of these helpers. Must never: compute anything `zeroring` already
//! computes (Z85, keys, timer schedules come from there).

use std::ffi::{c_char, c_int, c_long, c_ulong, c_void};
use std::time::Duration;

use zeroring::{AtomicCounter, Error, Stopwatch, Timers};

use crate::{c_str, errno, guard};

#[no_mangle]
pub extern "C" fn zmq_errno() -> c_int {
    errno()
}

/// libzmq's text for `errnum`: its own for EFSM, ENOCOMPATPROTO, ETERM, EMTHREAD and
/// EHOSTUNREACH ("Host unreachable", not the C library's "No route to host"), the C library's
/// for the rest (bindings compare these strings).
#[no_mangle]
pub extern "C" fn zmq_strerror(errnum: c_int) -> *const c_char {
    const EFSM: &[u8] = b"Operation cannot be accomplished in current state\0";
    const ENOCOMPATPROTO: &[u8] = b"The protocol is not compatible with the socket type\0";
    const ETERM: &[u8] = b"Context was terminated\0";
    const EMTHREAD: &[u8] = b"No thread available\0";
    const EHOSTUNREACH: &[u8] = b"Host unreachable\0";
    let own = |e: Error| e.errno() == errnum;
    let text = if own(Error::EFSM) {
        EFSM
    } else if own(Error::ENOCOMPATPROTO) {
        ENOCOMPATPROTO
    } else if own(Error::ETERM) {
        ETERM
    } else if own(Error::EMTHREAD) {
        EMTHREAD
    } else if errnum == libc::EHOSTUNREACH {
        EHOSTUNREACH
    } else {
        // SAFETY: strerror returns a valid C string for any value (as libzmq calls it).
        return unsafe { libc::strerror(errnum) };
    };
    text.as_ptr().cast()
}

#[no_mangle]
pub unsafe extern "C" fn zmq_version(major: *mut c_int, minor: *mut c_int, patch: *mut c_int) {
    let (a, b, c) = zeroring::version();
    for (p, v) in [(major, a), (minor, b), (patch, c)] {
        if !p.is_null() {
            // SAFETY: non-null int pointers from C.
            unsafe { *p = v };
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn zmq_has(capability: *const c_char) -> c_int {
    // SAFETY: C passes a C string (null → false).
    match unsafe { c_str(capability) } {
        Ok(c) => zeroring::has(c) as c_int,
        Err(_) => 0,
    }
}

/// Encodes `size` bytes (a multiple of 4) into `dest` (room for size·5/4 + 1); returns `dest`,
/// or NULL with EINVAL.
#[no_mangle]
pub unsafe extern "C" fn zmq_z85_encode(
    dest: *mut c_char,
    data: *const u8,
    size: usize,
) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        if dest.is_null() {
            return Err(Error::EINVAL);
        }
        // SAFETY: C passes `size` readable bytes.
        let data = unsafe { crate::c_bytes(data.cast(), size) }.map_err(|_| Error::EINVAL)?;
        let text = zeroring::z85_encode(data)?;
        // SAFETY: C promises room for the text and its NUL.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), dest.cast::<u8>(), text.len());
            *dest.add(text.len()) = 0;
        }
        Ok(dest)
    })
}

/// Decodes NUL-terminated Z85 text into `dest` (room for len·4/5); returns `dest`, or NULL
/// with EINVAL.
#[no_mangle]
pub unsafe extern "C" fn zmq_z85_decode(dest: *mut u8, string: *const c_char) -> *mut u8 {
    guard(std::ptr::null_mut(), || {
        if dest.is_null() {
            return Err(Error::EINVAL);
        }
        // SAFETY: C passes a C string.
        let text = unsafe { c_str(string) }?;
        // libzmq decodes at least one group of five (an empty string is EINVAL there).
        if text.is_empty() {
            return Err(Error::EINVAL);
        }
        let raw = zeroring::z85_decode(text)?;
        // SAFETY: C promises room for the decoded bytes.
        unsafe { std::ptr::copy_nonoverlapping(raw.as_ptr(), dest, raw.len()) };
        Ok(dest)
    })
}

/// Copies `text` and a NUL to `dest` (C promises 41 bytes for a key).
///
/// # Safety
/// `dest` is valid for writes of `text.len() + 1` bytes.
unsafe fn put_key(dest: *mut c_char, text: &str) {
    // SAFETY: per the contract.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), dest.cast::<u8>(), text.len());
        *dest.add(text.len()) = 0;
    }
}

#[no_mangle]
pub unsafe extern "C" fn zmq_curve_keypair(public: *mut c_char, secret: *mut c_char) -> c_int {
    guard(-1, || {
        if public.is_null() || secret.is_null() {
            return Err(Error::EINVAL);
        }
        let pair = zeroring::curve_keypair()?;
        // SAFETY: C passes two 41-byte buffers.
        unsafe {
            put_key(public, &pair.public);
            put_key(secret, &pair.secret);
        }
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_curve_public(public: *mut c_char, secret: *const c_char) -> c_int {
    guard(-1, || {
        if public.is_null() {
            return Err(Error::EINVAL);
        }
        // SAFETY: C passes a C string.
        let secret = unsafe { c_str(secret) }?;
        let key = zeroring::curve_public(secret)?;
        // SAFETY: C passes a 41-byte buffer.
        unsafe { put_key(public, &key) };
        Ok(0)
    })
}

// ----- atomic counters ------------------------------------------------------------------

/// # Safety
/// `p` is null or a counter from `zmq_atomic_counter_new`, not yet destroyed.
unsafe fn counter<'a>(p: *mut c_void) -> Option<&'a AtomicCounter> {
    // SAFETY: per the contract.
    unsafe { p.cast::<AtomicCounter>().as_ref() }
}

#[no_mangle]
pub extern "C" fn zmq_atomic_counter_new() -> *mut c_void {
    Box::into_raw(Box::new(AtomicCounter::new())).cast()
}

#[no_mangle]
pub unsafe extern "C" fn zmq_atomic_counter_set(c: *mut c_void, value: c_int) {
    // SAFETY: C passes a counter.
    if let Some(c) = unsafe { counter(c) } {
        c.set(value);
    }
}

/// Returns the value before the increment.
#[no_mangle]
pub unsafe extern "C" fn zmq_atomic_counter_inc(c: *mut c_void) -> c_int {
    // SAFETY: C passes a counter.
    unsafe { counter(c) }.map_or(0, |c| c.inc())
}

/// Returns 1 while the value after the decrement is above zero, else 0.
#[no_mangle]
pub unsafe extern "C" fn zmq_atomic_counter_dec(c: *mut c_void) -> c_int {
    // SAFETY: C passes a counter.
    unsafe { counter(c) }.map_or(0, |c| c.dec() as c_int)
}

#[no_mangle]
pub unsafe extern "C" fn zmq_atomic_counter_value(c: *mut c_void) -> c_int {
    // SAFETY: C passes a counter.
    unsafe { counter(c) }.map_or(0, |c| c.value())
}

#[no_mangle]
pub unsafe extern "C" fn zmq_atomic_counter_destroy(cp: *mut *mut c_void) {
    if cp.is_null() {
        return;
    }
    // SAFETY: C passes the address of its counter pointer.
    let p = unsafe { std::ptr::replace(cp, std::ptr::null_mut()) };
    if !p.is_null() {
        // SAFETY: a pointer from zmq_atomic_counter_new, given back once.
        drop(unsafe { Box::from_raw(p.cast::<AtomicCounter>()) });
    }
}

// ----- timers ---------------------------------------------------------------------------

const TIMERS_TAG: u32 = 0xcafe_dade;

#[derive(Debug)]
struct CTimers {
    tag: u32,
    timers: Timers,
}

/// # Safety
/// `p` is null or points to memory at least as large as a `CTimers`.
unsafe fn timers<'a>(p: *mut c_void) -> Result<&'a mut Timers, Error> {
    if p.is_null() {
        return Err(Error::EFAULT);
    }
    // SAFETY: per the contract; C uses a timer set from one thread at a time.
    let t = unsafe { &mut *p.cast::<CTimers>() };
    if t.tag != TIMERS_TAG {
        return Err(Error::EFAULT);
    }
    Ok(&mut t.timers)
}

/// The C handler and its argument, called on the thread that runs `zmq_timers_execute`.
struct CHandler {
    f: unsafe extern "C" fn(c_int, *mut c_void),
    arg: *mut c_void,
}

// SAFETY: the handler runs only inside zmq_timers_execute, on the caller's thread; moving the
// pointer pair between threads is the caller's business, as with libzmq.
unsafe impl Send for CHandler {}

#[no_mangle]
pub extern "C" fn zmq_timers_new() -> *mut c_void {
    Box::into_raw(Box::new(CTimers {
        tag: TIMERS_TAG,
        timers: Timers::new(),
    }))
    .cast()
}

#[no_mangle]
pub unsafe extern "C" fn zmq_timers_destroy(tp: *mut *mut c_void) -> c_int {
    guard(-1, || {
        if tp.is_null() {
            return Err(Error::EFAULT);
        }
        // SAFETY: C passes the address of its timers pointer.
        let p = unsafe { *tp };
        // SAFETY: as `timers`.
        unsafe { timers(p) }?;
        // SAFETY: checked live: it came from zmq_timers_new.
        let mut b = unsafe { Box::from_raw(p.cast::<CTimers>()) };
        b.tag = 0;
        drop(b);
        // SAFETY: as above.
        unsafe { *tp = std::ptr::null_mut() };
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_timers_add(
    t: *mut c_void,
    interval: usize,
    handler: Option<unsafe extern "C" fn(c_int, *mut c_void)>,
    arg: *mut c_void,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a timer set.
        let t = unsafe { timers(t) }?;
        let f = handler.ok_or(Error::EFAULT)?;
        let h = CHandler { f, arg };
        t.add(Duration::from_millis(interval as u64), move |id| {
            let h = &h;
            // SAFETY: the C handler with its own argument.
            unsafe { (h.f)(id, h.arg) }
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_timers_cancel(t: *mut c_void, id: c_int) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a timer set.
        unsafe { timers(t) }?.cancel(id)?;
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_timers_set_interval(
    t: *mut c_void,
    id: c_int,
    interval: usize,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a timer set.
        unsafe { timers(t) }?.set_interval(id, Duration::from_millis(interval as u64))?;
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_timers_reset(t: *mut c_void, id: c_int) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a timer set.
        unsafe { timers(t) }?.reset(id)?;
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_timers_timeout(t: *mut c_void) -> c_long {
    guard(-1, || {
        // SAFETY: C passes a timer set.
        Ok(unsafe { timers(t) }?.timeout())
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_timers_execute(t: *mut c_void) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a timer set.
        unsafe { timers(t) }?.execute();
        Ok(0)
    })
}

// ----- stopwatch, sleep, threads --------------------------------------------------------

#[no_mangle]
pub extern "C" fn zmq_stopwatch_start() -> *mut c_void {
    Box::into_raw(Box::new(Stopwatch::start())).cast()
}

#[no_mangle]
pub unsafe extern "C" fn zmq_stopwatch_intermediate(w: *mut c_void) -> c_ulong {
    // SAFETY: C passes a stopwatch from zmq_stopwatch_start.
    unsafe { w.cast::<Stopwatch>().as_ref() }.map_or(0, |w| w.intermediate() as c_ulong)
}

/// Returns the microseconds since the start and frees the watch.
#[no_mangle]
pub unsafe extern "C" fn zmq_stopwatch_stop(w: *mut c_void) -> c_ulong {
    if w.is_null() {
        return 0;
    }
    // SAFETY: a stopwatch from zmq_stopwatch_start, given back once.
    let w = unsafe { Box::from_raw(w.cast::<Stopwatch>()) };
    w.stop() as c_ulong
}

#[no_mangle]
pub extern "C" fn zmq_sleep(seconds: c_int) {
    std::thread::sleep(Duration::from_secs(seconds.max(0) as u64));
}

struct ThreadArg {
    f: unsafe extern "C" fn(*mut c_void),
    arg: *mut c_void,
}

// SAFETY: zmq_threadstart's contract: the argument is handed to the new thread.
unsafe impl Send for ThreadArg {}

/// Starts `func(arg)` on a new thread; `zmq_threadclose` joins it.
#[no_mangle]
pub unsafe extern "C" fn zmq_threadstart(
    func: Option<unsafe extern "C" fn(*mut c_void)>,
    arg: *mut c_void,
) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        let f = func.ok_or(Error::EFAULT)?;
        let a = ThreadArg { f, arg };
        let h = std::thread::Builder::new()
            .spawn(move || {
                let a = a;
                // SAFETY: the C function with its own argument.
                unsafe { (a.f)(a.arg) }
            })
            .map_err(|_| Error::EAGAIN)?;
        Ok(Box::into_raw(Box::new(h)).cast())
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_threadclose(thread: *mut c_void) {
    if thread.is_null() {
        return;
    }
    // SAFETY: a handle from zmq_threadstart, given back once.
    let h = unsafe { Box::from_raw(thread.cast::<std::thread::JoinHandle<()>>()) };
    let _ = h.join();
}
