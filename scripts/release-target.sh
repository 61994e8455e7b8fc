# Sourced by install.sh and bench-peers.sh: the target and flags of the
# binary sunaba is installed (and measured) as. Sets RELEASE_TARGET and
# RELEASE_RUSTFLAGS.
#
# A static musl binary where rustup can add the target. Every sandbox
# starts with an exec of sunaba, and glibc's start-up reads the CPU's cache
# layout with dozens of cpuid instructions, each a trap to the hypervisor in
# a virtual machine: on the machine BENCHMARKS.md describes, an empty static
# glibc program takes 1.0 ms against 0.2 ms with no C library at all. musl
# does none of that. Without rustup (a distribution's Rust), a static-pie
# glibc binary: the dynamic loader's relocations would cost another 0.7 ms.

arch=$(uname -m)
if command -v rustup >/dev/null && rustup target add "$arch-unknown-linux-musl" >/dev/null 2>&1; then
    RELEASE_TARGET="$arch-unknown-linux-musl"
    RELEASE_RUSTFLAGS="${RUSTFLAGS:-}"
else
    echo "note: rustup cannot add the musl target here; building a static glibc binary, which starts slower" >&2
    RELEASE_TARGET=$(rustc -vV | sed -n 's/^host: //p')
    RELEASE_RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static"
fi
export RELEASE_TARGET RELEASE_RUSTFLAGS
