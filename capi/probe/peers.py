"""What the probes with peers share (messages.py, routing.py): sockets with LINGER 0 in one
context, fresh endpoints, and the two kinds of wait those probes allow: for something that
must come (a poll of seconds), and a short poll that must find nothing more.

Imported by the probes (their folder is on Python's path when run.sh runs them); prints
nothing itself.
"""
import os

import zmq

ctx = zmq.Context()
_seq = [0]


def sock(t, **opts):
    """A socket of type `t` with LINGER 0 and the options named in `opts` (`SNDHWM=5`)."""
    s = ctx.socket(t)
    s.setsockopt(zmq.LINGER, 0)
    for k, v in opts.items():
        s.setsockopt(getattr(zmq, k), v)
    return s


def ep(kind="inproc"):
    """An endpoint no other socket of this process uses: inproc, abstract ipc, or a tcp
    wildcard."""
    _seq[0] += 1
    n = _seq[0]
    return {"inproc": "inproc://probe-%d" % n, "ipc": "ipc://@zr-probe-%d-%d" % (n, os.getpid()),
            "tcp": "tcp://127.0.0.1:*"}[kind]


def bind(s, e):
    """Binds `e`; returns LAST_ENDPOINT."""
    s.bind(e)
    return s.getsockopt(zmq.LAST_ENDPOINT).decode()


def recv(s):
    """The next message, which must come."""
    assert s.poll(10000), "nothing came"
    return s.recv_multipart()


def drain(s, wait=100):
    """What is queued now (inproc: everything sent before), and nothing more within `wait`."""
    out = []
    while s.poll(wait):
        out.append(s.recv_multipart())
    return out


def section(name):
    print("==", name)
