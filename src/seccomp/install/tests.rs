//! Behavioural tests of installed filters: each forks a child that sets
//! no_new_privs, installs a filter, makes one syscall and exits with the
//! errno it saw (0 for success). Between fork and `_exit` the child makes raw syscalls only,
//! so the test harness's other threads cannot leave it stuck on a lock.

use super::*;
use crate::seccomp::{builtin, compile};

const EXIT_NNP_FAILED: i32 = 200;
const EXIT_INSTALL_FAILED: i32 = 201;

fn filter(name: &str) -> CompiledFilter {
    compile(&builtin(name).unwrap()).unwrap()
}

fn no_filter() -> CompiledFilter {
    CompiledFilter::default()
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Runs `probe` in a forked child under `filter` and returns the errno it
/// saw, or 0 when the syscall succeeded.
fn errno_under(filter: &CompiledFilter, probe: fn() -> libc::c_long) -> i32 {
    // SAFETY: the child runs `filtered_child`, which makes raw syscalls
    // only (prctl, seccomp, the probe's) and ends in `_exit`: all
    // async-signal-safe, no allocation, no lock.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let code = filtered_child(filter, probe);
        // SAFETY: ends the forked child without running the parent's
        // atexit handlers or destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child and `status` a live c_int.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(libc::WIFEXITED(status), "child killed, status {status:#x}");
    let code = libc::WEXITSTATUS(status);
    assert_ne!(code, EXIT_NNP_FAILED, "prctl(PR_SET_NO_NEW_PRIVS) failed");
    assert_ne!(code, EXIT_INSTALL_FAILED, "filter install failed");
    code
}

fn filtered_child(filter: &CompiledFilter, probe: fn() -> libc::c_long) -> i32 {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return EXIT_NNP_FAILED;
    }
    if filter.install().is_err() {
        return EXIT_INSTALL_FAILED;
    }
    if probe() < 0 {
        last_errno()
    } else {
        0
    }
}

fn dev_null() -> libc::c_int {
    // SAFETY: the path is a NUL-terminated literal.
    unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) }
}

/// ioctl with the full 64-bit request word, as a raw syscall so that the
/// high bits reach the kernel.
fn raw_ioctl(request: u64) -> libc::c_long {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is larger than any structure the probed requests
    // write (struct termios), and lives across the call.
    unsafe { libc::syscall(libc::SYS_ioctl, dev_null(), request, buf.as_mut_ptr()) }
}

fn raw_socket(domain: u64, kind: libc::c_int) -> libc::c_long {
    // SAFETY: socket takes plain integers.
    unsafe { libc::syscall(libc::SYS_socket, domain, kind, 0) }
}

fn getpid() -> libc::c_long {
    // SAFETY: getpid takes no arguments.
    unsafe { libc::syscall(libc::SYS_getpid) }
}

fn unshare_nothing() -> libc::c_long {
    // SAFETY: unshare takes a flag word.
    unsafe { libc::syscall(libc::SYS_unshare, 0) }
}

fn unshare_user() -> libc::c_long {
    // SAFETY: unshare takes a flag word.
    unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) }
}

fn tiocsti() -> libc::c_long {
    raw_ioctl(0x5412)
}

fn tiocsti_high_bits() -> libc::c_long {
    raw_ioctl(0x1_0000_5412)
}

fn tioclinux() -> libc::c_long {
    raw_ioctl(0x541C)
}

fn tcgets() -> libc::c_long {
    // TCGETS, whose type in the libc crate differs between glibc and musl.
    raw_ioctl(0x5401)
}

fn socket_unix() -> libc::c_long {
    raw_socket(1, libc::SOCK_STREAM)
}

fn socket_packet() -> libc::c_long {
    raw_socket(17, libc::SOCK_RAW)
}

fn socket_packet_high_bits() -> libc::c_long {
    raw_socket(0xFFFF_FFFF_0000_0011, libc::SOCK_RAW)
}

fn socket_vsock() -> libc::c_long {
    raw_socket(40, libc::SOCK_STREAM)
}

fn clone3_null() -> libc::c_long {
    // SAFETY: a NULL clone_args with size 0 is rejected before anything
    // is read or created.
    unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) }
}

/// clone(2) with fork semantics and extra `flags`; the new child exits at once.
fn clone_with(flags: libc::c_long) -> libc::c_long {
    let flags = flags | libc::c_long::from(libc::SIGCHLD);
    // SAFETY: without CLONE_VM the child gets a copy of this stack, as
    // with fork; it only calls `_exit`.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
    if pid == 0 {
        // SAFETY: ends the clone child at once.
        unsafe { libc::_exit(0) };
    }
    if pid > 0 {
        // SAFETY: `pid` is our child; a NULL status is allowed.
        unsafe { libc::waitpid(i32::try_from(pid).unwrap_or(-1), std::ptr::null_mut(), 0) };
    }
    pid
}

fn clone_plain() -> libc::c_long {
    clone_with(0)
}

fn clone_newuser() -> libc::c_long {
    clone_with(libc::c_long::from(libc::CLONE_NEWUSER))
}

fn ptrace_peek() -> libc::c_long {
    // SAFETY: PEEKDATA on a pid that does not exist fails before reading.
    unsafe { libc::syscall(libc::SYS_ptrace, libc::PTRACE_PEEKDATA, 0x3fff_fff0, 0, 0) }
}

fn bpf_bad_command() -> libc::c_long {
    // SAFETY: an unknown command with a NULL, zero-sized attribute is
    // rejected without reading memory.
    unsafe { libc::syscall(libc::SYS_bpf, 0xffff, std::ptr::null::<u8>(), 0) }
}

fn io_uring_setup_null() -> libc::c_long {
    // SAFETY: a NULL params pointer is rejected with EFAULT.
    unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, std::ptr::null::<u8>()) }
}

fn mount_nothing() -> libc::c_long {
    // SAFETY: NULL source, target and type are rejected (EFAULT/EPERM).
    unsafe { libc::syscall(libc::SYS_mount, 0, 0, 0, 0, 0) }
}

fn keyctl_get_id() -> libc::c_long {
    // SAFETY: KEYCTL_GET_KEYRING_ID (0) on the session keyring takes integers.
    unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) }
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn agent_lets_getpid_through() {
    assert_eq!(errno_under(&filter("agent"), getpid), 0);
}

#[test]
fn agent_denies_unshare() {
    let agent = filter("agent");
    assert_eq!(errno_under(&no_filter(), unshare_nothing), 0);
    assert_eq!(errno_under(&agent, unshare_nothing), libc::EPERM);
    assert_eq!(errno_under(&agent, unshare_user), libc::EPERM);
}

#[test]
fn agent_denies_tiocsti_and_tioclinux_but_not_other_ioctls() {
    let agent = filter("agent");
    assert_eq!(errno_under(&no_filter(), tiocsti), libc::ENOTTY);
    assert_eq!(errno_under(&filter("default"), tiocsti), libc::ENOTTY);
    assert_eq!(errno_under(&agent, tiocsti), libc::EPERM);
    assert_eq!(errno_under(&agent, tioclinux), libc::EPERM);
    assert_eq!(errno_under(&agent, tcgets), libc::ENOTTY);
}

#[test]
fn agent_denies_tiocsti_with_high_bits_set() {
    // The kernel truncates the request to 32 bits, so this is TIOCSTI.
    assert_eq!(errno_under(&no_filter(), tiocsti_high_bits), libc::ENOTTY);
    assert_eq!(
        errno_under(&filter("agent"), tiocsti_high_bits),
        libc::EPERM
    );
}

#[test]
fn agent_denies_packet_and_vsock_sockets_only() {
    let agent = filter("agent");
    assert_eq!(errno_under(&agent, socket_unix), 0);
    assert_eq!(errno_under(&agent, socket_packet), libc::EPERM);
    assert_eq!(errno_under(&agent, socket_packet_high_bits), libc::EPERM);
    assert_eq!(errno_under(&agent, socket_vsock), libc::EPERM);
    if is_root() {
        assert_ne!(errno_under(&no_filter(), socket_packet), libc::EPERM);
    }
}

#[test]
fn default_allows_packet_sockets_but_not_vsock() {
    let default = filter("default");
    assert_ne!(errno_under(&default, socket_packet), libc::EPERM);
    assert_eq!(errno_under(&default, socket_vsock), libc::EPERM);
}

#[test]
fn clone3_gets_enosys_so_libc_falls_back_to_clone() {
    assert_eq!(errno_under(&no_filter(), clone3_null), libc::EINVAL);
    assert_eq!(errno_under(&filter("agent"), clone3_null), libc::ENOSYS);
    assert_eq!(errno_under(&filter("default"), clone3_null), libc::ENOSYS);
}

#[test]
fn clone_is_allowed_without_namespace_flags_only() {
    let agent = filter("agent");
    assert_eq!(errno_under(&agent, clone_plain), 0);
    assert_eq!(errno_under(&agent, clone_newuser), libc::EPERM);
}

#[test]
fn agent_denies_ptrace_which_default_allows() {
    assert_eq!(errno_under(&filter("default"), ptrace_peek), libc::ESRCH);
    assert_eq!(errno_under(&filter("agent"), ptrace_peek), libc::EPERM);
}

#[test]
fn agent_denies_bpf_io_uring_mount_and_keyctl() {
    let agent = filter("agent");
    if is_root() {
        assert_eq!(errno_under(&no_filter(), bpf_bad_command), libc::EINVAL);
    }
    assert_eq!(errno_under(&agent, bpf_bad_command), libc::EPERM);
    assert_eq!(errno_under(&agent, io_uring_setup_null), libc::EPERM);
    assert_eq!(errno_under(&agent, mount_nothing), libc::EPERM);
    assert_eq!(errno_under(&agent, keyctl_get_id), libc::EPERM);
    assert_ne!(errno_under(&no_filter(), keyctl_get_id), libc::EPERM);
}

#[test]
fn x32_syscalls_are_refused_under_a_default_allow_profile() {
    let profile: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["unshare"], "action": "SCMP_ACT_ERRNO"}]}"#,
    )
    .unwrap();
    let filter = compile(&profile).unwrap();
    fn x32_unshare() -> libc::c_long {
        // SAFETY: unshare(0) changes nothing, whichever ABI runs it.
        unsafe { libc::syscall(0x4000_0000 | libc::SYS_unshare, 0) }
    }
    assert_eq!(errno_under(&filter, unshare_nothing), libc::EPERM);
    assert_eq!(errno_under(&filter, getpid), 0);
    // Kernels built without CONFIG_X86_X32_ABI answer ENOSYS themselves;
    // with it, only the guard stops this call.
    if cfg!(target_arch = "x86_64") {
        assert_eq!(errno_under(&filter, x32_unshare), libc::ENOSYS);
    }
}

/// A profile that does not allow seccomp(2) must still install all its
/// filters (the default filter goes last), and a rule's ERRNO must win
/// over the default's.
#[test]
fn strict_profile_without_seccomp_installs_and_keeps_rule_errno() {
    let profile: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
            "syscalls": [{"names": ["getpid", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
    )
    .unwrap();
    let filter = compile(&profile).unwrap();
    assert_eq!(errno_under(&filter, getpid), 0);
    assert_eq!(errno_under(&filter, clone3_null), libc::ENOSYS);
    assert_eq!(errno_under(&filter, unshare_nothing), libc::EACCES);
}

#[test]
fn tsync_flag_installs() {
    let mut profile = builtin("agent").unwrap();
    profile.set_flags(Some(vec![
        oci_spec::runtime::LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    ]));
    let filter = compile(&profile).unwrap();
    assert_eq!(filter.flags, libc::SECCOMP_FILTER_FLAG_TSYNC);
    assert_eq!(errno_under(&filter, getpid), 0);
    assert_eq!(errno_under(&filter, unshare_nothing), libc::EPERM);
}

/// The agent profile must not break ordinary programs: a shell with
/// pipes and subshells, busybox, and Python spawning a process (glibc's
/// posix_spawn tries clone3 first and must fall back to clone) and a thread.
#[test]
fn agent_still_runs_shell_busybox_and_python() {
    const SCRIPT: &std::ffi::CStr = c"set -e
        ls / | wc -l >/dev/null
        (cd /tmp && pwd) >/dev/null
        if command -v busybox >/dev/null; then busybox ls / >/dev/null; fi
        if command -v python3 >/dev/null; then
            python3 -c 'import socket, subprocess, threading
subprocess.run([\"true\"], check=True)
socket.socket(socket.AF_UNIX).close()
t = threading.Thread(target=len, args=((),)); t.start(); t.join()'
        fi";
    let filter = filter("agent");
    let argv = [
        c"/bin/sh".as_ptr(),
        c"-c".as_ptr(),
        SCRIPT.as_ptr(),
        std::ptr::null(),
    ];

    // SAFETY: the child makes raw syscalls only (prctl, seccomp, execv)
    // on buffers built before the fork, then `_exit`s if execv fails.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: plain integer arguments; `argv` is NULL-terminated and
        // its strings are static.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && filter.install().is_ok() {
                libc::execv(argv[0], argv.as_ptr());
            }
            libc::_exit(EXIT_INSTALL_FAILED);
        }
    }
    let mut status = 0;
    // SAFETY: `pid` is our child and `status` a live c_int.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "shell killed, status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0);
}

#[test]
fn install_without_no_new_privs_or_cap_sys_admin_names_the_cause() {
    let filter = filter("agent");
    // SAFETY: as in `errno_under`; the child drops its capabilities with
    // a raw capset and makes raw syscalls only.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = match drop_all_capabilities() {
            false => 2,
            true => match filter.install() {
                Err(SeccompError::NoNewPrivs { filter: 0 }) => 0,
                Err(_) => 3,
                Ok(()) => 4,
            },
        };
        // SAFETY: ends the forked child.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child and `status` a live c_int.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status));
    assert_eq!(libc::WEXITSTATUS(status), 0);

    let message = SeccompError::NoNewPrivs { filter: 0 }.to_string();
    assert!(message.contains("no_new_privs") && message.contains("CAP_SYS_ADMIN"));
}

/// Clears every capability set of the calling thread.
fn drop_all_capabilities() -> bool {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and two data words, as capset(2) expects for
    // version 3; both live across the call.
    let ret = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    ret == 0
}
