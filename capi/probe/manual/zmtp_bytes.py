"""ZMTP 3.1 bytes for the raw probes (raw_peer.py, raw_server.py): greetings, properties,
commands, frames, and monitor event names. Builds bytes only; no I/O."""
import struct

import zmq

# Monitor event number -> name without the EVENT_ prefix.
NAMES = {getattr(zmq, n): n[6:] for n in dir(zmq)
         if n.startswith("EVENT_") and n not in ("EVENT_ALL", "EVENT_ALL_V1", "EVENT_ALL_V2")}


def greeting(mech=b"NULL", as_server=0, major=3, minor=1):
    return (b"\xff" + b"\0" * 8 + b"\x7f" + bytes([major, minor]) + mech.ljust(20, b"\0")
            + bytes([as_server]) + b"\0" * 31)


def prop(name, value):
    return bytes([len(name)]) + name + struct.pack(">I", len(value)) + value


def command(body):
    if len(body) < 256:
        return bytes([0x04, len(body)]) + body
    return b"\x06" + struct.pack(">Q", len(body)) + body


def ready(socktype, extra=b""):
    return command(b"\x05READY" + prop(b"Socket-Type", socktype) + extra)


def frame(body, more=False):
    if len(body) < 256:
        return bytes([1 if more else 0, len(body)]) + body
    return bytes([3 if more else 2]) + struct.pack(">Q", len(body)) + body
