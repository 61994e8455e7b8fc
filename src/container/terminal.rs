//! The runtime's side of the sandbox's pseudo-terminal: the caller's
//! terminal goes into raw mode, so every key (Ctrl-C included) reaches the
//! sandbox's line discipline, and bytes are copied both ways until the
//! sandbox ends. The caller's terminal settings come back on drop.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::termios::{self, SetArg, Termios};

/// A pseudo-terminal master and the caller's terminal it is relayed to.
pub struct Relay {
    master: OwnedFd,
    saved: Option<Termios>,
    stdin_open: bool,
    master_open: bool,
}

impl Relay {
    /// Puts the caller's terminal into raw mode and copies its size to the
    /// sandbox's terminal.
    pub fn new(master: OwnedFd) -> Self {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            termios::cfmakeraw(&mut raw);
            // Best effort: without raw mode, keys are line-buffered twice.
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        // The master is polled; reads must never block the runtime.
        let _ = rustix::io::ioctl_fionbio(&master, true);
        let relay = Relay {
            master,
            saved,
            stdin_open: true,
            master_open: true,
        };
        relay.copy_window_size();
        relay
    }

    /// The master, to poll for output.
    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// Whether the sandbox's terminal is still open (some process in the
    /// sandbox holds it).
    pub fn master_open(&self) -> bool {
        self.master_open
    }

    /// Whether the caller's stdin is still worth polling.
    pub fn stdin_open(&self) -> bool {
        self.stdin_open
    }

    /// Gives the sandbox's terminal the caller's size; the kernel then sends
    /// SIGWINCH to the sandbox's foreground process group.
    pub fn copy_window_size(&self) {
        // SAFETY: an all-zero winsize is valid storage for TIOCGWINSZ.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: both ioctls read or write one winsize through a live pointer.
        unsafe {
            if libc::ioctl(0, libc::TIOCGWINSZ, &mut size) == 0 {
                libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size);
            }
        }
    }

    /// Copies what the caller typed into the sandbox's terminal.
    pub fn pump_input(&mut self) {
        let mut buf = [0u8; 4096];
        match rustix::io::read(io::stdin(), &mut buf) {
            Ok(0) | Err(_) => self.stdin_open = false,
            Ok(n) => write_all(self.master.as_fd(), &buf[..n]),
        }
    }

    /// Copies everything the sandbox wrote to its terminal to our stdout,
    /// until nothing is left for now. EIO means the last slave descriptor in
    /// the sandbox is closed: the terminal is then no longer polled.
    pub fn pump_output(&mut self) {
        let mut buf = [0u8; 8192];
        loop {
            match rustix::io::read(&self.master, &mut buf) {
                Ok(0) => {
                    self.master_open = false;
                    return;
                }
                Ok(n) => write_all(io::stdout().as_fd(), &buf[..n]),
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => return,
                Err(_) => {
                    self.master_open = false;
                    return;
                }
            }
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::OUT,
                )];
                let _ = rustix::event::poll(&mut fds, None);
            }
            // The reader is gone; what it would have read is lost with it.
            Err(_) => return,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSADRAIN, saved);
        }
    }
}
