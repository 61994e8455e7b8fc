//! `bench`: what isolation costs, layer by layer, beside the peers; and the
//! two hidden verbs it runs as its own children (`bench-layer`,
//! `bench-workload`).

use std::path::PathBuf;

use clap::Args;

use crate::bench::{
    self,
    layers::Layer,
    workload::{Seccomp, Workload},
    Section,
};
use crate::container::Exit;
use crate::Error;

/// Options of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Samples of each start-latency variant (interleaved across variants).
    #[arg(short = 'n', long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub iterations: u32,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also draw the start latency per layer as an SVG chart in FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Measure bubblewrap, unshare, runc, crun and runsc too, where installed.
    ///
    /// Start latency under each, and under podman with each as its runtime;
    /// the syscall loops under crun with podman's seccomp filter against
    /// crun without one; the workloads measured against the host again
    /// under runsc.
    #[arg(long)]
    pub peers: bool,
    /// Sections to run (default: all).
    #[arg(long, value_delimiter = ',', value_name = "SECTION")]
    pub only: Vec<Section>,
    /// Idle sandboxes to keep running in the scale section, ascending.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0,10,100,500",
        value_name = "N,..."
    )]
    pub scale: Vec<usize>,
}

/// Options of the hidden `bench-layer`.
#[derive(Debug, Args)]
pub struct LayerArgs {
    /// The top layer to build.
    pub layer: Layer,
    /// The command.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Options of the hidden `bench-workload`.
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// Refuse to run unless the seccomp state in force is this one.
    #[arg(long, value_enum)]
    pub seccomp: Option<Seccomp>,
    /// The workload.
    #[command(subcommand)]
    pub workload: Workload,
}

/// Runs `bench`: the table on stdout, JSON and SVG where asked.
///
/// # Errors
///
/// Bad options, a run that could not go on, or an output file that cannot
/// be written.
pub fn run(args: &BenchArgs) -> Result<(), Error> {
    let invalid = |what: String| Error::Container(what);
    // The layers above the runtime need cgroups and mounts a rootless
    // sandbox may not have, and the peers need root to run at all.
    if !nix::unistd::geteuid().is_root() {
        return Err(invalid(
            "bench: run as root (sudo sunaba bench): the layers and the peers it measures need it"
                .into(),
        ));
    }
    if args.scale.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid(format!(
            "--scale {:?}: give the numbers of idle sandboxes in ascending order, e.g. 0,10,100,500",
            args.scale
        )));
    }
    let sunaba = std::env::current_exe().map_err(|e| Error::Io {
        what: "find the sunaba binary".into(),
        source: e,
    })?;
    let options = bench::Options {
        iterations: args.iterations,
        peers: args.peers,
        sections: if args.only.is_empty() {
            vec![
                Section::Start,
                Section::Steady,
                Section::Scale,
                Section::Throughput,
            ]
        } else {
            args.only.clone()
        },
        scale: args.scale.clone(),
        sunaba,
    };
    // The benchmark works in a directory of its own; the output files are
    // named relative to where it was started.
    let absolute = |p: &Option<PathBuf>| p.as_deref().map(std::path::absolute).transpose();
    let (json, svg) = absolute(&args.json)
        .and_then(|j| Ok((j, absolute(&args.svg)?)))
        .map_err(|e| Error::Io {
            what: "resolve the output paths".into(),
            source: e,
        })?;
    // A long run must not be lost to an output path that cannot be written.
    for (flag, path) in [("--json", &json), ("--svg", &svg)] {
        let Some(dir) = path.as_deref().and_then(std::path::Path::parent) else {
            continue;
        };
        if !dir.is_dir() {
            return Err(invalid(format!(
                "{flag}: directory {} does not exist; create it or name a file in an existing one",
                dir.display()
            )));
        }
    }
    let report = bench::run(&options).map_err(|e| invalid(format!("bench: {e}")))?;

    print!("{}", bench::report::table(&report));
    let write = |path: &PathBuf, text: String| {
        std::fs::write(path, text).map_err(|e| Error::Io {
            what: format!("write {}", path.display()),
            source: e,
        })
    };
    if let Some(path) = &json {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        write(path, text + "\n")?;
    }
    if let Some(path) = &svg {
        write(path, bench::report::svg(&report))?;
    }
    Ok(())
}

/// Runs the hidden `bench-layer`.
///
/// # Errors
///
/// Anything that keeps the program from starting.
pub fn layer(args: &LayerArgs) -> Result<Exit, Error> {
    bench::layers::run(args.layer, &args.command)
}

/// Runs the hidden `bench-workload` and prints its figure.
///
/// # Errors
///
/// The workload failed; the error names the operation.
pub fn workload(args: &WorkloadArgs) -> Result<(), Error> {
    let figure = args.workload.run(args.seccomp).map_err(Error::Container)?;
    println!("{figure}");
    Ok(())
}
