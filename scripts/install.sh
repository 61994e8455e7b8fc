#!/usr/bin/env bash
# Builds sunaba and installs it with its profiles under PREFIX (default
# /usr/local): the binary in PREFIX/bin, the profiles in
# PREFIX/share/sunaba/profiles. Installs a Rust toolchain with rustup when
# cargo is missing, and the Debian packages the build needs.
set -euo pipefail

prefix=${PREFIX:-/usr/local}
top=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (it installs packages and writes $prefix)" >&2
    exit 1
fi

if command -v apt-get >/dev/null; then
    missing=()
    for pkg in gcc libc6-dev curl ca-certificates; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
fi

if ! command -v cargo >/dev/null; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
fi

# A static binary, musl where rustup has it (see release-target.sh). An
# explicit --target keeps the flags off the build scripts and macros.
. "$top/scripts/release-target.sh"
RUSTFLAGS="$RELEASE_RUSTFLAGS" \
    cargo install --quiet --locked --path "$top" --root "$prefix" --force --target "$RELEASE_TARGET"
install -d "$prefix/share/sunaba/profiles"
install -m 0644 "$top"/profiles/*.toml "$prefix/share/sunaba/profiles/"
echo "installed $prefix/bin/sunaba and its profiles in $prefix/share/sunaba/profiles"
