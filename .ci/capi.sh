#!/usr/bin/env bash
# CI for the C ABI (capi/): build libzmq.so.5, install it to a temp prefix, check its exported
# functions against zmq.h, build and run the C examples with pkg-config, then build and run
# libzmq 4.3.5's own test programs against it; fails if fewer pass than
# capi/libzmq-tests.expected records. Called from .ci/run; about 4 min on 2 cores.
# Needs gcc, g++, pkg-config, and zeromq-src 0.3.6+4.3.5 in the cargo registry
# (capi/libzmq-src.sh fetches it from crates.io when it is not there).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo; echo "=== capi: $* ($(( $(date +%s) - start ))s)"; }

prefix=$(mktemp -d /tmp/zeroring-capi.XXXXXX)
work=$(mktemp -d /tmp/zeroring-capi-build.XXXXXX)
trap 'rm -rf "$prefix" "$work"' EXIT

step "build and install libzmq.so.5 to $prefix"
cargo fetch --quiet
capi/install.sh "$prefix"
readelf -d "$prefix/lib/libzmq.so.5" | grep -q 'SONAME.*\[libzmq.so.5\]'
test "$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --modversion libzmq)" = 4.3.5

step "every function zmq.h declares is exported"
grep -o 'zmq_[a-z0-9_]* (' "$prefix/include/zmq.h" | tr -d ' (' | sort -u > "$work/declared"
nm -D --defined-only "$prefix/lib/libzmq.so.5" | awk '{print $3}' | grep '^zmq_' | sort -u > "$work/exported"
missing=$(comm -23 "$work/declared" "$work/exported")
if [ -n "$missing" ]; then echo "not exported: $missing"; exit 1; fi
echo "$(wc -l < "$work/declared") functions declared, all exported"

step "examples/c: hwserver + hwclient via pkg-config"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
export LD_LIBRARY_PATH=$prefix/lib
make -s -C examples/c clean all
mkfifo "$work/ep"
timeout 60 examples/c/hwserver 'tcp://127.0.0.1:*' 10 > "$work/ep" &
server=$!
read -r -t 30 endpoint < "$work/ep"
timeout 60 examples/c/hwclient "$endpoint" 10
wait "$server"
make -s -C examples/c clean

step "libzmq's own tests against this library"
TEST_TIMEOUT=${TEST_TIMEOUT:-20} capi/libzmq-tests.sh "$prefix" "$work/tests" | tee "$work/results"
passed=$(grep -c '^PASS' "$work/results" || true)
expected=$(grep -o '^[0-9]*' capi/libzmq-tests.expected)
echo "passed $passed, recorded $expected"
if [ "$passed" -lt "$expected" ]; then
  echo "FAIL: fewer libzmq tests pass than recorded in capi/libzmq-tests.expected"
  exit 1
fi
step "pyzmq built from source against this library: PUSH/PULL, REQ/REP, zmq.asyncio"
# Needs the network for pip (pyzmq's sdist and its build tools); without it the step says so
# and is skipped unless CAPI_REQUIRE_PYZMQ=1. The venv is kept in target/ between runs.
venv=target/capi-pyzmq-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import zmq" 2>/dev/null; then
  python3 -m venv "$venv"
  if ! ZMQ_PREFIX=$prefix timeout 600 "$venv/bin/pip" install --quiet --no-binary pyzmq pyzmq; then
    rm -rf "$venv"
    if [ "${CAPI_REQUIRE_PYZMQ:-0}" = 1 ]; then exit 1; fi
    echo "SKIPPED: could not build pyzmq from source (no network?)"
    venv=
  fi
fi
if [ -n "$venv" ]; then
  # The venv's pyzmq was linked against an earlier prefix: load this one.
  LD_LIBRARY_PATH=$prefix/lib timeout 120 "$venv/bin/python" capi/pyzmq-smoke.py
  step "pyzmq's own test suite on this library"
  timeout 900 capi/pyzmq-tests.sh "$venv" "$prefix"
  step "the probes: this library's answers beside libzmq 4.3.5's (pyzmq's wheel)"
  timeout 600 capi/probe/run.sh "$venv" "$prefix"
fi
step "rust-zmq's own test suite on this library"
timeout 900 capi/rust-zmq-tests.sh "$prefix"
step "tmq's own test suite on this library (tokio over ZMQ_FD)"
timeout 900 capi/tmq-tests.sh "$prefix"
step "done"
