//! Steady-state costs: the same workload inside an agent sandbox and
//! outside it, alternating, so that what is left is what the sandbox costs
//! once its program runs.

use std::path::Path;
use std::process::Command;

use super::model::{Ratio, Report, Stats, Steady};
use super::peers::{self, OciRuntime, WorkloadBundle};
use super::podman_seccomp;
use super::sample::{self, Progress};
use super::workload::{Seccomp, Workload};
use super::Options;

/// How a workload is run for one side of a comparison.
enum Side<'a> {
    /// Straight on the host.
    Host,
    /// In an agent sandbox, with these extra `sunaba run` flags.
    Agent(&'a [&'a str]),
    /// Under a peer OCI runtime, with its users' seccomp filter or none.
    Peer { peer: &'a Peer, filtered: bool },
}

/// One side of a comparison: what runs the workload, how it is described,
/// and the seccomp state the workload checks before it measures.
struct Run<'a> {
    what: String,
    side: Side<'a>,
    workload: Workload,
    seccomp: Option<Seccomp>,
}

impl<'a> Run<'a> {
    fn new(what: &str, side: Side<'a>, workload: Workload, seccomp: Option<Seccomp>) -> Self {
        Run {
            what: what.into(),
            side,
            workload,
            seccomp,
        }
    }
}

/// A workload inside and the one it is compared with.
struct Case<'a> {
    name: &'a str,
    inside: Run<'a>,
    outside: Run<'a>,
}

/// The peer whose users' filter the agent filter is compared with: crun
/// (or runc) under the profile podman gives its containers.
struct Peer {
    runtime: OciRuntime,
    bundle: WorkloadBundle,
    filter: serde_json::Value,
}

impl Peer {
    /// crun, else runc, with podman's profile, or why there is none.
    fn find(sunaba: &Path) -> Result<Peer, String> {
        let runtime = peers::oci_runtime("crun")
            .or_else(|| peers::oci_runtime("runc"))
            .ok_or("neither crun nor runc is installed (apt-get install crun)")?;
        let text = std::fs::read_to_string(podman_seccomp::PROFILE).map_err(|e| {
            format!(
                "{}: {e} (it comes with podman: apt-get install podman)",
                podman_seccomp::PROFILE
            )
        })?;
        let profile: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", podman_seccomp::PROFILE))?;
        let bundle = WorkloadBundle::new(sunaba)?;
        let caps = bundle.capabilities();
        let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
        let filter = podman_seccomp::to_oci(
            &profile,
            &caps,
            podman_seccomp::Arch::native()?,
            podman_seccomp::kernel_version()?,
        )?;
        Ok(Peer {
            runtime,
            bundle,
            filter,
        })
    }
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
    let personality = Workload::Personality { calls };
    let fileio = |dir: &Path| Workload::Fileio {
        dir: dir.to_path_buf(),
        mib: 64,
    };
    let (filtered, unfiltered) = (Some(Seccomp::Filtered), Some(Seccomp::Unfiltered));
    let agent = |w: Workload| Run::new("agent", Side::Agent(&[]), w, filtered);
    let agent_unconfined = |w: Workload| {
        Run::new(
            "agent, seccomp unconfined",
            Side::Agent(&unconfined),
            w,
            unfiltered,
        )
    };
    let mut cases = vec![
        Case {
            name: "getppid",
            inside: agent(getppid(false)),
            outside: agent_unconfined(getppid(false)),
        },
        Case {
            name: "getppid",
            inside: agent(getppid(false)),
            outside: Run::new(
                "any filter (1 instruction)",
                Side::Agent(&unconfined),
                getppid(true),
                filtered,
            ),
        },
        Case {
            name: "ioctl (argument-checked)",
            inside: agent(Workload::Ioctl { calls }),
            outside: agent_unconfined(Workload::Ioctl { calls }),
        },
        Case {
            name: "personality (argument-checked)",
            inside: agent(personality.clone()),
            outside: agent_unconfined(personality.clone()),
        },
        Case {
            name: "getppid",
            inside: agent(getppid(false)),
            outside: Run::new("host", Side::Host, getppid(false), None),
        },
        Case {
            name: "file write+read, bind mount",
            inside: Run::new(
                "agent, -v dir:/data",
                Side::Agent(&bind_flags),
                fileio(Path::new("/data")),
                filtered,
            ),
            outside: Run::new("host, same dir", Side::Host, fileio(disk.path()), None),
        },
        Case {
            name: "file write+read, tmpfs",
            inside: Run::new(
                "agent /tmp",
                Side::Agent(&[]),
                fileio(Path::new("/tmp")),
                filtered,
            ),
            outside: Run::new(
                "host /dev/shm",
                Side::Host,
                fileio(Path::new("/dev/shm")),
                None,
            ),
        },
        Case {
            name: "loopback TCP",
            inside: Run::new(
                "agent netns",
                Side::Agent(&[]),
                Workload::Tcp {
                    round_trips: 20_000,
                },
                filtered,
            ),
            outside: Run::new(
                "host",
                Side::Host,
                Workload::Tcp {
                    round_trips: 20_000,
                },
                None,
            ),
        },
    ];
    // The same syscalls under the filter a peer's users get, against the
    // same peer without one, so the agent filter's cost is set beside it.
    let peer = if options.peers {
        Peer::find(&options.sunaba)
            .map_err(|e| report.notes.push(format!("steady peer rows skipped: {e}")))
            .ok()
    } else {
        None
    };
    let peer_what = peer.as_ref().map(|p| {
        (
            format!("{}, podman's seccomp profile", p.runtime.name),
            format!("{}, no seccomp", p.runtime.name),
        )
    });
    if let (Some(peer), Some((with, without))) = (&peer, &peer_what) {
        for (name, workload) in [
            ("getppid", getppid(false)),
            ("personality (argument-checked)", personality.clone()),
        ] {
            cases.push(Case {
                name,
                inside: Run::new(
                    with,
                    Side::Peer {
                        peer,
                        filtered: true,
                    },
                    workload.clone(),
                    filtered,
                ),
                outside: Run::new(
                    without,
                    Side::Peer {
                        peer,
                        filtered: false,
                    },
                    workload,
                    unfiltered,
                ),
            });
        }
    }
    let rounds = (options.iterations / 4).clamp(3, 15) as usize;
    progress.grow(cases.len() * rounds * 2);
    for case in &cases {
        match sample_case(options, case, rounds, progress) {
            Ok(steady) => report.steady.push(steady),
            // A peer that cannot run the workload costs its rows, not the
            // run: the note says why.
            Err(e) if matches!(case.inside.side, Side::Peer { .. }) => {
                report.notes.push(format!("steady peer row skipped: {e}"));
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(peer) = &peer {
        peers::delete_leftovers(&peer.runtime, &peer.bundle.state_root(&peer.runtime.name));
    }

    let find = |name: &str, inside: &str, outside: &str| {
        report
            .steady
            .iter()
            .find(|s| s.name == name && s.inside_what == inside && s.outside_what == outside)
            .cloned()
    };
    let mut ratios = Vec::new();
    if let Some(s) = find("getppid", "agent", "agent, seccomp unconfined") {
        ratios.push(Ratio {
            name: "getppid under the agent filter vs unfiltered".into(),
            sunaba: s.inside_what,
            peer: s.outside_what,
            ratio: s.factor,
            target: Some(1.05),
        });
    }
    // The kernel's seccomp entry path costs the same under any filter; what
    // the agent filter adds beyond it is its own design.
    if let Some(s) = find("getppid", "agent", "any filter (1 instruction)") {
        ratios.push(Ratio {
            name: "getppid under the agent filter vs any filter".into(),
            sunaba: s.inside_what,
            peer: s.outside_what,
            ratio: s.factor,
            target: None,
        });
    }
    // What a filter costs a call, set beside what the peer's users pay for
    // theirs: the two cost factors over each other.
    if let Some((with, without)) = &peer_what {
        for name in ["getppid", "personality (argument-checked)"] {
            let ours = find(name, "agent", "agent, seccomp unconfined");
            let theirs = find(name, with, without);
            if let (Some(ours), Some(theirs)) = (ours, theirs) {
                ratios.push(Ratio {
                    name: format!("{name}: the agent filter's cost vs podman's profile's"),
                    sunaba: format!("{} vs {}", ours.inside_what, ours.outside_what),
                    peer: format!("{with} vs {without}"),
                    ratio: ours.factor / theirs.factor,
                    target: None,
                });
            }
        }
    }
    report.ratios.extend(ratios);
    Ok(())
}

/// Samples both sides of `case`, alternating which goes first.
fn sample_case(
    options: &Options,
    case: &Case<'_>,
    rounds: usize,
    progress: &mut Progress,
) -> Result<Steady, String> {
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
            let (run, into) = if first_inside {
                (&case.inside, &mut inside)
            } else {
                (&case.outside, &mut outside)
            };
            into.push(measure(&options.sunaba, run).map_err(|e| format!("{}: {e}", case.name))?);
        }
    }
    let (i, o) = (Stats::of(&inside), Stats::of(&outside));
    let factor = if case.inside.workload.is_rate() {
        o.median / i.median
    } else {
        i.median / o.median
    };
    Ok(Steady {
        name: case.name.into(),
        unit: case.inside.workload.unit().into(),
        inside_what: case.inside.what.clone(),
        inside: i,
        outside_what: case.outside.what.clone(),
        outside: o,
        factor,
    })
}

/// Runs the workload once and parses the figure it prints.
fn measure(sunaba: &Path, run: &Run<'_>) -> Result<f64, String> {
    let mut args = Vec::new();
    if let Some(seccomp) = run.seccomp {
        args.extend(["--seccomp".to_string(), seccomp.arg().to_string()]);
    }
    args.extend(workload_args(&run.workload));
    let mut cmd = match &run.side {
        Side::Host => {
            let mut cmd = Command::new(sunaba);
            cmd.arg("bench-workload").args(&args);
            cmd
        }
        Side::Agent(flags) => {
            let mut cmd = Command::new(sunaba);
            cmd.args(["run", "--profile", "agent"])
                .args(*flags)
                .arg("--")
                .arg(sunaba)
                .arg("bench-workload")
                .args(&args);
            cmd
        }
        Side::Peer { peer, filtered } => {
            let name = format!(
                "{}-{}",
                args.join("-").replace(['/', ' '], "_"),
                if *filtered { "podman" } else { "none" }
            );
            let bundle = peer
                .bundle
                .bundle(&name, &args, filtered.then_some(&peer.filter))?;
            let root = peer.bundle.state_root(&peer.runtime.name);
            let id = peers::next_id(&peer.runtime.name);
            peer.runtime
                .command(&root, "run", &["--bundle", &bundle.to_string_lossy(), &id])
        }
    };
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
        Workload::Personality { calls } => vec!["personality".into(), calls.to_string()],
        Workload::Fileio { dir, mib } => vec![
            "fileio".into(),
            dir.to_string_lossy().into_owned(),
            mib.to_string(),
        ],
        Workload::Tcp { round_trips } => vec!["tcp".into(), round_trips.to_string()],
    }
}
