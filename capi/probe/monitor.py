"""Monitor events, as the loaded libzmq reports them: a tcp and an ipc connection's whole life
on both sides (listening, accepted, connected, handshake, a disconnect, a connect to nothing,
close), a wildcard bind's connection, a peer that goes away, failed binds, RECONNECT_STOP, a raw
STREAM connection's end, and disable_monitor.

Compared against libzmq 4.3.5 by capi/probe/run.sh. Deterministic: each step waits (seconds)
for the event that ends it and prints what came up to it; descriptors and ports are masked,
reconnect intervals too. While it waits it calls the sockets involved (getsockopt EVENTS):
libzmq's sockets carry out a disconnect or an unbind only inside such calls, this library's at
once (docs/sockets.md, "Known gaps").
"""
import re

import zmq

ctx = zmq.Context()
N = [0]
RETRIED = []  # CONNECT_RETRIED values (the wait before the next attempt), in order
NAMES = {getattr(zmq, n): n for n in dir(zmq)
         if n.startswith("EVENT_") and n not in ("EVENT_ALL", "EVENT_ALL_V1", "EVENT_ALL_V2")}
SHOWN_VALUE = (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_AUTH,
               zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_BIND_FAILED, zmq.EVENT_ACCEPT_FAILED,
               zmq.EVENT_CLOSE_FAILED)


def monitored(t, **o):
    s = ctx.socket(t)
    s.setsockopt(zmq.LINGER, 0)
    for k, v in o.items():
        s.setsockopt(getattr(zmq, k), v)
    N[0] += 1
    s.monitor("inproc://mon%d" % N[0], zmq.EVENT_ALL)
    m = ctx.socket(zmq.PAIR)
    m.connect("inproc://mon%d" % N[0])
    return s, m


def norm(ep):
    ep = re.sub(r":\d+$", ":PORT", ep.decode())
    return re.sub(r"zr-mon-\d+", "zr-mon-N", ep)


def events(m, until, nudge=()):
    """Events up to and including `until` (or up to MONITOR_STOPPED), calling each socket of
    `nudge` while none comes."""
    out = []
    while True:
        for _ in range(200):
            if m.poll(50):
                break
            for s in nudge:
                s.getsockopt(zmq.EVENTS)
        else:
            raise AssertionError("no %s within 10 s after %s" % (until, out))
        ev = m.recv_multipart()
        num = int.from_bytes(ev[0][:2], "little")
        val = int.from_bytes(ev[0][2:], "little")
        out.append((NAMES.get(num, num), val if num in SHOWN_VALUE else "v", norm(ev[1])))
        if num == zmq.EVENT_CONNECT_RETRIED:
            RETRIED.append(val)
        if out[-1][0] in (until, "EVENT_MONITOR_STOPPED"):
            return out


def nothing(m):
    return [] if not m.poll(100) else ["unexpected", m.recv_multipart()]


for kind in ["tcp", "ipc"]:
    print("==", kind)
    srv, sm = monitored(zmq.ROUTER)
    srv.bind("tcp://127.0.0.1:*" if kind == "tcp" else "ipc://@zr-mon-%d" % id(srv))
    e = srv.getsockopt(zmq.LAST_ENDPOINT)
    cl, cm = monitored(zmq.DEALER, RECONNECT_IVL=100)
    cl.connect(e)
    cl.send(b"x")
    srv.recv_multipart()
    print("srv", events(sm, "EVENT_HANDSHAKE_SUCCEEDED"))
    print("cl", events(cm, "EVENT_HANDSHAKE_SUCCEEDED"))
    cl.disconnect(e)
    print("srv after the client's disconnect", events(sm, "EVENT_DISCONNECTED", [cl]))
    print("cl after its disconnect", nothing(cm))
    cl.connect(e)
    print("cl again", events(cm, "EVENT_HANDSHAKE_SUCCEEDED"))
    print("srv again", events(sm, "EVENT_HANDSHAKE_SUCCEEDED"))
    srv.unbind(e)
    print("srv after unbind", events(sm, "EVENT_CLOSED"))
    print("cl after the server's unbind", events(cm, "EVENT_CONNECT_RETRIED", [srv]))
    cl.disconnect(e)
    nothing(cm)
    srv.close()
    print("srv close", events(sm, "EVENT_MONITOR_STOPPED"))
    cl.connect(e)
    print("cl connect to nothing", events(cm, "EVENT_CONNECT_RETRIED"))
    cl.close()
    print("cl close", events(cm, "EVENT_MONITOR_STOPPED")[-2:])
    sm.close()
    cm.close()

print("== the peer goes")
srv, sm = monitored(zmq.PULL)
srv.bind("tcp://127.0.0.1:*")
e = srv.getsockopt(zmq.LAST_ENDPOINT)
cl, cm = monitored(zmq.PUSH, RECONNECT_IVL=100)
cl.connect(e)
cl.send(b"x")
srv.recv()
events(sm, "EVENT_HANDSHAKE_SUCCEEDED")
events(cm, "EVENT_HANDSHAKE_SUCCEEDED")
srv.close()
print("srv close", events(sm, "EVENT_MONITOR_STOPPED"))
print("cl sees", events(cm, "EVENT_CONNECT_RETRIED"))
cl.close()
sm.close()
cm.close()

print("== a wildcard bind's connection (named by its own address)")
srv, sm = monitored(zmq.PULL)
srv.bind("tcp://*:*")
port = srv.getsockopt(zmq.LAST_ENDPOINT).decode().rsplit(":", 1)[1]
cl = ctx.socket(zmq.PUSH)
cl.setsockopt(zmq.LINGER, 0)
cl.connect("tcp://127.0.0.1:" + port)
cl.send(b"x")
srv.recv()
cl.close()
print("srv", events(sm, "EVENT_DISCONNECTED"))
srv.close()
sm.close()

print("== failed binds")
a = ctx.socket(zmq.PULL)
a.setsockopt(zmq.LINGER, 0)
a.bind("tcp://127.0.0.1:*")
taken = a.getsockopt(zmq.LAST_ENDPOINT).decode()
for ep in [taken, "tcp://eth99:5555", "ipc:///nonexistent/dir/sock"]:
    b, bm = monitored(zmq.PULL)
    try:
        b.bind(ep)
        print(norm(ep.encode()), "bound")
    except zmq.ZMQError:
        print(norm(ep.encode()), events(bm, "EVENT_BIND_FAILED"))
    b.close()
    bm.close()
print("== reconnect schedule (CONNECT_RETRIED values)")
for ivl, mx in [(50, 400), (100, 50), (100, 0)]:
    s, m = monitored(zmq.DEALER, RECONNECT_IVL=ivl, RECONNECT_IVL_MAX=mx)
    s.connect("tcp://127.0.0.1:1")
    RETRIED.clear()
    while len(RETRIED) < 5:
        events(m, "EVENT_CONNECT_RETRIED")
    s.close()
    m.close()
    # Without a maximum each wait is RECONNECT_IVL plus a random jitter below it.
    shown = RETRIED if mx else ["ivl+jitter" if ivl <= v < 2 * ivl else v for v in RETRIED]
    print(ivl, mx, shown)
print("== RECONNECT_STOP and raw ends")
import socket as so
import struct
# CONN_REFUSED: the refused attempt's descriptor is closed and nothing follows; the socket
# forgets the endpoint.
s, m = monitored(zmq.DEALER, RECONNECT_IVL=50, RECONNECT_STOP=1)
s.connect("tcp://127.0.0.1:1")
print("refused", events(m, "EVENT_CLOSED"), nothing(m))
try:
    s.disconnect("tcp://127.0.0.1:1")
    print("disconnect ok")
except zmq.ZMQError as ex:
    print("disconnect", zmq.strerror(ex.errno))
s.close()
m.close()
# HANDSHAKE_FAILED: a server that hangs up before the handshake; no CLOSED, no retry, the
# endpoint stays. (The errno is EPIPE or ECONNRESET as the greeting did or did not arrive
# first: not shown.)
lst = so.socket()
lst.bind(("127.0.0.1", 0))
lst.listen(1)
hep = "tcp://127.0.0.1:%d" % lst.getsockname()[1]
s, m = monitored(zmq.DEALER, RECONNECT_IVL=50, RECONNECT_STOP=2)
s.connect(hep)
c, _ = lst.accept()
c.close()
got = [(e[0], "v", e[2]) if e[0] == "EVENT_HANDSHAKE_FAILED_NO_DETAIL" else e
       for e in events(m, "EVENT_DISCONNECTED")]
print("handshake stop", got, nothing(m))
s.disconnect(hep)
print("disconnect ok")
s.close()
m.close()
lst.close()
# A STREAM's peer closes, then one resets: HANDSHAKE_FAILED_NO_DETAIL with EPIPE, then with
# ECONNRESET, each before DISCONNECTED.
s, m = monitored(zmq.STREAM)
s.bind("tcp://127.0.0.1:*")
port = int(s.getsockopt(zmq.LAST_ENDPOINT).decode().rsplit(":", 1)[1])
events(m, "EVENT_LISTENING")
for reset in [False, True]:
    c = so.create_connection(("127.0.0.1", port))
    s.recv_multipart()
    if reset:
        c.setsockopt(so.SOL_SOCKET, so.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    print("stream peer", "resets" if reset else "closes", events(m, "EVENT_DISCONNECTED"))
    s.recv_multipart()
s.close()
m.close()
print("== disable_monitor")
b, bm = monitored(zmq.PULL)
b.disable_monitor()
print(events(bm, "EVENT_MONITOR_STOPPED"))
for s in [a, b, bm]:
    s.close()
ctx.term()
print("done")
