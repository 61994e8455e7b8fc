#!/usr/bin/env bash
# bench-peers.sh - install the peer runtimes from Debian, build sunaba in
# release mode and run the full comparison.
#
# Usage: sudo scripts/bench-peers.sh [OUTPUT_DIR] [-- extra `sunaba bench` options]
#
# Writes OUTPUT_DIR/bench.json, OUTPUT_DIR/bench.svg and OUTPUT_DIR/bench.txt
# (default OUTPUT_DIR: target/bench). Peers: bubblewrap, runc, crun and runsc
# (gVisor); busybox-static provides the OCI bundle's root filesystem. Run it
# on an otherwise idle machine: every figure is a median of interleaved
# samples, but a busy neighbour still widens the spread.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-peers.sh: run as root: the runtimes create namespaces, mounts and cgroups" >&2
    exit 1
fi

out=target/bench
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    out=$1
    shift
fi
[ "${1:-}" = "--" ] && shift

packages=(busybox-static util-linux bubblewrap runc crun runsc)
missing=()
for pkg in "${packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Built as scripts/install.sh installs it.
. scripts/release-target.sh
RUSTFLAGS="$RELEASE_RUSTFLAGS" cargo build --release --locked --target "$RELEASE_TARGET"
mkdir -p "$out"
"target/$RELEASE_TARGET/release/sunaba" bench --peers --json "$out/bench.json" --svg "$out/bench.svg" "$@" |
    tee "$out/bench.txt"
echo "bench-peers.sh: wrote $out/bench.json, $out/bench.svg and $out/bench.txt" >&2
