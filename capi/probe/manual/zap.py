"""ZAP as a server asks it: every request frame (NULL and PLAIN, with and without a domain),
the properties a reply's metadata gives a message, and the monitor events of each refusal and
each malformed reply (the client does not reconnect).

Compared by hand (`capi/probe/manual/README.md`), not in CI: libzmq's answers to some
malformed replies depend on timing.
"""
import zmq, threading, time
ctx = zmq.Context()

def enc_meta(d):
    out = b""
    for k, v in d.items():
        out += bytes([len(k)]) + k + len(v).to_bytes(4, "big") + v
    return out

replies = {}
log = []
zap = ctx.socket(zmq.REP); zap.setsockopt(zmq.LINGER, 0); zap.bind("inproc://zeromq.zap.01")
def handler():
    while True:
        try:
            req = zap.recv_multipart()
        except zmq.ZMQError:
            return
        if req == [b"stop"]:
            zap.send(b""); return
        shown = [req[0], req[1], req[2], req[3].split(b":")[0] if req[3] else req[3]] + req[4:]
        log.append(shown)
        mode = replies.get(req[2], b"200")
        meta = enc_meta({b"Hello": b"World", b"X-Foo": b"bar", b"User-Id": b"ignored?"})
        if mode == b"bad-version":
            zap.send_multipart([b"2.0", req[1], b"200", b"", b"", b""])
        elif mode == b"bad-id":
            zap.send_multipart([b"1.0", b"wrong", b"200", b"", b"", b""])
        elif mode == b"short":
            zap.send_multipart([b"1.0", req[1], b"200"])
        elif mode == b"badmeta":
            zap.send_multipart([b"1.0", req[1], b"200", b"OK", b"uid", b"\x05abc"])
        else:
            zap.send_multipart([b"1.0", req[1], mode, b"text", b"the-user", meta])
t = threading.Thread(target=handler); t.start()

def mon_events(m):
    out = []
    while m.poll(300):
        ev = m.recv_multipart()
        num = int.from_bytes(ev[0][:2], "little"); val = int.from_bytes(ev[0][2:], "little")
        if num in (zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
            out.append((num, val))
        elif num in (zmq.EVENT_HANDSHAKE_SUCCEEDED, zmq.EVENT_DISCONNECTED):
            out.append((num,))
    return out

i = 0
for mech in ["null", "plain"]:
    for domain, mode in [(b"", b"200"), (b"d1", b"200"), (b"d2", b"300"), (b"d3", b"400"), (b"d4", b"500"),
                         (b"d5", b"bad-version"), (b"d6", b"bad-id"), (b"d7", b"short"), (b"d8", b"badmeta"), (b"d9", b"201")]:
        i += 1
        print("==", mech, domain, mode)
        replies[domain] = mode
        srv = ctx.socket(zmq.ROUTER); srv.setsockopt(zmq.LINGER, 0)
        if domain: srv.setsockopt(zmq.ZAP_DOMAIN, domain)
        if mech == "plain": srv.setsockopt(zmq.PLAIN_SERVER, 1)
        srv.setsockopt(zmq.ROUTING_ID, b"srv")
        srv.monitor("inproc://mon%d" % i, zmq.EVENT_ALL)
        m = ctx.socket(zmq.PAIR); m.connect("inproc://mon%d" % i)
        srv.bind("tcp://127.0.0.1:*"); e = srv.getsockopt(zmq.LAST_ENDPOINT)
        cl = ctx.socket(zmq.DEALER); cl.setsockopt(zmq.LINGER, 0); cl.setsockopt(zmq.ROUTING_ID, b"client-%d" % i); cl.setsockopt(zmq.RECONNECT_IVL, -1)
        if mech == "plain":
            cl.setsockopt(zmq.PLAIN_USERNAME, b"admin"); cl.setsockopt(zmq.PLAIN_PASSWORD, b"secret")
        cl.connect(e)
        cl.send(b"hi")
        got = None
        if srv.poll(700):
            f = srv.recv_multipart(copy=False)
            got = [x.bytes for x in f]
            props = {}
            for k in ["User-Id", "Hello", "X-Foo", "Socket-Type", "Routing-Id"]:
                try:
                    props[k] = f[1].get(k)
                except Exception as ex:
                    props[k] = "ERR"
            print("got", got, props)
        else:
            print("got nothing")
        print("zap", log); log.clear()
        print("events", mon_events(m))
        srv.disable_monitor()
        for s in [srv, cl, m]: s.close()
zreq = ctx.socket(zmq.REQ); zreq.connect("inproc://zeromq.zap.01"); zreq.send(b"stop"); zreq.recv(); zreq.close()
t.join()
zap.close()
ctx.term()
print("done")
