"""A pyzmq (libzmq with CURVE) peer for zeroring's CURVE interop tests.

Usage: curve_peer.py ROLE-HOW ENDPOINT SERVER_PUB SERVER_SEC CLIENT_PUB CLIENT_SEC ZAP
  ROLE: server (REP, CURVE_SERVER with only the secret key) or client (REQ).
  HOW: bind or connect.
  ZAP: "none", or the Z85 public key of the one client a ZAP handler admits (as "pyuser").
Prints, one per line: "KEYS OK", "ENDPOINT <ep>" (bind), "EVENT <name> <value> ZAP <n>" for
handshake events, "REPLY <text>" (client), and answers each request with
"echo:<body>|<User-Id>" (server). Exits after 60 s, after a reply (client) or "quit" (server).
"""
import os
import sys
import threading
import time

import zmq
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

mode, endpoint, spub, ssec, cpub, csec, zap = sys.argv[1:8]
role, how = mode.split("-")
ctx = zmq.Context()
assert zmq.has("curve"), "this libzmq has no CURVE"
assert zmq.curve_public(ssec.encode()) == spub.encode(), "public key derivation differs"
assert zmq.curve_public(csec.encode()) == cpub.encode(), "public key derivation differs"
print("KEYS OK", flush=True)

zap_count = [0]
if zap != "none":
    handler = ctx.socket(zmq.REP)
    handler.bind("inproc://zeromq.zap.01")

    def serve():
        while True:
            req = handler.recv_multipart()
            rid, mech, creds = req[1], req[5], req[6:]
            zap_count[0] += 1
            ok = mech == b"CURVE" and len(creds) == 1 and z85.encode(creds[0]) == zap.encode()
            handler.send_multipart(
                [b"1.0", rid, b"200" if ok else b"400", b"OK" if ok else b"denied",
                 b"pyuser" if ok else b"", b""])

    threading.Thread(target=serve, daemon=True).start()

if role == "server":
    s = ctx.socket(zmq.REP)
    s.curve_server = True
    s.curve_secretkey = ssec.encode()
else:
    s = ctx.socket(zmq.REQ)
    s.curve_serverkey = spub.encode()
    s.curve_publickey = cpub.encode()
    s.curve_secretkey = csec.encode()
if zap != "none":
    s.zap_domain = b"test"
s.linger = 0
mon = s.get_monitor_socket()
names = {
    zmq.EVENT_HANDSHAKE_SUCCEEDED: "SUCCEEDED",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "FAILED_NO_DETAIL",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "FAILED_PROTOCOL",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "FAILED_AUTH",
}
if how == "bind":
    s.bind(endpoint)
    print("ENDPOINT", s.last_endpoint.decode(), flush=True)
else:
    s.connect(endpoint)
poller = zmq.Poller()
poller.register(s, zmq.POLLIN)
poller.register(mon, zmq.POLLIN)
if role == "client":
    s.send(b"hello")
t0 = time.time()
deadline = t0 + 60  # generous: a starved machine (CI beside other builds) once took > 20 s
log = []  # every monitor event, printed with DONE for a failing test's message
while time.time() < deadline:
    ready = dict(poller.poll(100))
    if mon in ready:
        m = recv_monitor_message(mon)
        log.append((round(time.time() - t0, 3), m["event"], m["value"]))
        if m["event"] in names:
            print("EVENT", names[m["event"]], m["value"], "ZAP", zap_count[0], flush=True)
    if s in ready:
        f = s.recv(copy=False)
        if role == "server":
            try:
                uid = f.get("User-Id")
            except zmq.ZMQError:
                uid = ""
            s.send(b"echo:" + f.bytes + b"|" + uid.encode())
            if f.bytes == b"quit":
                break
        else:
            print("REPLY", f.bytes.decode(), flush=True)
            break
print("DONE", log, flush=True)
sys.stdout.flush()
os._exit(0)
