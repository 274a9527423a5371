#!/bin/sh
# Installs zeroring's libzmq (libzmq.so.5, libzmq.a, zmq.h, libzmq.pc) under PREFIX.
#
#   capi/install.sh PREFIX            # builds the release library first
#   CAPI_PROFILE=debug capi/install.sh PREFIX
#   CAPI_NO_BUILD=1 capi/install.sh PREFIX   # install what is already built
#
# Lays out what libzmq's `make install` does: lib/libzmq.so.5.2.5 with the libzmq.so.5 and
# libzmq.so links, lib/libzmq.a, include/zmq.h, lib/pkgconfig/libzmq.pc (version 4.3.5).
set -eu
prefix=${1:?usage: capi/install.sh PREFIX}
profile=${CAPI_PROFILE:-release}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)

if [ -n "${CAPI_NO_BUILD:-}" ]; then
    : # already built (CI builds once, then installs)
elif [ "$profile" = release ]; then
    (cd "$root" && cargo build --release -p zeroring-capi)
else
    (cd "$root" && cargo build --profile "$( [ "$profile" = debug ] && echo dev || echo "$profile")" -p zeroring-capi)
fi
target=${CARGO_TARGET_DIR:-$root/target}
case $profile in dev | debug) dir=debug ;; *) dir=$profile ;; esac
out=$target/$dir

mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$out/libzmq.so" "$prefix/lib/libzmq.so.5.2.5"
ln -sf libzmq.so.5.2.5 "$prefix/lib/libzmq.so.5"
ln -sf libzmq.so.5 "$prefix/lib/libzmq.so"
install -m 0644 "$out/libzmq.a" "$prefix/lib/libzmq.a"
install -m 0644 "$root/capi/include/zmq.h" "$prefix/include/zmq.h"
sed "s|@PREFIX@|$prefix|" "$root/capi/libzmq.pc.in" > "$prefix/lib/pkgconfig/libzmq.pc"
echo "installed zeroring's libzmq 4.3.5 ABI under $prefix"
