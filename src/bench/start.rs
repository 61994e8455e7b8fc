//! Start-to-exit latency of `/bin/true`: one row per layer of sunaba, the
//! agent profile through the command line, the OCI path over a busybox
//! bundle, and the peers.

use std::path::Path;
use std::process::Command;

use super::engine::Podman;
use super::layers::Layer;
use super::model::{Group, Latency, Report, Stats};
use super::peers::{self, Bundle, OciRuntime};
use super::sample::{self, Progress};
use super::Options;

/// A way of running `/bin/true`, sampled again and again.
pub(super) struct Variant {
    pub name: String,
    pub group: Group,
    pub what: String,
    /// One timed sample, ms.
    pub run: Box<dyn FnMut() -> Result<f64, String>>,
    /// The command whose process's peak RSS counts, if it is one command.
    pub rss: Option<Box<dyn FnMut() -> Command>>,
}

impl Variant {
    fn command(
        name: &str,
        group: Group,
        what: &str,
        make: impl FnMut() -> Command + Clone + 'static,
    ) -> Self {
        let mut timed = make.clone();
        Variant {
            name: name.into(),
            group,
            what: what.into(),
            run: Box::new(move || sample::time(&mut timed())),
            rss: Some(Box::new(make)),
        }
    }
}

pub(super) fn run(
    options: &Options,
    report: &mut Report,
    progress: &mut Progress,
) -> Result<(), String> {
    let mut variants = vec![Variant::command(
        "fork+exec",
        Group::Baseline,
        "/bin/true started by the benchmark itself",
        || Command::new("/bin/true"),
    )];
    for layer in Layer::ALL {
        let exe = options.sunaba.clone();
        variants.push(Variant::command(
            layer.name(),
            Group::Layer,
            layer.what(),
            move || {
                let mut cmd = Command::new(&exe);
                cmd.args(["bench-layer", layer.name(), "--", "/bin/true"]);
                cmd
            },
        ));
    }
    let exe = options.sunaba.clone();
    variants.push(Variant::command(
        "agent",
        Group::Layer,
        "sunaba run --profile agent: + init, profile parsing",
        move || {
            let mut cmd = Command::new(&exe);
            cmd.args(["run", "--profile", "agent", "--", "/bin/true"]);
            cmd
        },
    ));

    // The bundle lives until every sample is taken.
    let mut runtimes = Vec::new();
    let bundle = match Bundle::new() {
        Ok(b) => Some(std::rc::Rc::new(b)),
        Err(e) => {
            report.notes.push(format!("OCI rows skipped: {e}"));
            None
        }
    };
    if let Some(bundle) = &bundle {
        let sunaba = OciRuntime {
            name: "sunaba".into(),
            binary: options.sunaba.clone(),
            global: Vec::new(),
            hide_unified: false,
        };
        variants.extend(oci_variants(&sunaba, bundle, Group::Oci));
        runtimes.push(sunaba);
    }
    if options.peers {
        variants.extend(peer_variants(
            &options.sunaba,
            bundle.as_ref(),
            &mut runtimes,
            &mut report.notes,
        ));
    }

    progress.grow(variants.len() * (options.iterations as usize + 4));
    report.start = interleave(&mut variants, options.iterations, progress);
    if let Some(bundle) = &bundle {
        cleanup_state(bundle, &runtimes);
    }

    super::ratio(report, "agent vs bubblewrap", "agent", "bwrap", Some(1.0));
    super::ratio(
        report,
        "podman: sunaba vs crun",
        "podman+sunaba",
        "podman+crun",
        Some(1.0),
    );
    super::ratio(
        report,
        "podman: sunaba vs runc",
        "podman+sunaba",
        "podman+runc",
        None,
    );
    super::ratio(
        report,
        "OCI run vs crun",
        "sunaba run",
        "crun run",
        Some(0.7),
    );
    super::ratio(report, "OCI run vs runc", "sunaba run", "runc run", None);
    super::ratio(report, "OCI run vs runsc", "sunaba run", "runsc run", None);
    super::ratio(
        report,
        "OCI lifecycle vs crun",
        "sunaba create+start+delete",
        "crun create+start+delete",
        None,
    );
    super::ratio(
        report,
        "OCI lifecycle vs runc",
        "sunaba create+start+delete",
        "runc create+start+delete",
        None,
    );
    Ok(())
}

/// `run` and the create, start, wait, delete sequence of one OCI runtime.
fn oci_variants(rt: &OciRuntime, bundle: &std::rc::Rc<Bundle>, group: Group) -> Vec<Variant> {
    let root = bundle.state_root(&rt.name);
    let path = bundle.path();
    let mut out = Vec::new();
    {
        let (rt, root, path) = (rt.clone(), root.clone(), path.clone());
        let _keep = bundle.clone();
        out.push(Variant::command(
            &format!("{} run", rt.name),
            group,
            &format!("{} run of a busybox bundle", rt.name),
            move || {
                let _ = &_keep;
                let id = peers::next_id(&rt.name);
                rt.command(&root, "run", &["--bundle", &path.to_string_lossy(), &id])
            },
        ));
    }
    let rt = rt.clone();
    let keep = bundle.clone();
    out.push(Variant {
        name: format!("{} create+start+delete", rt.name),
        group,
        what: format!("{}: create, start, wait for exit, delete", rt.name),
        run: Box::new(move || {
            let _ = &keep;
            lifecycle(&rt, &root, &path)
        }),
        rss: None,
    });
    out
}

/// One container through create, start, its exit and delete.
fn lifecycle(rt: &OciRuntime, root: &Path, bundle: &Path) -> Result<f64, String> {
    let id = peers::next_id(&rt.name);
    let pid_file = root.join(format!("{id}.pid"));
    let started = std::time::Instant::now();
    sample::time(&mut rt.command(
        root,
        "create",
        &[
            "--bundle",
            &bundle.to_string_lossy(),
            "--pid-file",
            &pid_file.to_string_lossy(),
            &id,
        ],
    ))?;
    let result = (|| {
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .map_err(|e| format!("{}: {e}", pid_file.display()))?
            .trim()
            .parse()
            .map_err(|e| format!("{}: {e}", pid_file.display()))?;
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).ok_or("pid 0 in the pid file")?,
            rustix::process::PidfdFlags::empty(),
        )
        .map_err(|e| format!("pidfd_open({pid}): {e}"))?;
        sample::time(&mut rt.command(root, "start", &[&id]))?;
        let mut fds = [rustix::event::PollFd::new(
            &pidfd,
            rustix::event::PollFlags::IN,
        )];
        rustix::event::poll(&mut fds, None).map_err(|e| format!("poll pidfd {pid}: {e}"))?;
        Ok::<(), String>(())
    })();
    let deleted = sample::time(&mut rt.command(root, "delete", &["--force", &id]));
    let _ = std::fs::remove_file(&pid_file);
    result?;
    deleted?;
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

fn peer_variants(
    sunaba: &Path,
    bundle: Option<&std::rc::Rc<Bundle>>,
    runtimes: &mut Vec<OciRuntime>,
    notes: &mut Vec<String>,
) -> Vec<Variant> {
    let mut out = Vec::new();
    match peers::find("bwrap") {
        Some(bwrap) => out.push(Variant::command(
            "bwrap",
            Group::Peer,
            "bubblewrap --unshare-all, host root read-only, /dev, /proc, tmpfs /tmp",
            move || {
                let mut cmd = Command::new(&bwrap);
                cmd.args([
                    "--unshare-all",
                    "--ro-bind",
                    "/",
                    "/",
                    "--dev",
                    "/dev",
                    "--proc",
                    "/proc",
                    "--tmpfs",
                    "/tmp",
                    "/bin/true",
                ]);
                cmd
            },
        )),
        None => notes.push("bwrap: not installed (apt-get install bubblewrap)".into()),
    }
    if let Some(unshare) = peers::find("unshare") {
        out.push(Variant::command(
            "unshare",
            Group::Peer,
            "unshare -mpunif --fork: namespaces only",
            move || {
                let mut cmd = Command::new(&unshare);
                cmd.args(["-mpunif", "--fork", "/bin/true"]);
                cmd
            },
        ));
    }
    if let Some(bundle) = bundle {
        for rt in peers::oci_peers(notes) {
            out.extend(oci_variants(&rt, bundle, Group::Peer));
            runtimes.push(rt);
        }
        match podman_variants(sunaba, bundle) {
            Ok(variants) => out.extend(variants),
            Err(e) => notes.push(format!("podman rows skipped: {e}")),
        }
    }
    out
}

/// `podman run --rm` of `/bin/true` with sunaba, runc and crun (those
/// installed) as its runtime.
fn podman_variants(sunaba: &Path, bundle: &Bundle) -> Result<Vec<Variant>, String> {
    let podman = std::rc::Rc::new(Podman::new(&bundle.path().join("rootfs"))?);
    let mut runtimes = vec![("sunaba", sunaba.to_path_buf())];
    if let Some(runc) = peers::find("runc") {
        runtimes.push(("runc", runc));
    }
    if let Some(crun) = peers::find("crun") {
        let crun = if peers::hybrid_cgroups() {
            podman.hidden_cgroup2_crun(&crun)?
        } else {
            crun
        };
        runtimes.push(("crun", crun));
    }
    Ok(runtimes
        .into_iter()
        .map(|(name, runtime)| {
            let podman = podman.clone();
            Variant {
                name: format!("podman+{name}"),
                group: if name == "sunaba" {
                    Group::Oci
                } else {
                    Group::Peer
                },
                what: format!("podman run --rm --network none with --runtime {name}"),
                run: Box::new(move || sample::time(&mut podman.run_true(&runtime))),
                // podman's own memory is not the runtime's.
                rss: None,
            }
        })
        .collect())
}

/// Samples every variant `iterations` times, interleaved in a new order
/// each round, after one untimed round, then measures the peak RSS of each single-command
/// variant three times. A variant that fails once is dropped with its
/// reason.
pub(super) fn interleave(
    variants: &mut [Variant],
    iterations: u32,
    progress: &mut Progress,
) -> Vec<Latency> {
    let n = variants.len();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut failed: Vec<Option<String>> = vec![None; n];
    let mut order: Vec<usize> = (0..n).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..=iterations {
        // A new order every round: a variant's cost can depend on what ran
        // just before it (a v1 cgroup created right after a run that made
        // none is slower), and a rotation would keep the same neighbours.
        shuffle(&mut order, &mut seed);
        for &i in &order {
            progress.step(&variants[i].name);
            if failed[i].is_some() {
                continue;
            }
            match (variants[i].run)() {
                Ok(ms) if round > 0 => samples[i].push(ms),
                Ok(_) => {}
                Err(e) => failed[i] = Some(e),
            }
        }
    }
    let mut rss: Vec<Vec<f64>> = vec![Vec::new(); n];
    for _ in 0..3 {
        for (i, v) in variants.iter_mut().enumerate() {
            progress.step(&format!("{}: peak RSS", v.name));
            if let (Some(make), None) = (v.rss.as_mut(), &failed[i]) {
                #[allow(clippy::cast_precision_loss)] // KiB counts far below 2^52
                match sample::peak_rss(&mut make()) {
                    Ok(kib) => rss[i].push(kib as f64),
                    Err(e) => failed[i] = Some(e),
                }
            }
        }
    }
    variants
        .iter()
        .zip(samples.into_iter().zip(rss))
        .zip(failed)
        .map(|((v, (ms, rss)), failed)| Latency {
            name: v.name.clone(),
            group: v.group,
            what: v.what.clone(),
            ms: Stats::of(&ms),
            peak_rss_kib: (!rss.is_empty()).then(|| Stats::of(&rss)),
            failed,
        })
        .collect()
}

/// Fisher-Yates with xorshift64: reproducible, and no dependency for it.
fn shuffle(items: &mut [usize], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let j = usize::try_from(*seed % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}

/// Removes what runtimes left in their state roots after a failed sample.
fn cleanup_state(bundle: &Bundle, runtimes: &[OciRuntime]) {
    for rt in runtimes {
        peers::delete_leftovers(rt, &bundle.state_root(&rt.name));
    }
}
