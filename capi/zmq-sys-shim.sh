# Sourced by the scripts that run a Rust binding's own tests on zeroring's libzmq.so.5.
#
#   zmq_sys_shim DEST     # writes DEST/zmq-sys: zmq-sys 0.12.0 linking $LIBZMQ_PREFIX/lib
#
# zmq-sys always builds its vendored libzmq; the copy written here is the published crate with
# a build script that links the library under LIBZMQ_PREFIX instead (nothing else changes), for
# a `[patch.crates-io] zmq-sys = { path = ... }` in the binding's manifest.
zmq_sys_shim() {
  local dest=$1 root registry sys
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
  sys=$(ls -d "$registry"/*/zmq-sys-0.12.0 2>/dev/null | head -1)
  if [ -z "$sys" ]; then
    (cd "$root" && cargo fetch --quiet)
    sys=$(ls -d "$registry"/*/zmq-sys-0.12.0 | head -1)
  fi
  cp -r "$sys" "$dest/zmq-sys"
  chmod -R u+w "$dest/zmq-sys"
  cat > "$dest/zmq-sys/build/main.rs" <<'RS'
// Links the libzmq.so.5 under $LIBZMQ_PREFIX instead of building the vendored libzmq.
fn main() {
    let prefix = std::env::var("LIBZMQ_PREFIX").expect("LIBZMQ_PREFIX");
    println!("cargo:rerun-if-env-changed=LIBZMQ_PREFIX");
    println!("cargo:rustc-link-search=native={prefix}/lib");
    println!("cargo:rustc-link-lib=dylib=zmq");
    println!("cargo:include={prefix}/include");
}
RS
  python3 - "$dest/zmq-sys/Cargo.toml" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r'\[build-dependencies\.[a-z-]+\]\nversion = "[^"]*"\n\n?', '', s)
open(p, "w").write(s)
PY
}
