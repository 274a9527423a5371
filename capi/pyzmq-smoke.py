"""pyzmq on zeroring's libzmq.so.5: PUSH/PULL, REQ/REP and zmq.asyncio over tcp.

Run with a pyzmq built from source against the install prefix
(ZMQ_PREFIX=PREFIX pip install --no-binary pyzmq pyzmq) and LD_LIBRARY_PATH=PREFIX/lib.
Exits non-zero on any failure; every wait is bounded.
"""
import asyncio
import sys

import zmq
import zmq.asyncio

TIMEOUT_MS = 10_000


def sock(ctx, kind):
    s = ctx.socket(kind)
    s.linger = 0
    s.rcvtimeo = TIMEOUT_MS
    s.sndtimeo = TIMEOUT_MS
    return s


def push_pull(ctx):
    pull = sock(ctx, zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push = sock(ctx, zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    for i in range(100):
        push.send_multipart([b"part", str(i).encode()])
    for i in range(100):
        assert pull.recv_multipart() == [b"part", str(i).encode()]
    push.close()
    pull.close()


def req_rep(ctx):
    rep = sock(ctx, zmq.REP)
    port = rep.bind_to_random_port("tcp://127.0.0.1")
    req = sock(ctx, zmq.REQ)
    req.connect(f"tcp://127.0.0.1:{port}")
    for i in range(10):
        req.send_string(f"Hello {i}")
        assert rep.recv_string() == f"Hello {i}"
        rep.send_string(f"World {i}")
        assert req.recv_string() == f"World {i}"
    # errno-based errors surface as pyzmq exceptions with libzmq's strings.
    try:
        req.recv(zmq.NOBLOCK)
        raise AssertionError("REQ recv without a request must fail")
    except zmq.ZMQError as e:
        assert e.errno == zmq.EFSM, e
        assert str(e) == "Operation cannot be accomplished in current state", str(e)
    req.close()
    rep.close()


async def asyncio_exchange():
    # zmq.asyncio waits on ZMQ_FD, so this only passes if ZMQ_FD is edge-triggered as in
    # libzmq (read ZMQ_EVENTS after each wake).
    ctx = zmq.asyncio.Context()
    rep = ctx.socket(zmq.REP)
    rep.linger = 0
    port = rep.bind_to_random_port("tcp://127.0.0.1")
    req = ctx.socket(zmq.REQ)
    req.linger = 0
    req.connect(f"tcp://127.0.0.1:{port}")

    async def server():
        for _ in range(20):
            msg = await rep.recv_multipart()
            await rep.send_multipart([b"echo"] + msg)

    task = asyncio.create_task(server())
    for i in range(20):
        await req.send_multipart([str(i).encode()])
        reply = await asyncio.wait_for(req.recv_multipart(), TIMEOUT_MS / 1000)
        assert reply == [b"echo", str(i).encode()], reply
    await asyncio.wait_for(task, TIMEOUT_MS / 1000)
    req.close()
    rep.close()
    ctx.term()


def main():
    major, minor, patch = zmq.zmq_version_info()
    print(f"pyzmq {zmq.__version__} on libzmq {major}.{minor}.{patch}")
    assert (major, minor, patch) == (4, 3, 5)
    ctx = zmq.Context()
    push_pull(ctx)
    print("PUSH/PULL ok")
    req_rep(ctx)
    print("REQ/REP ok")
    ctx.term()
    asyncio.run(asyncio.wait_for(asyncio_exchange(), 60))
    print("zmq.asyncio ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
