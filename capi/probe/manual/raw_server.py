"""Our connecting socket against scripted raw ZMTP servers (NULL and PLAIN): what the client
sends, what it delivers, whether it reconnects, and its monitor events.

Compared by hand (`capi/probe/manual/README.md`), not in CI: libzmq's answers to a few cases
depend on timing.
"""
import zmq, socket, time, struct
from zmtp_bytes import NAMES, command, frame, greeting, prop, ready  # noqa: F401

ctx = zmq.Context()
N = [0]


def run(name, client_type, script, opts={}):
    N[0] += 1
    lst = socket.socket(); lst.bind(("127.0.0.1", 0)); lst.listen(8); lst.settimeout(3)
    port = lst.getsockname()[1]
    cl = ctx.socket(client_type); cl.setsockopt(zmq.LINGER, 0); cl.setsockopt(zmq.RECONNECT_IVL, 200)
    for k, v in opts.items(): cl.setsockopt(getattr(zmq, k), v)
    cl.monitor("inproc://cm%d" % N[0], zmq.EVENT_ALL & ~zmq.EVENT_CONNECT_DELAYED)
    m = ctx.socket(zmq.PAIR); m.connect("inproc://cm%d" % N[0])
    cl.connect("tcp://127.0.0.1:%d" % port)
    c, _ = lst.accept(); c.settimeout(3)
    first = script[0]
    script = script[1:]
    c.sendall(first[:64])
    if len(first) > 64: script = [first[64:]] + script
    got = b""
    while len(got) < (64 if first[10:11] == b"\x03" else 12):
        d = c.recv(64 - len(got))
        if not d: break
        got += d
    for step in script:
        if isinstance(step, bytes): c.sendall(step)
        else: time.sleep(step)
    c.settimeout(0.3)
    rest = b""
    try:
        while True:
            d = c.recv(4096)
            if not d: rest += b"<eof>"; break
            rest += d
    except socket.timeout: pass
    msgs = []
    while cl.poll(100): msgs.append(cl.recv_multipart())
    c.close()
    # does it come back?
    lst.settimeout(0.8)
    try:
        c2, _ = lst.accept(); again = True; c2.close()
    except socket.timeout:
        again = False
    evs = []
    while m.poll(300):
        f = m.recv_multipart(); num = int.from_bytes(f[0][:2], "little"); val = int.from_bytes(f[0][2:], "little")
        evs.append((NAMES.get(num, num), val) if num in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_AUTH) else NAMES.get(num, num))
        if len(evs) > 12: break
    cl.disable_monitor()
    while m.poll(1000) and int.from_bytes(m.recv_multipart()[0][:2], "little") != zmq.EVENT_MONITOR_STOPPED: pass
    print("==", name)
    print("  client sent after greeting:", rest[:80].hex(), "msgs:", msgs, "reconnects:", again)
    print("  events:", evs[:8])
    cl.close(); m.close(); lst.close()

G = greeting()
run("ok", zmq.DEALER, [G, ready(b"ROUTER"), frame(b"hi")])
run("incompatible type", zmq.DEALER, [G, ready(b"PUB")])
run("error 400", zmq.DEALER, [G, command(b"\x05ERROR\x03400")])
run("error text", zmq.DEALER, [G, command(b"\x05ERROR\x04nope")])
run("mechanism plain", zmq.DEALER, [greeting(b"PLAIN")])
run("close after greeting", zmq.DEALER, [G])
run("bad frame after ready", zmq.DEALER, [G, ready(b"ROUTER"), b"\x02" + struct.pack(">Q", 2**63) ])
run("maxmsgsize", zmq.DEALER, [G, ready(b"ROUTER"), frame(b"x" * 50)], {"MAXMSGSIZE": 10})
run("v2 server", zmq.DEALER, [b"\xff" + b"\0" * 8 + b"\x7f" + b"\x01\x06" + b"\x00\x00" + b"\x00\x02hi"])
P = greeting(b"PLAIN")
o = {"PLAIN_USERNAME": b"u", "PLAIN_PASSWORD": b"p"}
run("plain ok", zmq.DEALER, [P, command(b"\x07WELCOME"), ready(b"ROUTER"), frame(b"hi")], o)
run("plain ready without welcome", zmq.DEALER, [P, ready(b"ROUTER")], o)
run("plain error 400", zmq.DEALER, [P, command(b"\x05ERROR\x03400")], o)
run("plain error 300", zmq.DEALER, [P, command(b"\x05ERROR\x03300")], o)
run("plain welcome with data", zmq.DEALER, [P, command(b"\x07WELCOMEx")], o)
run("plain close after welcome", zmq.DEALER, [P, command(b"\x07WELCOME")], o)
run("plain server sends hello", zmq.DEALER, [P, command(b"\x05HELLO\x01u\x01p")], o)
ctx.term(); print("done")
