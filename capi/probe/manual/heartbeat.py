"""Heartbeats against a raw ZMTP peer: the PINGs a socket sends (TTL), how it answers a PING
(PONG with the context), and when it gives up on a silent peer.

Compared by hand (`capi/probe/manual/README.md`).
"""
import zmq, socket, time, struct

ctx = zmq.Context()
N = [0]
NAMES = {getattr(zmq, n): n[6:] for n in dir(zmq) if n.startswith("EVENT_") and n not in ("EVENT_ALL", "EVENT_ALL_V1", "EVENT_ALL_V2")}

def greeting(mech=b"NULL", as_server=0, major=3, minor=1):
    return b"\xff" + b"\0" * 8 + b"\x7f" + bytes([major, minor]) + mech.ljust(20, b"\0") + bytes([as_server]) + b"\0" * 31

def prop(name, value):
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value

def command(body):
    if len(body) < 256:
        return bytes([0x04, len(body)]) + body
    return b"\x06" + struct.pack(">Q", len(body)) + body

def ready(socktype=b"PUSH", extra=b""):
    return command(b"\x05READY" + prop(b"Socket-Type", socktype) + extra)

def frame(body, more=False):
    if len(body) < 256:
        return bytes([1 if more else 0, len(body)]) + body
    return bytes([3 if more else 2]) + struct.pack(">Q", len(body)) + body

def hexs(b):
    return b.hex()

def run(name, server_type, script, opts={}, read_for=0.6):
    N[0] += 1
    srv = ctx.socket(server_type); srv.setsockopt(zmq.LINGER, 0)
    for k, v in opts.items(): srv.setsockopt(getattr(zmq, k), v)
    srv.monitor("inproc://rawmon%d" % N[0], zmq.EVENT_ALL)
    m = ctx.socket(zmq.PAIR); m.connect("inproc://rawmon%d" % N[0])
    srv.bind("tcp://127.0.0.1:*"); port = int(srv.getsockopt(zmq.LAST_ENDPOINT).rsplit(b":", 1)[1])
    c = socket.create_connection(("127.0.0.1", port)); c.settimeout(0.05)
    got = b""; closed = False
    for step in script:
        if step == "WAITG":
            # As a real peer: the server's whole greeting first (or its close), within 5 s.
            end = time.time() + 5
            while len(got) < 64 and time.time() < end:
                try:
                    d = c.recv(64 - len(got))
                    if not d: closed = True; break
                    got += d
                except socket.timeout:
                    pass
            if closed: break
            continue
        if isinstance(step, bytes):
            try: c.sendall(step)
            except OSError as e: got += b"<send:%d>" % e.errno; closed = True; break
        else:
            time.sleep(step)
    end = time.time() + read_for
    while time.time() < end and not closed:
        try:
            d = c.recv(65536)
            if not d: closed = True; break
            got += d
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed = True; got += b"<reset>"; break
    c.close()
    msgs = []
    while srv.poll(50):
        msgs.append(srv.recv_multipart())
    evs = []
    # Up to DISCONNECTED (libzmq's I/O thread can stall if its socket closes while a raw
    # connection is still open), or 300 ms of quiet when nothing was accepted.
    while m.poll(1000 if "ACCEPTED" in evs and "DISCONNECTED" not in evs else 300):
        f = m.recv_multipart(); num = int.from_bytes(f[0][:2], "little"); val = int.from_bytes(f[0][2:], "little")
        if num in (zmq.EVENT_LISTENING,): continue
        evs.append((NAMES.get(num, num), val) if num in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_AUTH) else NAMES.get(num, num))
        if evs[-1] == "DISCONNECTED":
            break
    print("==", name)
    print("  sent back:", hexs(got[:64]), "..." if len(got) > 64 else "", hexs(got[64:200]) if len(got) > 64 else "")
    print("  closed:", closed, "msgs:", msgs)
    print("  events:", evs)
    # libzmq's I/O thread blocks sending a monitor event once the reader is gone: stop the
    # monitor (and see it stopped) before anything closes.
    srv.disable_monitor()
    while m.poll(2000) and int.from_bytes(m.recv_multipart()[0][:2], "little") != zmq.EVENT_MONITOR_STOPPED:
        pass
    srv.close(); m.close()

G = greeting()
run("heartbeat ivl 100 ttl 2000", zmq.PULL, [G, "WAITG", ready(b"PUSH"), 0.35], {"HEARTBEAT_IVL": 100, "HEARTBEAT_TTL": 2000}, read_for=0.1)
run("heartbeat ivl 100 timeout 250, silent peer", zmq.PULL, [G, "WAITG", ready(b"PUSH"), 0.6], {"HEARTBEAT_IVL": 100, "HEARTBEAT_TIMEOUT": 250}, read_for=0.1)
run("peer ping ttl 3 (300 ms)", zmq.PULL, [G, "WAITG", ready(b"PUSH"), command(b"\x04PING\x00\x03ab"), 0.6], {}, read_for=0.1)
run("peer ping ttl 3, server timeout 100", zmq.PULL, [G, "WAITG", ready(b"PUSH"), command(b"\x04PING\x00\x03ab"), 0.6], {"HEARTBEAT_TIMEOUT": 100}, read_for=0.1)
ctx.term()
