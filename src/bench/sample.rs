//! Taking one sample: the time from spawning a command to reaping it, or
//! the peak RSS of its process. Also the progress line.

use std::io::IsTerminal;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Runs `cmd` with no input and its output discarded, and returns the
/// milliseconds from spawn to reaped exit.
///
/// # Errors
///
/// The command could not start or did not exit 0; the message then holds
/// the last line it wrote to stderr (from a second, untimed run).
pub fn time(cmd: &mut Command) -> Result<f64, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("{}: {e}", program(cmd)))?;
    let status = reap(child.id())?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status != 0 {
        return Err(explain(cmd, status));
    }
    Ok(ms)
}

/// Runs `cmd` (input and output discarded) and returns the peak RSS of
/// its own process, KiB: VmHWM read at its exit, caught with ptrace(2)'s
/// exit event while its memory still exists.
///
/// wait4's ru_maxrss cannot give this: a child's count starts from the
/// memory of the process that forked it (the benchmark), which exec then
/// records as the child's maximum.
///
/// # Errors
///
/// The command could not start, was not traced, or did not exit 0.
pub fn peak_rss(cmd: &mut Command) -> Result<u64, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and makes one
    // raw syscall, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let null: *mut libc::c_void = std::ptr::null_mut();
            if libc::ptrace(libc::PTRACE_TRACEME, 0, null, null) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let child = cmd.spawn().map_err(|e| format!("{}: {e}", program(cmd)))?;
    let pid = libc::pid_t::try_from(child.id()).map_err(|_| "pid out of range".to_string())?;
    let mut hwm = None;
    loop {
        let mut status = 0;
        // SAFETY: `status` is a live int; the pid is our unreaped child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("waitpid({pid}): {err}"));
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            if status != 0 {
                return Err(explain(cmd, status));
            }
            return hwm.ok_or_else(|| format!("{}: no exit event seen", program(cmd)));
        }
        let signal = libc::WSTOPSIG(status);
        let event = status >> 16;
        let pass_on = if event == libc::PTRACE_EVENT_EXIT {
            hwm = vm_hwm(pid);
            0
        } else if signal == libc::SIGTRAP && event == 0 {
            // The stop after an exec (never a signal to pass on): from here
            // on, stop once more at exit.
            let options = libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_EXITKILL;
            // SAFETY: the tracee is stopped; the option word is passed by value.
            unsafe { libc::ptrace(libc::PTRACE_SETOPTIONS, pid, 0, options) };
            0
        } else {
            signal
        };
        // SAFETY: the tracee is stopped; the signal to deliver is passed by value.
        unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, pass_on) };
    }
}

/// VmHWM of a live (or exiting) process, KiB.
fn vm_hwm(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `cmd` and returns its stdout.
///
/// # Errors
///
/// The command could not start or did not exit 0; the message holds the
/// last line of its stderr.
pub fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", program(cmd)))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("no message").trim();
        return Err(format!("{} failed ({}): {last}", program(cmd), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits for `pid` and returns its wait status.
fn reap(pid: u32) -> Result<i32, String> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
    let mut status = 0;
    loop {
        // SAFETY: `status` is live for the call; the pid is our own child,
        // spawned and not yet reaped.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waitpid({pid}): {err}"));
        }
    }
}

fn program(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

/// Runs the failed command again with its stderr kept, for the message.
fn explain(cmd: &mut Command, status: i32) -> String {
    let how = if libc::WIFEXITED(status) {
        format!("exit status {}", libc::WEXITSTATUS(status))
    } else {
        format!("signal {}", libc::WTERMSIG(status))
    };
    let again = cmd.stderr(Stdio::piped()).output();
    let last = again
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_default();
    format!("{} failed ({how}): {last}", program(cmd))
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
pub struct Progress {
    total: usize,
    done: usize,
    draw: bool,
}

impl Progress {
    /// A bar for `total` steps.
    pub fn new(total: usize) -> Self {
        Progress {
            total: total.max(1),
            done: 0,
            draw: std::io::stderr().is_terminal(),
        }
    }

    /// Adds steps to the total (a section found more work than planned).
    pub fn grow(&mut self, steps: usize) {
        self.total += steps;
    }

    /// One step done, now working on `what`.
    pub fn step(&mut self, what: &str) {
        self.done = (self.done + 1).min(self.total);
        if !self.draw {
            return;
        }
        const WIDTH: usize = 30;
        let filled = WIDTH * self.done / self.total;
        eprint!(
            "\r\x1b[K[{}{}] {:3}% {what}",
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            100 * self.done / self.total
        );
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if self.draw {
            eprint!("\r\x1b[K");
        }
    }
}
