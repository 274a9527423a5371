"""Errors the API gives, as the loaded libzmq answers them: bind, connect, unbind and disconnect
of good and malformed endpoints (unbind and disconnect of each other's endpoints, and of a tcp
address's other forms; hosts in brackets; IPv6 without ZMQ_IPV6), sends and receives a socket type refuses or cannot do yet,
and what each socket type reports as EVENTS and RCVMORE before it has a peer.

Compared against libzmq 4.3.5 by capi/probe/run.sh. Deterministic: nothing is connected to a
peer that answers; nothing waits.
"""
import zmq

ctx = zmq.Context()


def show(label, f):
    try:
        r = f()
        print(label, "->", repr(r if not isinstance(r, zmq.Socket) else "socket"))
    except zmq.ZMQError as e:
        print(label, "-> ERR", e.errno)


pull = ctx.socket(zmq.PULL)
pull.setsockopt(zmq.LINGER, 0)
for ep in ["tcp://127.0.0.1", "tcp://127.0.0.1:", "tcp://127.0.0.1:65536", "tcp://127.0.0.1:0",
           "tcp://*:*x", "tcp://localhost:*", "tcp://no-such-host.invalid:*", "tcp://eth99:*",
           "tcp://lo:*", "ipc://", "ipc://@", "ipc://@zeroring-probe-abstract", "inproc://",
           "inproc://a", "inproc://a", "pgm://x", "epgm://x", "norm://x", "udp://127.0.0.1:*",
           "vmci://x", "foo://x", "noscheme", "tcp://127.0.0.1:*;bad",
           "ipc:///nonexistent/dir/sock", "tcp://256.1.1.1:*", "tcp://*:0"]:
    show("bind " + ep, lambda: (pull.bind(ep), pull.getsockopt(zmq.LAST_ENDPOINT).split(b":")[0])[1])
push = ctx.socket(zmq.PUSH)
push.setsockopt(zmq.LINGER, 0)
for ep in ["tcp://127.0.0.1", "tcp://127.0.0.1:*", "tcp://127.0.0.1:0", "tcp://*:5555",
           "tcp://127.0.0.1:5555;127.0.0.1:5556", "tcp://no-such-host.invalid:5555", "ipc://",
           "inproc://", "inproc://notbound", "udp://127.0.0.1:5555", "tcp://[::1]:5555",
           "tcp://127.0.0.1:-3", "tcp://abc:def", "ipc://@x"]:
    show("connect " + ep, lambda: push.connect(ep))
show("unbind unknown", lambda: pull.unbind("tcp://127.0.0.1:1"))
show("unbind malformed", lambda: pull.unbind("tcp://127.0.0.1"))
show("unbind wildcard", lambda: pull.unbind("tcp://127.0.0.1:*"))
show("disconnect unknown", lambda: push.disconnect("tcp://127.0.0.1:1"))
show("disconnect inproc unknown", lambda: push.disconnect("inproc://zzz"))
show("disconnect malformed", lambda: push.disconnect("tcp://127.0.0.1"))
show("disconnect inproc known", lambda: push.disconnect("inproc://notbound"))
show("disconnect inproc again", lambda: push.disconnect("inproc://notbound"))

# zmq_unbind and zmq_disconnect are one operation (libzmq's term_endpoint), and a tcp endpoint
# not found as written is looked for by its resolved address (a connect's resolution, then a
# bind's); brackets may enclose any host; a bind to an IPv6 address needs ZMQ_IPV6.
term = ctx.socket(zmq.PULL)
term.setsockopt(zmq.LINGER, 0)


def bound(ep):
    term.bind(ep)
    return term.getsockopt(zmq.LAST_ENDPOINT).decode()


def port_of(ep):
    return ep.rsplit(":", 1)[1]


e = bound("tcp://127.0.0.1:*")
show("disconnect a bound tcp endpoint", lambda: term.disconnect(e))
show("unbind it after", lambda: term.unbind(e))
term.connect("tcp://127.0.0.1:5999")
show("unbind a connected tcp endpoint", lambda: term.unbind("tcp://127.0.0.1:5999"))
show("disconnect it after", lambda: term.disconnect("tcp://127.0.0.1:5999"))
term.bind("inproc://probe-term")
show("disconnect a bound inproc name", lambda: term.disconnect("inproc://probe-term"))
show("unbind it after", lambda: term.unbind("inproc://probe-term"))
term.connect("inproc://probe-term-2")
show("unbind a connected inproc name", lambda: term.unbind("inproc://probe-term-2"))
show("disconnect it after", lambda: term.disconnect("inproc://probe-term-2"))
term.connect("tcp://localhost:5998")
show("disconnect a named connect by its address", lambda: term.disconnect("tcp://127.0.0.1:5998"))
term.connect("tcp://127.0.0.1:5997")
show("disconnect a literal connect by a name", lambda: term.disconnect("tcp://localhost:5997"))
p = port_of(bound("tcp://*:*"))
show("unbind tcp://*:port", lambda: term.unbind("tcp://*:" + p))
show("unbind tcp://0.0.0.0:port", lambda: term.unbind("tcp://0.0.0.0:" + p))
p = port_of(bound("tcp://lo:*"))
show("unbind by the interface name", lambda: term.unbind("tcp://lo:" + p))
p = port_of(bound("tcp://127.0.0.1:*"))
show("unbind by 127.1", lambda: term.unbind("tcp://127.1:" + p))
show("unbind by a name that does not resolve", lambda: term.unbind("tcp://no-such-host.invalid:" + p))
p = port_of(bound("tcp://127.0.0.1:*"))
show("unbind by localhost", lambda: term.unbind("tcp://localhost:" + p))
for ep in ["tcp://[127.0.0.1]:*", "tcp://[localhost]:*", "tcp://[lo]:*", "tcp://[::1]:*",
           "tcp://[::ffff:127.0.0.1]:*", "tcp://[fe80::1%lo]:*", "tcp://ip6-localhost:*"]:
    show("bind without IPV6 " + ep, lambda: bound(ep).rsplit(":", 1)[0])
show("connect tcp://[127.0.0.1]:5996", lambda: term.connect("tcp://[127.0.0.1]:5996"))
term.close()

req = ctx.socket(zmq.REQ)
show("req recv first", lambda: req.recv(zmq.NOBLOCK))
show("req send, no peer", lambda: req.send(b"x", zmq.NOBLOCK))
req.connect("inproc://nobody")
show("req send, pending peer", lambda: req.send(b"x", zmq.NOBLOCK))
show("req send again", lambda: req.send(b"x", zmq.NOBLOCK))
show("req recv", lambda: req.recv(zmq.NOBLOCK))
rep = ctx.socket(zmq.REP)
show("rep send first", lambda: rep.send(b"x", zmq.NOBLOCK))
pub = ctx.socket(zmq.PUB)
show("pub recv", lambda: pub.recv(zmq.NOBLOCK))
sub = ctx.socket(zmq.SUB)
show("sub send", lambda: sub.send(b"x", zmq.NOBLOCK))
show("pull send", lambda: pull.send(b"x", zmq.NOBLOCK))
show("push recv", lambda: push.recv(zmq.NOBLOCK))
dealer = ctx.socket(zmq.DEALER)
show("dealer send, no peer", lambda: dealer.send(b"x", zmq.NOBLOCK))
show("dealer recv", lambda: dealer.recv(zmq.NOBLOCK))
router = ctx.socket(zmq.ROUTER)
show("router send, unknown peer", lambda: router.send_multipart([b"who", b"x"], zmq.NOBLOCK))
router.setsockopt(zmq.ROUTER_MANDATORY, 1)
show("router mandatory, unknown peer", lambda: router.send_multipart([b"who", b"x"], zmq.NOBLOCK))
stream = ctx.socket(zmq.STREAM)
show("stream send, unknown peer", lambda: stream.send_multipart([b"who", b"x"], zmq.NOBLOCK))
pair = ctx.socket(zmq.PAIR)
show("pair send, no peer", lambda: pair.send(b"x", zmq.NOBLOCK))
pair.bind("inproc://pair-probe")
p2 = ctx.socket(zmq.PAIR)
p2.connect("inproc://pair-probe")
p3 = ctx.socket(zmq.PAIR)
show("pair third connect", lambda: p3.connect("inproc://pair-probe"))
show("pair third send", lambda: p3.send(b"x", zmq.NOBLOCK))
xpub = ctx.socket(zmq.XPUB)
show("xpub recv", lambda: xpub.recv(zmq.NOBLOCK))
xsub = ctx.socket(zmq.XSUB)
show("xsub send subscription", lambda: xsub.send(b"\x01abc", zmq.NOBLOCK))
show("xsub send data", lambda: xsub.send(b"hello", zmq.NOBLOCK))
show("xsub send empty", lambda: xsub.send(b"", zmq.NOBLOCK))
for s, name in [(pub, "pub"), (sub, "sub"), (push, "push"), (pull, "pull"), (dealer, "dealer"),
                (router, "router"), (xpub, "xpub"), (xsub, "xsub"), (req, "req"), (rep, "rep"),
                (stream, "stream"), (pair, "pair")]:
    show(name + " events", lambda: s.getsockopt(zmq.EVENTS))
    show(name + " rcvmore", lambda: s.getsockopt(zmq.RCVMORE))

# Monitor endpoints.
mon = ctx.socket(zmq.PUSH)
show("monitor over tcp", lambda: mon.monitor("tcp://127.0.0.1:5555", zmq.EVENT_ALL))
show("monitor, malformed", lambda: mon.monitor("garbage", zmq.EVENT_ALL))

# Socket counts and limits.
c2 = zmq.Context()
c2.set(zmq.MAX_SOCKETS, 3)
made = []
for i in range(5):
    try:
        made.append(c2.socket(zmq.PAIR))
        print("socket", i, "ok")
    except zmq.ZMQError as e:
        print("socket", i, "ERR", e.errno)
for s in made:
    s.close(0)
c2.term()
ctx.destroy(0)
print("done")
