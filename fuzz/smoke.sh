#!/usr/bin/env bash
# Runs every fuzz target briefly (a fixed number of executions) on the stable
# toolchain and fails on the first crash. CI calls this.
#
#   FUZZ_RUNS        executions per target (default 1000000; curve_* targets run a tenth)
#   FUZZ_TARGET_DIR  cargo target dir for the fuzz build (default fuzz/target)
set -euo pipefail

cd "$(dirname "$0")"
base_runs="${FUZZ_RUNS:-1000000}"
target_dir="${FUZZ_TARGET_DIR:-$PWD/target}"

command -v cargo-fuzz >/dev/null || {
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
}

cargo fuzz build -s none --target-dir "$target_dir"

status=0
for t in $(cargo fuzz list); do
    runs="$base_runs"
    # The CURVE targets run real X25519 handshakes per input (~1 k exec/s against ~100 k for
    # the parsers): a tenth of the runs keeps the smoke short.
    # stream_core drives a whole connection (and often an honest peer's handshake) per input:
    # ~10 k exec/s, so a fifth.
    case "$t" in
        curve_*) runs=$(( base_runs / 10 > 0 ? base_runs / 10 : 1 )) ;;
        stream_core) runs=$(( base_runs / 5 > 0 ? base_runs / 5 : 1 )) ;;
    esac
    scratch="$(mktemp -d)"
    start=$(date +%s)
    # New inputs go to the scratch dir; the committed corpus is only read.
    if ! cargo fuzz run -s none --target-dir "$target_dir" "$t" "$scratch" "corpus/$t" -- \
        -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>"$scratch.log"; then
        echo "FAIL $t" >&2
        tail -40 "$scratch.log" >&2
        status=1
    fi
    end=$(date +%s)
    cov=$(grep -o 'cov: [0-9]*' "$scratch.log" | tail -1 || true)
    echo "fuzz $t: $((end - start))s, $runs runs, ${cov:-cov: ?}"
    rm -rf "$scratch" "$scratch.log"
done
exit $status
