#!/bin/bash
# Builds libzmq 4.3.5's own test programs (zeromq-src 0.3.6's vendor/tests, found or fetched by
# capi/libzmq-src.sh) against the libzmq installed under PREFIX and runs every one that uses
# only the public API, as libzmq's CMake would on Linux with CURVE and IPC and without the
# draft API.
#
#   capi/libzmq-tests.sh PREFIX [BUILD_DIR]
#
# Prints one line per program (PASS / FAIL / SKIP / EXCLUDED with the reason) and a summary
# line "libzmq tests: P passed, F failed of N run (S skipped, X excluded)"; writes the same
# to BUILD_DIR/results.txt. Exit status 0 whatever the count: the caller (.ci/capi.sh)
# compares the pass count with capi/libzmq-tests.expected.
#
# Environment: LIBZMQ_VENDOR (a libzmq source tree; zeromq-src 0.3.6's from the cargo registry
# by default), TEST_TIMEOUT (seconds per program, default 20), JOBS (default 2), ONLY (a
# space-separated list of programs to run instead of all).
set -u
prefix=$(cd "${1:?usage: capi/libzmq-tests.sh PREFIX [BUILD_DIR]}" && pwd)
build=${2:-$(mktemp -d /tmp/libzmq-tests.XXXXXX)}
mkdir -p "$build"
build=$(cd "$build" && pwd)
vendor=$("$(dirname "$0")/libzmq-src.sh")
[ -d "$vendor/tests" ] || { echo "libzmq-tests: no zeromq-src vendor dir (set LIBZMQ_VENDOR)" >&2; exit 2; }
timeout_s=${TEST_TIMEOUT:-20}
jobs=${JOBS:-2}

# The programs libzmq's tests/CMakeLists.txt builds on Linux (no drafts, CURVE and IPC on).
tests="test_ancillaries test_system test_pair_inproc test_pair_tcp test_reqrep_inproc
test_reqrep_tcp test_hwm test_hwm_pubsub test_reqrep_device test_sub_forward test_invalid_rep
test_msg_flags test_msg_ffn test_connect_resolve test_immediate test_last_endpoint
test_term_endpoint test_router_mandatory test_probe_router test_stream test_stream_empty
test_stream_disconnect test_disconnect_inproc test_unbind_wildcard test_ctx_options
test_ctx_destroy test_security_no_zap_handler test_security_null test_security_plain
test_security_zap test_iov test_spec_req test_spec_rep test_spec_dealer test_spec_router
test_spec_pushpull test_req_correlate test_req_relaxed test_conflate test_inproc_connect
test_issue_566 test_shutdown_stress test_timeo test_many_sockets test_diffserv test_connect_rid
test_xpub_nodrop test_pub_invert_matching test_setsockopt test_sockopt_hwm test_heartbeats
test_atomics test_bind_src_address test_capabilities test_metadata test_router_handover
test_srcfd test_stream_timeout test_xpub_manual test_xpub_topic test_xpub_welcome_msg test_xpub_verbose
test_base85 test_bind_after_connect_tcp test_sodium test_monitor test_socket_null
test_reconnect_ivl test_reconnect_options test_tcp_accept_filter test_mock_pub_sub
test_security_gssapi test_socks test_connect_null_fuzzer test_bind_null_fuzzer
test_connect_fuzzer test_bind_fuzzer test_security_curve test_connect_curve_fuzzer
test_bind_curve_fuzzer test_z85_decode_fuzzer test_ipc_wildcard test_pair_ipc test_reqrep_ipc
test_rebind_ipc test_proxy test_proxy_hwm test_proxy_single_socket test_proxy_steerable
test_proxy_terminate
test_getsockopt_memset test_filter_ipc test_stream_exceeds_buffer test_router_mandatory_hwm
test_use_fd test_zmq_poll_fd test_fork test_abstract_ipc"
if [ -n "${ONLY:-}" ]; then tests=$ONLY; fi

# Programs not built, and why (TIPC/VMCI/NORM/PGM and the draft API are not in the list above:
# libzmq's CMake leaves them out of a stable Linux build too).
excluded_reason() {
    case $1 in
    test_security_curve) echo "includes libzmq's private headers (tweetnacl.h, curve_client_tools.hpp, random.hpp) and links its sources to forge CURVE handshakes" ;;
    *) return 1 ;;
    esac
}

# Stand-ins for the two configuration headers testutil.hpp includes from libzmq's build tree
# (platform.hpp, src/stdint.hpp): only feature macros, no libzmq code.
mkdir -p "$build/tests" "$build/src" "$build/include" "$build/bin" "$build/log"
cp "$vendor"/tests/*.cpp "$vendor"/tests/*.hpp "$build/tests/"
cp "$prefix/include/zmq.h" "$build/include/zmq.h"
echo '#include <stdint.h>' > "$build/src/stdint.hpp"
cat > "$build/tests/platform.hpp" <<'EOF'
/* What libzmq's CMake detects on Linux, for the tests' #ifdefs. */
#define ZMQ_HAVE_LINUX
#define ZMQ_HAVE_IPC
#define ZMQ_HAVE_CURVE
#define ZMQ_HAVE_UIO
#define ZMQ_HAVE_SO_PEERCRED
#define ZMQ_HAVE_SO_PRIORITY
#define HAVE_FORK
#define HAVE_MKDTEMP
EOF

cxx=${CXX:-g++}
cc=${CC:-gcc}
flags="-O1 -g -DZMQ_CUSTOM_PLATFORM_HPP -DUNITY_USE_COMMAND_LINE_ARGS -DUNITY_EXCLUDE_FLOAT -I$build/tests -I$vendor/external/unity"
libs="-L$prefix/lib -lzmq -lpthread"

# unity + testutil, once.
if [ ! -f "$build/libtestutil.a" ]; then
    $cc $flags -c "$vendor/external/unity/unity.c" -o "$build/unity.o" || exit 2
    objs="$build/unity.o"
    for f in testutil testutil_monitoring testutil_security testutil_unity; do
        $cxx $flags -c "$build/tests/$f.cpp" -o "$build/$f.o" || exit 2
        objs="$objs $build/$f.o"
    done
    ar rcs "$build/libtestutil.a" $objs
fi

build_one() {
    local t=$1
    excluded_reason "$t" >/dev/null && return 0
    [ -x "$build/bin/$t" ] && [ "$build/bin/$t" -nt "$prefix/include/zmq.h" ] && return 0
    $cxx $flags "$build/tests/$t.cpp" -o "$build/bin/$t" "$build/libtestutil.a" $libs \
        > "$build/log/$t.build" 2>&1 || echo "build failed: $t" >> "$build/log/$t.build"
}

run_one() {
    local t=$1 rc
    if reason=$(excluded_reason "$t"); then
        echo "EXCLUDED $t ($reason)"
        return
    fi
    if [ ! -x "$build/bin/$t" ]; then
        echo "FAIL $t (does not build: $(grep -m1 error: "$build/log/$t.build" | cut -c1-160))"
        return
    fi
    # Each program in its own temp dir: some make ipc files relative to the working directory.
    local dir
    dir=$(mktemp -d "$build/run.XXXXXX")
    # libzmq's CMake gives these two 60 s (they wait out heartbeat and handshake timers).
    local limit=$timeout_s
    case $t in test_heartbeats | test_security_zap) limit=$((timeout_s > 60 ? timeout_s : 60)) ;; esac
    (cd "$dir" && LD_LIBRARY_PATH="$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        timeout -k 5 "$limit" "$build/bin/$t" > "$build/log/$t.out" 2>&1)
    rc=$?
    rm -rf "$dir"
    case $rc in
    0) echo "PASS $t" ;;
    77) echo "SKIP $t" ;;
    124 | 137) echo "FAIL $t (timed out after ${limit}s)" ;;
    *) echo "FAIL $t (exit $rc: $(grep -m1 -E ':FAIL|Assert|error' "$build/log/$t.out" | cut -c1-200))" ;;
    esac
}
export -f build_one run_one excluded_reason
export build prefix cxx flags libs timeout_s

echo $tests | tr ' ' '\n' | xargs -P "$jobs" -I{} bash -c 'build_one {}'
echo $tests | tr ' ' '\n' | xargs -P "$jobs" -I{} bash -c 'run_one {}' | sort -k2 > "$build/results.txt"
cat "$build/results.txt"
p=$(grep -c '^PASS' "$build/results.txt")
f=$(grep -c '^FAIL' "$build/results.txt")
s=$(grep -c '^SKIP' "$build/results.txt")
x=$(grep -c '^EXCLUDED' "$build/results.txt")
echo "libzmq tests: $p passed, $f failed of $((p + f)) run ($s skipped, $x excluded)" | tee -a "$build/results.txt"
