"""A socket's life, as the loaded libzmq lives it: RCVTIMEO and SNDTIMEO, LAST_ENDPOINT after
connects and binds, sends to an inproc connection made before its bind (IMMEDIATE or not), a
closed socket, and everything after zmq_ctx_shutdown (a blocked recv, each call, a new socket).

Compared against libzmq 4.3.5 by capi/probe/run.sh. Deterministic: the answers do not depend on
timing (the blocked recv answers ETERM whether the shutdown comes before or during it).
"""
import ctypes
import glob
import os
import threading
import time

import zmq

def show(label, f):
    try:
        r = f()
        print(label, "->", repr(r if not isinstance(r, zmq.Socket) else "socket"))
    except zmq.ZMQError as e:
        print(label, "-> ERR", e.errno, zmq.strerror(e.errno))

ctx = zmq.Context()
# timeouts
s = ctx.socket(zmq.PULL); s.setsockopt(zmq.RCVTIMEO, 150); s.setsockopt(zmq.LINGER, 0)
t = time.time(); show("rcvtimeo", s.recv); print("waited>=0.14", time.time() - t >= 0.14)
p = ctx.socket(zmq.PUSH); p.setsockopt(zmq.SNDTIMEO, 150); p.setsockopt(zmq.LINGER, 0)
t = time.time(); show("sndtimeo", lambda: p.send(b"x")); print("waited>=0.14", time.time() - t >= 0.14)
p.connect("tcp://127.0.0.1:1")
show("last endpoint after connect", lambda: p.getsockopt(zmq.LAST_ENDPOINT))
p.connect("inproc://later")
show("last endpoint after inproc connect", lambda: p.getsockopt(zmq.LAST_ENDPOINT))
show("send to pending inproc", lambda: p.send(b"y", zmq.NOBLOCK))
pl = ctx.socket(zmq.PULL); pl.setsockopt(zmq.LINGER, 0); pl.bind("inproc://later")
show("recv queued inproc", lambda: (pl.poll(2000), pl.recv(zmq.NOBLOCK))[1])
imm = ctx.socket(zmq.PUSH); imm.setsockopt(zmq.IMMEDIATE, 1); imm.setsockopt(zmq.LINGER, 0)
imm.connect("inproc://imm")
show("immediate send before bind", lambda: imm.send(b"z", zmq.NOBLOCK))
ib = ctx.socket(zmq.PULL); ib.setsockopt(zmq.LINGER, 0); ib.bind("inproc://imm")
show("immediate send after bind", lambda: imm.send(b"z", zmq.NOBLOCK))
show("recv", lambda: (ib.poll(2000), ib.recv(zmq.NOBLOCK))[1])
# multiple binds
m = ctx.socket(zmq.PULL); m.setsockopt(zmq.LINGER, 0)
m.bind("tcp://127.0.0.1:*"); m.bind("ipc://@zr-life-%d" % id(m)); m.bind("inproc://multi")
show("last endpoint after 3 binds", lambda: m.getsockopt(zmq.LAST_ENDPOINT)[:7])
# closed socket
c = ctx.socket(zmq.PAIR); c.close()
show("send on closed", lambda: c.send(b"x"))
show("getsockopt on closed", lambda: c.getsockopt(zmq.TYPE))
# ctx shutdown wakes a blocking recv
r = ctx.socket(zmq.PULL); r.setsockopt(zmq.LINGER, 0); r.bind("inproc://blk")
res = []
def blocker():
    try:
        r.recv()
        res.append("got")
    except zmq.ZMQError as e:
        res.append(e.errno)
th = threading.Thread(target=blocker); th.start()
time.sleep(0.2)  # not a sync: ETERM either way; usually it is blocked by now
# pyzmq has no zmq_ctx_shutdown: call the loaded library's (the wheel's bundled copy, or the
# libzmq.so.5 that LD_LIBRARY_PATH names).
path = glob.glob(os.path.join(os.path.dirname(zmq.__file__), "..", "pyzmq.libs", "libzmq*.so*"))
fn = ctypes.CDLL(path[0] if path else "libzmq.so.5").zmq_ctx_shutdown
fn.argtypes = [ctypes.c_void_p]
print("shutdown", fn(ctypes.c_void_p(ctx.underlying)))
th.join(5)
print("blocked recv after shutdown", res)
show("send after shutdown", lambda: p.send(b"x", zmq.NOBLOCK))
show("recv after shutdown", lambda: pl.recv(zmq.NOBLOCK))
show("bind after shutdown", lambda: pl.bind("inproc://x2"))
show("connect after shutdown", lambda: pl.connect("inproc://x3"))
show("setsockopt after shutdown", lambda: pl.setsockopt(zmq.LINGER, 5))
show("getsockopt after shutdown", lambda: pl.getsockopt(zmq.LINGER))
show("socket after shutdown", lambda: ctx.socket(zmq.PAIR))
show("poll after shutdown", lambda: zmq.select([pl], [], [], 0))
show("monitor after shutdown", lambda: pl.monitor("inproc://m9", zmq.EVENT_ALL))
show("unbind after shutdown", lambda: m.unbind("inproc://multi"))
for s_ in [s, p, pl, imm, ib, m, r]:
    s_.close()
ctx.term()
print("done")
