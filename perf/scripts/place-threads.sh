#!/bin/bash
# Runs one zeroring throughput measurement with its threads placed by hand, to tell the cost of
# the per-message work from the cost of thread hand-offs across cores (docs/performance.md,
# "Yielding spins").
#
#   perf/scripts/place-threads.sh same|split|none [zeroring-perf arguments after `thr`]
#
#   same:  each process's application and I/O threads on one core (measuring side core 0,
#          peer core 1);
#   split: both application threads on core 0, both I/O threads on core 1;
#   none:  the scheduler's choice.
#
# BIN (default target/release/zeroring-perf), TRANSPORT (tcp), SIZE (1) and COUNT (30000000)
# choose the run; COUNT must keep it going well past the moment the threads are placed (0.3 s).
set -euo pipefail
MODE=${1:?same, split or none}
shift || true
BIN=$(readlink -f "${BIN:-target/release/zeroring-perf}")
"$BIN" --runs 1 --subject zeroring thr --transport "${TRANSPORT:-tcp}" --size "${SIZE:-1}" \
  --count "${COUNT:-30000000}" "$@" &
parent=$!
sleep 0.3
for pid in $(pgrep -f "^$BIN"); do
  for task in /proc/"$pid"/task/*; do
    tid=${task##*/}
    case "$MODE" in
      split) if [ "$tid" = "$pid" ]; then cpu=0; else cpu=1; fi ;;
      same) if [ "$pid" = "$parent" ]; then cpu=0; else cpu=1; fi ;;
      *) continue ;;
    esac
    taskset -p -c "$cpu" "$tid" >/dev/null
  done
done
wait "$parent"
