"""libzmq's CURVE cost, measured through pyzmq (whose wheels bundle a libzmq with CURVE; the
`zmq` crate's libzmq has none), for comparison with `zeroring-perf --mechanism curve`.

Throughput as libzmq's local_thr: PUSH (a child process) → PULL, the receiver times the
first to the last message; latency: REQ/REP round trips, p50 and p99. Every message crosses
Python, which adds a few µs: compare the CURVE/NULL *ratios* of the two libraries, and the
absolute figures only where the messages are large.

    python3 perf/pyzmq/curve_thr.py [--sizes 64,1024,16384] [--count 50000] [--lat 5000]
"""
import argparse
import multiprocessing as mp
import statistics
import time

import zmq

SERVER_PUB, SERVER_SEC = zmq.curve_keypair()
CLIENT_PUB, CLIENT_SEC = zmq.curve_keypair()


def secure(s, mech, server):
    if mech != "curve":
        return
    if server:
        s.curve_server = True
        s.curve_secretkey = SERVER_SEC
    else:
        s.curve_serverkey = SERVER_PUB
        s.curve_publickey = CLIENT_PUB
        s.curve_secretkey = CLIENT_SEC


def sender(ep, mech, size, count):
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    secure(s, mech, False)
    s.connect(ep)
    msg = b"\x5a" * size
    for _ in range(count):
        s.send(msg, copy=size < 4096)
    s.close(linger=-1)
    ctx.term()


def echo(ep, mech, total):
    ctx = zmq.Context()
    s = ctx.socket(zmq.REP)
    secure(s, mech, False)
    s.connect(ep)
    for _ in range(total):
        s.send(s.recv(copy=False), copy=False)
    s.close(linger=-1)
    ctx.term()


def thr(mech, size, count):
    ctx = zmq.Context()
    s = ctx.socket(zmq.PULL)
    secure(s, mech, True)
    s.bind("tcp://127.0.0.1:*")
    p = mp.Process(target=sender, args=(s.last_endpoint.decode(), mech, size, count))
    p.start()
    s.recv(copy=False)
    t = time.perf_counter()
    for _ in range(count - 1):
        s.recv(copy=False)
    dt = time.perf_counter() - t
    p.join()
    s.close(linger=0)
    ctx.term()
    return count / dt


def lat(mech, size, count):
    ctx = zmq.Context()
    s = ctx.socket(zmq.REQ)
    secure(s, mech, True)
    s.bind("tcp://127.0.0.1:*")
    warm = count // 10
    p = mp.Process(target=echo, args=(s.last_endpoint.decode(), mech, warm + count))
    p.start()
    msg = b"\x5a" * size
    rtts = []
    for i in range(warm + count):
        t = time.perf_counter()
        s.send(msg)
        s.recv(copy=False)
        if i >= warm:
            rtts.append((time.perf_counter() - t) * 1e6)
    p.join()
    s.close(linger=0)
    ctx.term()
    rtts.sort()
    return rtts[len(rtts) // 2], rtts[int(len(rtts) * 0.99)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="64,1024,16384")
    ap.add_argument("--count", type=int, default=50000)
    ap.add_argument("--lat", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    print(f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}, medians of {a.runs} runs")
    print(f"{'mech':6} {'size':>6} {'msg/s':>10} {'MB/s':>8} {'lat p50 µs':>11} {'p99 µs':>8}")
    for size in map(int, a.sizes.split(",")):
        for mech in ("null", "curve"):
            rates = [thr(mech, size, a.count) for _ in range(a.runs)]
            lats = [lat(mech, size, a.lat) for _ in range(a.runs)]
            r = statistics.median(rates)
            p50 = statistics.median(x[0] for x in lats)
            p99 = statistics.median(x[1] for x in lats)
            print(f"{mech:6} {size:>6} {r:>10.0f} {r * size / 1e6:>8.1f} {p50:>11.1f} {p99:>8.1f}")


if __name__ == "__main__":
    main()
