//! Gives the shared library libzmq's soname, so programs linked against it (or against
//! libzmq itself) load it as `libzmq.so.5`.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libzmq.so.5");
    println!("cargo:rerun-if-changed=build.rs");
}
