"""A raw ZMTP peer against each socket of this library and of libzmq, as a server sees it:
32 scripted clients (greetings of each version, mechanisms, READY variants, commands, oversized
and malformed frames, HTTP, silence, heartbeats both ways) and, for each, the bytes the server sent back, whether it
closed, what it delivered, and its monitor events.

Compared by hand (`capi/probe/manual/README.md`), not in CI: libzmq's answers to a few cases
depend on timing.
"""
import zmq, socket, time, struct

from zmtp_bytes import NAMES, command, frame, greeting, prop, ready

ctx = zmq.Context()
N = [0]

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
run("null ok push->pull", zmq.PULL, [G, "WAITG", ready(b"PUSH"), frame(b"hello"), frame(b"a", True), frame(b"b")])
run("null ok dealer->router", zmq.ROUTER, [G, "WAITG", ready(b"DEALER", prop(b"Identity", b"ID1")), frame(b"hello")])
run("bad socket type", zmq.PULL, [G, "WAITG", ready(b"PUB")])
run("unknown socket type", zmq.PULL, [G, "WAITG", ready(b"FOO")])
run("no socket type", zmq.PULL, [G, "WAITG", command(b"\x05READY")])
run("mechanism plain to null", zmq.PULL, [greeting(b"PLAIN")])
run("mechanism curve to null", zmq.PULL, [greeting(b"CURVE")])
run("mechanism junk", zmq.PULL, [greeting(b"JUNK")])
run("version 3.0", zmq.PULL, [greeting(minor=0), ready(b"PUSH"), frame(b"v30")])
run("version 4.0", zmq.PULL, [greeting(major=4, minor=0), ready(b"PUSH"), frame(b"v40")])
run("zmtp 2.0", zmq.PULL, [b"\xff" + b"\0" * 8 + b"\x7f" + b"\x01" + b"\x08" + b"\x00\x00" + b"\x00\x02" + b"\x00" + b"hi"])
run("message before ready", zmq.PULL, [G, "WAITG", frame(b"early")])
run("unknown command", zmq.PULL, [G, "WAITG", ready(b"PUSH"), command(b"\x07UNKNOWN"), frame(b"after")])
run("ping", zmq.PULL, [G, "WAITG", ready(b"PUSH"), command(b"\x04PING\x00\x0aCTX"), frame(b"after")])
run("ping long ctx", zmq.PULL, [G, "WAITG", ready(b"PUSH"), command(b"\x04PING\x00\x0a" + b"c" * 40), frame(b"after")])
run("subscribe cmd to pub", zmq.XPUB, [G, "WAITG", ready(b"SUB"), command(b"\x09SUBSCRIBEtopic"), frame(b"\x01other")])
run("error cmd", zmq.PULL, [G, "WAITG", command(b"\x05ERROR\x03bad")])
run("second ready", zmq.PULL, [G, "WAITG", ready(b"PUSH"), ready(b"PUSH"), frame(b"after")])
run("maxmsgsize", zmq.PULL, [G, "WAITG", ready(b"PUSH"), frame(b"x" * 100)], {"MAXMSGSIZE": 10})
run("more then close", zmq.PULL, [G, "WAITG", ready(b"PUSH"), frame(b"part", True)])
run("huge length", zmq.PULL, [G, "WAITG", ready(b"PUSH"), b"\x02" + struct.pack(">Q", 2**63 + 5) + b"xx"])
run("reserved flags", zmq.PULL, [G, "WAITG", ready(b"PUSH"), b"\x08\x01x", frame(b"after")])
run("command with more flag", zmq.PULL, [G, "WAITG", b"\x05\x10\x05READY" + prop(b"Socket-Type", b"PUSH")[:10]])
run("long property name", zmq.PULL, [G, "WAITG", command(b"\x05READY" + prop(b"Socket-Type", b"PUSH") + prop(b"X" * 200, b"v")), frame(b"after")])
run("truncated property", zmq.PULL, [G, "WAITG", command(b"\x05READY" + b"\x0bSocket-Type\x00\x00\x00\x10PU")])
run("zmtp 1.0", zmq.PULL, [b"\x01\x00" + b"\x02\x00" + b"hi"])
run("http", zmq.PULL, [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"])
run("silent (handshake ivl 300)", zmq.PULL, [0.5], {"HANDSHAKE_IVL": 300}, read_for=0.3)
# Heartbeats: the PINGs sent (TTL), the PONG with the context, the close of a silent peer.
run("heartbeat ivl 100 ttl 2000", zmq.PULL, [G, "WAITG", ready(b"PUSH"), 0.35], {"HEARTBEAT_IVL": 100, "HEARTBEAT_TTL": 2000}, read_for=0.1)
run("heartbeat ivl 100 timeout 250, silent peer", zmq.PULL, [G, "WAITG", ready(b"PUSH"), 0.6], {"HEARTBEAT_IVL": 100, "HEARTBEAT_TIMEOUT": 250}, read_for=0.1)
run("peer ping ttl 3 (300 ms)", zmq.PULL, [G, "WAITG", ready(b"PUSH"), command(b"\x04PING\x00\x03ab"), 0.6], {}, read_for=0.1)
run("peer ping ttl 3, server timeout 100", zmq.PULL, [G, "WAITG", ready(b"PUSH"), command(b"\x04PING\x00\x03ab"), 0.6], {"HEARTBEAT_TIMEOUT": 100}, read_for=0.1)
ctx.term()
print("done")
