//! Many sandboxes at once: the start latency of one more with 0, 10, 100,
//! 500 already running, sampled on the way up and down through those
//! levels five times; the memory an idle one is charged; how long
//! stopping them takes; and how many start per second on one and on two
//! cores.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::model::{Memory, Ratio, Report, ScalePoint, Stats, Teardown, Throughput};
use super::sample::{self, Progress};
use super::Options;

/// Idle agent sandboxes, each a `sunaba run` waiting on `sleep`; all killed
/// and reaped on drop, whatever happened.
struct Idle {
    running: Vec<Child>,
}

impl Idle {
    /// Starts one more and waits until its program runs.
    fn add(&mut self, sunaba: &Path) -> Result<(), String> {
        let mut child = Command::new(sunaba)
            .args([
                "run",
                "--profile",
                "agent",
                "--",
                "/bin/sh",
                "-c",
                "echo ready; exec sleep 100000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", sunaba.display()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let read = BufReader::new(stdout).read_line(&mut line);
        self.running.push(child);
        match read {
            Ok(_) if line.trim() == "ready" => Ok(()),
            _ => Err(format!(
                "idle sandbox {} did not start (sunaba exited or printed {line:?})",
                self.running.len()
            )),
        }
    }

    /// Stops all but the first `keep` with SIGTERM (the agent's init passes
    /// it on), newest first, and returns how long until the last of them
    /// was reaped.
    fn stop_to(&mut self, keep: usize) -> f64 {
        let started = Instant::now();
        let stopping = self.running.split_off(keep.min(self.running.len()));
        for child in stopping.iter().rev() {
            if let Ok(pid) = libc::pid_t::try_from(child.id()) {
                // SAFETY: kill takes no pointers; the pid is our unreaped child.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        for mut child in stopping {
            let _ = child.wait();
        }
        started.elapsed().as_secs_f64() * 1000.0
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        for child in &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Up and down through the levels this many times.
const ROUND_TRIPS: usize = 5;

/// The order the levels are visited in: up and down again, [`ROUND_TRIPS`]
/// times. The order reads the same backwards, so each level's visits sit
/// symmetrically about the middle of the section and a drift of the
/// machine's speed that is linear in time moves every level alike, where
/// sampling each level in its own stretch of time would read the drift as
/// a factor.
fn visits(levels: &[usize]) -> Vec<usize> {
    let Some((&first, rest)) = levels.split_first() else {
        return Vec::new();
    };
    let mut order = vec![first];
    for _ in 0..ROUND_TRIPS {
        order.extend(rest);
        order.extend(levels[..levels.len() - 1].iter().rev());
    }
    order
}

/// How long to leave the machine after a level changes before sampling:
/// stopping sandboxes leaves the kernel work (taking their memory cgroups
/// offline, freeing namespaces) that would otherwise be charged to the
/// next starts of a descent and to none of an ascent.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

pub(super) fn run(
    options: &Options,
    report: &mut Report,
    progress: &mut Progress,
) -> Result<(), String> {
    let samples = (options.iterations / 2).max(5) as usize;
    let order = visits(&options.scale);
    let per_visit = |level: usize| {
        let visits = order.iter().filter(|&&l| l == level).count();
        samples.div_ceil(visits)
    };
    let (mut steps, mut alive) = (1, 0);
    for &level in &order {
        // Starts up to the level, or one stopping step down to it.
        steps += level.saturating_sub(alive) + usize::from(level < alive) + per_visit(level);
        alive = level;
    }
    progress.grow(steps);

    let mut idle = Idle {
        running: Vec::new(),
    };
    let agent = |sunaba: &Path| {
        let mut cmd = Command::new(sunaba);
        cmd.args(["run", "--profile", "agent", "--", "/bin/true"]);
        cmd
    };
    let mut ms: Vec<Vec<f64>> = vec![Vec::new(); options.scale.len()];
    let mut teardown = Teardown {
        sandboxes: 0,
        batches: 0,
        total_ms: 0.0,
        per_sandbox_ms: 0.0,
    };

    for &level in &order {
        if idle.running.len() > level {
            progress.step(&format!("stopping idle sandboxes down to {level}"));
            teardown.sandboxes += idle.running.len() - level;
            teardown.batches += 1;
            teardown.total_ms += idle.stop_to(level);
        }
        while idle.running.len() < level {
            progress.step(&format!("starting idle sandbox {}", idle.running.len() + 1));
            idle.add(&options.sunaba)?;
        }
        if level > 0 && !report.memory.iter().any(|m| m.name.starts_with("idle")) {
            if let Some(kib) = idle_memory(&idle) {
                report.memory.push(Memory {
                    name: "idle agent sandbox, charged to its cgroup".into(),
                    kib,
                });
            }
        }
        std::thread::sleep(SETTLE);
        // The first start after a change warms what the change left cold
        // (page cache, slab caches) and is not kept.
        sample::time(&mut agent(&options.sunaba))?;
        let slot = options
            .scale
            .iter()
            .position(|&l| l == level)
            .ok_or("scale level vanished")?;
        for _ in 0..per_visit(level) {
            progress.step(&format!("one more with {level} running"));
            ms[slot].push(sample::time(&mut agent(&options.sunaba))?);
        }
    }

    for (&running, ms) in options.scale.iter().zip(&ms) {
        let stats = Stats::of(ms);
        let first = report.scale.first().map_or(stats.median, |p| p.ms.median);
        report.scale.push(ScalePoint {
            running,
            factor: stats.median / first,
            ms: stats,
        });
    }
    if let (Some(first), Some(last)) = (report.scale.first(), report.scale.last()) {
        if last.running > first.running {
            report.ratios.push(Ratio {
                name: format!("start with {} running vs {}", last.running, first.running),
                sunaba: format!("{} running", last.running),
                peer: format!("{} running", first.running),
                ratio: last.factor,
                target: (last.running >= 500 && first.running == 0).then_some(1.5),
            });
        }
    }

    progress.step("stopping the idle sandboxes");
    if !idle.running.is_empty() {
        teardown.sandboxes += idle.running.len();
        teardown.batches += 1;
        teardown.total_ms += idle.stop_to(0);
    }
    if teardown.sandboxes > 0 {
        #[allow(clippy::cast_precision_loss)] // a few thousand sandboxes
        let per = teardown.total_ms / teardown.sandboxes as f64;
        teardown.per_sandbox_ms = per;
        report.teardown = Some(teardown);
    }
    agent_rss(report);
    Ok(())
}

/// The peak RSS of `sunaba run --profile agent`, from the start rows.
fn agent_rss(report: &mut Report) {
    let rss = report
        .start
        .iter()
        .find(|l| l.name == "agent")
        .and_then(|l| l.peak_rss_kib.clone());
    if let Some(kib) = rss {
        report.memory.insert(
            0,
            Memory {
                name: "sunaba run --profile agent, peak RSS".into(),
                kib,
            },
        );
    }
}

/// The memory charged to the cgroups of up to ten idle sandboxes.
fn idle_memory(idle: &Idle) -> Option<Stats> {
    let mut kib = Vec::new();
    for child in idle.running.iter().take(10) {
        for dir in cgroups_of(child.id()) {
            let charged = ["memory.current", "memory.usage_in_bytes"]
                .iter()
                .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if let Some(bytes) = charged {
                #[allow(clippy::cast_precision_loss)] // bytes far below 2^52
                kib.push(bytes as f64 / 1024.0);
            }
        }
    }
    (!kib.is_empty()).then(|| Stats::of(&kib))
}

/// The memory cgroup directories sunaba with this pid made (named
/// `sunaba/run-<pid>-<nonce>`), on a v2 or a hybrid host.
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("run-{pid}-");
    ["/sys/fs/cgroup/sunaba", "/sys/fs/cgroup/memory/sunaba"]
        .iter()
        .filter_map(|p| std::fs::read_dir(p).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .filter(|p| p.join("memory.current").exists() || p.join("memory.usage_in_bytes").exists())
        .collect()
}

/// Sandboxes per second, the benchmark pinned to the first one and then
/// the first two CPUs, with as many sandboxes in flight as cores.
pub(super) fn throughput(
    options: &Options,
    report: &mut Report,
    progress: &mut Progress,
) -> Result<(), String> {
    let cpus = allowed_cpus()?;
    let count = (options.iterations as usize).max(20);
    for cores in [1, 2] {
        if cpus.len() < cores {
            report.notes.push(format!(
                "throughput on {cores} cores skipped: only {} allowed",
                cpus.len()
            ));
            continue;
        }
        progress.grow(1);
        progress.step(&format!("throughput on {cores} core(s)"));
        set_cpus(&cpus[..cores])?;
        let started = Instant::now();
        let result = std::thread::scope(|s| {
            let workers: Vec<_> = (0..cores)
                .map(|w| {
                    let exe = &options.sunaba;
                    s.spawn(move || -> Result<(), String> {
                        for _ in (w..count).step_by(cores) {
                            let mut cmd = Command::new(exe);
                            cmd.args(["run", "--profile", "agent", "--", "/bin/true"]);
                            sample::time(&mut cmd)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or(Err("worker panicked".into())))
                .collect::<Result<Vec<()>, String>>()
        });
        let elapsed = started.elapsed().as_secs_f64();
        set_cpus(&cpus)?;
        result?;
        #[allow(clippy::cast_precision_loss)] // a few hundred sandboxes
        report.throughput.push(Throughput {
            cores,
            sandboxes: count,
            per_second: count as f64 / elapsed,
        });
    }
    Ok(())
}

fn allowed_cpus() -> Result<Vec<usize>, String> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map_err(|e| format!("sched_getaffinity: {e}"))?;
    Ok((0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Pins the calling thread; the threads and children it starts afterwards
/// inherit the mask.
fn set_cpus(cpus: &[usize]) -> Result<(), String> {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        set.set(c).map_err(|e| format!("cpu {c}: {e}"))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| format!("sched_setaffinity {cpus:?}: {e}"))
}
