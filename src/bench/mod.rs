//! `sunaba bench`: what each layer of isolation costs, measured side by side
//! with the peers installed on the host.
//!
//! Every sample is a fresh process started by the benchmark and reaped with
//! wait4(2), so a runtime's own exec and dynamic loading count, as they do
//! for its users. Variants of one table are interleaved (A B C, B C A, ...)
//! after an untimed warm-up round, so drift in the machine (page cache, CPU
//! frequency, other load) lands on all of them alike; figures are medians
//! with the 10th and 90th percentiles as spread.

mod engine;
pub mod layers;
pub mod model;
pub mod peers;
mod podman_seccomp;
pub mod report;
pub mod sample;
mod scale;
mod start;
mod steady;
pub mod workload;

use std::path::PathBuf;

use model::{Machine, Ratio, Report};
use sample::Progress;

/// The parts of a benchmark run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Start-to-exit latency per layer, OCI path and peers.
    Start,
    /// Syscalls, file I/O and loopback TCP inside against outside.
    Steady,
    /// Start latency with many sandboxes running, idle memory, teardown.
    Scale,
    /// Sandboxes per second on one and on two cores.
    Throughput,
}

/// What to measure and how often.
#[derive(Debug, Clone)]
pub struct Options {
    /// Samples per start-latency variant.
    pub iterations: u32,
    /// Measure the peers found on the host too.
    pub peers: bool,
    /// The sections to run.
    pub sections: Vec<Section>,
    /// Sandboxes kept running for the scale section, in increasing order.
    pub scale: Vec<usize>,
    /// The sunaba binary to measure (normally this one).
    pub sunaba: PathBuf,
}

/// Runs the benchmark.
///
/// # Errors
///
/// Only what stops the whole run; a variant that fails is reported in its
/// row and the run goes on.
pub fn run(options: &Options) -> Result<Report, String> {
    let mut report = Report {
        machine: machine(&options.sunaba),
        iterations: options.iterations,
        ..Report::default()
    };
    let mut progress = Progress::new(0);
    let has = |s: Section| options.sections.contains(&s);

    // The agent profile binds ./input and keeps a named volume in sunaba's
    // data directory: every sandbox of the run gets them in a directory of
    // its own, removed at the end, instead of the caller's.
    let workspace = tempfile::Builder::new()
        .prefix("sunaba-bench-work-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?;
    std::fs::create_dir(workspace.path().join("input"))
        .map_err(|e| format!("{}/input: {e}", workspace.path().display()))?;
    std::env::set_current_dir(workspace.path())
        .map_err(|e| format!("cd {}: {e}", workspace.path().display()))?;
    std::env::set_var("SUNABA_DATA_DIR", workspace.path().join("data"));

    if has(Section::Start) {
        start::run(options, &mut report, &mut progress)?;
    }
    if has(Section::Steady) {
        steady::run(options, &mut report, &mut progress)?;
    }
    if has(Section::Scale) {
        scale::run(options, &mut report, &mut progress)?;
    }
    if has(Section::Throughput) {
        scale::throughput(options, &mut report, &mut progress)?;
    }
    progress.finish();
    if options.peers {
        report.machine.peers = peer_versions();
    }
    Ok(report)
}

/// Adds a ratio of two medians when both exist.
fn ratio(report: &mut Report, name: &str, sunaba: &str, peer: &str, target: Option<f64>) {
    let median = |n: &str| {
        report
            .start
            .iter()
            .find(|l| l.name == n && l.failed.is_none())
            .map(|l| l.ms.median)
    };
    if let (Some(a), Some(b)) = (median(sunaba), median(peer)) {
        if b > 0.0 {
            report.ratios.push(Ratio {
                name: name.into(),
                sunaba: sunaba.into(),
                peer: peer.into(),
                ratio: a / b,
                target,
            });
        }
    }
}

fn machine(sunaba: &std::path::Path) -> Machine {
    let uname = nix::sys::utsname::uname().ok();
    let memory_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024;
    let cgroups = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else if peers::hybrid_cgroups() {
        "hybrid"
    } else {
        "v1"
    };
    Machine {
        kernel: uname
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        memory_mib,
        cgroups: cgroups.into(),
        sunaba: peers::version(sunaba),
        peers: Vec::new(),
    }
}

fn peer_versions() -> Vec<(String, String)> {
    ["bwrap", "runc", "crun", "runsc"]
        .iter()
        .filter_map(|n| peers::find(n).map(|p| (n.to_string(), peers::version(&p))))
        .collect()
}
