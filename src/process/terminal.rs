//! The sandbox's pseudo-terminal (pty(7)), made inside its own devpts
//! instance so `/dev/pts/0` and ttyname(3) work in the sandbox, and so the
//! program's controlling terminal is not the caller's: TIOCSTI on it can
//! only reach the sandbox itself.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::channel::Channel;

fn check(ret: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if ret < 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(err.kind(), format!("{what}: {err}")));
    }
    Ok(ret)
}

/// Opens a pty pair in the sandbox's `/dev/ptmx`, makes the slave the
/// controlling terminal and the standard streams of the calling process
/// (which must lead a new session), gives it `size` (rows, columns) when the
/// config has one, and hands the master to the runtime.
///
/// # Errors
///
/// The first open, ioctl or dup2 that fails, named.
pub(super) fn attach_pseudo_terminal(
    channel: &Channel,
    size: Option<(u16, u16)>,
) -> io::Result<()> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: the path is a NUL-terminated literal.
    let master = unsafe { libc::open(c"/dev/ptmx".as_ptr(), flags) };
    let master = check(master, "open /dev/ptmx")?;
    // SAFETY: open just returned this descriptor; nothing else owns it.
    let master = unsafe { OwnedFd::from_raw_fd(master) };

    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which is live.
    let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    check(ret, "unlock the pseudo-terminal")?;

    // TIOCGPTPEER opens the slave that belongs to this master without a path
    // lookup, so a swapped /dev/pts entry cannot hand us another device.
    let flags = libc::O_RDWR | libc::O_NOCTTY;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
    let slave = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    let slave = check(slave, "open the pseudo-terminal's slave")?;
    // SAFETY: the ioctl just returned this descriptor; nothing else owns it.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };

    if let Some((rows, cols)) = size {
        let winsize = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize through the live pointer.
        let ret = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &winsize) };
        check(ret, "set the pseudo-terminal's size")?;
    }

    // SAFETY: TIOCSCTTY takes an int by value (0: do not steal).
    let ret = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
    check(ret, "make the pseudo-terminal controlling")?;
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which this process
        // owns; the call closes the old ones.
        let ret = unsafe { libc::dup2(slave.as_raw_fd(), target) };
        check(ret, "attach the pseudo-terminal")?;
    }
    channel.send_terminal(&master)
}
