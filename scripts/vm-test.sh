#!/usr/bin/env bash
# vm-test.sh - run a command inside a small QEMU guest with a pure cgroup v2 hierarchy.
#
# Usage: scripts/vm-test.sh COMMAND [ARGS...]
#
# Boots Debian's kernel (linux-image-amd64) under QEMU/TCG with cgroup_no_v1=all, mounts
# cgroup2 at /sys/fs/cgroup with every controller enabled in the root, shares the host's
# /usr and /etc read-only and the current project (git top-level, else the outermost
# directory holding a Cargo.toml, else the current directory) read-write at the same
# absolute path, and runs COMMAND as root from the current directory. Its stdout and
# stderr are streamed to ours while it runs. The guest has no network device.
#
# Works as a cargo runner:
#   CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER=$PWD/scripts/vm-test.sh cargo test
#
# Environment:
#   VM_TEST_TIMEOUT  seconds before QEMU is killed (default 1200); 30 s before that, the
#                    guest lists its processes with their kernel stacks on the console,
#                    which is printed after a timeout
#   VM_TEST_ATTEMPTS runs after a timeout or lockup, each in a new guest (default 1)
#   VM_TEST_ENV      extra variable names to pass into the guest (space or comma separated).
#                    Always passed when set: REQUIRE_PRIVILEGED_TESTS, RUST_BACKTRACE,
#                    RUST_LOG, RUST_LIB_BACKTRACE, RUST_MIN_STACK, RUST_TEST_THREADS,
#                    RUST_TEST_NOCAPTURE, NO_COLOR, and every CARGO_* and SUNABA_* variable.
#   VM_TEST_SHARE    extra host directories (colon separated) shared read-only at the same
#                    path. CARGO_TARGET_DIR, when set and outside the project, is shared
#                    read-write automatically.
#   VM_TEST_MEM      guest memory (default 1536M);  VM_TEST_CPUS  vCPUs (default 2)
#   VM_TEST_KERNEL   kernel version to boot (default: newest /boot/vmlinuz-* that has a
#                    /lib/modules/<version>/kernel tree)
#   VM_TEST_CACHE    cache directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/sunaba-vm);
#                    holds <kernel-version>/vmlinux, modules and initramfs, built once
#   VM_TEST_VERBOSE  1: boot with full kernel logging and copy the guest console to stderr
#                    after the run
#
# Exit status: COMMAND's status; 124 when VM_TEST_TIMEOUT expired or the guest kernel locked
# up (a soft lockup, which panics the guest at once); 125 when the VM could
# not run the command (missing prerequisites, kernel panic, guest init error, or no status
# reported); 130/143 when interrupted; 2 on usage error.
#
# Missing Debian packages (qemu-system-x86 linux-image-amd64 busybox-static cpio kmod) are
# installed with apt-get when running as root.

# shellcheck disable=SC2016,SC2054,SC2317  # guest script text; QEMU option lists; trap handler
set -euo pipefail

readonly EXIT_TIMEOUT=124
readonly EXIT_VM_FAILED=125
readonly PACKAGES=(qemu-system-x86 linux-image-amd64 busybox-static cpio kmod)
# Modules the guest needs before it can reach its shares; dependencies are added from modinfo.
readonly EARLY_MODULES=(virtio_pci virtio_console 9pnet_virtio 9p overlay)
readonly HANG_REPORT='vm-test: guest: the command is still running; its processes'
readonly GUEST_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

prog=vm-test
die() {
	echo "$prog: error: $*" >&2
	exit "$EXIT_VM_FAILED"
}
note() { echo "$prog: $*" >&2; }

# Quote a string for a POSIX shell (single quotes; works for busybox sh and bash).
shq() {
	local s=${1//\'/\'\\\'\'}
	printf "'%s'" "$s"
}

if [[ $# -eq 0 || $1 == -h || $1 == --help ]]; then
	sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2
	exit 2
fi

timeout_s=${VM_TEST_TIMEOUT:-1200}
[[ $timeout_s =~ ^[0-9]+$ && $timeout_s -gt 0 ]] ||
	die "VM_TEST_TIMEOUT must be a positive number of seconds, got '$timeout_s'"
attempts=${VM_TEST_ATTEMPTS:-1}
[[ $attempts =~ ^[0-9]+$ && $attempts -gt 0 ]] ||
	die "VM_TEST_ATTEMPTS must be a positive number, got '$attempts'"
# A timed-out run has already printed what the guest was waiting for; a fresh
# guest then gets another go, and only the last attempt's status counts.
if [[ $attempts -gt 1 ]]; then
	for ((try = 1; ; try++)); do
		rc=0
		VM_TEST_ATTEMPTS=1 "$0" "$@" || rc=$?
		if [[ $rc -ne $EXIT_TIMEOUT || $try -ge $attempts ]]; then
			exit "$rc"
		fi
		note "attempt $try of $attempts timed out; running it again in a new guest"
	done
fi
mem=${VM_TEST_MEM:-1536M}
cpus=${VM_TEST_CPUS:-2}

# Every exit path ends QEMU and its helpers and removes the per-run files.
run='' build_tmp=''
qemu_pid='' timer_pid='' out_pid='' err_pid=''
cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill -TERM "$qemu_pid" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
	fi
	local p
	for p in $timer_pid $out_pid $err_pid; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[[ -z $run ]] || rm -rf "$run"
	[[ -z $build_tmp ]] || rm -rf "$build_tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- prerequisites ---------------------------------------------------------------------

# Debian's kernels: /boot/vmlinuz-<version> installed by a linux-image package, with its
# modules in /lib/modules/<version>/kernel. A custom host kernel is not a candidate.
newest_kernel() {
	local f v best=''
	for f in /boot/vmlinuz-*; do
		[[ -f $f ]] || continue
		v=${f#/boot/vmlinuz-}
		[[ -d /lib/modules/$v/kernel ]] || continue
		if command -v dpkg-query >/dev/null; then
			[[ $(dpkg-query -S "$f" 2>/dev/null || true) == linux-image-* ]] || continue
		fi
		best+="$v"$'\n'
	done
	[[ -n $best ]] && printf '%s' "$best" | sort -V | tail -n 1
}

static_busybox() {
	[[ -x /bin/busybox ]] && [[ $(LC_ALL=C ldd /bin/busybox 2>&1 || true) == *'not a dynamic executable'* ]]
}

prereqs_ok() {
	command -v qemu-system-x86_64 >/dev/null && command -v cpio >/dev/null &&
		command -v modinfo >/dev/null && static_busybox && [[ -n $(newest_kernel) ]]
}

if ! prereqs_ok; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		note "installing missing packages: ${PACKAGES[*]}"
		{
			DEBIAN_FRONTEND=noninteractive apt-get update -q &&
				DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
		} >&2 || die "apt-get could not install ${PACKAGES[*]}; install them by hand and rerun"
	fi
	command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found; run: apt-get install qemu-system-x86"
	command -v cpio >/dev/null || die "cpio not found; run: apt-get install cpio"
	command -v modinfo >/dev/null || die "modinfo not found; run: apt-get install kmod"
	static_busybox || die "/bin/busybox is missing or not static; run: apt-get install busybox-static"
fi

kver=${VM_TEST_KERNEL:-$(newest_kernel)}
[[ -n $kver ]] || die "no /boot/vmlinuz-* with a /lib/modules/<version>/kernel tree; run: apt-get install linux-image-amd64"
vmlinuz=/boot/vmlinuz-$kver
[[ -r $vmlinuz && -d /lib/modules/$kver/kernel ]] ||
	die "kernel $kver needs $vmlinuz and /lib/modules/$kver/kernel; install linux-image-$kver or unset VM_TEST_KERNEL"

# --- cache: vmlinux, modules, initramfs --------------------------------------------------

cache_root=${VM_TEST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/sunaba-vm}
cache=$cache_root/$kver
mkdir -p "$cache" || die "cannot create cache directory $cache; set VM_TEST_CACHE to a writable place"

# Decompress the kernel payload of a bzImage: look for a compression magic, decompress from
# there, and keep the first result that is an ELF file.
extract_vmlinux() {
	local src=$1 dst=$2 fmt magic tool off
	local -a formats=(
		'xz:\xFD7zXZ\x00:xz -dc --single-stream'
		'zstd:\x28\xB5\x2F\xFD:zstd -dcq'
		'gzip:\x1F\x8B\x08:gzip -dc'
		'lz4:\x02\x21\x4C\x18:lz4 -dc'
		'bzip2:BZh[1-9]\x31\x41\x59\x26\x53\x59:bzip2 -dc'
		'lzma:\x5D\x00\x00\x00:xz -dc --format=lzma'
	)
	for fmt in "${formats[@]}"; do
		IFS=: read -r _ magic tool <<<"$fmt"
		command -v "${tool%% *}" >/dev/null || continue
		while IFS=: read -r off _; do
			# Decompressors complain about the bytes that follow the payload; the
			# ELF check below decides whether the output is usable.
			tail -c +$((off + 1)) "$src" | $tool >"$dst" 2>/dev/null || true
			if [[ $(head -c 4 "$dst" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; then
				return 0
			fi
		done < <(LC_ALL=C grep -obUaP "$magic" "$src" || true)
	done
	rm -f "$dst"
	return 1
}

# Print the early modules and their dependencies, dependencies first.
module_order() {
	local -A seen=()
	visit() {
		local m=${1//-/_} d
		[[ -n ${seen[$m]:-} ]] && return
		seen[$m]=1
		for d in $(modinfo -k "$kver" -F depends "$m" | tr ',' ' '); do visit "$d"; done
		echo "$m"
	}
	local m
	for m in "${EARLY_MODULES[@]}"; do visit "$m"; done
}

# The cached /init: load the early modules, move to a tmpfs root (pivot_root does not work
# on the initial rootfs), mount the per-run share and hand over to its stage2 script.
read -r -d '' INIT_SCRIPT <<'EOF' || true
#!/.vm/busybox sh
B=/.vm/busybox
fail() {
	echo "vm-test: guest init: $*"
	printf '\001' | $B dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	$B poweroff -f
}
$B mkdir -p /dev /proc /sys /newroot
$B mount -t devtmpfs devtmpfs /dev || fail "mount devtmpfs"
exec </dev/console >/dev/console 2>&1
$B mount -t proc proc /proc || fail "mount proc"
$B mount -t sysfs sysfs /sys || fail "mount sysfs"
for m in $($B cat /.vm/modules.list); do
	$B insmod /.vm/modules/$m.ko || fail "insmod $m"
done
$B mount -t tmpfs -o mode=0755 root /newroot || fail "mount tmpfs root"
$B mkdir -p /newroot/.vm/run /newroot/dev /newroot/proc /newroot/sys
$B cp /.vm/busybox /newroot/.vm/busybox || fail "copy busybox"
$B mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro vmrun /newroot/.vm/run ||
	fail "mount the run directory share"
$B mount --move /dev /newroot/dev || fail "move /dev"
$B umount /proc /sys
exec $B switch_root /newroot /.vm/busybox sh /.vm/run/stage2.sh
EOF

cache_want="$(stat -c '%s %Y' "$vmlinuz") $(stat -c '%s %Y' /bin/busybox) $(printf '%s' "$INIT_SCRIPT" | sha256sum | cut -c1-16) ${EARLY_MODULES[*]}"
cache_fresh() {
	[[ $(cat "$cache/stamp" 2>/dev/null || true) == "$cache_want" && -s $cache/vmlinux && -s $cache/initramfs.cpio ]]
}

build_cache() {
	local tmp m f

	note "building the guest kernel and initramfs for $kver in $cache"
	build_tmp=$(mktemp -d "$cache/build.XXXXXX")
	tmp=$build_tmp
	extract_vmlinux "$vmlinuz" "$tmp/vmlinux" ||
		die "could not find a compressed ELF kernel inside $vmlinuz (need xz/zstd/gzip/lz4/bzip2 for its format)"

	mkdir -p "$tmp/root/.vm/modules" "$tmp/modules"
	for m in $(module_order); do
		f=$(modinfo -k "$kver" -n "$m") || die "module $m not found for kernel $kver"
		[[ $f == /* ]] || continue # built into the kernel
		case $f in
		*.ko) cp "$f" "$tmp/modules/$m.ko" ;;
		*.ko.xz) xz -dc "$f" >"$tmp/modules/$m.ko" ;;
		*.ko.zst) zstd -dcq "$f" >"$tmp/modules/$m.ko" ;;
		*.ko.gz) gzip -dc "$f" >"$tmp/modules/$m.ko" ;;
		*) die "unsupported module file $f" ;;
		esac || die "could not decompress $f"
		echo "$m" >>"$tmp/root/.vm/modules.list"
	done
	cp "$tmp"/modules/*.ko "$tmp/root/.vm/modules/"
	cp /bin/busybox "$tmp/root/.vm/busybox"
	printf '%s\n' "$INIT_SCRIPT" >"$tmp/root/init"
	chmod 0755 "$tmp/root/init"
	(cd "$tmp/root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$tmp/initramfs.cpio" ||
		die "cpio could not build the initramfs"

	rm -rf "$cache/modules"
	mv "$tmp/modules" "$cache/modules"
	mv -f "$tmp/vmlinux" "$cache/vmlinux"
	mv -f "$tmp/initramfs.cpio" "$cache/initramfs.cpio"
	printf '%s\n' "$cache_want" >"$cache/stamp"
	rm -rf "$tmp"
	build_tmp=
}

# Runs hold a shared lock on the cache while QEMU reads it; a rebuild takes it exclusively.
exec {lockfd}>"$cache/lock"
flock -s "$lockfd"
if ! cache_fresh; then
	flock -u "$lockfd"
	flock "$lockfd"
	cache_fresh || build_cache
	flock -s "$lockfd"
fi

# --- what to share -------------------------------------------------------------------------

cwd=$(pwd -P)
project=$(git -C "$cwd" rev-parse --show-toplevel 2>/dev/null || true)
if [[ -z $project ]]; then
	d=$cwd
	while [[ $d != / ]]; do
		[[ -f $d/Cargo.toml ]] && project=$d
		d=$(dirname "$d")
	done
fi
project=${project:-$cwd}
project=$(cd "$project" && pwd -P)
case $project in
/ | /usr | /usr/* | /etc | /etc/* | /proc* | /sys* | /dev*)
	die "refusing to share $project read-write; run from inside a project directory" ;;
esac

# shares: "path<TAB>ro|rw"
shares=()
shares+=("/usr"$'\t'ro "/etc"$'\t'ro)
links=()
for d in bin sbin lib lib32 lib64 libx32; do
	if [[ -L /$d ]]; then
		links+=("/$d"$'\t'"$(readlink "/$d")")
	elif [[ -d /$d ]]; then
		shares+=("/$d"$'\t'ro)
	fi
done
under() { [[ $1 == "$2" || $1 == "$2"/* ]]; }
under "$cwd" "$project" || die "the current directory $cwd is not inside the project $project"
shares+=("$project"$'\t'rw)
if [[ -n ${CARGO_TARGET_DIR:-} && -d $CARGO_TARGET_DIR ]]; then
	t=$(cd "$CARGO_TARGET_DIR" && pwd -P)
	under "$t" "$project" || shares+=("$t"$'\t'rw)
fi
gitdir=$(git -C "$cwd" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
if [[ -n $gitdir && -d $gitdir ]] && ! under "$gitdir" "$project"; then
	shares+=("$gitdir"$'\t'ro)
fi
IFS=: read -r -a extra <<<"${VM_TEST_SHARE:-}"
for d in "${extra[@]}"; do
	[[ -n $d ]] || continue
	[[ -d $d ]] || die "VM_TEST_SHARE names $d, which is not a directory"
	shares+=("$(cd "$d" && pwd -P)"$'\t'ro)
done

shared() {
	local s
	for s in "${shares[@]}"; do under "$1" "${s%%$'\t'*}" && return 0; done
	return 1
}
# A program outside every share (say, a cargo target directory configured elsewhere):
# share its build profile directory (the parent of deps/) or its own directory.
if [[ $1 == */* && -f $1 ]]; then
	exe=$(realpath "$1")
	if ! shared "$exe"; then
		d=$(dirname "$exe")
		[[ ${d##*/} == deps ]] && d=$(dirname "$d")
		shares+=("$d"$'\t'rw)
	fi
fi
# Mount parents before children.
mapfile -t shares < <(printf '%s\n' "${shares[@]}" | LC_ALL=C sort -u)

# --- environment for the command ---------------------------------------------------------

passed=(REQUIRE_PRIVILEGED_TESTS RUST_BACKTRACE RUST_LOG RUST_LIB_BACKTRACE RUST_MIN_STACK
	RUST_TEST_THREADS RUST_TEST_NOCAPTURE NO_COLOR)
while IFS= read -r name; do passed+=("$name"); done < <(compgen -e | grep -E '^(CARGO_|SUNABA_)' || true)
env_list=${VM_TEST_ENV:-}
read -r -a extra <<<"${env_list//,/ }"
passed+=("${extra[@]}")
envargs=("PATH=$GUEST_PATH" "HOME=/root" "PWD=$cwd" "USER=root" "LOGNAME=root")
declare -A seen_env=()
for name in "${passed[@]}"; do
	[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "VM_TEST_ENV holds '$name', which is not a variable name"
	[[ -n ${seen_env[$name]:-} || ! -v $name ]] && continue
	seen_env[$name]=1
	envargs+=("$name=${!name}")
done

# --- per-run files -------------------------------------------------------------------------

run=$(mktemp -d "${TMPDIR:-/tmp}/sunaba-vm.XXXXXX")

: >"$run/out"
: >"$run/err"
: >"$run/status"
: >"$run/console"

# stage2 runs as PID 1 on the tmpfs root; everything it needs is spelled out here.
{
	cat <<'EOF'
B=/.vm/busybox
export PATH=/.vm/bin
$B mkdir -p /.vm/bin && $B --install -s /.vm/bin
errport=
fail() {
	echo "vm-test: guest: $*"
	[ -n "$errport" ] && echo "vm-test: guest: $*" >"$errport"
	printf '\001' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	poweroff -f
}
mkdir -p /proc /sys /tmp /run /var /root
mount -t proc proc /proc || fail "mount proc"
mount -t sysfs sysfs /sys || fail "mount sysfs"
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
echo "+cpuset +cpu +io +memory +hugetlb +pids" >/sys/fs/cgroup/cgroup.subtree_control ||
	fail "enable cgroup controllers"
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts || fail "mount devpts"
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm || fail "mount /dev/shm"
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t tmpfs -o mode=1777,nosuid,nodev tmp /tmp || fail "mount /tmp"
mount -t tmpfs -o mode=0755,nosuid,nodev run /run || fail "mount /run"
mount -t tmpfs -o mode=0755 var /var || fail "mount /var"
mount -t tmpfs -o mode=0700 root /root || fail "mount /root"
mkdir -p /run/lock /var/lib /var/cache /var/log /var/tmp /var/spool
chmod 1777 /var/tmp
ln -s /run /var/run
ln -s /run/lock /var/lock
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
hostname sunaba-vm
ip link set lo up 2>/dev/null

# Find the virtio-serial ports by name; they appear shortly after the driver loads.
outport= statusport= n=0
while :; do
	for p in /sys/class/virtio-ports/vport*; do
		[ -r "$p/name" ] || continue
		case "$(cat "$p/name")" in
		sunaba.out) outport=/dev/${p##*/} ;;
		sunaba.err) errport=/dev/${p##*/} ;;
		sunaba.status) statusport=/dev/${p##*/} ;;
		esac
	done
	[ -c "$outport" ] && [ -c "$errport" ] && [ -c "$statusport" ] && break
	n=$((n + 1))
	[ $n -lt 3000 ] || fail "virtio-serial ports did not appear within 30 s"
	usleep 10000
done

# Every user process with its state, what it is blocked in and its kernel stack.
report_hang() {
	echo "vm-test: guest: the command is still running; its processes"
	for d in /proc/[0-9]*; do
		[ -r "$d/stat" ] || continue
		cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)
		[ -n "$cmd" ] || continue # kernel threads
		set -- $(sed 's/.*) //' "$d/stat" 2>/dev/null)
		printf 'pid %s ppid %s state %s wchan %s: %s\n' "${d#/proc/}" "$2" "$1" \
			"$(cat "$d/wchan" 2>/dev/null)" "$cmd"
		case "$1" in D | S) sed 's/^/    /' "$d/stack" 2>/dev/null ;; esac
	done
}

share() { # tag path ro|rw
	mkdir -p "$2" 2>/dev/null
	if [ "$3" = ro ]; then o=ro,cache=loose; else o=rw,cache=mmap; fi
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,$o "$1" "$2" || fail "mount $2"
}
EOF
	i=0
	for s in "${shares[@]}"; do
		printf 'share s%d %s %s\n' "$i" "$(shq "${s%%$'\t'*}")" "${s##*$'\t'}"
		i=$((i + 1))
	done
	for l in "${links[@]}"; do
		printf 'ln -sfn %s %s || fail %s\n' "$(shq "${l##*$'\t'}")" "$(shq "${l%%$'\t'*}")" "$(shq "link ${l%%$'\t'*}")"
	done
	printf 'cd %s || fail %s\n' "$(shq "$cwd")" "$(shq "cd $cwd")"
	# Shortly before the host gives up, the guest writes what every process is
	# waiting for to its console (the command holds the error port), so a hang
	# in CI leaves more behind than a timeout.
	if [[ $timeout_s -gt 60 ]]; then
		printf '(sleep %d; report_hang >/dev/ttyS0 2>&1) &\n' $((timeout_s - 30))
	fi
	printf '/usr/bin/env -i'
	for a in "${envargs[@]}"; do printf ' %s' "$(shq "$a")"; done
	for a in "$@"; do printf ' %s' "$(shq "$a")"; done
	printf ' </dev/null >"$outport" 2>"$errport"\n'
	cat <<'EOF'
rc=$?
sync
echo "$rc" >"$statusport"
printf '\000' | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
EOF
} >"$run/stage2.sh"

# --- run -----------------------------------------------------------------------------------

# loglevel=5 lets the stack of a soft lockup (printed at the default level)
# reach the console; it is shown only when the run fails.
console_level="quiet loglevel=5"
[[ ${VM_TEST_VERBOSE:-0} == 1 ]] && console_level="loglevel=7"

qemu=(qemu-system-x86_64 -nodefaults -no-user-config -no-reboot
	-machine q35 -accel tcg,thread=multi -cpu max,la57=off -smp "$cpus" -m "$mem"
	-display none -vga none -monitor none -parallel none -nic none
	-serial "file:$run/console"
	-kernel "$cache/vmlinux" -initrd "$cache/initramfs.cpio"
	-append "console=ttyS0 cgroup_no_v1=all panic=-1 softlockup_panic=1 softlockup_all_cpu_backtrace=1 rdinit=/init $console_level"
	-device isa-debug-exit,iobase=0xf4,iosize=0x04
	-device virtio-serial-pci,ioeventfd=off
	-chardev "file,id=out,path=$run/out" -device virtserialport,chardev=out,name=sunaba.out
	-chardev "file,id=err,path=$run/err" -device virtserialport,chardev=err,name=sunaba.err
	-chardev "file,id=status,path=$run/status" -device virtserialport,chardev=status,name=sunaba.status
	-virtfs "local,path=$run,mount_tag=vmrun,security_model=none,multidevs=remap,readonly=on")
i=0
for s in "${shares[@]}"; do
	path=${s%%$'\t'*} mode=${s##*$'\t'}
	[[ $path != *,* ]] || die "cannot share $path: QEMU options do not allow a comma in a path"
	opt="local,path=$path,mount_tag=s$i,security_model=none,multidevs=remap"
	[[ $mode == ro ]] && opt+=",readonly=on"
	qemu+=(-virtfs "$opt")
	i=$((i + 1))
done

"${qemu[@]}" </dev/null >"$run/qemu.log" 2>&1 &
qemu_pid=$!
tail -c +1 -s 0.1 -f --pid="$qemu_pid" "$run/out" &
out_pid=$!
tail -c +1 -s 0.1 -f --pid="$qemu_pid" "$run/err" >&2 &
err_pid=$!
sleep "$timeout_s" &
timer_pid=$!

wait -n "$qemu_pid" "$timer_pid" || true
timed_out=0
if kill -0 "$qemu_pid" 2>/dev/null; then
	timed_out=1
	kill -TERM "$qemu_pid" 2>/dev/null || true
	for _ in $(seq 50); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$qemu_pid" 2>/dev/null || true
else
	kill "$timer_pid" 2>/dev/null || true
fi
qemu_rc=0
wait "$qemu_pid" 2>/dev/null || qemu_rc=$?
qemu_pid=
wait "$timer_pid" 2>/dev/null || true
timer_pid=
# The tails stop by themselves once QEMU is gone, after copying what is left.
wait "$out_pid" "$err_pid" 2>/dev/null || true
out_pid='' err_pid=''

if [[ ${VM_TEST_VERBOSE:-0} == 1 ]]; then
	note "guest console:"
	cat "$run/console" "$run/qemu.log" >&2
fi
if [[ $timed_out == 1 ]]; then
	note "timed out after ${timeout_s}s (VM_TEST_TIMEOUT); QEMU was killed"
	{
		echo "--- guest console ---"
		if grep -q "$HANG_REPORT" "$run/console"; then
			sed -n "/$HANG_REPORT/,\$p" "$run/console"
		else
			tail -n 40 "$run/console"
		fi
	} >&2
	exit "$EXIT_TIMEOUT"
fi
status=$(tr -d '\r\n ' <"$run/status")
# A kernel stuck in a loop with the CPUs it needs is a hang like a timeout,
# found in seconds: softlockup_panic ends the guest at the first report.
if [[ ! $status =~ ^[0-9]+$ ]] && grep -q 'soft lockup' "$run/console"; then
	note "the guest kernel locked up (soft lockup) and was stopped; its report:"
	sed -n '/soft lockup/,$p' "$run/console" | head -n 200 >&2
	exit "$EXIT_TIMEOUT"
fi
if [[ ! $status =~ ^[0-9]+$ ]]; then
	note "the guest did not report an exit status (QEMU exited with $qemu_rc)"
	{
		echo "--- guest console, last 30 lines ---"
		tail -n 30 "$run/console"
		echo "--- QEMU output ---"
		cat "$run/qemu.log"
	} >&2
	exit "$EXIT_VM_FAILED"
fi
exit "$status"
