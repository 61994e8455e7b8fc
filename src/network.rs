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
