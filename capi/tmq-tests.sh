#!/usr/bin/env bash
# Runs tmq's own test suite (tmq 0.5.0, tokio bindings over the `zmq` crate, its tests/ as
# published) against zeroring's libzmq.so.5. tmq waits on ZMQ_FD with tokio's edge-triggered
# AsyncFd and reads ZMQ_EVENTS after every wake, so its tests check the FD/EVENTS contract
# (libzmq's zmq_getsockopt(3): the FD only signals that EVENTS may have changed) the way async
# programs use it, on top of the PUSH/PULL, REQ/REP, DEALER/ROUTER, PUB/SUB and PAIR basics.
#
#   capi/tmq-tests.sh PREFIX
#
# The crate is downloaded from crates.io (checked against its SHA-256) and built with a
# zmq-sys that links PREFIX/lib/libzmq.so (capi/zmq-sys-shim.sh); nothing else changes.
# Exit status: cargo test's.
set -euo pipefail
prefix=$(cd "${1:?usage: capi/tmq-tests.sh PREFIX}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
version=0.5.0
sha256=c3f41ac3a42f65436eed7e1afe80dbe8a982dcac2ea4581bf61bc2d3dcfb19a1
work=$(mktemp -d /tmp/zeroring-tmq.XXXXXX)
trap 'rm -rf "$work"' EXIT
crate=${TMQ_CRATE:-$root/target/tmq-$version.crate}
if ! echo "$sha256  $crate" | sha256sum -c --quiet - >/dev/null 2>&1; then
  mkdir -p "$(dirname "$crate")"
  curl -sSfL -o "$crate" "https://static.crates.io/crates/tmq/tmq-$version.crate"
  echo "$sha256  $crate" | sha256sum -c --quiet -
fi
tar -xzf "$crate" -C "$work"
mv "$work/tmq-$version" "$work/tmq"
chmod -R u+w "$work"
# shellcheck source=capi/zmq-sys-shim.sh
. "$root/capi/zmq-sys-shim.sh"
zmq_sys_shim "$work"
# The published lock file pins zmq-sys from crates.io; the patch replaces it.
rm -f "$work/tmq/Cargo.lock"
printf '\n[patch.crates-io]\nzmq-sys = { path = "../zmq-sys" }\n\n[workspace]\n' >> "$work/tmq/Cargo.toml"
cd "$work/tmq"
LIBZMQ_PREFIX=$prefix LD_LIBRARY_PATH=$prefix/lib CARGO_TARGET_DIR=${TMQ_TARGET_DIR:-$root/target/tmq} \
  cargo test --no-fail-fast --tests
