//! `zmq_msg_t`: a `zeroring::Msg` held by value in the caller's 64 bytes, and the `zmq_msg_*`
//! functions, `zmq_msg_send/recv` and the deprecated `zmq_sendmsg/recvmsg`.
//!
//! Layout: bytes 0..56 hold the `Msg` (its size is asserted below), bytes 56..64 a tag saying
//! the message is initialised, so that a closed or never-initialised `zmq_msg_t` is refused
//! with EFAULT (libzmq's check) instead of being read as a message.
//!
//! Owns: the message layout and the free-function contract of `zmq_msg_init_data` (called
//! exactly once, when the last holder of the bytes lets go, on whatever thread that is — as
//! libzmq). Must never: allocate a box per message, or leave a `Msg` behind without its tag.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use zeroring::engine::MsgMetadata;
use zeroring::{Error, Msg};

use crate::socket::sock_ref;
use crate::{c_str, guard};

/// zmq.h's `zmq_msg_t`: 64 bytes, pointer-aligned.
#[repr(C, align(8))]
#[derive(Debug)]
pub struct zmq_msg_t {
    _opaque: [u8; 64],
}

const TAG_OFFSET: usize = 56;
const MSG_LIVE: u64 = 0x7a72_6d73_675f_6c76;

const _: () = assert!(std::mem::size_of::<zmq_msg_t>() == 64);
const _: () = assert!(std::mem::align_of::<zmq_msg_t>() == 8);
const _: () = assert!(std::mem::size_of::<Msg>() <= TAG_OFFSET);
const _: () = assert!(std::mem::align_of::<Msg>() <= 8);

/// Writes `msg` into `m` and marks it initialised (whatever was there is overwritten, not
/// dropped).
///
/// # Safety
/// `m` is non-null and valid for writes of 64 bytes.
unsafe fn put(m: *mut zmq_msg_t, msg: Msg) {
    // SAFETY: `m` has room for a Msg at offset 0 (asserted size/align) and the tag after it.
    unsafe {
        std::ptr::write(m.cast::<Msg>(), msg);
        std::ptr::write(m.cast::<u8>().add(TAG_OFFSET).cast::<u64>(), MSG_LIVE);
    }
}

/// Whether `m` holds an initialised message.
///
/// # Safety
/// `m` is null or valid for reads of 64 bytes.
unsafe fn live(m: *const zmq_msg_t) -> Result<(), Error> {
    if m.is_null() {
        return Err(Error::EFAULT);
    }
    // SAFETY: 64 readable bytes, 8-aligned: the tag is a readable u64.
    let tag = unsafe { std::ptr::read(m.cast::<u8>().add(TAG_OFFSET).cast::<u64>()) };
    if tag != MSG_LIVE {
        return Err(Error::EFAULT);
    }
    Ok(())
}

/// The message in `m`.
///
/// # Safety
/// As [`live`]; the borrow must not outlive the message.
unsafe fn get<'a>(m: *const zmq_msg_t) -> Result<&'a Msg, Error> {
    // SAFETY: per the contract.
    unsafe { live(m) }?;
    // SAFETY: the tag says a Msg was written at offset 0 and not taken since.
    Ok(unsafe { &*m.cast::<Msg>() })
}

/// The message in `m`, to change in place.
///
/// # Safety
/// As [`live`], and writable; the borrow must not outlive the message.
unsafe fn get_mut<'a>(m: *mut zmq_msg_t) -> Result<&'a mut Msg, Error> {
    // SAFETY: per the contract.
    unsafe { live(m) }?;
    // SAFETY: the tag says a Msg was written at offset 0 and not taken since; C hands the
    // message to one call at a time.
    Ok(unsafe { &mut *m.cast::<Msg>() })
}

/// Moves the message out of `m`, leaving it uninitialised.
///
/// # Safety
/// As [`live`], and writable.
unsafe fn take(m: *mut zmq_msg_t) -> Result<Msg, Error> {
    // SAFETY: per the contract.
    unsafe { live(m) }?;
    // SAFETY: a live Msg is at offset 0; clearing the tag makes this read its only owner.
    unsafe {
        std::ptr::write(m.cast::<u8>().add(TAG_OFFSET).cast::<u64>(), 0);
        Ok(std::ptr::read(m.cast::<Msg>()))
    }
}

/// Replaces the message in a live `m` (the old one is dropped).
///
/// # Safety
/// As [`take`].
unsafe fn replace(m: *mut zmq_msg_t, msg: Msg) -> Result<(), Error> {
    // SAFETY: per the contract.
    drop(unsafe { take(m) }?);
    // SAFETY: as above.
    unsafe { put(m, msg) };
    Ok(())
}

fn c_len(n: usize) -> c_int {
    n.min(c_int::MAX as usize) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn zmq_msg_init(msg: *mut zmq_msg_t) -> c_int {
    guard(-1, || {
        if msg.is_null() {
            return Err(Error::EFAULT);
        }
        // SAFETY: C passes a zmq_msg_t.
        unsafe { put(msg, Msg::new()) };
        Ok(0)
    })
}

/// Zeroed bytes the caller fills through `zmq_msg_data`: kept inline when small, else in a
/// heap buffer only this message owns.
#[no_mangle]
pub unsafe extern "C" fn zmq_msg_init_size(msg: *mut zmq_msg_t, size: usize) -> c_int {
    guard(-1, || {
        if msg.is_null() {
            return Err(Error::EFAULT);
        }
        // Inline, or a recycled block up to MAX_POOLED (zmq_msg_init_size per message is
        // what libzmq's perf tools and many C programs do), else an allocation of its own.
        let m = Msg::zeroed(size).ok_or(Error::ENOMEM)?;
        // SAFETY: C passes a zmq_msg_t.
        unsafe { put(msg, m) };
        Ok(0)
    })
}

/// The caller's buffer, given back through its free function when the last holder drops it.
struct FfnOwner {
    data: *mut c_void,
    len: usize,
    ffn: unsafe extern "C" fn(*mut c_void, *mut c_void),
    hint: *mut c_void,
}

// SAFETY: zmq_msg_init_data hands the buffer to the library, which may release it from any
// thread (libzmq's I/O threads do the same); the buffer is only read until then.
unsafe impl Send for FfnOwner {}

impl AsRef<[u8]> for FfnOwner {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 || self.data.is_null() {
            return &[];
        }
        // SAFETY: zmq_msg_init_data's contract: `len` bytes at `data` stay valid until ffn.
        unsafe { std::slice::from_raw_parts(self.data.cast::<u8>(), self.len) }
    }
}

impl Drop for FfnOwner {
    fn drop(&mut self) {
        // SAFETY: the free function the caller gave, with its own data and hint, once.
        unsafe { (self.ffn)(self.data, self.hint) }
    }
}

#[no_mangle]
pub unsafe extern "C" fn zmq_msg_init_data(
    msg: *mut zmq_msg_t,
    data: *mut c_void,
    size: usize,
    ffn: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    hint: *mut c_void,
) -> c_int {
    guard(-1, || {
        if msg.is_null() || (data.is_null() && size > 0) {
            return Err(Error::EFAULT);
        }
        let body = match ffn {
            Some(ffn) => Bytes::from_owner(FfnOwner {
                data,
                len: size,
                ffn,
                hint,
            }),
            // No free function: the caller keeps the buffer alive and unchanged for as long
            // as the message lives (libzmq's constant-data message).
            None if size == 0 => Bytes::new(),
            None => {
                // SAFETY: per that contract, the bytes outlive every use the library makes.
                let data = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) };
                Bytes::from_static(data)
            }
        };
        // SAFETY: C passes a zmq_msg_t.
        unsafe { put(msg, Msg::from_bytes(body)) };
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_msg_close(msg: *mut zmq_msg_t) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a zmq_msg_t.
        drop(unsafe { take(msg) }?);
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_msg_move(dest: *mut zmq_msg_t, src: *mut zmq_msg_t) -> c_int {
    guard(-1, || {
        // SAFETY: C passes two zmq_msg_t; both must be initialised (libzmq's contract).
        unsafe { live(dest) }?;
        if std::ptr::eq(dest, src) {
            // SAFETY: as above.
            return unsafe { live(src) }.map(|_| 0);
        }
        // SAFETY: as above.
        let m = unsafe { take(src) }?;
        // SAFETY: as above; src is left an empty, initialised message.
        unsafe {
            put(src, Msg::new());
            replace(dest, m)?;
        }
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_msg_copy(dest: *mut zmq_msg_t, src: *mut zmq_msg_t) -> c_int {
    guard(-1, || {
        // SAFETY: C passes two initialised zmq_msg_t.
        let m = unsafe { get(src) }?.clone();
        // SAFETY: as above.
        unsafe { replace(dest, m) }?;
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_msg_data(msg: *mut zmq_msg_t) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        // SAFETY: C passes an initialised zmq_msg_t. C may write through the pointer (libzmq
        // allows it): the bytes are the message's own (inline, or a buffer from init_size).
        Ok(unsafe { get(msg) }?.data().as_ptr() as *mut c_void)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_msg_size(msg: *const zmq_msg_t) -> usize {
    // SAFETY: C passes an initialised zmq_msg_t.
    guard(0, || Ok(unsafe { get(msg) }?.len()))
}

#[no_mangle]
pub unsafe extern "C" fn zmq_msg_more(msg: *const zmq_msg_t) -> c_int {
    // SAFETY: C passes an initialised zmq_msg_t.
    guard(0, || Ok(unsafe { get(msg) }?.more() as c_int))
}

const ZMQ_MORE: c_int = 1;
const ZMQ_SRCFD: c_int = 2;
const ZMQ_SHARED: c_int = 3;

#[no_mangle]
pub unsafe extern "C" fn zmq_msg_get(msg: *const zmq_msg_t, property: c_int) -> c_int {
    guard(-1, || {
        // SAFETY: C passes an initialised zmq_msg_t.
        let m = unsafe { get(msg) }?;
        match property {
            ZMQ_MORE => Ok(m.more() as c_int),
            // Deprecated in libzmq: the fd of the connection the part came over (a tcp or
            // ipc connection's properties carry it); for others (inproc, sent parts) −1 with
            // EINVAL, as libzmq answers a message without one.
            ZMQ_SRCFD => m.metadata().and_then(|md| md.src_fd()).ok_or(Error::EINVAL),
            // Whether the bytes may be shared with another message, as libzmq answers: after
            // zmq_msg_copy or a PUB's fan-out, and for constant data (zmq_msg_init_data
            // without a free function); a fresh message is not.
            ZMQ_SHARED => Ok(m.is_shared() as c_int),
            _ => Err(Error::EINVAL),
        }
    })
}

/// No property can be set (as in libzmq 4.3).
#[no_mangle]
pub unsafe extern "C" fn zmq_msg_set(
    msg: *mut zmq_msg_t,
    _property: c_int,
    _optval: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes an initialised zmq_msg_t.
        unsafe { live(msg) }?;
        Err(Error::EINVAL)
    })
}

/// NUL-terminated copies of metadata values for `zmq_msg_gets`, kept as long as the
/// connection's metadata is alive (any message holding it keeps it alive), so the returned
/// pointer lives as long as the message, as libzmq promises.
type GetsTable = HashMap<usize, (Weak<MsgMetadata>, Vec<(String, CString)>)>;
static GETS: Mutex<Option<GetsTable>> = Mutex::new(None);

fn gets_cstr(meta: &Arc<MsgMetadata>, name: &str, value: &[u8]) -> *const c_char {
    let mut g = GETS.lock().unwrap_or_else(|e| e.into_inner());
    let table = g.get_or_insert_with(HashMap::new);
    let key = Arc::as_ptr(meta) as usize;
    let fresh = match table.get(&key) {
        Some((w, _)) => w.strong_count() == 0 || !std::ptr::eq(w.as_ptr(), Arc::as_ptr(meta)),
        None => true,
    };
    if fresh {
        // MsgMetadata no message holds any more cannot be asked about again: let it go.
        table.retain(|_, (w, _)| w.strong_count() > 0);
        table.insert(key, (Arc::downgrade(meta), Vec::new()));
    }
    let Some((_, values)) = table.get_mut(&key) else {
        return std::ptr::null();
    };
    if let Some((_, c)) = values.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
        return c.as_ptr();
    }
    // Values with an inner NUL are cut there (C would see only that much anyway).
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    let Ok(c) = CString::new(&value[..end]) else {
        return std::ptr::null();
    };
    let p = c.as_ptr();
    values.push((name.to_owned(), c));
    p
}

#[no_mangle]
pub unsafe extern "C" fn zmq_msg_gets(
    msg: *const zmq_msg_t,
    property: *const c_char,
) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: C passes an initialised zmq_msg_t and a C string.
        let m = unsafe { get(msg) }?;
        // SAFETY: as above.
        let name = unsafe { c_str(property) }?;
        let (Some(meta), Some(value)) = (m.metadata(), m.gets(name)) else {
            return Err(Error::EINVAL);
        };
        let p = gets_cstr(meta, name, value);
        if p.is_null() {
            return Err(Error::EINVAL);
        }
        Ok(p)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_msg_send(msg: *mut zmq_msg_t, s: *mut c_void, flags: c_int) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a socket handle and an initialised zmq_msg_t.
        let sock = unsafe { sock_ref(s) }?;
        // SAFETY: as above.
        let slot = unsafe { get_mut(msg) }?;
        let len = slot.len();
        // The part is moved out (the caller's message is empty once sent: libzmq nullifies
        // it) and, when it is not sent, moved back: the caller still owns it (libzmq's
        // contract). No clone, so no refcount traffic per message for a large body.
        match sock.try_send_msg(std::mem::take(slot), flags) {
            Ok(()) => Ok(c_len(len)),
            Err((e, back)) => {
                *slot = back;
                Err(e)
            }
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_msg_recv(msg: *mut zmq_msg_t, s: *mut c_void, flags: c_int) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a socket handle and an initialised zmq_msg_t.
        let sock = unsafe { sock_ref(s) }?;
        // SAFETY: as above. The part is received into the caller's message in place (its
        // old contents dropped only on success), as libzmq does.
        let m = unsafe { get_mut(msg) }?;
        sock.recv(m, flags)?;
        Ok(c_len(m.len()))
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_sendmsg(s: *mut c_void, msg: *mut zmq_msg_t, flags: c_int) -> c_int {
    // SAFETY: same contract as zmq_msg_send.
    unsafe { zmq_msg_send(msg, s, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn zmq_recvmsg(s: *mut c_void, msg: *mut zmq_msg_t, flags: c_int) -> c_int {
    // SAFETY: same contract as zmq_msg_recv.
    unsafe { zmq_msg_recv(msg, s, flags) }
}
