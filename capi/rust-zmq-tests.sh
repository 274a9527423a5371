#!/usr/bin/env bash
# Runs rust-zmq's own test suite (the `zmq` crate 0.10, its tests/ as published) against
# zeroring's libzmq.so.5: a second real binding's tests on the C ABI, beside pyzmq's.
#
#   capi/rust-zmq-tests.sh PREFIX
#
# zmq-sys always builds its vendored libzmq, so the crate is copied from the cargo registry
# with a zmq-sys whose build script links PREFIX/lib/libzmq.so instead (nothing else in
# either crate changes). Excluded: tests/compile-tests.rs, which compares rustc's diagnostics
# for code that must not compile (it tests the compiler's messages, not libzmq).
# Exit status: cargo test's.
set -euo pipefail
prefix=$(cd "${1:?usage: capi/rust-zmq-tests.sh PREFIX}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
src=$(ls -d "$registry"/*/zmq-0.10.0 2>/dev/null | head -1)
if [ -z "$src" ]; then
  (cd "$root" && cargo fetch --quiet)
  src=$(ls -d "$registry"/*/zmq-0.10.0 | head -1)
fi
work=$(mktemp -d /tmp/zeroring-rust-zmq.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$src" "$work/zmq"
chmod -R u+w "$work"
# shellcheck source=capi/zmq-sys-shim.sh
. "$root/capi/zmq-sys-shim.sh"
zmq_sys_shim "$work"
printf '\n[patch.crates-io]\nzmq-sys = { path = "../zmq-sys" }\n\n[workspace]\n' >> "$work/zmq/Cargo.toml"
cd "$work/zmq"
tests=$(ls tests/*.rs | xargs -n1 basename | sed 's/\.rs$//' | grep -v '^compile-tests$' | sed 's/^/--test /')
# shellcheck disable=SC2086
LIBZMQ_PREFIX=$prefix LD_LIBRARY_PATH=$prefix/lib CARGO_TARGET_DIR=${RUST_ZMQ_TARGET_DIR:-$root/target/rust-zmq} \
  cargo test --no-fail-fast $tests
