//! Sockets: `zmq_socket/close`, bind/connect/unbind/disconnect, `zmq_setsockopt` /
//! `zmq_getsockopt` through zeroring's one option table, `zmq_send/recv/send_const`,
//! `zmq_sendiov/recviov` and `zmq_socket_monitor`.
//!
//! Owns: the C handle of a socket (a tagged box around `zeroring::Socket`) and the C sizes of
//! option values. Must never: keep its own copy of an option (the table in `zeroring` is the
//! one truth), or hand C a socket whose tag is not live (ENOTSOCK, as libzmq).

use std::ffi::{c_char, c_int, c_void};

use zeroring::options::{self, num, Kind};
use zeroring::{Error, Msg, Socket, SocketType};

use crate::ctx::ctx_ref;
use crate::{c_bytes, c_str, guard};

const SOCKET_TAG: u32 = 0xbadd_ecaf;

/// What a `void *socket` points to.
#[derive(Debug)]
pub struct CSocket {
    tag: u32,
    /// The process that made it (see `zmq_close` after fork).
    pid: u32,
    pub(crate) sock: Socket,
    /// The part `zmq_recv` receives into and copies out of: reused, so that a connection's
    /// properties move from part to part instead of an `Arc` clone and drop per message.
    scratch: std::cell::RefCell<Msg>,
}

/// The socket behind a C handle; ENOTSOCK for null or anything that is not a live socket.
///
/// # Safety
/// `p` is null or points to readable memory at least as large as a `CSocket` (a handle this
/// library returned, not yet closed, is such memory).
pub(crate) unsafe fn sock_ref<'a>(p: *mut c_void) -> Result<&'a Socket, Error> {
    if p.is_null() {
        return Err(Error::ENOTSOCK);
    }
    // SAFETY: per the contract above.
    let c = unsafe { &*(p as *const CSocket) };
    if c.tag != SOCKET_TAG {
        return Err(Error::ENOTSOCK);
    }
    Ok(&c.sock)
}

/// The C handle's whole state; as [`sock_ref`].
///
/// # Safety
/// As [`sock_ref`].
unsafe fn csock_ref<'a>(p: *mut c_void) -> Result<&'a CSocket, Error> {
    // SAFETY: per the contract; `sock_ref` checked that `p` is a live CSocket.
    unsafe { sock_ref(p) }?;
    // SAFETY: as above.
    Ok(unsafe { &*(p as *const CSocket) })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_socket(context: *mut c_void, type_: c_int) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        // SAFETY: C passes a context handle.
        let c = unsafe { ctx_ref(context) }?;
        let t = SocketType::from_raw(type_).ok_or(Error::EINVAL)?;
        let sock = c.ctx.socket(t)?;
        // libzmq's default LINGER is -1 (zeroring's own is one second), but 0 for SUB and XSUB
        // (both libraries); a BLOCKY=0 context already made it 0.
        if c.ctx.blocky() && !matches!(t, SocketType::Sub | SocketType::XSub) {
            sock.set_linger(-1)?;
        }
        Ok(Box::into_raw(Box::new(CSocket {
            tag: SOCKET_TAG,
            pid: std::process::id(),
            sock,
            scratch: std::cell::RefCell::new(Msg::new()),
        }))
        .cast())
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_close(s: *mut c_void) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a socket handle.
        unsafe { sock_ref(s) }?;
        // SAFETY: checked live above, so it came from Box::into_raw in zmq_socket; C gives up
        // the handle with this call.
        let mut b = unsafe { Box::from_raw(s as *mut CSocket) };
        b.tag = 0;
        if b.pid != std::process::id() {
            // Inherited through fork: its I/O threads are in the parent, so closing it here
            // would wait for them. libzmq's children just let such sockets go; so do we.
            std::mem::forget(b);
            return Ok(0);
        }
        drop(b);
        Ok(0)
    })
}

macro_rules! endpoint_fn {
    ($name:ident, $method:ident) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name(s: *mut c_void, addr: *const c_char) -> c_int {
            guard(-1, || {
                // SAFETY: C passes a socket handle and a C string.
                let sock = unsafe { sock_ref(s) }?;
                // SAFETY: as above.
                let addr = unsafe { c_str(addr) }?;
                sock.$method(addr)?;
                Ok(0)
            })
        }
    };
}

endpoint_fn!(zmq_bind, bind);
endpoint_fn!(zmq_connect, connect);
endpoint_fn!(zmq_unbind, unbind);
endpoint_fn!(zmq_disconnect, disconnect);

fn is_int(kind: Kind) -> bool {
    matches!(kind, Kind::Int | Kind::Bool)
}

/// Options libzmq 4.3.5 takes but cannot read back (its getsockopt answers EINVAL): the socket
/// types' flags, and METADATA. zeroring's Rust API reads them; through the C ABI they answer
/// as libzmq does.
fn set_only_in_libzmq(option: c_int) -> bool {
    matches!(
        option,
        num::ROUTER_MANDATORY
            | num::ROUTER_HANDOVER
            | num::PROBE_ROUTER
            | num::REQ_CORRELATE
            | num::REQ_RELAXED
            | num::XPUB_VERBOSE
            | num::XPUB_VERBOSER
            | num::XPUB_NODROP
            | num::XPUB_MANUAL
            | num::XPUB_MANUAL_LAST_VALUE
            | num::ONLY_FIRST_SUBSCRIBE
            | num::METADATA
    )
}

/// How libzmq reads a flag: most of its booleans take only 0 and 1 (as zeroring's table does
/// for all); the socket types' flags take any value >= 0 (`value >= 0`, "on" when non-zero);
/// its `bool_relaxed` options take any value at all.
enum Relaxed {
    No,
    NonNegative,
    Any,
}

fn relaxed_bool(option: c_int) -> Relaxed {
    match option {
        num::ROUTER_RAW
        | num::ROUTER_MANDATORY
        | num::XPUB_VERBOSE
        | num::PROBE_ROUTER
        | num::REQ_CORRELATE
        | num::REQ_RELAXED
        | num::ROUTER_HANDOVER
        | num::XPUB_NODROP
        | num::XPUB_MANUAL
        | num::XPUB_VERBOSER => Relaxed::NonNegative,
        num::INVERT_MATCHING
        | num::ZAP_ENFORCE_DOMAIN
        | num::LOOPBACK_FASTPATH
        | num::MULTICAST_LOOP => Relaxed::Any,
        _ => Relaxed::No,
    }
}

#[no_mangle]
pub unsafe extern "C" fn zmq_setsockopt(
    s: *mut c_void,
    option: c_int,
    optval: *const c_void,
    optvallen: usize,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a socket handle.
        let sock = unsafe { sock_ref(s) }?;
        // libzmq's "strict" string options: NULL with length 0 clears them, an empty string
        // (a pointer with length 0) is refused (test_socks: an empty ZMQ_SOCKS_PROXY).
        // ZAP_DOMAIN cannot be emptied at all.
        if optvallen == 0
            && (!optval.is_null() || option == num::ZAP_DOMAIN)
            && matches!(
                option,
                num::SOCKS_PROXY
                    | num::TCP_ACCEPT_FILTER
                    | num::BINDTODEVICE
                    | num::PLAIN_USERNAME
                    | num::PLAIN_PASSWORD
                    | num::ZAP_DOMAIN
            )
        {
            return Err(Error::EINVAL);
        }
        // SAFETY: C passes `optvallen` readable bytes.
        let raw = unsafe { c_bytes(optval, optvallen) }.map_err(|_| Error::EINVAL)?;
        // An int option given as 8 bytes (bindings that pass every integer as int64).
        let narrowed;
        let raw = match options::spec(option) {
            Some(spec) if is_int(spec.kind) && (raw.len() == 8 || raw.len() == 4) => {
                let v = match raw.len() {
                    8 => i64::from_ne_bytes(raw.try_into().map_err(|_| Error::EINVAL)?),
                    _ => i64::from(i32::from_ne_bytes(
                        raw.try_into().map_err(|_| Error::EINVAL)?,
                    )),
                };
                let mut v = i32::try_from(v).map_err(|_| Error::EINVAL)?;
                if spec.kind == Kind::Bool {
                    v = match relaxed_bool(option) {
                        Relaxed::NonNegative if v > 1 => 1,
                        Relaxed::Any if v != 0 => 1,
                        _ => v,
                    };
                }
                if option == num::HEARTBEAT_TTL {
                    // libzmq keeps the TTL in deciseconds (the unit of ZMTP's PING): the
                    // value reads back rounded down to 100 ms, and must fit 16 bits.
                    let ds = v / 100;
                    if !(0..=i32::from(u16::MAX)).contains(&ds) {
                        return Err(Error::EINVAL);
                    }
                    v = ds * 100;
                }
                narrowed = v.to_ne_bytes();
                &narrowed[..]
            }
            _ => raw,
        };
        sock.set_option(option, raw)?;
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_getsockopt(
    s: *mut c_void,
    option: c_int,
    optval: *mut c_void,
    optvallen: *mut usize,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a socket handle.
        let sock = unsafe { sock_ref(s) }?;
        if optvallen.is_null() {
            return Err(Error::EFAULT);
        }
        // SAFETY: non-null, and C passes a valid size_t.
        let cap = unsafe { *optvallen };
        if optval.is_null() && cap > 0 {
            return Err(Error::EFAULT);
        }
        if set_only_in_libzmq(option) {
            return Err(Error::EINVAL);
        }
        let kind = options::spec(option).map(|s| s.kind);
        let value = match option {
            num::CURVE_PUBLICKEY | num::CURVE_SECRETKEY | num::CURVE_SERVERKEY => {
                sock.get_curve_key(option, cap)?.to_vec()
            }
            _ => sock.get_option(option)?,
        };
        if value.len() > cap {
            return Err(Error::EINVAL);
        }
        // SAFETY: C passes `cap` writable bytes at `optval` (non-null when cap > 0).
        let out = unsafe { std::slice::from_raw_parts_mut(optval.cast::<u8>(), cap) };
        out[..value.len()].copy_from_slice(&value);
        // libzmq zeroes the rest of the buffer; for an int read into 8 bytes, extend the sign
        // instead so an int64 reader sees the same number (−1 stays −1).
        let fill = match (kind, value.last()) {
            (Some(k), Some(last)) if is_int(k) && last & 0x80 != 0 => 0xff,
            _ => 0,
        };
        out[value.len()..].fill(fill);
        // SAFETY: checked non-null above.
        unsafe { *optvallen = value.len() };
        Ok(0)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_send(
    s: *mut c_void,
    buf: *const c_void,
    len: usize,
    flags: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a socket handle and `len` readable bytes.
        let sock = unsafe { sock_ref(s) }?;
        // SAFETY: as above.
        let data = unsafe { c_bytes(buf, len) }?;
        sock.send(data, flags)?;
        Ok(len.min(c_int::MAX as usize) as c_int)
    })
}

/// The buffer is constant and outlives the message (the contract of `zmq_send_const`): sent
/// without a copy.
#[no_mangle]
pub unsafe extern "C" fn zmq_send_const(
    s: *mut c_void,
    buf: *const c_void,
    len: usize,
    flags: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a socket handle.
        let sock = unsafe { sock_ref(s) }?;
        // SAFETY: zmq_send_const's contract: `len` bytes at `buf` stay valid and unchanged for
        // as long as the library may use them, which is what 'static promises here.
        let data: &'static [u8] = unsafe { c_bytes(buf, len) }?;
        sock.send_msg(Msg::from_bytes(bytes::Bytes::from_static(data)), flags)?;
        Ok(len.min(c_int::MAX as usize) as c_int)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_recv(
    s: *mut c_void,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a socket handle.
        let c = unsafe { csock_ref(s) }?;
        if buf.is_null() && len > 0 {
            return Err(Error::EFAULT);
        }
        // One thread at a time uses a socket (C's contract); a second one inside this call
        // (a signal handler, say) gets a part of its own.
        let mut own = Msg::new();
        let mut scratch = c.scratch.try_borrow_mut();
        let msg = match scratch.as_deref_mut() {
            Ok(m) => m,
            Err(_) => &mut own,
        };
        c.sock.recv(msg, flags)?;
        let n = msg.len().min(len);
        if n > 0 {
            // SAFETY: C passes `len` writable bytes at `buf`; n <= len.
            unsafe { std::ptr::copy_nonoverlapping(msg.data().as_ptr(), buf.cast::<u8>(), n) };
        }
        // The full size, even when truncated (libzmq's contract).
        let size = msg.len();
        if !msg.is_inline() {
            // Keep the properties for the next part, not a large body.
            let md = msg.take_metadata();
            *msg = Msg::new();
            msg.set_metadata(md);
        }
        Ok(size.min(c_int::MAX as usize) as c_int)
    })
}

/// Sends `count` buffers, as libzmq does: each with the caller's `flags` except the last,
/// which never has SNDMORE (so with flags 0 every buffer is a message of its own). Returns
/// what sending the last one returned (its size).
#[no_mangle]
pub unsafe extern "C" fn zmq_sendiov(
    s: *mut c_void,
    iov: *mut libc::iovec,
    count: usize,
    flags: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a socket handle.
        let sock = unsafe { sock_ref(s) }?;
        if iov.is_null() || count == 0 {
            return Err(Error::EINVAL);
        }
        // SAFETY: C passes `count` iovecs.
        let iovs = unsafe { std::slice::from_raw_parts(iov, count) };
        let mut last = 0;
        for (i, v) in iovs.iter().enumerate() {
            let f = if i + 1 == count {
                flags & !zeroring::SNDMORE
            } else {
                flags
            };
            // SAFETY: each iovec describes readable bytes.
            let data = unsafe { c_bytes(v.iov_base, v.iov_len) }?;
            sock.send(data, f)?;
            last = v.iov_len;
        }
        Ok(last.min(c_int::MAX as usize) as c_int)
    })
}

/// Receives up to `*count` parts of one message into freshly malloc'd buffers (the caller
/// frees them, as with libzmq); returns, and stores in `*count`, how many.
#[no_mangle]
pub unsafe extern "C" fn zmq_recviov(
    s: *mut c_void,
    iov: *mut libc::iovec,
    count: *mut usize,
    flags: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a socket handle.
        let sock = unsafe { sock_ref(s) }?;
        if iov.is_null() || count.is_null() {
            return Err(Error::EINVAL);
        }
        // SAFETY: non-null size_t from C.
        let cap = unsafe { *count };
        if cap == 0 {
            return Err(Error::EINVAL);
        }
        // SAFETY: C passes `cap` writable iovecs.
        let iovs = unsafe { std::slice::from_raw_parts_mut(iov, cap) };
        let mut n = 0;
        while n < cap {
            let msg = sock.recv_msg(if n == 0 { flags } else { 0 })?;
            // SAFETY: malloc of the part's size (at least 1 so it is never null on success).
            let p = unsafe { libc::malloc(msg.len().max(1)) };
            if p.is_null() {
                return Err(Error::ENOMEM);
            }
            // SAFETY: `p` has room for msg.len() bytes.
            unsafe { std::ptr::copy_nonoverlapping(msg.data().as_ptr(), p.cast(), msg.len()) };
            iovs[n] = libc::iovec {
                iov_base: p,
                iov_len: msg.len(),
            };
            n += 1;
            if !msg.more() {
                break;
            }
        }
        // SAFETY: non-null, checked above.
        unsafe { *count = n };
        Ok(n.min(c_int::MAX as usize) as c_int)
    })
}

#[no_mangle]
pub unsafe extern "C" fn zmq_socket_monitor(
    s: *mut c_void,
    addr: *const c_char,
    events: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: C passes a socket handle.
        let sock = unsafe { sock_ref(s) }?;
        let endpoint = if addr.is_null() {
            ""
        } else {
            // SAFETY: C passes a C string.
            unsafe { c_str(addr) }?
        };
        sock.monitor(endpoint, events as u32)?;
        Ok(0)
    })
}
