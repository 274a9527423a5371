#!/usr/bin/env python3
"""Round robin of zeroring-perf builds: which build is faster, on a noisy machine.

Runs each build's `zeroring-perf --runs 1 ARGS...` in turn, ROUNDS times (the order reversed
every other round), takes zeroring's msg/s from each `thr` run, and prints for each build its
median and the median (and geometric mean) of its ratio to the first build's run of the same
round. Why: on a shared 2-vCPU machine the same binary runs 4, 13 or 30 M msg/s depending on
where the host puts the vCPUs, and that changes from second to second; alternated pairs of
long runs did not settle a 20 % effect, short runs in turn over many rounds did
(docs/performance.md, "Pooled blocks on lines of their own").

Usage: round_robin.py BIN[,BIN...] ROUNDS ARGS...
  e.g. round_robin.py /tmp/base,target/release/zeroring-perf 30 \\
           --pin 0,1 --subject zeroring thr --transport inproc --size 64 --count 3000000
"""
import statistics
import subprocess
import sys


def rate(binary, args):
    out = subprocess.run([binary, "--runs", "1", *args], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        # "inproc      64 B zeroring   14003176 ..."
        if len(f) > 4 and f[0] in ("tcp", "ipc", "inproc") and f[3] == "zeroring":
            return float(f[4])
    sys.exit(f"{binary}: no zeroring thr line in its output:\n{out}")


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    bins = sys.argv[1].split(",")
    rounds = int(sys.argv[2])
    args = sys.argv[3:]
    got = {b: [] for b in bins}
    for i in range(rounds):
        for b in bins if i % 2 == 0 else bins[::-1]:
            got[b].append(rate(b, args))
    base = bins[0]
    for b in bins:
        ratios = [x / y for x, y in zip(got[b], got[base])]
        print(
            f"{b}: median {statistics.median(got[b]) / 1e6:.2f} M msg/s, "
            f"ratio to {base}: median {statistics.median(ratios):.3f}, "
            f"geomean {statistics.geometric_mean(ratios):.3f} ({rounds} rounds)"
        )


if __name__ == "__main__":
    main()
