#!/bin/bash
# Prints the directory of libzmq 4.3.5's source tree (tests/, perf/, doc/, src/), the `vendor/`
# folder of the crates.io package zeromq-src 0.3.6+4.3.5, fetching the package into the cargo
# registry first when it is not there (a throwaway manifest and `cargo fetch`; the workspace
# itself depends only on zeromq-src 0.2.6+4.3.4, through the `zmq` crate). LIBZMQ_VENDOR,
# when set, is printed instead.
#
#   vendor=$(capi/libzmq-src.sh)
set -euo pipefail
if [ -n "${LIBZMQ_VENDOR:-}" ]; then
  echo "$LIBZMQ_VENDOR"
  exit 0
fi
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
find_vendor() { ls -d "$registry"/*/zeromq-src-0.3.6+4.3.5/vendor 2>/dev/null | head -1; }
vendor=$(find_vendor)
if [ -z "$vendor" ]; then
  tmp=$(mktemp -d /tmp/zeromq-src-fetch.XXXXXX)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/src"
  printf '[package]\nname = "fetch-zeromq-src"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nzeromq-src = "=0.3.6"\n' > "$tmp/Cargo.toml"
  : > "$tmp/src/lib.rs"
  cargo fetch --quiet --manifest-path "$tmp/Cargo.toml" >&2
  vendor=$(find_vendor)
fi
[ -d "$vendor/tests" ] || { echo "libzmq-src: zeromq-src 0.3.6+4.3.5 not found in $registry" >&2; exit 2; }
echo "$vendor"
