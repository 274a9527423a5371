"""How messages move, as the loaded libzmq moves them: subscriptions (counted, verbose,
upstream from XSUB), REQ/REP/ROUTER envelopes, inproc HWM counts, fair-queueing and
load-balancing order, ROUTER probes, multipart RCVMORE/EVENTS, INVERT_MATCHING, STREAM and
ROUTER_RAW.

Compared against libzmq 4.3.5 by capi/probe/run.sh. Deterministic: every wait is for something
that must come (a poll of seconds), or a short poll that must find nothing more; tcp
subscriptions are followed by a sync topic before anything is published.
"""
import threading

import zmq, socket as so

from peers import bind, ctx, drain, ep, recv, section, sock


SYNC = [0]


def sync(pub, sub):
    """Subscribes a fresh topic and publishes it until it comes: everything the subscriber
    asked for before has reached the publisher."""
    SYNC[0] += 1
    t = b"sync%d" % SYNC[0]
    sub.subscribe(t)
    while True:
        pub.send(t)
        if sub.poll(50):
            got = sub.recv()
            assert got == t, (got, t)
            break
    while sub.poll(50):
        sub.recv()
    sub.unsubscribe(t)


def sendn(s, n, fmt="m%d"):
    sent = 0
    for i in range(n):
        try:
            s.send((fmt % i).encode(), zmq.NOBLOCK)
            sent += 1
        except zmq.Again:
            break
    return sent


# 1. subscription reference counting


def until_end(sub):
    out = []
    while True:
        m = recv(sub)
        if m == [b"end"]:
            return out
        out.append(m)


for kind in ["inproc", "tcp"]:
    section("sub refcount " + kind)
    pub = sock(zmq.PUB)
    e = bind(pub, ep(kind))
    sub = sock(zmq.SUB)
    sub.connect(e)
    sub.subscribe(b"a")
    sub.subscribe(b"a")
    sub.subscribe(b"end")
    sync(pub, sub)
    sub.unsubscribe(b"a")
    sync(pub, sub)
    pub.send(b"a1")
    pub.send(b"b1")
    pub.send_multipart([b"a", b"more"])
    pub.send(b"end")
    print(until_end(sub))
    sub.unsubscribe(b"a")
    sub.unsubscribe(b"zz")
    sync(pub, sub)
    pub.send(b"a2")
    pub.send(b"end")
    print(until_end(sub))
    sub.subscribe(b"")
    sync(pub, sub)
    pub.send(b"x")
    pub.send(b"end")
    print(until_end(sub), drain(sub))
    sub.close(); pub.close()

# 2. XPUB subscription messages, verbose or not
for opts in [{}, {"XPUB_VERBOSE": 1}, {"XPUB_VERBOSER": 1}]:
    section("xpub %s" % opts)
    xpub = sock(zmq.XPUB, **opts)
    e = bind(xpub, ep())
    s1 = sock(zmq.SUB); s1.connect(e)
    s2 = sock(zmq.SUB); s2.connect(e)
    s1.subscribe(b"a"); s2.subscribe(b"a"); s1.subscribe(b"a"); s1.subscribe(b"")
    print(drain(xpub))
    s1.unsubscribe(b"a"); print(drain(xpub))
    s1.unsubscribe(b"a"); print(drain(xpub))
    s2.unsubscribe(b"a"); print(drain(xpub))
    s2.unsubscribe(b"nope"); print(drain(xpub))
    s1.close(); print("after close", drain(xpub))
    s2.close(); xpub.close()

# 3. XSUB upstream user messages and raw subscription frames
section("xsub upstream")
xpub = sock(zmq.XPUB)
e = bind(xpub, ep())
xsub = sock(zmq.XSUB); xsub.connect(e)
xsub.send(b"\x01top")
xsub.send(b"hello")
xsub.send(b"")
xsub.send_multipart([b"\x01multi", b"part"])
xsub.send(b"\x00top")
xsub.send(b"\x02other")
print(drain(xpub))
xpub.send(b"topic"); xpub.send(b"multi")
print(drain(xsub))
xsub.close(); xpub.close()

# 4. envelopes
section("envelopes")
router = sock(zmq.ROUTER)
e = bind(router, ep())
req = sock(zmq.REQ, ROUTING_ID=b"R1"); req.connect(e)
req.send(b"q")
m = drain(router); print(m)
router.send_multipart([b"R1", b"", b"a"])
print(drain(req))
req2 = sock(zmq.REQ, ROUTING_ID=b"R2", REQ_CORRELATE=1, REQ_RELAXED=1); req2.connect(e)
req2.send(b"q1")
m = drain(router); print([len(f) for f in m[0]], m[0][0], m[0][2:])
req2.send(b"q2")
m2 = drain(router); print([len(f) for f in m2[0]], m2[0][2:])
router.send_multipart(m[0][:3] + [b"stale"])
router.send_multipart(m2[0][:3] + [b"fresh"])
print(drain(req2))
router.send_multipart([b"R2", b"no-delimiter"])
print(drain(req2))
dealer = sock(zmq.DEALER); dealer.connect(e)
dealer.send_multipart([b"", b"x"])
m = drain(router); print(len(m[0][0]), m[0][0][:1], m[0][1:])
rep = sock(zmq.REP)
e2 = bind(rep, ep())
d2 = sock(zmq.DEALER); d2.connect(e2)
d2.send_multipart([b"a", b"b", b"", b"body"])
d2.send_multipart([b"nodelim"])
d2.send_multipart([b"", b"body2"])
print(rep.recv_multipart())
rep.send(b"r1")
print(drain(d2))
print(drain(rep))
for s in [router, req, req2, dealer, rep, d2]:
    s.close()

# 5. inproc HWM counts
section("hwm inproc")
for snd, rcv, conn_first in [(5, 5, False), (5, 0, False), (0, 5, False), (3, 7, True), (1, 1, False)]:
    pull = sock(zmq.PULL, RCVHWM=rcv)
    push = sock(zmq.PUSH, SNDHWM=snd)
    e = ep()
    if conn_first:
        push.connect(e); pull.bind(e)
    else:
        pull.bind(e); push.connect(e)
    n = sendn(push, 100000) if snd and rcv else sendn(push, 3000)
    print("push", snd, rcv, conn_first, n)
    pull.close(); push.close()
for snd, rcv in [(5, 5), (2, 10)]:
    pub = sock(zmq.PUB, SNDHWM=snd)
    e = bind(pub, ep())
    sub = sock(zmq.SUB, RCVHWM=rcv); sub.connect(e); sub.subscribe(b"")
    for i in range(50):
        pub.send(b"%d" % i)
    print("pub", snd, rcv, len(drain(sub)))
    sub.close(); pub.close()
router = sock(zmq.ROUTER, ROUTER_MANDATORY=1, SNDHWM=4)
e = bind(router, ep())
d = sock(zmq.DEALER, ROUTING_ID=b"D", RCVHWM=4); d.connect(e)
d.send(b"hi"); drain(router)
n = 0
try:
    for i in range(100):
        router.send_multipart([b"D", b"x"], zmq.NOBLOCK); n += 1
except zmq.ZMQError as ex:
    print("router mandatory stop", n, ex.errno)
print("router events", router.getsockopt(zmq.EVENTS))
router.close(); d.close()

# 6. fair queueing and load balancing order
section("fq/lb order")
pull = sock(zmq.PULL)
e = bind(pull, ep())
pushes = []
for name in "abc":
    p = sock(zmq.PUSH); p.connect(e); pushes.append(p)
for p, name in zip(pushes, "abc"):
    for i in range(3):
        p.send(("%s%d" % (name, i)).encode())
print([m[0] for m in drain(pull)])
push = sock(zmq.PUSH)
e = bind(push, ep())
pulls = []
for name in "abc":
    p = sock(zmq.PULL); p.connect(e); pulls.append(p)
for i in range(7):
    push.send(b"%d" % i)
print([[m[0] for m in drain(p)] for p in pulls])
push.send_multipart([b"x", b"y"]); push.send(b"z")
print([[m for m in drain(p)] for p in pulls])
for s in pulls + pushes + [pull, push]:
    s.close()

# 8. stream
section("stream")
st = sock(zmq.STREAM)
e = bind(st, ep("tcp"))
c = so.create_connection(("127.0.0.1", int(e.rsplit(":", 1)[1])))
c.settimeout(10)
m = recv(st); print(len(m[0]), m[1:])
cid = m[0]
c.sendall(b"hello")
m = recv(st); print(m[1:])
st.send_multipart([cid, b"world"])
print(c.recv(100))
st.send_multipart([cid, b""])
c.close()
print(drain(st))
st2 = sock(zmq.STREAM, STREAM_NOTIFY=0)
e2 = bind(st2, ep("tcp"))
c = so.create_connection(("127.0.0.1", int(e2.rsplit(":", 1)[1])))
c.sendall(b"x")
print(recv(st2)[1:])
c.close()
print(drain(st2))
st3 = sock(zmq.STREAM)
srv = so.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
st3.connect("tcp://127.0.0.1:%d" % srv.getsockname()[1])
a, _ = srv.accept()
a.settimeout(10)
m = recv(st3); print("connect notify", len(m[0]), m[1:])
try:
    st3.send_multipart([m[0]])
    print("single frame ok")
except zmq.ZMQError as ex:
    print("single frame", ex.errno)
try:
    st3.send_multipart([m[0], b"a", b"b"])
    print("three frames ok", a.recv(10))
except zmq.ZMQError as ex:
    print("three frames", ex.errno)
a.close()
print("disconnect notify", recv(st3)[1:])
srv.close()
# A connection the socket ends itself (unbind, disconnect) is not announced as gone.
st4 = sock(zmq.STREAM)
e5 = bind(st4, ep("tcp"))
c = so.create_connection(("127.0.0.1", int(e5.rsplit(":", 1)[1])))
print("stream before unbind", recv(st4)[1:])
st4.unbind(e5)
print("stream after unbind", drain(st4))
srv = so.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
e6 = "tcp://127.0.0.1:%d" % srv.getsockname()[1]
st4.connect(e6)
a, _ = srv.accept()
print("stream before disconnect", recv(st4)[1:])
st4.disconnect(e6)
print("stream after disconnect", drain(st4))
for x in [c, a, srv]:
    x.close()
# ROUTER_RAW: a STREAM with its notices in libzmq 4.3 (an empty part at connect and at leave).
rr = sock(zmq.ROUTER, ROUTER_RAW=1)
e4 = bind(rr, ep("tcp"))
c = so.create_connection(("127.0.0.1", int(e4.rsplit(":", 1)[1])))
c.sendall(b"GET")
m = recv(rr); print("router_raw", len(m[0]), m[1:])
m = recv(rr); print("router_raw", m[1:])
c.close()
print("router_raw leave", recv(rr)[1:])
for s in [st, st2, st3, st4, rr]:
    s.close()

# 9. probe router, routing id over inproc
section("probe")
router = sock(zmq.ROUTER)
e = bind(router, ep())
d = sock(zmq.DEALER, PROBE_ROUTER=1, ROUTING_ID=b"P"); d.connect(e)
print(drain(router))
r2 = sock(zmq.ROUTER, PROBE_ROUTER=1, ROUTING_ID=b"Q"); r2.connect(e)
print(drain(router))
router.send_multipart([b"Q", b"back"])
m = drain(r2)
print(len(m[0][0]), m[0][0][:1], m[0][1:])
for s in [router, d, r2]:
    s.close()

# 10. multipart rcvmore/events
section("multipart")
a = sock(zmq.PAIR); e = bind(a, ep())
b = sock(zmq.PAIR); b.connect(e)
b.send(b"1", zmq.SNDMORE); b.send(b"2", zmq.SNDMORE)
print("events mid-send", a.getsockopt(zmq.EVENTS), b.getsockopt(zmq.EVENTS))
b.send(b"3")
a.poll(1000)
print(a.recv(), a.getsockopt(zmq.RCVMORE), a.getsockopt(zmq.EVENTS))
print(a.recv(), a.getsockopt(zmq.RCVMORE))
print(a.recv(), a.getsockopt(zmq.RCVMORE), a.getsockopt(zmq.EVENTS))
b.send(b"", zmq.SNDMORE)
b.close()
print(drain(a))
a.close()

# 11. subscribe/unsubscribe from pub with invert
section("invert")
pub = sock(zmq.PUB, INVERT_MATCHING=1)
e = bind(pub, ep())
sub = sock(zmq.SUB, INVERT_MATCHING=1); sub.connect(e); sub.subscribe(b"a")
sub2 = sock(zmq.SUB); sub2.connect(e); sub2.subscribe(b"a")
for t in [b"a1", b"b1", b"ab"]:
    pub.send(t)
print(drain(sub), drain(sub2))
xpub = sock(zmq.XPUB, INVERT_MATCHING=1)
e = bind(xpub, ep())
s3 = sock(zmq.SUB, INVERT_MATCHING=1); s3.connect(e); s3.subscribe(b"a")
drain(xpub)
xpub.send(b"a1"); xpub.send(b"b1")
print(drain(s3))
for s in [pub, sub, sub2, xpub, s3]:
    s.close()

# 12. disconnect, then send; connect again
section("disconnect")
pull = sock(zmq.PULL); e = bind(pull, ep("tcp"))
push = sock(zmq.PUSH); push.connect(e)
push.send(b"1"); print(recv(pull))
push.disconnect(e)
try:
    push.send(b"2", zmq.NOBLOCK); print("sent after disconnect")
except zmq.Again:
    print("EAGAIN after disconnect")
push.connect(e); push.send(b"3"); print(recv(pull), drain(pull))
pull.close(); push.close()

# 13. zmq_proxy_steerable with a REP control socket: counters (parts), every command answered
section("proxy")
fe = sock(zmq.ROUTER)
fe.bind("inproc://px-fe")
be = sock(zmq.DEALER)
be.bind("inproc://px-be")
ctl = sock(zmq.REP)
ctl.bind("inproc://px-ctl")
result = []


def run_proxy():
    try:
        zmq.proxy_steerable(fe, be, None, ctl)
        result.append(0)
    except zmq.ZMQError as ex:
        result.append(ex.errno)


t = threading.Thread(target=run_proxy)
t.start()
control = sock(zmq.REQ)
control.connect("inproc://px-ctl")
client = sock(zmq.REQ)
client.connect("inproc://px-fe")
worker = sock(zmq.REP)
worker.connect("inproc://px-be")
for i in range(3):
    client.send_multipart([b"req", b"%d" % i])
    print(recv(worker))
    worker.send(b"rep-%d" % i)
    print(recv(client))
for command in [b"STATISTICS", b"PAUSE", b"RESUME", b"FROBNICATE", b"STATISTICS", b"TERMINATE"]:
    control.send(command)
    reply = recv(control)
    print(command, [int.from_bytes(p, "little") for p in reply] if len(reply) == 8 else reply)
t.join(10)
print("proxy returned", result)
for s in [fe, be, ctl, control, client, worker]:
    s.close()

ctx.term()
print("done")
