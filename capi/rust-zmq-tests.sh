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
sys=$(ls -d "$registry"/*/zmq-sys-0.12.0 2>/dev/null | head -1)
if [ -z "$src" ] || [ -z "$sys" ]; then
  (cd "$root" && cargo fetch --quiet)
  src=$(ls -d "$registry"/*/zmq-0.10.0 | head -1)
  sys=$(ls -d "$registry"/*/zmq-sys-0.12.0 | head -1)
fi
work=$(mktemp -d /tmp/zeroring-rust-zmq.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$src" "$work/zmq"
cp -r "$sys" "$work/zmq-sys"
chmod -R u+w "$work"
cat > "$work/zmq-sys/build/main.rs" <<'RS'
// Links the libzmq.so.5 under $LIBZMQ_PREFIX instead of building the vendored libzmq.
fn main() {
    let prefix = std::env::var("LIBZMQ_PREFIX").expect("LIBZMQ_PREFIX");
    println!("cargo:rerun-if-env-changed=LIBZMQ_PREFIX");
    println!("cargo:rustc-link-search=native={prefix}/lib");
    println!("cargo:rustc-link-lib=dylib=zmq");
    println!("cargo:include={prefix}/include");
}
RS
python3 - "$work" <<'PY'
import re, sys
w = sys.argv[1]
p = f"{w}/zmq-sys/Cargo.toml"
s = open(p).read()
s = re.sub(r'\[build-dependencies\.[a-z-]+\]\nversion = "[^"]*"\n\n?', '', s)
open(p, "w").write(s)
p = f"{w}/zmq/Cargo.toml"
s = open(p).read()
s += '\n[patch.crates-io]\nzmq-sys = { path = "../zmq-sys" }\n\n[workspace]\n'
open(p, "w").write(s)
PY
cd "$work/zmq"
tests=$(ls tests/*.rs | xargs -n1 basename | sed 's/\.rs$//' | grep -v '^compile-tests$' | sed 's/^/--test /')
# shellcheck disable=SC2086
LIBZMQ_PREFIX=$prefix LD_LIBRARY_PATH=$prefix/lib CARGO_TARGET_DIR=${RUST_ZMQ_TARGET_DIR:-$root/target/rust-zmq} \
  cargo test --no-fail-fast $tests
