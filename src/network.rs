//! Networking: a new network namespace has only a loopback interface, and it
//! is down (network_namespaces(7)). The sandbox brings it up and gets nothing
//! else: no other interface, no route, no way out.

use std::io;

/// A network failure, naming the interface.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// An ioctl on the loopback interface failed.
    #[error("cannot bring up loopback interface lo ({op}): {source}")]
    Loopback {
        /// The ioctl.
        op: &'static str,
        /// The kernel's answer.
        source: io::Error,
    },
    /// Making a network namespace for the sandbox, or returning from it.
    #[error("cannot make the sandbox's network namespace ({op}): {source}")]
    Namespace {
        /// What failed.
        op: &'static str,
        /// The kernel's answer.
        source: io::Error,
    },
}

/// The calling thread's network namespace.
const OWN: &std::ffi::CStr = c"/proc/thread-self/ns/net";

/// Makes a new network namespace with its loopback up and returns it, for
/// a sandbox process to join. The calling thread enters the namespace to
/// set it up and then returns to its own; the runtime has no sockets whose
/// namespace this could change, since the channel to the sandbox is an
/// unnamed unix socket pair.
///
/// # Errors
///
/// unshare(2), the loopback ioctls, or the return to the caller's own
/// namespace failing.
pub fn new_namespace() -> Result<std::os::fd::OwnedFd, NetworkError> {
    let fail = |op| {
        let source = io::Error::last_os_error();
        NetworkError::Namespace { op, source }
    };
    let own = open_namespace(OWN).ok_or_else(|| fail("open /proc/thread-self/ns/net"))?;
    // SAFETY: unshare takes a flag word.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(fail("unshare CLONE_NEWNET"));
    }
    let made = bring_up_loopback().and_then(|()| {
        open_namespace(OWN).ok_or_else(|| fail("open the new /proc/thread-self/ns/net"))
    });
    // SAFETY: `own` is an open namespace file of this thread's; setns takes
    // its descriptor and a flag word.
    if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&own), libc::CLONE_NEWNET) } != 0 {
        return Err(fail("return to the runtime's own namespace"));
    }
    made
}

fn open_namespace(path: &std::ffi::CStr) -> Option<std::os::fd::OwnedFd> {
    // SAFETY: the path is NUL-terminated; open takes no other pointer.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    // SAFETY: a non-negative return is a new descriptor this process owns.
    (fd >= 0).then(|| unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Brings `lo` up with SIOCGIFFLAGS/SIOCSIFFLAGS on a datagram socket; no
/// netlink is needed for a single flag (netdevice(7)).
///
/// # Errors
///
/// The socket or either ioctl failing.
pub fn bring_up_loopback() -> Result<(), NetworkError> {
    let err = |op| {
        let source = io::Error::last_os_error();
        NetworkError::Loopback { op, source }
    };

    // SAFETY: socket(2) takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(err("socket"));
    }

    // SAFETY: an all-zero ifreq is valid; the name is set below.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = libc::c_char::from_ne_bytes([*src]);
    }
    // SAFETY: `req` is a live ifreq naming "lo"; the kernel fills ifru_flags.
    let result = if unsafe { libc::ioctl(fd, request(libc::SIOCGIFFLAGS), &mut req) } < 0 {
        Err(err("SIOCGIFFLAGS"))
    } else {
        // SAFETY: SIOCGIFFLAGS just initialised the flags member of the union.
        unsafe {
            // IFF_UP and IFF_RUNNING are bits 0 and 6: they fit a short.
            #[allow(clippy::cast_possible_truncation)]
            let up = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            req.ifr_ifru.ifru_flags |= up;
        }
        // SAFETY: `req` is a live ifreq naming "lo" with the new flags.
        if unsafe { libc::ioctl(fd, request(libc::SIOCSIFFLAGS), &req) } < 0 {
            Err(err("SIOCSIFFLAGS"))
        } else {
            Ok(())
        }
    };

    // SAFETY: `fd` was opened above and is closed exactly once.
    unsafe { libc::close(fd) };
    result
}

/// An ioctl request number as the C library's `ioctl` takes it: glibc
/// declares it `unsigned long`, musl `int`. The interface-flag requests are
/// 16-bit numbers, so the conversion never truncates.
#[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
const fn request(number: libc::c_ulong) -> libc::Ioctl {
    number as libc::Ioctl
}
