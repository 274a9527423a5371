"""The C functions outside the socket API, called through ctypes on the library named by argv[1]:
Z85, zmq_has, zmq_strerror, the zmq_msg_* calls, context options, timers, atomic counters,
zmq_poll over a socket and a pipe, and the CURVE key functions, with the edge cases libzmq answers in its own way.

Compared against libzmq 4.3.5 (pyzmq's wheel's copy) by capi/probe/run.sh. Leaves out what
crashes or hangs libzmq itself (NULL buffers: it asserts; a due zero-interval timer: its
zmq_timers_execute loops), what reads past a short buffer (zmq_curve_public of a short key),
and what differs by build (zmq_has("tipc")).
"""
import ctypes
import os
import sys
import time

lib = ctypes.CDLL(sys.argv[1])
vp = ctypes.c_void_p
lib.zmq_strerror.restype = ctypes.c_char_p
lib.zmq_z85_encode.restype = ctypes.c_char_p
lib.zmq_z85_decode.restype = vp
lib.zmq_ctx_new.restype = vp
lib.zmq_socket.restype = vp
lib.zmq_socket.argtypes = [vp, ctypes.c_int]
lib.zmq_msg_gets.restype = ctypes.c_char_p
lib.zmq_timers_new.restype = vp
lib.zmq_atomic_counter_new.restype = vp


def show(label, v, failed=None):
    """Prints `v`, with errno when the call failed (`failed`, or a negative int / NULL)."""
    if failed is None:
        failed = v is None or (isinstance(v, int) and v < 0)
    print(label, "->", v, "errno %d" % lib.zmq_errno() if failed else "")


for n in [0, 3, 4, 5, 8]:
    buf = ctypes.create_string_buffer(n * 5 // 4 + 1)
    show("z85_encode %d" % n, lib.zmq_z85_encode(buf, b"\x86\x4f\xd2\x6f" * 2, ctypes.c_size_t(n)))
for text in [b"", b"HelloWorld", b"Hello", b"HelloWorl~", b"abcd"]:
    out = ctypes.create_string_buffer(16)
    r = lib.zmq_z85_decode(out, text)
    show("z85_decode %r" % text, r is not None and out.raw[: len(text) * 4 // 5], r is None)
for cap in [b"ipc", b"pgm", b"norm", b"curve", b"gssapi", b"draft", b"vmci", b"", b"tcp"]:
    show("has %r" % cap, lib.zmq_has(cap), False)
for e in [0, 1, 11, 22, 88, 93, 95, 97, 113, 156384713, 156384762, 156384763, 156384764,
          156384765, 156384766]:
    show("strerror %d" % e, lib.zmq_strerror(e), False)

msg = (ctypes.c_ubyte * 64)()
show("msg_init_size 5", lib.zmq_msg_init_size(msg, ctypes.c_size_t(5)))
show("msg_size", lib.zmq_msg_size(msg))
show("msg_more", lib.zmq_msg_more(msg))
show("msg_get MORE", lib.zmq_msg_get(msg, 1))
show("msg_get SRCFD", lib.zmq_msg_get(msg, 2))
show("msg_get SHARED", lib.zmq_msg_get(msg, 3))
show("msg_get 99", lib.zmq_msg_get(msg, 99))
show("msg_set MORE", lib.zmq_msg_set(msg, 1, 1))
show("msg_set 99", lib.zmq_msg_set(msg, 99, 1))
show("msg_gets Socket-Type", lib.zmq_msg_gets(msg, b"Socket-Type"))
other = (ctypes.c_ubyte * 64)()
show("msg_init", lib.zmq_msg_init(other))
show("msg_copy", lib.zmq_msg_copy(other, msg))
show("msg_get SHARED after copy", lib.zmq_msg_get(msg, 3))
show("msg_move", lib.zmq_msg_move(other, msg))
show("msg_size of the moved-from", lib.zmq_msg_size(msg))
show("msg_size of the moved-to", lib.zmq_msg_size(other))
show("msg_close", lib.zmq_msg_close(other))
show("msg_close moved-from", lib.zmq_msg_close(msg))

ctx = lib.zmq_ctx_new()
s = lib.zmq_socket(ctx, 7)
show("socket type 99", lib.zmq_socket(ctx, 99))
show("send, no peer", lib.zmq_send(vp(s), b"x", ctypes.c_size_t(1), 1))
show("recv, nothing", lib.zmq_recv(vp(s), ctypes.create_string_buffer(4), ctypes.c_size_t(4), 1))
show("send, empty", lib.zmq_send(vp(s), None, ctypes.c_size_t(0), 1))
size = ctypes.c_size_t(2)
show("getsockopt TYPE into 2 bytes",
     lib.zmq_getsockopt(vp(s), 16, ctypes.create_string_buffer(8), ctypes.byref(size)))
size = ctypes.c_size_t(3)
show("getsockopt LAST_ENDPOINT into 3 bytes",
     lib.zmq_getsockopt(vp(s), 32, ctypes.create_string_buffer(8), ctypes.byref(size)))
show("setsockopt SNDHWM from 2 bytes",
     lib.zmq_setsockopt(vp(s), 23, ctypes.byref(ctypes.c_int(5)), ctypes.c_size_t(2)))
show("close", lib.zmq_close(vp(s)))
show("ctx_set IO_THREADS -1", lib.zmq_ctx_set(vp(ctx), 1, -1))
show("ctx_set MAX_SOCKETS 0", lib.zmq_ctx_set(vp(ctx), 2, 0))
show("ctx_set MAX_SOCKETS 2^30", lib.zmq_ctx_set(vp(ctx), 2, 1 << 30))
show("ctx_get MAX_SOCKETS", lib.zmq_ctx_get(vp(ctx), 2))
show("ctx_get unknown", lib.zmq_ctx_get(vp(ctx), 9999))
show("ctx_term", lib.zmq_ctx_term(vp(ctx)))

timers = lib.zmq_timers_new()
CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, vp)
fired = []
cb = CALLBACK(lambda i, a: fired.append(i))
zero = lib.zmq_timers_add(vp(timers), ctypes.c_size_t(0), cb, None)
show("timers_add, interval 0", zero)
# Cancelled at once: libzmq's zmq_timers_execute never returns with a zero-interval timer due.
show("timers_cancel, interval 0", lib.zmq_timers_cancel(vp(timers), zero))
tid = lib.zmq_timers_add(vp(timers), ctypes.c_size_t(10), cb, None)
show("timers_add", tid)
show("timers_add, no handler", lib.zmq_timers_add(vp(timers), ctypes.c_size_t(10), None, None))
show("timers_timeout in 0..10", 0 <= lib.zmq_timers_timeout(vp(timers)) <= 10, False)
show("timers_cancel unknown", lib.zmq_timers_cancel(vp(timers), 999))
show("timers_set_interval unknown", lib.zmq_timers_set_interval(vp(timers), 999, ctypes.c_size_t(5)))
show("timers_reset unknown", lib.zmq_timers_reset(vp(timers), 999))
time.sleep(0.02)
show("timers_execute", lib.zmq_timers_execute(vp(timers)))
show("fired", len(fired) >= 1, False)
show("timers_cancel", lib.zmq_timers_cancel(vp(timers), tid))
show("timers_cancel again", lib.zmq_timers_cancel(vp(timers), tid))
show("timers_timeout, none", lib.zmq_timers_timeout(vp(timers)), False)
handle = vp(timers)
show("timers_destroy", lib.zmq_timers_destroy(ctypes.byref(handle)))
show("timers_destroy nulls the handle", handle.value, False)
show("timers_destroy of NULL", lib.zmq_timers_destroy(ctypes.byref(vp(None))))

counter = lib.zmq_atomic_counter_new()
for op in ["inc", "inc", "dec", "dec", "dec"]:
    show("atomic_counter_" + op, getattr(lib, "zmq_atomic_counter_" + op)(vp(counter)), False)
show("atomic_counter_value", lib.zmq_atomic_counter_value(vp(counter)), False)
lib.zmq_atomic_counter_set(vp(counter), -5)
show("atomic_counter_value after set -5", lib.zmq_atomic_counter_value(vp(counter)), False)

class PollItem(ctypes.Structure):
    _fields_ = [("socket", vp), ("fd", ctypes.c_int), ("events", ctypes.c_short),
                ("revents", ctypes.c_short)]


show("poll, no items, 20 ms", lib.zmq_poll(None, 0, 20))
show("poll, NULL items", lib.zmq_poll(None, 1, 0))
ctx = lib.zmq_ctx_new()
a = lib.zmq_socket(ctx, 0)
b = lib.zmq_socket(ctx, 0)
lib.zmq_bind(vp(a), b"inproc://probe-poll")
lib.zmq_connect(vp(b), b"inproc://probe-poll")
items = (PollItem * 2)()
items[0].socket = b
items[0].events = 1 | 2 | 4 | 8
r, w = os.pipe()
items[1].fd = r
items[1].events = 1 | 2
show("poll, nothing to read", lib.zmq_poll(items, 2, 0))
show("revents", (items[0].revents, items[1].revents), False)
os.write(w, b"x")
lib.zmq_send(vp(a), b"m", ctypes.c_size_t(1), 0)
show("poll, both readable", lib.zmq_poll(items, 2, 1000))
show("revents", (items[0].revents, items[1].revents), False)
items[0].events = 0
items[1].events = 0
show("poll, no interest", lib.zmq_poll(items, 2, 0))
show("revents", (items[0].revents, items[1].revents), False)
items[1].fd = 9999
items[1].events = 1
show("poll, a closed fd", lib.zmq_poll(items, 2, 0))
show("revents", (items[0].revents, items[1].revents), False)
lib.zmq_close(vp(a))
lib.zmq_close(vp(b))
lib.zmq_ctx_term(vp(ctx))

public = ctypes.create_string_buffer(41)
secret = ctypes.create_string_buffer(41)
show("curve_keypair", lib.zmq_curve_keypair(public, secret))
again = ctypes.create_string_buffer(41)
show("curve_public matches", (lib.zmq_curve_public(again, secret), again.value == public.value), False)
print("done")
