#!/usr/bin/env bash
# Installs what the tests need from Debian, then runs the checks and the
# whole test suite as root, with every privileged test required: once on
# this machine, once in a cgroup v2 guest.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: run as root: the tests create namespaces, mounts and cgroups" >&2
    exit 1
fi

packages=(busybox-static iproute2 python3 util-linux podman containerd)
missing=()
for pkg in "${packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

export REQUIRE_PRIVILEGED_TESTS=1
scripts/check.sh

# The same tests again inside a QEMU guest whose kernel has a pure cgroup v2
# hierarchy, so both cgroup backends are proven by one suite. Each test
# binary boots its own guest; vm-test.sh installs QEMU and a Debian kernel
# when they are missing.
# The podman and containerd tests stay on the host: the guest has no room
# for their image stores.
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$PWD/scripts/vm-test.sh" \
    cargo test --locked --lib --test cgroup_backend --test 'run_*' --test 'oci_*'
