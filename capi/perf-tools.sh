#!/bin/bash
# Builds libzmq 4.3's perf tools (zeromq-src's vendor/perf: local_thr, remote_thr, local_lat,
# remote_lat, inproc_thr, inproc_lat) once, then runs the same binaries against each libzmq
# given (a directory holding libzmq.so.5), via LD_LIBRARY_PATH. Prints a Markdown table.
#
#   capi/perf-tools.sh NAME=LIBDIR [NAME=LIBDIR ...]
#   e.g. capi/perf-tools.sh libzmq=/tmp/libzmq-ref/lib zeroring=/tmp/zr/lib
#
# Environment: SIZE (bytes, default 64), THR_COUNT (default 1000000), LAT_COUNT (round
# trips, default 20000), LIBZMQ_VENDOR, BUILD_DIR.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
vendor=$("$(dirname "$0")/libzmq-src.sh")
build=${BUILD_DIR:-$(mktemp -d /tmp/zmq-perf.XXXXXX)}
size=${SIZE:-64}
thr_count=${THR_COUNT:-1000000}
lat_count=${LAT_COUNT:-20000}
[ $# -ge 1 ] || { echo "usage: $0 NAME=LIBDIR ..." >&2; exit 2; }

# The tools include ../include/zmq.h and platform.hpp; give them ours.
mkdir -p "$build/perf" "$build/include" "$build/bin"
cp "$vendor"/perf/*.cpp "$build/perf/"
cp "$root/capi/include/zmq.h" "$build/include/zmq.h"
printf '#define ZMQ_HAVE_LINUX\n' > "$build/perf/platform.hpp"
first_lib=${1#*=}
for t in local_thr remote_thr local_lat remote_lat inproc_thr inproc_lat; do
    g++ -O2 -I"$build/perf" "$build/perf/$t.cpp" -o "$build/bin/$t" -L"$first_lib" -l:libzmq.so.5 -lpthread
done

port_base=$((20000 + RANDOM % 20000))
echo "| library | tcp thr (msg/s) | tcp thr (Mb/s) | tcp lat (µs) | inproc thr (msg/s) | inproc lat (µs) |"
echo "|---|---|---|---|---|---|"
n=0
for spec in "$@"; do
    name=${spec%%=*}
    lib=${spec#*=}
    export LD_LIBRARY_PATH=$lib
    port=$((port_base + n))
    n=$((n + 1))
    ep="tcp://127.0.0.1:$port"
    timeout 120 "$build/bin/local_thr" "$ep" "$size" "$thr_count" > "$build/$name.thr" &
    lt=$!
    timeout 120 "$build/bin/remote_thr" "$ep" "$size" "$thr_count" > /dev/null
    wait $lt
    port=$((port_base + 100 + n))
    ep="tcp://127.0.0.1:$port"
    timeout 120 "$build/bin/local_lat" "$ep" "$size" "$lat_count" > /dev/null &
    ll=$!
    timeout 120 "$build/bin/remote_lat" "$ep" "$size" "$lat_count" > "$build/$name.lat"
    wait $ll
    timeout 120 "$build/bin/inproc_thr" "$size" "$thr_count" > "$build/$name.ithr"
    timeout 120 "$build/bin/inproc_lat" "$size" "$lat_count" > "$build/$name.ilat"
    val() { grep "$2" "$1" | grep -o '[0-9.]*' | head -1; }
    echo "| $name | $(val "$build/$name.thr" 'mean throughput:') | $(grep 'Mb/s' "$build/$name.thr" | grep -o '[0-9.]*' | head -1) | $(val "$build/$name.lat" 'average latency') | $(val "$build/$name.ithr" 'mean throughput:') | $(val "$build/$name.ilat" 'average latency') |"
done
echo
echo "message size $size B; throughput over $thr_count messages, latency over $lat_count round trips (half round trip, as libzmq's tools print)"
