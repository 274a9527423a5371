#!/usr/bin/env bash
# Runs the probes in capi/probe/ against libzmq 4.3.5 itself (the copy in pyzmq's binary wheel)
# and against this library (a pyzmq built from source on it), and compares their outputs: every
# difference must be one capi/probe/expected/NAME.diff records (each explained in
# capi/probe/README.md). Fails on any other.
#
#   capi/probe/run.sh VENV PREFIX
#
# VENV holds the pyzmq built from source (.ci/capi.sh makes it); PREFIX is the install prefix
# of this library's libzmq.so.5. The reference venv (pyzmq's wheel, the same version) is kept
# in target/capi-pyzmq-wheel-venv. UPDATE=1 rewrites the expected diffs instead of comparing.
set -euo pipefail
venv=$(cd "${1:?usage: capi/probe/run.sh VENV PREFIX}" && pwd)
prefix=$(cd "${2:?usage: capi/probe/run.sh VENV PREFIX}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
ver=$(LD_LIBRARY_PATH=$prefix/lib "$venv/bin/python" -c "import zmq; print(zmq.__version__)")
ref=$root/target/capi-pyzmq-wheel-venv
if [ ! -x "$ref/bin/python" ] || [ "$("$ref/bin/python" -c 'import zmq; print(zmq.__version__)' 2>/dev/null)" != "$ver" ]; then
  rm -rf "$ref"
  python3 -m venv "$ref"
  "$ref/bin/pip" install --quiet --only-binary :all: "pyzmq==$ver"
fi
reflib=$("$ref/bin/python" -c 'import glob, os, zmq; print(glob.glob(os.path.join(os.path.dirname(zmq.__file__), "..", "pyzmq.libs", "libzmq*.so*"))[0])')
echo "reference: pyzmq $ver's wheel, $("$ref/bin/python" -c 'import zmq; print("libzmq", zmq.zmq_version())')"
out=$(mktemp -d /tmp/zeroring-probe.XXXXXX)
trap 'rm -rf "$out"' EXIT
status=0
for name in options errors cabi messages lifecycle monitor routing; do
  if [ "$name" = cabi ]; then
    (cd "$out" && timeout 120 "$ref/bin/python" "$here/cabi.py" "$reflib") > "$out/$name.libzmq" 2>&1 || true
    (cd "$out" && timeout 120 "$ref/bin/python" "$here/cabi.py" "$prefix/lib/libzmq.so.5") > "$out/$name.zeroring" 2>&1 || true
  else
    (cd "$out" && timeout 120 "$ref/bin/python" "$here/$name.py") > "$out/$name.libzmq" 2>&1 || true
    (cd "$out" && LD_LIBRARY_PATH=$prefix/lib timeout 120 "$venv/bin/python" "$here/$name.py") > "$out/$name.zeroring" 2>&1 || true
  fi
  for side in libzmq zeroring; do
    if [ "$(tail -1 "$out/$name.$side")" != done ]; then
      echo "probe $name did not finish on $side:"; tail -5 "$out/$name.$side"; status=1
    fi
  done
  diff "$out/$name.libzmq" "$out/$name.zeroring" > "$out/$name.diff" || true
  if [ "${UPDATE:-0}" = 1 ]; then
    cp "$out/$name.diff" "$here/expected/$name.diff"
  elif ! cmp -s "$out/$name.diff" "$here/expected/$name.diff"; then
    echo "probe $name: the differences from libzmq changed (expected -> now):"
    diff "$here/expected/$name.diff" "$out/$name.diff" || true
    status=1
  else
    echo "probe $name: $(wc -l < "$out/$name.libzmq") lines, the recorded $(grep -c '^<' "$here/expected/$name.diff" || true) differences only"
  fi
done
exit $status
