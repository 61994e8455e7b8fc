#!/usr/bin/env python3
"""Writes linker/hot-text.ld: the functions a sandbox's start runs, in the
order it first runs them, so that the linker puts them side by side.

The kernel maps a binary's text around each page fault (fault-around, 64 KiB
at a time), so a start that touches a few hundred functions scattered over
4 MB of text has most of the text in its resident set. Laid out together,
the same functions fill about a quarter of it, with fewer faults.

Which functions run is read, not guessed: every process of the run is
single-stepped with ptrace(2) and each instruction's address is looked up
in the binary's symbol table. The sunaba process comes first, then what its
children run before they exec the payload. The agent's start is traced
first, then an OCI run of a busybox bundle and bench's cut-down sandbox.
That takes minutes.

Symbol names carry a hash of the compiler's version and the crate's
metadata: a list written with another toolchain or Cargo.lock matches fewer
functions, which makes the binary larger in memory, never wrong. Run this
again after changing either, or the start path:

    scripts/hot-text.py            # builds the release binary and traces it
    scripts/hot-text.py BINARY     # traces a binary built from this tree

Runs as root (the agent profile's sandbox), needs nm(1) from binutils and
busybox (busybox-static).
"""

import bisect
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

PTRACE_TRACEME = 0
PTRACE_CONT = 7
PTRACE_SINGLESTEP = 9
PTRACE_GETREGS = 12
PTRACE_SETOPTIONS = 0x4200
PTRACE_DETACH = 17
PTRACE_O_TRACEFORK = 0x02
PTRACE_O_TRACEVFORK = 0x04
PTRACE_O_TRACECLONE = 0x08
PTRACE_O_TRACEEXEC = 0x10
PTRACE_EVENT_EXEC = 4
WALL = 0x40000000
RIP_INDEX = 16  # struct user_regs_struct on x86_64

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ptrace(request, pid, addr=0, data=0):
    if libc.ptrace(request, pid, addr, data) == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"ptrace({request}) of pid {pid}: {os.strerror(err)}")


def text_base(pid, binary):
    """Where the binary's first segment (file offset 0) is mapped."""
    real = os.path.realpath(binary)
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) >= 6 and fields[5] == real and int(fields[2], 16) == 0:
                return int(fields[0].split("-")[0], 16)
    sys.exit(f"hot-text: {real} is not mapped in pid {pid}; is it a static PIE?")


def trace(binary, args, cwd):
    """Instruction addresses (relative to the binary), first run first,
    grouped by process in the order the processes appeared."""
    pid = os.fork()
    if pid == 0:
        os.chdir(cwd)
        ptrace(PTRACE_TRACEME, 0)
        os.kill(os.getpid(), signal.SIGSTOP)
        os.execv(binary, [binary] + args)
    os.waitpid(pid, 0)
    ptrace(PTRACE_SETOPTIONS, pid, 0,
           PTRACE_O_TRACEEXEC | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK)
    ptrace(PTRACE_CONT, pid)  # runs up to the exec's stop
    os.waitpid(pid, 0)
    base = text_base(pid, binary)
    regs = (ctypes.c_ulonglong * 27)()
    seen = {}
    order = {pid: []}
    steps = 0
    ptrace(PTRACE_SINGLESTEP, pid)
    while order:
        try:
            who, status = os.waitpid(-1, WALL)
        except ChildProcessError:
            break
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            continue
        sig = os.WSTOPSIG(status)
        event = status >> 16
        if sig == signal.SIGTRAP and event == PTRACE_EVENT_EXEC:
            # The payload: none of its code is ours.
            ptrace(PTRACE_DETACH, who)
            continue
        if sig == signal.SIGTRAP:
            if event == 0:
                ptrace(PTRACE_GETREGS, who, 0, ctypes.addressof(regs))
                ip = regs[RIP_INDEX] - base
                if ip not in seen:
                    seen[ip] = True
                    order.setdefault(who, []).append(ip)
                steps += 1
            ptrace(PTRACE_SINGLESTEP, who)
            continue
        if sig == signal.SIGSTOP and who not in order:
            order[who] = []  # a new child's first stop
            ptrace(PTRACE_SINGLESTEP, who)
            continue
        ptrace(PTRACE_SINGLESTEP, who, 0, sig)
    print(f"hot-text: {steps} instructions, {len(seen)} distinct", file=sys.stderr)
    return [ip for ips in order.values() for ip in ips]


def functions(binary):
    """(start, end, names) of each function in the binary, by address; a
    function's names are its aliases too (musl's `sigaction` is the section
    `.text.__libc_sigaction`)."""
    out = subprocess.run(["nm", "-S", "--defined-only", binary],
                         check=True, capture_output=True, text=True).stdout
    by_start = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTwW":
            start, size = int(fields[0], 16), int(fields[1], 16)
            end, names = by_start.get(start, (start + size, []))
            by_start[start] = (max(end, start + size), names + [fields[3]])
    return sorted((start, end, names) for start, (end, names) in by_start.items())


HEADER = """\
/* The functions a sandbox's start runs, in the order it first runs them,
   laid out together ahead of the rest of the code: scripts/hot-text.py
   traced them and wrote this file, and says why. */
SECTIONS
{
  .text.hot :
  {
"""


def sections(name):
    """The sections a function called `name` can be in: LLVM puts the ones
    it deems cold (a vector's growth, say) in .text.unlikely."""
    return f".text.{name} .text.unlikely.{name}"


def unhashed(name):
    """A pattern for `name` with what a change of toolchain or dependencies
    changes left open: the hash of a legacy-mangled name, the crate hashes
    of a v0-mangled one, and the numbers LTO gives its local copies."""
    name = re.sub(r"17h[0-9a-f]{16}E$", "17h*E", name)
    name = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", name)
    name = re.sub(r"B[0-9A-Za-z]*_", "B*_", name) if name.startswith("_R") else name
    return re.sub(r"\.[0-9]+$", ".*", name)


def busybox_bundle(binary, work):
    """A bundle whose root holds busybox as /bin/true, with the config
    `sunaba spec` writes."""
    bundle = os.path.join(work, "bundle")
    bin_dir = os.path.join(bundle, "rootfs", "bin")
    os.makedirs(bin_dir)
    busybox = shutil.which("busybox") or sys.exit("hot-text: busybox is not installed "
                                                   "(apt-get install busybox-static)")
    shutil.copy(busybox, os.path.join(bin_dir, "busybox"))
    os.symlink("busybox", os.path.join(bin_dir, "true"))
    subprocess.run([binary, "spec", "--bundle", bundle], check=True)
    config_path = os.path.join(bundle, "config.json")
    with open(config_path) as f:
        config = json.load(f)
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    with open(config_path, "w") as f:
        json.dump(config, f)
    return bundle


def main():
    if len(sys.argv) > 1:
        binary = os.path.abspath(sys.argv[1])
    else:
        target = f"{os.uname().machine}-unknown-linux-musl"
        subprocess.run(["cargo", "build", "--release", "--locked", "--target", target],
                       cwd=TOP, check=True)
        binary = os.path.join(TOP, "target", target, "release", "sunaba")
    profiles = os.path.join(TOP, "profiles")
    with tempfile.TemporaryDirectory() as work:
        os.mkdir(os.path.join(work, "input"))
        os.environ["SUNABA_PROFILE_PATH"] = profiles
        bundle = busybox_bundle(binary, work)
        state = os.path.join(work, "state")
        # The agent's start first, then what the OCI path and bench's
        # cut-down sandbox add to it: each run's new functions go after
        # those of the runs before, so the agent's start stays dense.
        ips = []
        for args in (["run", "--profile", "agent", "--", "/bin/true"],
                     ["--root", state, "run", "--bundle", bundle, f"hot-text-{os.getpid()}"],
                     ["bench-layer", "lockdown", "--", "/bin/true"]):
            print(f"hot-text: tracing sunaba {' '.join(args)}", file=sys.stderr)
            ips += trace(binary, args, work)

    syms = functions(binary)
    starts = [s[0] for s in syms]
    names, placed, size = [], set(), 0
    for ip in ips:
        i = bisect.bisect_right(starts, ip) - 1
        if i < 0 or ip >= syms[i][1] or i in placed:
            continue
        placed.add(i)
        names.extend(syms[i][2])
        size += syms[i][1] - syms[i][0]
    print(f"hot-text: {len(placed)} functions, {size // 1024} KiB", file=sys.stderr)

    path = os.path.join(TOP, "linker", "hot-text.ld")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as out:
        out.write(HEADER)
        for name in names:
            out.write(f"    *({sections(name)})\n")
        out.write("\n    /* The same names with their hashes left open, for a build whose\n"
                  "       toolchain or dependencies differ: these take every instance\n"
                  "       of a generic function, the cold ones too. */\n")
        for pattern in dict.fromkeys(unhashed(name) for name in names):
            out.write(f"    *({sections(pattern)})\n")
        out.write("  }\n}\nINSERT BEFORE .text;\n")
    print(f"hot-text: wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
