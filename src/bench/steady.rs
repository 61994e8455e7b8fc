//! Steady-state costs: the same workload inside an agent sandbox and
//! outside it, alternating, so that what is left is what the sandbox costs
//! once its program runs.

use std::path::Path;
use std::process::Command;

use super::model::{Ratio, Report, Stats, Steady};
use super::sample::{self, Progress};
use super::workload::Workload;
use super::Options;

/// How a workload is run for one side of a comparison.
enum Side<'a> {
    /// Straight on the host.
    Host,
    /// In an agent sandbox, with these extra `sunaba run` flags.
    Agent(&'a [&'a str]),
}

struct Case<'a> {
    name: &'a str,
    workload: Workload,
    inside: (&'a str, Side<'a>),
    outside: (&'a str, Side<'a>),
}

pub(super) fn run(
    options: &Options,
    report: &mut Report,
    progress: &mut Progress,
) -> Result<(), String> {
    // A disk-backed directory for the bind-mount case; /tmp may be tmpfs.
    let disk = tempfile::Builder::new()
        .prefix("sunaba-bench-io-")
        .tempdir_in("/var/tmp")
        .map_err(|e| format!("temporary directory in /var/tmp: {e}"))?;
    let bind = format!("{}:/data", disk.path().display());
    let bind_flags = ["-v", bind.as_str()];
    let unconfined = ["--security-opt", "seccomp=unconfined"];
    let calls = 2_000_000;
    let cases = [
        Case {
            name: "getppid",
            workload: Workload::Getppid { calls },
            inside: ("agent", Side::Agent(&[])),
            outside: ("agent, seccomp unconfined", Side::Agent(&unconfined)),
        },
        Case {
            name: "ioctl (argument-checked)",
            workload: Workload::Ioctl { calls },
            inside: ("agent", Side::Agent(&[])),
            outside: ("agent, seccomp unconfined", Side::Agent(&unconfined)),
        },
        Case {
            name: "getppid",
            workload: Workload::Getppid { calls },
            inside: ("agent", Side::Agent(&[])),
            outside: ("host", Side::Host),
        },
        Case {
            name: "file write+read, bind mount",
            workload: Workload::Fileio {
                dir: "/data".into(),
                mib: 64,
            },
            inside: ("agent, -v dir:/data", Side::Agent(&bind_flags)),
            outside: ("host, same dir", Side::Host),
        },
        Case {
            name: "file write+read, tmpfs",
            workload: Workload::Fileio {
                dir: "/tmp".into(),
                mib: 64,
            },
            inside: ("agent /tmp", Side::Agent(&[])),
            outside: ("host /dev/shm", Side::Host),
        },
        Case {
            name: "loopback TCP",
            workload: Workload::Tcp {
                round_trips: 20_000,
            },
            inside: ("agent netns", Side::Agent(&[])),
            outside: ("host", Side::Host),
        },
    ];
    let rounds = (options.iterations / 4).clamp(3, 15) as usize;
    progress.grow(cases.len() * rounds * 2);
    for case in &cases {
        let host_workload = match &case.workload {
            Workload::Fileio { mib, dir } if dir == Path::new("/data") => Workload::Fileio {
                dir: disk.path().to_path_buf(),
                mib: *mib,
            },
            Workload::Fileio { mib, .. } => Workload::Fileio {
                dir: "/dev/shm".into(),
                mib: *mib,
            },
            other => other.clone(),
        };
        let (mut inside, mut outside) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which side goes first, so neither always runs on a
            // cache the other warmed.
            let order = if round % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for first_inside in order {
                progress.step(case.name);
                let (side, into) = if first_inside {
                    (&case.inside.1, &mut inside)
                } else {
                    (&case.outside.1, &mut outside)
                };
                let w = if matches!(side, Side::Host) {
                    &host_workload
                } else {
                    &case.workload
                };
                into.push(
                    measure(&options.sunaba, side, w).map_err(|e| format!("{}: {e}", case.name))?,
                );
            }
        }
        let (i, o) = (Stats::of(&inside), Stats::of(&outside));
        let factor = if case.workload.is_rate() {
            o.median / i.median
        } else {
            i.median / o.median
        };
        report.steady.push(Steady {
            name: case.name.into(),
            unit: case.workload.unit().into(),
            inside_what: case.inside.0.into(),
            inside: i,
            outside_what: case.outside.0.into(),
            outside: o,
            factor,
        });
    }
    if let Some(getppid) = report.steady.first() {
        report.ratios.push(Ratio {
            name: "getppid under the agent filter vs unfiltered".into(),
            sunaba: getppid.inside_what.clone(),
            peer: getppid.outside_what.clone(),
            ratio: getppid.factor,
            target: Some(1.05),
        });
    }
    Ok(())
}

/// Runs the workload once on `side` and parses the figure it prints.
fn measure(sunaba: &Path, side: &Side<'_>, workload: &Workload) -> Result<f64, String> {
    let mut cmd = match side {
        Side::Host => Command::new(sunaba),
        Side::Agent(flags) => {
            let mut cmd = Command::new(sunaba);
            cmd.args(["run", "--profile", "agent"])
                .args(*flags)
                .arg("--")
                .arg(sunaba);
            cmd
        }
    };
    cmd.arg("bench-workload").args(workload_args(workload));
    let out = sample::output(&mut cmd)?;
    out.trim()
        .parse::<f64>()
        .map_err(|_| format!("the workload printed {:?}, not a number", out.trim()))
}

fn workload_args(w: &Workload) -> Vec<String> {
    match w {
        Workload::Getppid { calls } => vec!["getppid".into(), calls.to_string()],
        Workload::Ioctl { calls } => vec!["ioctl".into(), calls.to_string()],
        Workload::Fileio { dir, mib } => vec![
            "fileio".into(),
            dir.to_string_lossy().into_owned(),
            mib.to_string(),
        ],
        Workload::Tcp { round_trips } => vec!["tcp".into(), round_trips.to_string()],
    }
}
