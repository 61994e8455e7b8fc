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

/// A workload inside and the one it is compared with, each with what runs
/// it and how it is described.
struct Case<'a> {
    name: &'a str,
    inside: (&'a str, Side<'a>, Workload),
    outside: (&'a str, Side<'a>, Workload),
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
    let getppid = |trivial_filter| Workload::Getppid {
        calls,
        trivial_filter,
    };
    let fileio = |dir: &Path| Workload::Fileio {
        dir: dir.to_path_buf(),
        mib: 64,
    };
    let cases = [
        Case {
            name: "getppid",
            inside: ("agent", Side::Agent(&[]), getppid(false)),
            outside: (
                "agent, seccomp unconfined",
                Side::Agent(&unconfined),
                getppid(false),
            ),
        },
        Case {
            name: "getppid",
            inside: ("agent", Side::Agent(&[]), getppid(false)),
            outside: (
                "any filter (1 instruction)",
                Side::Agent(&unconfined),
                getppid(true),
            ),
        },
        Case {
            name: "ioctl (argument-checked)",
            inside: ("agent", Side::Agent(&[]), Workload::Ioctl { calls }),
            outside: (
                "agent, seccomp unconfined",
                Side::Agent(&unconfined),
                Workload::Ioctl { calls },
            ),
        },
        Case {
            name: "getppid",
            inside: ("agent", Side::Agent(&[]), getppid(false)),
            outside: ("host", Side::Host, getppid(false)),
        },
        Case {
            name: "file write+read, bind mount",
            inside: (
                "agent, -v dir:/data",
                Side::Agent(&bind_flags),
                fileio(Path::new("/data")),
            ),
            outside: ("host, same dir", Side::Host, fileio(disk.path())),
        },
        Case {
            name: "file write+read, tmpfs",
            inside: ("agent /tmp", Side::Agent(&[]), fileio(Path::new("/tmp"))),
            outside: ("host /dev/shm", Side::Host, fileio(Path::new("/dev/shm"))),
        },
        Case {
            name: "loopback TCP",
            inside: (
                "agent netns",
                Side::Agent(&[]),
                Workload::Tcp {
                    round_trips: 20_000,
                },
            ),
            outside: (
                "host",
                Side::Host,
                Workload::Tcp {
                    round_trips: 20_000,
                },
            ),
        },
    ];
    let rounds = (options.iterations / 4).clamp(3, 15) as usize;
    progress.grow(cases.len() * rounds * 2);
    for case in &cases {
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
                let ((_, side, workload), into) = if first_inside {
                    (&case.inside, &mut inside)
                } else {
                    (&case.outside, &mut outside)
                };
                into.push(
                    measure(&options.sunaba, side, workload)
                        .map_err(|e| format!("{}: {e}", case.name))?,
                );
            }
        }
        let (i, o) = (Stats::of(&inside), Stats::of(&outside));
        let factor = if case.inside.2.is_rate() {
            o.median / i.median
        } else {
            i.median / o.median
        };
        report.steady.push(Steady {
            name: case.name.into(),
            unit: case.inside.2.unit().into(),
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
    // The kernel's seccomp entry path costs the same under any filter; what
    // the agent filter adds beyond it is its own design.
    if let Some(floor) = report.steady.get(1) {
        report.ratios.push(Ratio {
            name: "getppid under the agent filter vs any filter".into(),
            sunaba: floor.inside_what.clone(),
            peer: floor.outside_what.clone(),
            ratio: floor.factor,
            target: None,
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
        Workload::Getppid {
            calls,
            trivial_filter,
        } => {
            let mut args = vec!["getppid".to_string(), calls.to_string()];
            if *trivial_filter {
                args.push("--trivial-filter".into());
            }
            args
        }
        Workload::Ioctl { calls } => vec!["ioctl".into(), calls.to_string()],
        Workload::Fileio { dir, mib } => vec![
            "fileio".into(),
            dir.to_string_lossy().into_owned(),
            mib.to_string(),
        ],
        Workload::Tcp { round_trips } => vec!["tcp".into(), round_trips.to_string()],
    }
}
