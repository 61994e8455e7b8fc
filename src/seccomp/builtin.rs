//! The built-in seccomp profiles, `default` and `agent`, as OCI `LinuxSeccomp`
//! values.
//!
//! `default` allows what Docker's default profile allows a container that has
//! Docker's default capability set (no `CAP_SYS_ADMIN`, `CAP_SYS_PTRACE`,
//! `CAP_SYS_MODULE`, ...), and returns `EPERM` for everything else. Like
//! Docker's list since 2023, it leaves io_uring out: a large kernel attack
//! surface whose operations no per-syscall filter sees. `agent`
//! starts from the same list and takes away what an untrusted program has no
//! business calling: namespaces, the mount API, keyrings, eBPF, perf,
//! io_uring, cross-process memory access and terminal input injection.
//!
//! Only names of the 64-bit ABIs are listed (x86_64, aarch64): the compiled
//! filter applies to the native architecture only and kills any process that
//! enters the kernel through another ABI, so the 32-bit `*32`/`*64`/`*_time64`
//! variants would never be looked at. Names missing on the native architecture
//! (for example `arch_prctl` on aarch64) are skipped by the compiler.

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

/// Process lifetime, identity queries and signals: every program.
#[rustfmt::skip]
const PROCESS: &[&str] = &[
    "exit", "exit_group", "execve", "execveat", "fork", "vfork", "wait4", "waitid",
    "getpid", "getppid", "gettid", "getpgid", "getpgrp", "getsid", "setsid", "setpgid",
    "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups", "kill",
    "tkill", "tgkill", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sigaltstack",
    "signalfd", "signalfd4", "pause", "restart_syscall", "pidfd_open", "pidfd_send_signal",
    "process_mrelease",
];

/// Changing credentials within the user namespace: login shells, sudo-like
/// tools, servers that drop privileges. The capability set decides what succeeds.
#[rustfmt::skip]
const CREDENTIALS: &[&str] = &[
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
    "setfsgid", "setgroups", "capget", "capset",
];

/// Memory management: the dynamic loader, allocators, language runtimes.
#[rustfmt::skip]
const MEMORY: &[&str] = &[
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock",
    "mlock2", "mlockall", "munlock", "munlockall", "membarrier", "memfd_create",
    "memfd_secret", "remap_file_pages", "pkey_alloc", "pkey_free", "pkey_mprotect",
    "map_shadow_stack", "mseal",
];

/// Threads and their synchronisation: glibc and musl pthreads, Go, Java.
#[rustfmt::skip]
const THREADS: &[&str] = &[
    "futex", "futex_waitv", "futex_wait", "futex_wake", "futex_requeue", "set_robust_list", "get_robust_list", "set_tid_address", "rseq",
    "get_thread_area", "set_thread_area", "sched_yield", "sched_getaffinity",
    "sched_setaffinity", "sched_getattr", "sched_setattr", "sched_getparam",
    "sched_setparam", "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
    "sched_get_priority_min", "sched_rr_get_interval", "getcpu", "getpriority",
    "setpriority", "ioprio_get", "ioprio_set",
];

/// Files, directories and metadata: every program that touches the filesystem.
#[rustfmt::skip]
const FILES: &[&str] = &[
    "open", "openat", "openat2", "creat", "close", "close_range", "read", "readv",
    "pread64", "preadv", "preadv2", "write", "writev", "pwrite64", "pwritev", "pwritev2",
    "lseek", "dup", "dup2", "dup3", "fcntl", "flock", "fsync", "fdatasync", "sync",
    "syncfs", "sync_file_range", "fallocate", "fadvise64", "readahead", "truncate",
    "ftruncate", "stat", "lstat", "fstat", "newfstatat", "statx", "statfs", "fstatfs",
    "access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd", "getdents",
    "getdents64", "mkdir", "mkdirat", "mknod", "mknodat", "rmdir", "rename", "renameat",
    "renameat2", "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat", "readlink",
    "readlinkat", "chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown",
    "umask", "utime", "utimes", "utimensat", "futimesat", "name_to_handle_at",
    "copy_file_range", "sendfile", "splice", "tee", "vmsplice", "getxattr", "lgetxattr",
    "fgetxattr", "setxattr", "lsetxattr", "fsetxattr", "listxattr", "llistxattr",
    "flistxattr", "removexattr", "lremovexattr", "fremovexattr", "inotify_init",
    "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
    "fchmodat2", "cachestat", "getxattrat", "setxattrat", "listxattrat", "removexattrat",
];

/// Event loops, timers and clocks: servers, interpreters, `sleep`.
#[rustfmt::skip]
const EVENTS_AND_TIME: &[&str] = &[
    "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_ctl_old", "epoll_wait", "epoll_wait_old", "epoll_pwait", "epoll_pwait2",
    "eventfd", "eventfd2", "pipe", "pipe2", "nanosleep", "clock_nanosleep", "clock_gettime",
    "clock_getres", "clock_adjtime", "adjtimex", "gettimeofday", "time", "times", "alarm",
    "getitimer", "setitimer", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_settime", "timerfd_create", "timerfd_gettime",
    "timerfd_settime",
];

/// Sockets other than `socket(2)` itself, which gets argument rules below.
#[rustfmt::skip]
const NETWORK: &[&str] = &[
    "socketpair", "bind", "listen", "accept", "accept4", "connect", "shutdown",
    "getsockname", "getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom",
    "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
];

/// System V and POSIX IPC, and asynchronous I/O: databases, PostgreSQL's shared
/// memory, libaio users.
#[rustfmt::skip]
const IPC_AND_AIO: &[&str] = &[
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
    "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend",
    "mq_timedreceive", "mq_notify", "mq_getsetattr", "io_setup", "io_destroy", "io_submit",
    "io_cancel", "io_getevents", "io_pgetevents",
];

/// System information and resource limits: `uname`, `ulimit`, `ps`-like tools.
#[rustfmt::skip]
const SYSTEM_INFO: &[&str] = &[
    "uname", "sysinfo", "getrlimit", "setrlimit", "prlimit64", "getrusage", "getrandom",
    "prctl",
];

/// Sandboxing a program may apply to itself: it can only narrow what it can do.
#[rustfmt::skip]
const SELF_RESTRICTION: &[&str] = &[
    "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
];

/// Debuggers and profilers (gdb, strace, py-spy). Docker allows them since
/// Linux 4.8, where ptrace can no longer be used to get around seccomp;
/// `agent` drops them.
#[rustfmt::skip]
const DEBUGGING: &[&str] = &["ptrace", "process_vm_readv", "process_vm_writev"];

/// Needed by the CAP_SYS_CHROOT capability Docker grants by default.
#[rustfmt::skip]
const CHROOT: &[&str] = &["chroot"];

/// x86_64 only: TLS setup (`arch_prctl`) and Wine/old runtimes (`modify_ldt`).
#[rustfmt::skip]
const X86_64_ONLY: &[&str] = &["arch_prctl", "modify_ldt"];

/// The `personality(2)` values Docker allows: PER_LINUX, UNAME26,
/// ADDR_NO_RANDOMIZE (and with UNAME26), and the 0xffffffff query.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// The namespace flags clone(2) accepts, as Docker masks them: CLONE_NEWNS,
/// NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET. CLONE_NEWTIME shares
/// its bit with the exit-signal byte of clone(2), so only clone3 (answered
/// ENOSYS) and unshare (denied) could ask for it.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

const AF_PACKET: u64 = 17;
const AF_VSOCK: u64 = 40;
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;

/// Mask selecting the low 32 bits: `int` arguments are compared there, because
/// the kernel truncates them and callers may leave garbage in the high half.
const LOW_32_BITS: u64 = 0xFFFF_FFFF;

/// Returns the `default` profile: Docker's default allow-list for its default
/// capabilities, `EPERM` otherwise.
///
/// One deliberate difference: Docker allows `socket` when the domain is not
/// AF_VSOCK, comparing all 64 bits, so a domain of 40 with garbage in the
/// high half passes while the kernel still reads AF_VSOCK. Here `socket` is
/// allowed and AF_VSOCK denied on the low 32 bits.
pub(super) fn default_profile() -> LinuxSeccomp {
    let mut syscalls = vec![allow(&common_names(true))];
    syscalls.extend(argument_rules(&[AF_VSOCK]));
    profile(syscalls)
}

/// Returns the `agent` profile: `default` without namespaces, mounts, keyrings,
/// eBPF, perf, userfaultfd, io_uring, ptrace, kexec, modules and TIOCSTI.
///
/// Most of those are already outside Docker's list and fall to the default
/// `EPERM`; what the list does allow is removed here or given a deny rule.
pub(super) fn agent_profile() -> LinuxSeccomp {
    let mut syscalls = vec![allow(&common_names(false))];
    syscalls.extend(argument_rules(&[AF_PACKET, AF_VSOCK]));

    // TIOCSTI pushes input into the controlling terminal and TIOCLINUX can do
    // the same on a virtual console: both let a sandboxed program type commands
    // into the shell that started it (CVE-2016-7545, CVE-2023-1523).
    syscalls.push(allow(&["ioctl"]));
    for request in [TIOCSTI, TIOCLINUX] {
        syscalls.push(deny_low_32(&["ioctl"], 1, request));
    }
    profile(syscalls)
}

/// The unconditional allow-list shared by both profiles.
fn common_names(with_debugging: bool) -> Vec<&'static str> {
    let mut names: Vec<&str> = [
        PROCESS,
        CREDENTIALS,
        MEMORY,
        THREADS,
        FILES,
        EVENTS_AND_TIME,
        NETWORK,
        IPC_AND_AIO,
        SYSTEM_INFO,
        SELF_RESTRICTION,
        CHROOT,
        X86_64_ONLY,
    ]
    .concat();
    if with_debugging {
        names.extend_from_slice(DEBUGGING);
        names.push("ioctl");
    }
    names
}

/// Rules with arguments shared by both profiles: `socket` minus the given
/// address families, `clone` without namespace flags, `clone3` as ENOSYS, and
/// the allowed personalities.
fn argument_rules(denied_families: &[u64]) -> Vec<LinuxSyscall> {
    let mut rules = vec![allow(&["socket"])];
    for family in denied_families {
        rules.push(deny_low_32(&["socket"], 0, *family));
    }

    // Allow clone only when no namespace flag is set; the default action
    // denies the rest. The flags are an unsigned long, compared in full.
    rules.push(rule(
        &["clone"],
        LinuxSeccompAction::ScmpActAllow,
        None,
        vec![arg(
            0,
            CLONE_NAMESPACE_FLAGS,
            Some(0),
            LinuxSeccompOperator::ScmpCmpMaskedEq,
        )],
    ));

    // clone3 passes its flags in memory, out of reach of a BPF filter. ENOSYS
    // makes glibc (2.34+) and musl fall back to clone, which is checked above.
    rules.push(rule(
        &["clone3"],
        LinuxSeccompAction::ScmpActErrno,
        Some(libc_errno(libc::ENOSYS)),
        Vec::new(),
    ));

    for persona in PERSONALITIES {
        rules.push(rule(
            &["personality"],
            LinuxSeccompAction::ScmpActAllow,
            None,
            vec![arg(0, *persona, None, LinuxSeccompOperator::ScmpCmpEq)],
        ));
    }
    rules
}

fn profile(syscalls: Vec<LinuxSyscall>) -> LinuxSeccomp {
    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(libc_errno(libc::EPERM)));
    profile.set_syscalls(Some(syscalls));
    profile
}

fn allow(names: &[&str]) -> LinuxSyscall {
    rule(names, LinuxSeccompAction::ScmpActAllow, None, Vec::new())
}

/// An `EPERM` rule for calls whose argument `index`, truncated to 32 bits,
/// equals `value`.
fn deny_low_32(names: &[&str], index: usize, value: u64) -> LinuxSyscall {
    rule(
        names,
        LinuxSeccompAction::ScmpActErrno,
        Some(libc_errno(libc::EPERM)),
        vec![arg(
            index,
            LOW_32_BITS,
            Some(value),
            LinuxSeccompOperator::ScmpCmpMaskedEq,
        )],
    )
}

fn rule(
    names: &[&str],
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    args: Vec<LinuxSeccompArg>,
) -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(names.iter().map(|name| (*name).to_string()).collect());
    rule.set_action(action);
    rule.set_errno_ret(errno_ret);
    if !args.is_empty() {
        rule.set_args(Some(args));
    }
    rule
}

fn arg(
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> LinuxSeccompArg {
    let builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    let builder = match value_two {
        Some(value_two) => builder.value_two(value_two),
        None => builder,
    };
    builder
        .build()
        .expect("every LinuxSeccompArg field is set or has a default")
}

/// Converts a positive libc errno constant to the OCI `errnoRet` type.
fn libc_errno(errno: i32) -> u32 {
    errno.unsigned_abs()
}
