//! Signals the runtime passes on to the sandbox. They are blocked and read
//! from a signalfd (signalfd(2)), so the single-threaded runtime can wait for
//! a signal, the sandbox's exit and a timeout in one poll(2).

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The signals forwarded to the sandbox: what a terminal, a supervisor or a
/// user sends to end, reload or resize a program.
const FORWARDED: &[Signal] = &[
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGALRM,
];

/// Forwarded signals, blocked for the runtime's lifetime and readable from
/// a signalfd; the previous mask comes back on drop.
pub struct Signals {
    fd: SignalFd,
    saved: SigSet,
}

impl Signals {
    /// Blocks the forwarded signals and opens the signalfd. Called before
    /// clone, so a signal sent during setup is queued, not lost.
    ///
    /// # Errors
    ///
    /// sigprocmask(2) or signalfd(2) failing.
    pub fn block() -> std::io::Result<Self> {
        let mut set = SigSet::empty();
        for s in FORWARDED {
            set.add(*s);
        }
        let mut saved = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut saved))?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
        Ok(Signals { fd, saved })
    }

    /// The mask from before [`Signals::block`], for the program to restore.
    pub fn saved_mask(&self) -> libc::sigset_t {
        *self.saved.as_ref()
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// Reads every pending signal.
    pub fn drain(&mut self) -> Vec<i32> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            // Signal numbers are small positive integers.
            #[allow(clippy::cast_possible_wrap)]
            out.push(info.ssi_signo as i32);
        }
        out
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // Restoring a mask that was valid before cannot fail in a way that
        // could be acted on here.
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.saved), None);
    }
}
