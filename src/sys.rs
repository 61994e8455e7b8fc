//! Thin wrappers for the syscalls no crate wraps yet: clone3, mount_setattr,
//! close_range and a few raw helpers the child needs between clone and exec.
//!
//! Most of the crate's `unsafe` lives here. Each wrapper takes typed
//! arguments, checks the return value and turns it into an `io::Error`; the
//! caller adds the path or value the error was about.

use std::ffi::CStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// `CLONE_INTO_CGROUP` as a 64-bit flag; the libc crate declares it as a
/// C int, which truncates it to 0 when widened for `clone_args.flags`.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of clone3(2), version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What `clone3` returned on each side.
pub enum Forked {
    /// In the parent: the child's pid and a pidfd for it.
    Parent {
        /// The child's pid in the caller's pid namespace.
        pid: i32,
        /// A pidfd referring to the child (CLONE_PIDFD).
        pidfd: OwnedFd,
    },
    /// In the child.
    Child,
}

/// Forks with clone3(2), like fork(2) but with namespace flags, a pidfd and,
/// when `cgroup` is given, placement into that cgroup v2 directory.
///
/// # Safety
///
/// The caller must be single-threaded: the child starts as a copy of the
/// calling thread only, so any lock another thread held (the allocator's,
/// the logger's) would stay locked forever in the child.
pub unsafe fn clone3(flags: u64, cgroup: Option<RawFd>) -> io::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: std::ptr::addr_of_mut!(pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = u64::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    }

    // SAFETY: `args` is a properly initialised clone_args that outlives the
    // call, and its size is passed alongside. A zero stack makes clone3 behave
    // like fork: the child continues on a copy of this stack, which is sound
    // because the caller guarantees there are no other threads.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::addr_of_mut!(args),
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: i32::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?,
            // SAFETY: the kernel just wrote a fresh pidfd that nobody else owns.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_RDONLY` and friends from `<linux/mount.h>`.
pub mod mount_attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x0000_0001;
    /// Ignore set-user-id and set-group-id bits.
    pub const NOSUID: u64 = 0x0000_0002;
    /// No access to device nodes.
    pub const NODEV: u64 = 0x0000_0004;
    /// No execution.
    pub const NOEXEC: u64 = 0x0000_0008;
    /// The access-time field: one of the three below, changed only when
    /// the field is also cleared.
    pub const ATIME: u64 = 0x0000_0070;
    /// Update access times relative to modification times.
    pub const RELATIME: u64 = 0x0000_0000;
    /// Never update access times.
    pub const NOATIME: u64 = 0x0000_0010;
    /// Always update access times.
    pub const STRICTATIME: u64 = 0x0000_0020;
    /// Never update directories' access times.
    pub const NODIRATIME: u64 = 0x0000_0080;
}

/// Sets mount attributes on `path`, and on every mount below it when
/// `recursive` (mount_setattr(2) with AT_RECURSIVE). Locked flags of a mount
/// inherited into a user namespace stay set, because only `attr_set` is given.
pub fn mount_setattr(path: &CStr, attr_set: u64, recursive: bool) -> io::Result<()> {
    mount_setattr_clearing(path, attr_set, 0, recursive)
}

/// [`mount_setattr`], clearing `attr_clr` first: the way to change the
/// access-time field ([`mount_attr::ATIME`]) or drop NODIRATIME.
pub fn mount_setattr_clearing(
    path: &CStr,
    attr_set: u64,
    attr_clr: u64,
    recursive: bool,
) -> io::Result<()> {
    let mut attr = MountAttr {
        attr_set,
        attr_clr,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };

    // SAFETY: `path` is a NUL-terminated string and `attr` a mount_attr that
    // both outlive the call; the size passed matches the struct.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            std::ptr::addr_of_mut!(attr),
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Marks every descriptor from `first` upwards close-on-exec
/// (close_range(2) with CLOSE_RANGE_CLOEXEC), so only 0, 1 and 2 survive exec.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range only changes descriptor flags; no memory is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` through a pidfd (pidfd_send_signal(2)), which cannot hit a
/// recycled pid.
pub fn pidfd_send_signal(pidfd: RawFd, signal: i32) -> io::Result<()> {
    // SAFETY: no pointers are passed (info is NULL).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ends the calling process at once, without running destructors or atexit
/// handlers. The child between clone and exec leaves this way, so it never
/// flushes or frees state that belongs to the parent's copy of the process.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Gives the process a new signal mask; returns the previous one.
pub fn set_signal_mask(mask: &libc::sigset_t) -> io::Result<libc::sigset_t> {
    // SAFETY: an all-zero sigset_t is a valid (empty) set for the kernel.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live sigset_t values for the call.
    let ret = unsafe { libc::sigprocmask(libc::SIG_SETMASK, mask, &mut old) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(old)
}

/// Resets every catchable signal to its default disposition, so the program
/// does not inherit handlers or ignored signals from sunaba.
pub fn reset_signal_dispositions() {
    for signal in 1..libc::SIGRTMAX() {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is a valid disposition for every catchable signal;
        // failures (for reserved signals) are harmless and ignored.
        unsafe { libc::signal(signal, libc::SIG_DFL) };
    }
}

/// A unix socket address for `path`, usable for bind(2) and connect(2)
/// while it lives.
pub struct SocketAddress {
    /// The address to pass to the kernel.
    pub addr: nix::sys::socket::UnixAddr,
    /// The socket's directory, held open while `addr` names it through
    /// `/proc/self/fd`.
    _dir: Option<OwnedFd>,
}

/// The address of the unix socket at `path`. `sun_path` holds only 108
/// bytes, and a runtime's state directory can be deeper than that allows
/// (containerd's runc shim puts 64-character ids under its own root, which
/// a test or a host may move), so a longer path is reached through the
/// directory's descriptor: `/proc/self/fd/N/NAME` resolves to the same
/// socket and is always short.
pub fn socket_address(path: &std::path::Path) -> io::Result<SocketAddress> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    // sun_path's size, less the terminating NUL.
    const SUN_PATH_MAX: usize = 107;
    if path.as_os_str().len() <= SUN_PATH_MAX {
        return Ok(SocketAddress {
            addr: nix::sys::socket::UnixAddr::new(path)?,
            _dir: None,
        });
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    };
    let dir: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)?
        .into();
    let mut short =
        format!("/proc/self/fd/{}/", std::os::fd::AsRawFd::as_raw_fd(&dir)).into_bytes();
    short.extend_from_slice(name.as_bytes());
    Ok(SocketAddress {
        addr: nix::sys::socket::UnixAddr::new(std::ffi::OsStr::from_bytes(&short))?,
        _dir: Some(dir),
    })
}

#[cfg(test)]
mod socket_tests {
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{
        accept, bind, connect, listen, socket, AddressFamily, Backlog, SockFlag, SockType,
    };

    use super::socket_address;

    fn seqpacket() -> std::os::fd::OwnedFd {
        socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .expect("socket")
    }

    #[test]
    fn a_socket_deeper_than_sun_path_is_bound_and_reached() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let deep = tmp.path().join("d".repeat(64)).join("e".repeat(64));
        std::fs::create_dir_all(&deep).expect("mkdir");
        let path = deep.join("start.sock");
        assert!(path.as_os_str().len() > 108);

        let listener = seqpacket();
        let address = socket_address(&path).expect("address");
        bind(listener.as_raw_fd(), &address.addr).expect("bind");
        drop(address);
        listen(&listener, Backlog::new(1).expect("backlog")).expect("listen");
        assert!(path.exists(), "the socket is made at the long path itself");

        let client = seqpacket();
        let address = socket_address(&path).expect("address");
        connect(client.as_raw_fd(), &address.addr).expect("connect");
        accept(&listener).expect("accept");
    }

    #[test]
    fn a_short_socket_path_is_used_as_it_is() {
        let address = socket_address(std::path::Path::new("/run/x.sock")).expect("address");
        assert_eq!(
            address.addr.path(),
            Some(std::path::Path::new("/run/x.sock"))
        );
    }
}
