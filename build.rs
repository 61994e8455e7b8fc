//! Link arguments of the `sunaba` binary that are about its memory, not its
//! behaviour.

use std::env;
use std::path::Path;

fn main() {
    let manifest = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let hot_text = Path::new(&manifest).join("linker/hot-text.ld");
    println!("cargo:rerun-if-changed={}", hot_text.display());

    let linux = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if !linux || env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    // The functions a start runs, side by side at the front of .text: the
    // kernel maps text 64 KiB around each fault, so scattered they would
    // bring most of the binary into every sandbox's resident set.
    // scripts/hot-text.py writes the list; names it does not find in this
    // build are ignored by the linker.
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", hot_text.display());

    // A static PIE relocates itself at start. Packed (RELR) relocations are
    // about 1/50 the size of RELA ones, and the RELA table is read whole: a
    // quarter of a MiB of resident file pages for nothing. musl's start-up
    // code applies RELR; only musl builds are known to carry it.
    if env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
