//! The steady-state workloads, run inside a sandbox (as `sunaba
//! bench-workload`, the sunaba binary bound at its own path) and on the host,
//! so the difference is what the sandbox costs once it runs.
//!
//! Each prints one number on stdout: nanoseconds per syscall, MiB per
//! second, or microseconds per round trip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Instant;

/// A workload and its size.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Workload {
    /// `getppid` in a loop: the cheapest syscall, so a seccomp filter's
    /// cost per call shows (ns/call).
    Getppid {
        /// Calls.
        calls: u64,
        /// First install a one-instruction filter that allows everything:
        /// what any filter at all costs, the floor for a real one.
        #[arg(long)]
        trivial_filter: bool,
    },
    /// `ioctl(FIONREAD)` on a pipe in a loop: a syscall the agent filter
    /// checks the arguments of (ns/call).
    Ioctl {
        /// Calls.
        calls: u64,
    },
    /// `personality(0xffffffff)`, the query, in a loop: a syscall that the
    /// agent filter and podman's profile both allow for the same five
    /// argument values, this one last, so it compares how well each
    /// filter's program checks an argument (ns/call).
    Personality {
        /// Calls.
        calls: u64,
    },
    /// Writes a file in 64 KiB blocks, reads it back and removes it (MiB/s
    /// of data moved).
    Fileio {
        /// The directory to write in.
        dir: std::path::PathBuf,
        /// MiB to write.
        mib: u64,
    },
    /// One-byte ping-pong over a loopback TCP connection (us/round trip).
    Tcp {
        /// Round trips.
        round_trips: u64,
    },
}

impl Workload {
    /// The unit of what [`Workload::run`] returns.
    pub fn unit(&self) -> &'static str {
        match self {
            Workload::Getppid { .. } | Workload::Ioctl { .. } | Workload::Personality { .. } => {
                "ns/call"
            }
            Workload::Fileio { .. } => "MiB/s",
            Workload::Tcp { .. } => "us/round trip",
        }
    }

    /// Whether a bigger number is better (a rate) rather than worse (a time).
    pub fn is_rate(&self) -> bool {
        matches!(self, Workload::Fileio { .. })
    }

    /// Runs the workload and returns its figure, once the seccomp state is
    /// what `expect` says (when it says anything).
    ///
    /// # Errors
    ///
    /// A syscall, file or socket operation failed, or the wrong seccomp
    /// state is in force; the error names it.
    pub fn run(&self, expect: Option<Seccomp>) -> Result<f64, String> {
        if let Workload::Getppid {
            trivial_filter: true,
            ..
        } = self
        {
            allow_everything()?;
        }
        if let Some(expect) = expect {
            expect.check()?;
        }
        match self {
            Workload::Getppid { calls, .. } => Ok(getppid(*calls)),
            Workload::Ioctl { calls } => ioctl(*calls),
            Workload::Personality { calls } => personality(*calls),
            Workload::Fileio { dir, mib } => fileio(dir, *mib),
            Workload::Tcp { round_trips } => tcp(*round_trips),
        }
    }
}

/// The seccomp state a workload must find itself in. A steady-state row
/// compares a filtered run with an unfiltered one; a runtime that quietly
/// installed no filter, or one where none was asked for, would make the
/// row compare nothing, so the workload reads the kernel's word first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Seccomp {
    /// A filter is in force (`Seccomp: 2` in /proc/self/status).
    Filtered,
    /// No seccomp at all (`Seccomp: 0`).
    Unfiltered,
}

impl Seccomp {
    /// Its name on the `bench-workload` command line, as clap parses it.
    pub fn arg(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }

    fn check(self) -> Result<(), String> {
        const STATUS: &str = "/proc/self/status";
        let status = std::fs::read_to_string(STATUS).map_err(|e| format!("{STATUS}: {e}"))?;
        let mode = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .map(str::trim)
            .ok_or_else(|| format!("{STATUS} has no Seccomp: line"))?;
        let want = match self {
            Seccomp::Filtered => "2",
            Seccomp::Unfiltered => "0",
        };
        if mode == want {
            return Ok(());
        }
        let why = match self {
            // Filters are inherited and never removed.
            Seccomp::Unfiltered => {
                "a filter was inherited: run the benchmark outside any seccomp-filtered container or service"
            }
            Seccomp::Filtered => "the runtime installed no filter where its row says it does",
        };
        Err(format!(
            "the workload expected Seccomp: {want} ({}) but {STATUS} says Seccomp: {mode}: {why}",
            self.arg()
        ))
    }
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn per_call_ns(started: Instant, calls: u64) -> f64 {
    started.elapsed().as_nanos() as f64 / calls.max(1) as f64
}

/// Times `calls` calls of `call` after a tenth as many untimed ones, which
/// fault in the code and warm the caches (ns/call).
fn time_calls(calls: u64, call: impl Fn()) -> f64 {
    (0..calls / 10).for_each(|_| call());
    let started = Instant::now();
    (0..calls).for_each(|_| call());
    per_call_ns(started, calls)
}

fn getppid(calls: u64) -> f64 {
    // The raw syscall: a libc that cached the answer would measure nothing.
    time_calls(calls, || {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    })
}

/// Installs a filter of one instruction, `return ALLOW`. Every syscall
/// then takes the kernel's seccomp entry path, whose cost is what remains.
fn allow_everything() -> Result<(), String> {
    let mut allow = [libc::sock_filter {
        code: 0x06, // BPF_RET | BPF_K
        jt: 0,
        jf: 0,
        k: 0x7fff_0000, // SECCOMP_RET_ALLOW
    }];
    let program = libc::sock_fprog {
        len: 1,
        filter: allow.as_mut_ptr(),
    };
    // SAFETY: prctl takes integers only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "PR_SET_NO_NEW_PRIVS: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `program` points at `allow`, which outlives the call; the
    // kernel copies the program.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &raw const program,
        )
    };
    if rc != 0 {
        return Err(format!(
            "seccomp(SECCOMP_SET_MODE_FILTER): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn ioctl(calls: u64) -> Result<f64, String> {
    let (read_end, _write_end) = rustix::pipe::pipe().map_err(|e| format!("pipe: {e}"))?;
    let call = || {
        let mut pending: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through a pointer to a live int;
        // the descriptor is an open pipe.
        unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&read_end),
                libc::FIONREAD,
                &mut pending,
            )
        }
    };
    if call() != 0 {
        return Err(format!(
            "ioctl(FIONREAD): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(time_calls(calls, || {
        call();
    }))
}

fn personality(calls: u64) -> Result<f64, String> {
    const QUERY: libc::c_ulong = 0xffff_ffff;
    // SAFETY: personality(2) takes a plain integer; the query changes
    // nothing and returns the current persona.
    let call = || unsafe { libc::personality(QUERY) };
    if call() == -1 {
        return Err(format!(
            "personality({QUERY:#x}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(time_calls(calls, || {
        call();
    }))
}

fn fileio(dir: &Path, mib: u64) -> Result<f64, String> {
    let path = dir.join(format!("sunaba-bench-{}", std::process::id()));
    let block = vec![0x5au8; 64 * 1024];
    let blocks = mib * 16;
    let failed = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());

    let started = Instant::now();
    let result = (|| -> Result<(), String> {
        let mut file = std::fs::File::create(&path).map_err(|e| failed("create", e))?;
        for _ in 0..blocks {
            file.write_all(&block).map_err(|e| failed("write", e))?;
        }
        drop(file);
        let mut file = std::fs::File::open(&path).map_err(|e| failed("open", e))?;
        let mut buf = vec![0u8; block.len()];
        while file.read(&mut buf).map_err(|e| failed("read", e))? > 0 {}
        Ok(())
    })();
    let _ = std::fs::remove_file(&path);
    result?;
    #[allow(clippy::cast_precision_loss)] // a few hundred MiB at most
    let moved = (2 * mib) as f64;
    Ok(moved / started.elapsed().as_secs_f64())
}

fn tcp(round_trips: u64) -> Result<f64, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind 127.0.0.1: {e}"))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut peer, _) = listener.accept()?;
        peer.set_nodelay(true)?;
        let mut byte = [0u8; 1];
        while peer.read(&mut byte)? == 1 {
            peer.write_all(&byte)?;
        }
        Ok(())
    });

    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect {address}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let mut byte = [1u8; 1];
    let mut trip = || -> std::io::Result<()> {
        stream.write_all(&byte)?;
        stream.read_exact(&mut byte)
    };
    for _ in 0..round_trips / 10 {
        trip().map_err(|e| format!("round trip over {address}: {e}"))?;
    }
    let started = Instant::now();
    for _ in 0..round_trips {
        trip().map_err(|e| format!("round trip over {address}: {e}"))?;
    }
    let us = per_call_ns(started, round_trips) / 1000.0;
    drop(stream);
    let _ = echo.join();
    Ok(us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_gives_a_positive_figure_on_the_host() {
        let dir = tempfile::tempdir().expect("temp dir");
        for w in [
            Workload::Getppid {
                calls: 1000,
                trivial_filter: false,
            },
            Workload::Ioctl { calls: 1000 },
            Workload::Personality { calls: 1000 },
            Workload::Fileio {
                dir: dir.path().to_path_buf(),
                mib: 1,
            },
            Workload::Tcp { round_trips: 100 },
        ] {
            let figure = w.run(None).expect("workload runs");
            assert!(figure > 0.0 && figure.is_finite(), "{w:?}: {figure}");
        }
        // The file workload cleans up after itself.
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
    }

    #[test]
    fn the_seccomp_state_is_read_back_before_a_workload_runs() {
        // Whatever this test runs under, exactly one of the two states is
        // in force, and the other is refused with the kernel's word.
        let w = Workload::Getppid {
            calls: 10,
            trivial_filter: false,
        };
        let (ok, refused) = (
            w.run(Some(Seccomp::Filtered)),
            w.run(Some(Seccomp::Unfiltered)),
        );
        let err = match (ok, refused) {
            (Ok(_), Err(e)) | (Err(e), Ok(_)) => e,
            other => panic!("exactly one state holds: {other:?}"),
        };
        assert!(err.contains("/proc/self/status says Seccomp: "), "{err}");
    }

    #[test]
    fn a_missing_directory_is_named() {
        let err = Workload::Fileio {
            dir: "/nonexistent-sunaba-bench".into(),
            mib: 1,
        }
        .run(None)
        .expect_err("no such directory");
        assert!(err.contains("/nonexistent-sunaba-bench"), "{err}");
    }
}
