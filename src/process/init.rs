//! A minimal pid 1 for `--init`: it forks the program, forwards every signal
//! it receives to it, reaps every zombie in the pid namespace, and exits
//! with the program's status.
//!
//! Without it the program itself is pid 1, and the kernel drops any signal
//! that pid 1 has no handler for (pid_namespaces(7)), so a plain SIGTERM
//! would not end it; orphaned grandchildren would also stay zombies.

use super::channel::Channel;
use crate::sys;

/// Forks: the caller returns in the child, which goes on to exec the
/// program; the parent becomes the init and never returns.
pub(super) fn fork_init(channel: &Channel, report_pid: bool, stay: bool) -> std::io::Result<()> {
    // Block everything first, so no signal can arrive between the fork and
    // the init's first sigwaitinfo; the program restores its own mask.
    // SAFETY: an all-zero sigset_t is a valid set for sigfillset to fill.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `all` is a live sigset_t.
    unsafe { libc::sigfillset(&mut all) };
    sys::set_signal_mask(&all)?;

    // SAFETY: the process is single-threaded (a fresh clone of the
    // single-threaded runtime), so the child's copy of the heap and of every
    // lock is consistent.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(()),
        program => {
            if report_pid {
                channel.send_program_pid(program);
            }
            // A detached exec hands the program to the caller's subreaper
            // (podman's conmon waits for it there) instead of waiting.
            if !stay {
                sys::exit_now(0);
            }
            // The program holds the channel now; its exec closes it.
            // SAFETY: closing every descriptor above stderr is what an init
            // wants; nothing in this branch uses them again.
            unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
            supervise(program, &all)
        }
    }
}

fn supervise(program: libc::pid_t, all: &libc::sigset_t) -> ! {
    loop {
        // SAFETY: an all-zero siginfo_t is valid storage for the kernel to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `all` and `info` are live for the call.
        let signal = unsafe { libc::sigwaitinfo(all, &mut info) };
        if signal == -1 {
            continue;
        }
        if signal != libc::SIGCHLD {
            // SAFETY: kill takes no pointers; a failure means the program is
            // already gone, which the SIGCHLD path handles.
            unsafe { libc::kill(program, signal) };
            continue;
        }
        loop {
            let mut status = 0;
            // SAFETY: `status` is a live int for the kernel to fill.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == program {
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                // Returning from pid 1 ends the namespace: the kernel kills
                // whatever the program left behind.
                sys::exit_now(code);
            }
        }
    }
}
