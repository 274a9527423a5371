"""Socket and context options as the loaded libzmq answers them.

Prints every getsockopt default of every socket type and context, which socket types take each
option, and each option's accepted values. capi/probe/run.sh runs it against libzmq 4.3.5
itself (pyzmq's wheel) and against zeroring's libzmq.so.5 and compares the two outputs line by
line. Deterministic: no network, no timing.
"""
import zmq

TYPES = ["PAIR", "PUB", "SUB", "REQ", "REP", "DEALER", "ROUTER", "PULL", "PUSH", "XPUB", "XSUB", "STREAM"]


def show(label, f):
    try:
        print(label, "->", repr(f()))
    except zmq.ZMQError as e:
        print(label, "-> ERR", e.errno)


ctx = zmq.Context()

# Every readable option's default, type by type (FD differs by nature).
for t in TYPES:
    s = ctx.socket(getattr(zmq, t))
    for o in sorted(zmq.SocketOption, key=lambda x: x.value):
        if o.name != "FD":
            show(f"{t} get {o.name}", lambda: s.get(o))
    s.close()
for o in sorted(zmq.ContextOption, key=lambda x: x.value):
    show(f"ctx get {o.name}", lambda: ctx.get(o))

# A typical value per option: taken or not, and what reads back, type by type.
TYPICAL = {
    "AFFINITY": 1, "ROUTING_ID": b"id", "SUBSCRIBE": b"a", "UNSUBSCRIBE": b"a", "RATE": 50,
    "RECOVERY_IVL": 5, "SNDBUF": 1000, "RCVBUF": 1000, "LINGER": 5, "RECONNECT_IVL": 50,
    "BACKLOG": 10, "RECONNECT_IVL_MAX": 100, "MAXMSGSIZE": 100, "SNDHWM": 5, "RCVHWM": 5,
    "MULTICAST_HOPS": 2, "RCVTIMEO": 5, "SNDTIMEO": 5, "ROUTER_MANDATORY": 1, "TCP_KEEPALIVE": 1,
    "TCP_KEEPALIVE_CNT": 3, "TCP_KEEPALIVE_IDLE": 3, "TCP_KEEPALIVE_INTVL": 3, "IMMEDIATE": 1,
    "XPUB_VERBOSE": 1, "IPV6": 1, "PROBE_ROUTER": 1, "REQ_CORRELATE": 1, "REQ_RELAXED": 1,
    "CONFLATE": 1, "ROUTER_HANDOVER": 1, "TOS": 4, "CONNECT_ROUTING_ID": b"cr",
    "HANDSHAKE_IVL": 100, "XPUB_NODROP": 1, "XPUB_MANUAL": 1, "XPUB_WELCOME_MSG": b"w",
    "INVERT_MATCHING": 1, "HEARTBEAT_IVL": 100, "HEARTBEAT_TTL": 200, "HEARTBEAT_TIMEOUT": 300,
    "XPUB_VERBOSER": 1, "CONNECT_TIMEOUT": 100, "TCP_MAXRT": 100, "PLAIN_SERVER": 1,
    "PLAIN_USERNAME": b"u", "PLAIN_PASSWORD": b"p", "ZAP_DOMAIN": b"d", "IPV4ONLY": 0,
    "TCP_ACCEPT_FILTER": b"127.0.0.1", "ROUTER_RAW": 1, "SOCKS_PROXY": b"127.0.0.1:1080",
    "STREAM_NOTIFY": 0, "MULTICAST_MAXTPDU": 1000, "USE_FD": -1, "ZAP_ENFORCE_DOMAIN": 1,
    "LOOPBACK_FASTPATH": 0, "MULTICAST_LOOP": 0, "SOCKS_USERNAME": b"su",
    "SOCKS_PASSWORD": b"sp", "BINDTODEVICE": b"lo", "IPC_FILTER_PID": 1, "IPC_FILTER_UID": 0,
    "IPC_FILTER_GID": 0, "GSSAPI_SERVER": 1, "GSSAPI_PLAINTEXT": 1, "VMCI_BUFFER_SIZE": 1000,
    "VMCI_CONNECT_TIMEOUT": 100, "RECONNECT_STOP": 1, "XPUB_MANUAL_LAST_VALUE": 1,
    "ONLY_FIRST_SUBSCRIBE": 1, "METADATA": b"X-a:b", "CURVE_SERVER": 0,
}
for t in TYPES:
    for name, v in TYPICAL.items():
        o = getattr(zmq, name, None)
        if o is None:
            continue
        s = ctx.socket(getattr(zmq, t))
        try:
            s.setsockopt(o, v)
            r = "set ok"
        except zmq.ZMQError as e:
            r = "set ERR %d" % e.errno
        try:
            r += " get %r" % (s.getsockopt(o),)
        except zmq.ZMQError as e:
            r += " get ERR %d" % e.errno
        print(t, name, r)
        s.close(0)


def sock_for(name):
    if name in ("ROUTER_MANDATORY", "CONNECT_ROUTING_ID"):
        return zmq.ROUTER
    if name.startswith("XPUB") or name == "INVERT_MATCHING":
        return zmq.XPUB
    if name == "STREAM_NOTIFY":
        return zmq.STREAM
    if name == "SUBSCRIBE":
        return zmq.SUB
    return zmq.PULL


# Integer options across their ranges' edges.
INTS = ["RATE", "RECOVERY_IVL", "SNDBUF", "RCVBUF", "LINGER", "RECONNECT_IVL", "BACKLOG",
        "RECONNECT_IVL_MAX", "SNDHWM", "RCVHWM", "MULTICAST_HOPS", "RCVTIMEO", "SNDTIMEO",
        "TCP_KEEPALIVE", "TCP_KEEPALIVE_CNT", "TCP_KEEPALIVE_IDLE", "TCP_KEEPALIVE_INTVL",
        "IMMEDIATE", "IPV6", "CONFLATE", "TOS", "HANDSHAKE_IVL", "HEARTBEAT_IVL", "HEARTBEAT_TTL",
        "HEARTBEAT_TIMEOUT", "CONNECT_TIMEOUT", "TCP_MAXRT", "PLAIN_SERVER", "CURVE_SERVER",
        "IPV4ONLY", "STREAM_NOTIFY", "MULTICAST_MAXTPDU", "USE_FD", "ZAP_ENFORCE_DOMAIN",
        "LOOPBACK_FASTPATH", "MULTICAST_LOOP", "INVERT_MATCHING", "RECONNECT_STOP",
        "XPUB_VERBOSE", "XPUB_NODROP", "ROUTER_MANDATORY"]
for name in INTS:
    for v in [-2, -1, 0, 1, 2, 6553599, 6553600, 2**31 - 1]:
        s = ctx.socket(sock_for(name))
        try:
            s.setsockopt(getattr(zmq, name), v)
            r = "ok %r" % (s.getsockopt(getattr(zmq, name)),)
        except zmq.ZMQError as e:
            r = "ERR %d" % e.errno
        print(name, v, r)
        s.close(0)
for name in ["MAXMSGSIZE", "AFFINITY"]:
    for v in [-2, -1, 0, 1, 2**40]:
        s = ctx.socket(zmq.PULL)
        try:
            s.setsockopt(getattr(zmq, name), v)
            r = "ok %r" % s.getsockopt(getattr(zmq, name))
        except zmq.ZMQError as e:
            r = "ERR %d" % e.errno
        print(name, v, r)
        s.close(0)

# String options by length.
for name in ["ZAP_DOMAIN", "PLAIN_USERNAME", "PLAIN_PASSWORD", "ROUTING_ID", "SOCKS_PROXY",
             "BINDTODEVICE", "SOCKS_USERNAME", "SOCKS_PASSWORD", "TCP_ACCEPT_FILTER",
             "XPUB_WELCOME_MSG", "SUBSCRIBE", "CONNECT_ROUTING_ID"]:
    for n in [0, 1, 15, 16, 17, 255, 256, 1000]:
        s = ctx.socket(sock_for(name))
        if name == "TCP_ACCEPT_FILTER":
            v = b"127.0.0.1" if n else b""
        elif name == "ROUTING_ID" and n:
            v = b"\x01" + b"x" * (n - 1)
        else:
            v = b"x" * n
        try:
            s.setsockopt(getattr(zmq, name), v)
            r = "ok"
        except zmq.ZMQError as e:
            r = "ERR %d" % e.errno
        print(name, n, r)
        s.close(0)

# Context options.
for name, v in [("IO_THREADS", 4), ("IO_THREADS", -1), ("MAX_SOCKETS", 0), ("MAX_SOCKETS", 10),
                ("MAX_SOCKETS", 1 << 30), ("MAX_MSGSZ", 10), ("BLOCKY", 0), ("BLOCKY", 2),
                ("IPV6", 1), ("THREAD_PRIORITY", 5), ("THREAD_SCHED_POLICY", 0),
                ("THREAD_NAME_PREFIX", 3), ("THREAD_AFFINITY_CPU_ADD", 0)]:
    c2 = zmq.Context()
    show(f"ctx set {name} {v}", lambda: c2.set(getattr(zmq, name), v))
    show(f"ctx get {name}", lambda: c2.get(getattr(zmq, name)))
    c2.term()
show("ctx set unknown", lambda: ctx.set(9999, 1))
ctx.term()
print("done")
