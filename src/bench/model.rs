//! What a benchmark run measured, as the table, the JSON file and the SVG
//! chart all read it. Times are milliseconds unless a field says otherwise.

use serde::Serialize;

/// One whole `sunaba bench` run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The machine the numbers belong to.
    pub machine: Machine,
    /// Samples taken of each start-latency variant.
    pub iterations: u32,
    /// Start-to-exit latency of `/bin/true`: sunaba's layers, then the
    /// OCI path and the peers.
    pub start: Vec<Latency>,
    /// Steady-state costs inside a sandbox against the same work outside.
    pub steady: Vec<Steady>,
    /// Memory: peak RSS of runtimes, memory charged to an idle sandbox.
    pub memory: Vec<Memory>,
    /// Start latency with sandboxes already running.
    pub scale: Vec<ScalePoint>,
    /// How long stopping many sandboxes takes.
    pub teardown: Option<Teardown>,
    /// Sandboxes started per second with a given number of cores.
    pub throughput: Vec<Throughput>,
    /// sunaba against a peer, measured in the same run.
    pub ratios: Vec<Ratio>,
    /// What was skipped and why, or how a peer had to be run.
    pub notes: Vec<String>,
}

/// The machine and software the run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    /// `uname -r`.
    pub kernel: String,
    /// CPUs this process may run on.
    pub cpus: usize,
    /// Total memory in MiB.
    pub memory_mib: u64,
    /// `v2`, `hybrid` or `v1`.
    pub cgroups: String,
    /// sunaba's version.
    pub sunaba: String,
    /// Peer name and the version it reported.
    pub peers: Vec<(String, String)>,
}

/// Which part of the start-latency table a variant belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// No runtime: fork and exec from the benchmark itself.
    Baseline,
    /// sunaba with one more isolation layer than the previous row.
    Layer,
    /// sunaba driven as an OCI runtime over a bundle.
    Oci,
    /// Another runtime doing comparable work.
    Peer,
}

/// Medians and spread of a set of samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub median: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Smallest sample.
    pub min: f64,
}

impl Stats {
    /// Summarises samples; an empty set gives all zeros.
    pub fn of(samples: &[f64]) -> Stats {
        if samples.is_empty() {
            return Stats::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        // Ranks are small non-negative integers held in an f64.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let at = |q: f64| {
            // Linear interpolation between the two nearest ranks.
            let pos = q * (sorted.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        };
        Stats {
            n: sorted.len(),
            median: at(0.5),
            p10: at(0.1),
            p90: at(0.9),
            min: sorted[0],
        }
    }
}

/// Start-to-exit latency of one variant.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Short name (`rootfs`, `bwrap`, `crun run`).
    pub name: String,
    /// Where it belongs.
    pub group: Group,
    /// What the variant does, in a phrase.
    pub what: String,
    /// Milliseconds from spawn to reaped exit.
    pub ms: Stats,
    /// Peak RSS of the runtime process (wait4's ru_maxrss), KiB.
    pub peak_rss_kib: Option<Stats>,
    /// Why the variant has no samples, when it has none.
    pub failed: Option<String>,
}

/// A steady-state workload inside a sandbox and outside it.
#[derive(Debug, Clone, Serialize)]
pub struct Steady {
    /// The workload (`getppid`, `tmpfs write+read`).
    pub name: String,
    /// Unit of `inside` and `outside` (`ns/call`, `MiB/s`, `us/round trip`).
    pub unit: String,
    /// What runs it inside (`agent`, `agent, seccomp unconfined`).
    pub inside_what: String,
    /// The measurement inside.
    pub inside: Stats,
    /// What it is compared with (`host`, `agent without seccomp`).
    pub outside_what: String,
    /// The measurement it is compared with.
    pub outside: Stats,
    /// Cost factor: inside/outside for times, outside/inside for rates,
    /// so above 1 always means slower inside.
    pub factor: f64,
}

/// A memory figure.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// What was measured (`sunaba peak RSS`, `idle sandbox cgroup`).
    pub name: String,
    /// KiB.
    pub kib: Stats,
}

/// Start latency with `running` sandboxes alive.
#[derive(Debug, Clone, Serialize)]
pub struct ScalePoint {
    /// Sandboxes already running.
    pub running: usize,
    /// Start-to-exit latency of one more agent sandbox of `/bin/true`.
    pub ms: Stats,
    /// This latency over the latency with none running.
    pub factor: f64,
}

/// Stopping many sandboxes at once, in the batches the scale section
/// stops on its way down.
#[derive(Debug, Clone, Serialize)]
pub struct Teardown {
    /// How many were stopped, over all batches.
    pub sandboxes: usize,
    /// How many times a batch was stopped.
    pub batches: usize,
    /// The sum over batches of the time from the first signal to the last
    /// runtime reaped, ms.
    pub total_ms: f64,
    /// `total_ms / sandboxes`.
    pub per_sandbox_ms: f64,
}

/// Sandboxes started (and finished) per second.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Cores the benchmark and its children were pinned to.
    pub cores: usize,
    /// Sandboxes run.
    pub sandboxes: usize,
    /// Sandboxes per second.
    pub per_second: f64,
}

/// sunaba's median over a peer's, from the same interleaved run.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// What is compared (`agent vs bwrap`).
    pub name: String,
    /// The sunaba variant.
    pub sunaba: String,
    /// The peer variant.
    pub peer: String,
    /// sunaba / peer; below 1 means sunaba is faster.
    pub ratio: f64,
    /// The goal this project set for the ratio, if any.
    pub target: Option<f64>,
}
