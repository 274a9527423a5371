//! The C ABI called as C calls it (through the exported `extern "C"` functions): what
//! bindings rely on beyond libzmq's own tests — errno untouched on success, int options given
//! as 8 bytes, the free function of `zmq_msg_init_data` called exactly once, libzmq's error
//! strings, and bad handles refused rather than crashing.

use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};

use zmq::ctx::*;
use zmq::msg::*;
use zmq::socket::*;
use zmq::util::*;

const ZMQ_PAIR: c_int = 0;
const ZMQ_REQ: c_int = 3;
const ZMQ_SUB: c_int = 2;
const ZMQ_XSUB: c_int = 10;
const ZMQ_LINGER: c_int = 17;
const ZMQ_SUBSCRIBE: c_int = 6;
const ZMQ_ROUTER: c_int = 6;
const ZMQ_ROUTER_MANDATORY: c_int = 33;
const ZMQ_ROUTER_RAW: c_int = 41;
const ZMQ_PLAIN_USERNAME: c_int = 45;
const ZMQ_ZAP_DOMAIN: c_int = 55;
const ZMQ_INVERT_MATCHING: c_int = 74;
const ZMQ_RCVTIMEO: c_int = 27;
const ZMQ_RCVMORE: c_int = 13;
const ZMQ_ROUTING_ID: c_int = 5;
const EFSM: c_int = 156_384_712 + 51;
const ETERM: c_int = 156_384_712 + 53;

fn errno() -> c_int {
    // SAFETY: this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn set_errno(v: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = v }
}

fn cstr(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s).unwrap()
}

struct Pair {
    ctx: *mut c_void,
    a: *mut c_void,
    b: *mut c_void,
}

fn pair(name: &str) -> Pair {
    let ctx = zmq_ctx_new();
    let ep = cstr(&format!("inproc://{name}"));
    // SAFETY: handles from this library, C strings that outlive the calls.
    unsafe {
        let a = zmq_socket(ctx, ZMQ_PAIR);
        let b = zmq_socket(ctx, ZMQ_PAIR);
        assert_eq!(zmq_bind(a, ep.as_ptr()), 0);
        assert_eq!(zmq_connect(b, ep.as_ptr()), 0);
        let timeout: c_int = 10_000;
        for s in [a, b] {
            let p = (&timeout as *const c_int).cast();
            assert_eq!(zmq_setsockopt(s, ZMQ_RCVTIMEO, p, 4), 0);
        }
        Pair { ctx, a, b }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // SAFETY: handles from `pair`, closed once.
        unsafe {
            assert_eq!(zmq_close(self.a), 0);
            assert_eq!(zmq_close(self.b), 0);
            assert_eq!(zmq_ctx_term(self.ctx), 0);
        }
    }
}

#[test]
fn errno_is_left_alone_on_success_and_set_on_failure() {
    let p = pair("errno");
    set_errno(12345);
    let mut more: c_int = -1;
    let mut len: usize = 4;
    // SAFETY: valid socket and buffers.
    let rc =
        unsafe { zmq_getsockopt(p.a, ZMQ_RCVMORE, (&mut more as *mut c_int).cast(), &mut len) };
    assert_eq!((rc, more, len), (0, 0, 4));
    assert_eq!(errno(), 12345, "a successful call changed errno");
    // SAFETY: an unknown option on a valid socket.
    let rc = unsafe { zmq_setsockopt(p.a, 9999, (&more as *const c_int).cast(), 4) };
    assert_eq!((rc, errno(), zmq_errno()), (-1, libc::EINVAL, libc::EINVAL));
}

#[test]
fn int_options_take_four_or_eight_bytes_and_read_back_sign_extended() {
    let p = pair("int64");
    let linger: i64 = 250;
    // SAFETY: valid socket, 8 readable bytes.
    let rc = unsafe { zmq_setsockopt(p.a, ZMQ_LINGER, (&linger as *const i64).cast(), 8) };
    assert_eq!(rc, 0);
    let mut out: i64 = 0x5555_5555_5555_5555;
    let mut len: usize = 8;
    // SAFETY: valid socket, 8 writable bytes.
    let rc = unsafe { zmq_getsockopt(p.a, ZMQ_LINGER, (&mut out as *mut i64).cast(), &mut len) };
    assert_eq!(rc, 0);
    assert_eq!((out, len), (250, 4));
    let minus_one: i64 = -1;
    // SAFETY: as above.
    unsafe {
        assert_eq!(
            zmq_setsockopt(p.a, ZMQ_LINGER, (&minus_one as *const i64).cast(), 8),
            0
        );
        let mut len: usize = 8;
        assert_eq!(
            zmq_getsockopt(p.a, ZMQ_LINGER, (&mut out as *mut i64).cast(), &mut len),
            0
        );
    }
    assert_eq!(out, -1, "an int64 reader sees -1, not 4294967295");
    // Out of int range: refused.
    let big: i64 = 1 << 40;
    // SAFETY: as above.
    let rc = unsafe { zmq_setsockopt(p.a, ZMQ_LINGER, (&big as *const i64).cast(), 8) };
    assert_eq!(rc, -1);
    assert_eq!(errno(), libc::EINVAL);
}

#[test]
fn default_linger_through_the_c_abi_is_libzmqs() {
    let p = pair("linger");
    let mut v: c_int = 0;
    let mut len = 4usize;
    // SAFETY: valid socket and buffers.
    let rc = unsafe { zmq_getsockopt(p.b, ZMQ_LINGER, (&mut v as *mut c_int).cast(), &mut len) };
    assert_eq!(rc, 0);
    assert_eq!(v, -1);
    // SUB and XSUB default to 0 in libzmq (its XSUB constructor), so that a subscriber whose
    // publisher never came does not hold up zmq_ctx_term.
    for t in [ZMQ_SUB, ZMQ_XSUB] {
        // SAFETY: a context from this library; the socket is closed below.
        let s = unsafe { zmq_socket(p.ctx, t) };
        assert!(!s.is_null());
        let mut v: c_int = 7;
        let mut len = 4usize;
        // SAFETY: valid socket and buffers.
        let rc = unsafe { zmq_getsockopt(s, ZMQ_LINGER, (&mut v as *mut c_int).cast(), &mut len) };
        // SAFETY: opened above, closed once (before asserting: the pair's term waits for it).
        assert_eq!(unsafe { zmq_close(s) }, 0);
        assert_eq!((rc, v), (0, 0), "socket type {t}");
    }
}

#[test]
fn term_does_not_wait_for_a_subscribers_publisher_that_never_came() {
    // A port nobody listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ep = cstr(&format!("tcp://127.0.0.1:{port}"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ctx = zmq_ctx_new();
        // SAFETY: handles from this library, C strings and buffers that outlive the calls.
        unsafe {
            for (t, sub) in [(ZMQ_SUB, false), (ZMQ_XSUB, true)] {
                let s = zmq_socket(ctx, t);
                if sub {
                    assert_eq!(zmq_send(s, b"\x01topic".as_ptr().cast(), 6, 0), 6);
                } else {
                    assert_eq!(
                        zmq_setsockopt(s, ZMQ_SUBSCRIBE, b"topic".as_ptr().cast(), 5),
                        0
                    );
                }
                assert_eq!(zmq_connect(s, ep.as_ptr()), 0);
                assert_eq!(zmq_close(s), 0);
            }
            assert_eq!(zmq_ctx_term(ctx), 0);
        }
        let _ = tx.send(());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("zmq_ctx_term returned: closed subscribers do not linger");
}

static FREED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn free_box(data: *mut c_void, hint: *mut c_void) {
    assert_eq!(hint as usize, 0x1234);
    // SAFETY: `data` is the Box<[u8; 64]> leaked below, freed once.
    drop(unsafe { Box::from_raw(data.cast::<[u8; 64]>()) });
    FREED.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn init_data_free_function_runs_once_after_the_copy_and_the_send() {
    let p = pair("ffn");
    let data = Box::into_raw(Box::new([7u8; 64]));
    let mut m = std::mem::MaybeUninit::<zmq_msg_t>::uninit();
    let mut c = std::mem::MaybeUninit::<zmq_msg_t>::uninit();
    // SAFETY: message storage on the stack, a heap buffer handed over with its free function.
    unsafe {
        assert_eq!(
            zmq_msg_init_data(
                m.as_mut_ptr(),
                data.cast(),
                64,
                Some(free_box),
                0x1234 as *mut c_void
            ),
            0
        );
        assert_eq!(
            zmq_msg_data(m.as_mut_ptr()),
            data.cast::<c_void>(),
            "no copy"
        );
        assert_eq!(zmq_msg_init(c.as_mut_ptr()), 0);
        assert_eq!(zmq_msg_copy(c.as_mut_ptr(), m.as_mut_ptr()), 0);
        assert_eq!(zmq_msg_send(m.as_mut_ptr(), p.a, 0), 64);
        // Sent: the caller's message is empty, still initialised.
        assert_eq!(zmq_msg_size(m.as_ptr()), 0);
        assert_eq!(
            FREED.load(Ordering::SeqCst),
            0,
            "the copy still holds the buffer"
        );
        assert_eq!(zmq_msg_close(c.as_mut_ptr()), 0);
        let mut buf = [0u8; 100];
        assert_eq!(zmq_recv(p.b, buf.as_mut_ptr().cast(), buf.len(), 0), 64);
        assert_eq!(buf[..64], [7u8; 64]);
        assert_eq!(zmq_msg_close(m.as_mut_ptr()), 0);
        // Closing twice is refused, not a double free.
        assert_eq!(zmq_msg_close(m.as_mut_ptr()), -1);
        assert_eq!(errno(), libc::EFAULT);
    }
    assert_eq!(FREED.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failed_msg_send_leaves_the_message_with_the_caller() {
    let ctx = zmq_ctx_new();
    let mut m = std::mem::MaybeUninit::<zmq_msg_t>::uninit();
    // SAFETY: a REQ socket with no peer; message storage on the stack.
    unsafe {
        let req = zmq_socket(ctx, ZMQ_REQ);
        let mut rid = [0u8; 8];
        let mut len = rid.len();
        assert_eq!(
            zmq_getsockopt(req, ZMQ_ROUTING_ID, rid.as_mut_ptr().cast(), &mut len),
            0
        );
        assert_eq!(zmq_msg_init_size(m.as_mut_ptr(), 3), 0);
        std::ptr::copy_nonoverlapping(b"abc".as_ptr(), zmq_msg_data(m.as_mut_ptr()).cast(), 3);
        // A REQ may not receive first: EFSM, and the message is untouched.
        assert_eq!(zmq_msg_recv(m.as_mut_ptr(), req, 0), -1);
        assert_eq!(errno(), EFSM);
        assert_eq!(zmq_msg_send(m.as_mut_ptr(), req, 1 /* DONTWAIT */), -1);
        assert_eq!(errno(), libc::EAGAIN);
        assert_eq!(zmq_msg_size(m.as_ptr()), 3);
        let data = std::slice::from_raw_parts(zmq_msg_data(m.as_mut_ptr()).cast::<u8>(), 3);
        assert_eq!(data, b"abc");
        assert_eq!(zmq_msg_close(m.as_mut_ptr()), 0);
        // A body too large to be inline comes back the same: same bytes, same buffer.
        assert_eq!(zmq_msg_init_size(m.as_mut_ptr(), 100), 0);
        let before = zmq_msg_data(m.as_mut_ptr());
        std::ptr::write_bytes(before.cast::<u8>(), 0x42, 100);
        assert_eq!(zmq_msg_send(m.as_mut_ptr(), req, 1 /* DONTWAIT */), -1);
        assert_eq!(errno(), libc::EAGAIN);
        assert_eq!(zmq_msg_size(m.as_ptr()), 100);
        assert_eq!(zmq_msg_data(m.as_mut_ptr()), before);
        let data = std::slice::from_raw_parts(before.cast::<u8>(), 100);
        assert!(data.iter().all(|&b| b == 0x42));
        assert_eq!(zmq_msg_close(m.as_mut_ptr()), 0);
        let zero: c_int = 0;
        assert_eq!(
            zmq_setsockopt(req, ZMQ_LINGER, (&zero as *const c_int).cast(), 4),
            0
        );
        assert_eq!(zmq_close(req), 0);
        assert_eq!(zmq_ctx_term(ctx), 0);
    }
}

#[test]
fn strerror_has_libzmqs_strings() {
    let s = |e| {
        // SAFETY: zmq_strerror returns a static C string.
        unsafe { CStr::from_ptr(zmq_strerror(e)) }
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(s(EFSM), "Operation cannot be accomplished in current state");
    assert_eq!(s(ETERM), "Context was terminated");
    assert_eq!(
        s(156_384_712 + 52),
        "The protocol is not compatible with the socket type"
    );
    assert_eq!(s(156_384_712 + 54), "No thread available");
    assert_eq!(s(libc::EAGAIN), "Resource temporarily unavailable");
    assert_eq!(s(libc::EHOSTUNREACH), "Host unreachable");
}

#[test]
fn bad_handles_are_refused() {
    let mut junk = [0u64; 16];
    let p = junk.as_mut_ptr().cast::<c_void>();
    // SAFETY: null and junk memory the size of a handle: refused by tag, never used.
    unsafe {
        assert_eq!(zmq_close(std::ptr::null_mut()), -1);
        assert_eq!(errno(), libc::ENOTSOCK);
        assert_eq!(zmq_close(p), -1);
        assert_eq!(errno(), libc::ENOTSOCK);
        assert_eq!(zmq_send(p, b"x".as_ptr().cast(), 1, 0), -1);
        assert_eq!(errno(), libc::ENOTSOCK);
        assert!(zmq_socket(std::ptr::null_mut(), ZMQ_PAIR).is_null());
        assert_eq!(errno(), libc::EFAULT);
        assert_eq!(zmq_ctx_term(p), -1);
        assert_eq!(errno(), libc::EFAULT);
        assert_eq!(zmq_msg_size(p.cast()), 0);
        assert_eq!(errno(), libc::EFAULT);
    }
}

#[test]
fn version_and_z85_round_trip() {
    let (mut a, mut b, mut c) = (0, 0, 0);
    // SAFETY: three ints.
    unsafe { zmq_version(&mut a, &mut b, &mut c) };
    assert_eq!((a, b, c), (4, 3, 5));
    let data = [0x86u8, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
    let mut text = [0 as std::ffi::c_char; 11];
    let mut back = [0u8; 8];
    // SAFETY: buffers of the sizes Z85 needs.
    unsafe {
        assert!(!zmq_z85_encode(text.as_mut_ptr(), data.as_ptr(), 8).is_null());
        assert_eq!(
            CStr::from_ptr(text.as_ptr()).to_str().unwrap(),
            "HelloWorld"
        );
        assert!(!zmq_z85_decode(back.as_mut_ptr(), text.as_ptr()).is_null());
        assert!(zmq_z85_encode(text.as_mut_ptr(), data.as_ptr(), 7).is_null());
        // An empty string decodes to nothing in libzmq: NULL, EINVAL.
        set_errno(0);
        assert!(zmq_z85_decode(back.as_mut_ptr(), c"".as_ptr()).is_null());
        assert_eq!(errno(), libc::EINVAL);
    }
    assert_eq!(back, data);
}

/// ZMQ_SRCFD of a message that did not come over a connection: −1 with EINVAL, as libzmq.
#[test]
fn srcfd_of_a_message_without_a_connection_is_einval() {
    const ZMQ_SRCFD: c_int = 2;
    let mut m = std::mem::MaybeUninit::<zmq_msg_t>::uninit();
    // SAFETY: a zmq_msg_t initialised here and closed below.
    unsafe {
        assert_eq!(zmq_msg_init_size(m.as_mut_ptr(), 3), 0);
        set_errno(0);
        assert_eq!(zmq_msg_get(m.as_ptr(), ZMQ_SRCFD), -1);
        assert_eq!(errno(), libc::EINVAL);
        assert_eq!(zmq_msg_close(m.as_mut_ptr()), 0);
    }
}

/// libzmq's "strict" string options (ZMQ_SOCKS_PROXY, TCP_ACCEPT_FILTER, BINDTODEVICE): NULL
/// with length 0 clears, an empty string is refused with EINVAL (test_socks).
#[test]
fn strict_string_options_refuse_an_empty_string_but_clear_on_null() {
    const ZMQ_SOCKS_PROXY: c_int = 68;
    let p = pair("strict");
    let proxy = b"somehost:1080";
    let mut buf = [0u8; 64];
    let mut len = buf.len();
    // SAFETY: valid socket; pointers with the lengths given (or NULL with 0).
    unsafe {
        assert_eq!(
            zmq_setsockopt(p.a, ZMQ_SOCKS_PROXY, proxy.as_ptr().cast(), proxy.len()),
            0
        );
        assert_eq!(
            zmq_setsockopt(p.a, ZMQ_SOCKS_PROXY, b"".as_ptr().cast(), 0),
            -1
        );
        assert_eq!(errno(), libc::EINVAL);
        assert_eq!(zmq_setsockopt(p.a, ZMQ_SOCKS_PROXY, std::ptr::null(), 0), 0);
        assert_eq!(
            zmq_getsockopt(p.a, ZMQ_SOCKS_PROXY, buf.as_mut_ptr().cast(), &mut len),
            0
        );
    }
    assert_eq!((len, buf[0]), (1, 0), "NULL cleared it: an empty string");
}

/// `ZMQ_SHARED` as libzmq answers it (its test_msg_flags): a fresh message is not shared, its
/// copy is (both sides), a constant-data message always is; for every size (inline, a pooled
/// block, an allocation of its own) and for a received part.
#[test]
fn zmq_shared_is_libzmqs() {
    // zmq.h: ZMQ_SHARED is message property 3.
    const ZMQ_SHARED: c_int = 3;
    let p = pair("shared");
    let mut a = std::mem::MaybeUninit::<zmq_msg_t>::uninit();
    let mut b = std::mem::MaybeUninit::<zmq_msg_t>::uninit();
    // SAFETY: message storage on the stack; every message is closed before it goes.
    unsafe {
        for size in [5usize, 100, 1024, 5000] {
            assert_eq!(zmq_msg_init_size(a.as_mut_ptr(), size), 0);
            assert_eq!(zmq_msg_get(a.as_ptr(), ZMQ_SHARED), 0, "{size} B fresh");
            assert_eq!(zmq_msg_init(b.as_mut_ptr()), 0);
            assert_eq!(zmq_msg_copy(b.as_mut_ptr(), a.as_mut_ptr()), 0);
            // libzmq copies a very small message; larger ones share their content.
            let shared = c_int::from(size > 33);
            assert_eq!(
                zmq_msg_get(a.as_ptr(), ZMQ_SHARED),
                shared,
                "{size} B copied"
            );
            assert_eq!(zmq_msg_get(b.as_ptr(), ZMQ_SHARED), shared, "{size} B copy");
            assert_eq!(zmq_msg_close(b.as_mut_ptr()), 0);
            assert_eq!(
                zmq_msg_get(a.as_ptr(), ZMQ_SHARED),
                0,
                "{size} B alone again"
            );
            // Sent and received: the received part is its own.
            assert_eq!(zmq_msg_send(a.as_mut_ptr(), p.a, 0), size as c_int);
            assert_eq!(zmq_msg_close(a.as_mut_ptr()), 0);
            assert_eq!(zmq_msg_init(b.as_mut_ptr()), 0);
            assert_eq!(zmq_msg_recv(b.as_mut_ptr(), p.b, 0), size as c_int);
            assert_eq!(zmq_msg_get(b.as_ptr(), ZMQ_SHARED), 0, "{size} B received");
            assert_eq!(zmq_msg_close(b.as_mut_ptr()), 0);
        }
        let text = b"TEST\0";
        assert_eq!(
            zmq_msg_init_data(
                a.as_mut_ptr(),
                text.as_ptr() as *mut c_void,
                5,
                None,
                std::ptr::null_mut()
            ),
            0
        );
        assert_eq!(zmq_msg_get(a.as_ptr(), ZMQ_SHARED), 1, "constant data");
        assert_eq!(zmq_msg_close(a.as_mut_ptr()), 0);
    }
}

/// The C ABI reads flags and strings as libzmq's setsockopt does (options.cpp): the socket
/// types' flags take any value >= 0 ("on" when non-zero), INVERT_MATCHING and its like any
/// value at all; PLAIN_USERNAME refuses an empty string (NULL switches back to NULL security),
/// ZAP_DOMAIN refuses both; and the flags libzmq cannot read back answer EINVAL to
/// getsockopt, as libzmq's do.
#[test]
fn flags_and_strings_as_libzmqs_setsockopt_reads_them() {
    let p = pair("relaxed");
    // SAFETY: handles from this library; pointers with the lengths given (or NULL with 0).
    unsafe {
        let r = zmq_socket(p.ctx, ZMQ_ROUTER);
        let set = |s, o, v: c_int| zmq_setsockopt(s, o, (&v as *const c_int).cast(), 4);
        let get = |s, o| {
            let mut v: c_int = 7;
            let mut len = 4usize;
            let rc = zmq_getsockopt(s, o, (&mut v as *mut c_int).cast(), &mut len);
            (rc, v)
        };
        let results = (
            set(r, ZMQ_ROUTER_MANDATORY, 2),
            set(r, ZMQ_ROUTER_MANDATORY, -1),
            get(r, ZMQ_ROUTER_MANDATORY).0,
            set(r, ZMQ_ROUTER_RAW, 5),
            set(p.a, ZMQ_INVERT_MATCHING, -3),
            get(p.a, ZMQ_INVERT_MATCHING),
            zmq_setsockopt(p.a, ZMQ_PLAIN_USERNAME, b"".as_ptr().cast(), 0),
            zmq_setsockopt(p.a, ZMQ_PLAIN_USERNAME, std::ptr::null(), 0),
            zmq_setsockopt(p.a, ZMQ_ZAP_DOMAIN, std::ptr::null(), 0),
            zmq_setsockopt(p.a, ZMQ_ZAP_DOMAIN, [b'd'; 256].as_ptr().cast(), 256),
            zmq_setsockopt(p.a, ZMQ_ZAP_DOMAIN, [b'd'; 255].as_ptr().cast(), 255),
        );
        // Closed before asserting: the pair's term waits for it.
        assert_eq!(zmq_close(r), 0);
        assert_eq!(results, (0, -1, -1, 0, 0, (0, 1), -1, 0, -1, -1, 0));
    }
}
