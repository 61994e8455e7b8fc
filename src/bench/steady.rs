//! Steady-state costs: the same workload inside an agent sandbox and
//! outside it, alternating, so that what is left is what the sandbox costs
//! once its program runs. With the peers, the same comparisons for what
//! their users get: crun under podman's seccomp filter against crun
//! without, and gVisor against the host.

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
    /// Under a peer OCI runtime, from the workload bundle, with this OCI
    /// seccomp filter or none.
    Oci {
        runtime: &'a OciRuntime,
        bundle: &'a WorkloadBundle,
        filter: Option<&'a serde_json::Value>,
    },
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

/// The peers the workloads also run under, from one bundle.
struct Peers {
    bundle: WorkloadBundle,
    /// crun (or runc) and the filter podman gives its containers: what the
    /// agent filter's cost is set beside.
    seccomp: Option<(OciRuntime, serde_json::Value)>,
    /// gVisor, whose user-space kernel answers every syscall itself.
    gvisor: Option<OciRuntime>,
}

impl Peers {
    /// The bundle and the peers installed here; what is missing is named
    /// in `notes`.
    fn find(sunaba: &Path, data: &Path, notes: &mut Vec<String>) -> Result<Peers, String> {
        // A container as podman makes one: its default capabilities, with
        // and without its filter.
        let bundle = WorkloadBundle::new(sunaba, data, podman_seccomp::PODMAN_CAPABILITIES)?;
        let seccomp = podman_filter()
            .map_err(|e| notes.push(format!("steady rows under podman's filter skipped: {e}")))
            .ok();
        let gvisor = peers::oci_runtime("runsc");
        if gvisor.is_none() {
            notes.push(
                "steady rows under gVisor skipped: runsc is not installed (apt-get install runsc)"
                    .into(),
            );
        }
        Ok(Peers {
            bundle,
            seccomp,
            gvisor,
        })
    }
}

impl Drop for Peers {
    /// Whatever ended the section, no container of a failed sample outlives
    /// it: each runtime deletes what its state root still lists.
    fn drop(&mut self) {
        let runtimes = self.seccomp.iter().map(|(rt, _)| rt).chain(&self.gvisor);
        for rt in runtimes {
            peers::delete_leftovers(rt, &self.bundle.state_root(&rt.name));
        }
    }
}

/// crun, else runc, with the filter podman gives its containers; or why
/// there is none.
fn podman_filter() -> Result<(OciRuntime, serde_json::Value), String> {
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
    let filter = podman_seccomp::to_oci(
        &profile,
        podman_seccomp::PODMAN_CAPABILITIES,
        podman_seccomp::Arch::native()?,
        podman_seccomp::kernel_version()?,
    )?;
    Ok((runtime, filter))
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
    let peers = if options.peers {
        Peers::find(&options.sunaba, disk.path(), &mut report.notes)
            .map_err(|e| report.notes.push(format!("steady peer rows skipped: {e}")))
            .ok()
    } else {
        None
    };
    // The same syscalls under the filter a peer's users get, against the
    // same peer without one, so the agent filter's cost is set beside it.
    let podman = peers
        .as_ref()
        .and_then(|p| Some((&p.bundle, p.seccomp.as_ref()?)));
    let podman_what = podman.map(|(_, (rt, _))| {
        (
            format!("{}, podman's seccomp profile", rt.name),
            format!("{}, no seccomp", rt.name),
        )
    });
    if let (Some((bundle, (runtime, filter))), Some((with, without))) = (podman, &podman_what) {
        let under = |filter| Side::Oci {
            runtime,
            bundle,
            filter,
        };
        for (name, workload) in [
            ("getppid", getppid(false)),
            ("personality (argument-checked)", personality.clone()),
        ] {
            cases.push(Case {
                name,
                inside: Run::new(with, under(Some(filter)), workload.clone(), filtered),
                outside: Run::new(without, under(None), workload, unfiltered),
            });
        }
    }
    // The agent's rows against the host, again under gVisor. Its syscalls
    // cost tens of microseconds here, so its loops are a hundredth and a
    // tenth as long, still a second or so; the host runs its usual ones,
    // since a loop of a few milliseconds would measure its own warming up.
    if let Some((peers, runtime)) = peers.as_ref().and_then(|p| Some((p, p.gvisor.as_ref()?))) {
        let gvisor = || Side::Oci {
            runtime,
            bundle: &peers.bundle,
            filter: None,
        };
        let gv = format!("{} (gVisor)", runtime.name);
        let short_getppid = Workload::Getppid {
            calls: 20_000,
            trivial_filter: false,
        };
        let short_tcp = Workload::Tcp { round_trips: 2_000 };
        let shm = fileio(Path::new("/dev/shm"));
        let rows = [
            ("getppid", gv.clone(), short_getppid, "host", getppid(false)),
            (
                "file write+read, bind mount",
                format!("{gv}, dir:/data"),
                fileio(Path::new("/data")),
                "host, same dir",
                fileio(disk.path()),
            ),
            (
                "file write+read, tmpfs",
                format!("{gv} /dev/shm"),
                shm.clone(),
                "host /dev/shm",
                shm,
            ),
            (
                "loopback TCP",
                format!("{gv} netns"),
                short_tcp,
                "host",
                Workload::Tcp {
                    round_trips: 20_000,
                },
            ),
        ];
        for (name, inside_what, inside, outside_what, outside) in rows {
            cases.push(Case {
                name,
                inside: Run::new(&inside_what, gvisor(), inside, None),
                outside: Run::new(outside_what, Side::Host, outside, None),
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
            Err(e) if matches!(case.inside.side, Side::Oci { .. }) => {
                report.notes.push(format!("steady peer row skipped: {e}"));
            }
            Err(e) => return Err(e),
        }
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
    if let Some((with, without)) = &podman_what {
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
    // What each layer costs a workload against the host, set beside what
    // gVisor's costs it.
    for ours in report
        .steady
        .iter()
        .filter(|s| s.inside_what.starts_with("agent") && s.outside_what.starts_with("host"))
    {
        let theirs = report.steady.iter().find(|s| {
            s.name == ours.name
                && s.outside_what == ours.outside_what
                && s.inside_what.contains("(gVisor)")
        });
        if let Some(theirs) = theirs {
            ratios.push(Ratio {
                name: format!("{}: the agent sandbox's cost vs gVisor's", ours.name),
                sunaba: format!("{} vs {}", ours.inside_what, ours.outside_what),
                peer: format!("{} vs {}", theirs.inside_what, theirs.outside_what),
                ratio: ours.factor / theirs.factor,
                target: None,
            });
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
            into.push(
                measure(&options.sunaba, run)
                    .map_err(|e| format!("{} ({}): {e}", case.name, run.what))?,
            );
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
        args.extend(["--seccomp".to_string(), seccomp.arg()]);
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
        Side::Oci {
            runtime,
            bundle,
            filter,
        } => {
            let name = format!(
                "{}-{}",
                args.join("-").replace(['/', ' '], "_"),
                if filter.is_some() { "filtered" } else { "none" }
            );
            let dir = bundle.bundle(&name, &args, *filter)?;
            let root = bundle.state_root(&runtime.name);
            let id = peers::next_id(&runtime.name);
            runtime.command(&root, "run", &["--bundle", &dir.to_string_lossy(), &id])
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
