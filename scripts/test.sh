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

packages=(busybox-static iproute2 python3 python3-grpcio util-linux podman containerd bubblewrap crun)
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

# install.sh installs a static musl release build where rustup has the
# target: the host suite again against that build (release, so with the
# link arguments of build.rs), so what is installed is what passed.
. scripts/release-target.sh
if [ "$RELEASE_TARGET" != "$(rustc -vV | sed -n 's/^host: //p')" ]; then
    RUSTFLAGS="$RELEASE_RUSTFLAGS" cargo test --release --locked --target "$RELEASE_TARGET"
fi

# The same tests again inside a QEMU guest whose kernel has a pure cgroup v2
# hierarchy, so both cgroup backends are proven by one suite. Each test
# binary boots its own guest; vm-test.sh installs QEMU and a Debian kernel
# when they are missing.
# The podman and containerd tests (containerd_cri too) stay on the host: the guest has no room
# for their image stores.
# The guest is emulated (TCG). A test binary takes at most a few minutes
# there; one that is still running after ten has hung, and vm-test.sh then
# prints each guest process's kernel stack and gives the binary one more
# guest. A guest kernel that locks up panics at once with its CPUs' stacks
# and gets the same second go: a hang costs little and leaves its evidence
# in the log.
VM_TEST_TIMEOUT=${VM_TEST_TIMEOUT:-600} VM_TEST_ATTEMPTS=${VM_TEST_ATTEMPTS:-2} \
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$PWD/scripts/vm-test.sh" \
    cargo test --locked --lib --test cgroup_backend --test bench --test 'run_*' --test 'oci_*'
