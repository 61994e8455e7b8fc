//! The command line: clap definitions and the mapping of each verb onto the
//! library, nothing else.

pub mod bench;
pub mod features;
pub mod lifecycle;
pub mod log;
pub mod run;
pub mod spec;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// sunaba: run a program in a sandbox built from kernel primitives.
#[derive(Debug, Parser)]
#[command(name = "sunaba", version, about, long_about = None)]
pub struct Cli {
    /// The options before the verb.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The options every verb takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log every setup step (same as --log-level debug).
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, value_name = "LEVEL", global = true)]
    pub log_level: Option<LogLevel>,
    /// Write logs to FILE instead of standard error.
    #[arg(long, value_name = "FILE", global = true)]
    pub log: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_name = "FORMAT", default_value = "text", global = true)]
    pub log_format: LogFormat,
    /// Where container state lives (default /run/sunaba, or
    /// $XDG_RUNTIME_DIR/sunaba for a non-root user).
    #[arg(long, value_name = "DIR", global = true)]
    pub root: Option<PathBuf>,
    /// Log at debug level (runc's name for --log-level debug).
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for runc compatibility: sunaba manages cgroups through
    /// cgroupfs, never through systemd, and says so.
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility (true, false or auto): sunaba detects
    /// a rootless caller by its uid.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
}

/// Adds one verb's options to its command.
type AugmentArgs = fn(clap::Command) -> clap::Command;

/// The verbs [`Cli::parse_args`] first tries alone, with their options:
/// those of a sandbox's start and end, and `bench`'s cut-down sandbox,
/// which stands for `run` in its measurements.
const ONE_VERB: [(&str, AugmentArgs); 9] = [
    ("run", <run::RunArgs as Args>::augment_args),
    ("create", <lifecycle::CreateArgs as Args>::augment_args),
    ("start", <lifecycle::IdArgs as Args>::augment_args),
    ("state", <lifecycle::IdArgs as Args>::augment_args),
    ("kill", <lifecycle::KillArgs as Args>::augment_args),
    ("delete", <lifecycle::DeleteArgs as Args>::augment_args),
    ("pause", <lifecycle::IdArgs as Args>::augment_args),
    ("resume", <lifecycle::IdArgs as Args>::augment_args),
    ("bench-layer", <bench::LayerArgs as Args>::augment_args),
];

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a sandbox and wait for it; or, given a bundle
    /// (--bundle, or a single ID with ./config.json), create, start and wait
    /// for an OCI container.
    Run(Box<run::RunArgs>),
    /// Create an OCI container from a bundle; it waits for `start`.
    Create(lifecycle::CreateArgs),
    /// Let a created container run its program.
    Start(lifecycle::IdArgs),
    /// Print a container's state as JSON.
    State(lifecycle::IdArgs),
    /// Send a signal to a container (default SIGTERM).
    Kill(lifecycle::KillArgs),
    /// Remove a container: its processes, cgroup and state.
    Delete(lifecycle::DeleteArgs),
    /// List the containers.
    List(lifecycle::ListArgs),
    /// List a container's processes.
    Ps(lifecycle::PsArgs),
    /// Run another process in a running container.
    Exec(lifecycle::ExecArgs),
    /// Freeze every process of a container (cgroup freezer).
    Pause(lifecycle::IdArgs),
    /// Thaw a paused container.
    Resume(lifecycle::IdArgs),
    /// Change a container's resource limits.
    Update(lifecycle::UpdateArgs),
    /// Print a container's resource usage and OOM events as JSON.
    Events(lifecycle::EventsArgs),
    /// Write a default config.json for a bundle.
    Spec(spec::SpecArgs),
    /// Print what this runtime supports, as runtime-spec features JSON.
    Features,
    /// Measure what each layer of isolation costs, beside the peers.
    Bench(bench::BenchArgs),
    /// Run a command in a sandbox cut down to one layer (for `bench`).
    #[command(hide = true)]
    BenchLayer(bench::LayerArgs),
    /// Run one steady-state workload and print its figure (for `bench`).
    #[command(hide = true)]
    BenchWorkload(bench::WorkloadArgs),
}

impl Cli {
    /// Parses a command line (with the program's name first).
    ///
    /// clap builds every verb with all its options before it parses, and
    /// copies the global options into each: a quarter of a MiB of heap and
    /// much of the binary's code, on the path of every sandbox's start. The
    /// verbs an engine calls per container are first tried against a
    /// command that holds only the verb named; anything that parser does
    /// not take (help, version, a typo, a misread guess) goes to the full
    /// one, which gives the same answers and messages as ever. The first
    /// bare word of a command line is its verb for both parsers, so a
    /// success of the small one is what the full one would have parsed.
    pub fn parse_args(args: Vec<OsString>) -> Result<Cli, clap::Error> {
        if let Some(cli) = Self::parse_one_verb(&args) {
            return Ok(cli);
        }
        let matches = Cli::command().try_get_matches_from(args)?;
        Cli::from_arg_matches(&matches)
    }

    fn parse_one_verb(args: &[OsString]) -> Option<Cli> {
        let (verb, augment) = args.iter().skip(1).find_map(|a| {
            let a = a.to_str()?;
            ONE_VERB.into_iter().find(|(verb, _)| *verb == a)
        })?;
        let command = GlobalArgs::augment_args(clap::Command::new("sunaba"))
            .subcommand(augment(clap::Command::new(verb)))
            .subcommand_required(true);
        let matches = command.try_get_matches_from(args).ok()?;
        Cli::from_arg_matches(&matches).ok()
    }

    /// The state root: --root, else /run/sunaba for root, else
    /// $XDG_RUNTIME_DIR/sunaba (or /tmp/sunaba-UID).
    pub fn state_root(&self) -> PathBuf {
        if let Some(root) = &self.global.root {
            return root.clone();
        }
        let euid = nix::unistd::geteuid().as_raw();
        if euid == 0 {
            return PathBuf::from("/run/sunaba");
        }
        match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(dir) => PathBuf::from(dir).join("sunaba"),
            None => PathBuf::from(format!("/tmp/sunaba-{euid}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        std::iter::once("sunaba")
            .chain(line.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    fn full(line: &str) -> Result<Cli, clap::Error> {
        let matches = Cli::command().try_get_matches_from(words(line))?;
        Cli::from_arg_matches(&matches)
    }

    #[test]
    fn the_one_verb_parser_reads_what_the_full_one_reads() {
        for line in [
            "run --profile agent -- /bin/true",
            "run -m 64m --cpus 0.5 -v /tmp:/data:ro --profile default -- sh -c true",
            "--root /run/x run -d --bundle /b ctr",
            "--log /l --log-format json --log-level debug create --bundle /b --pid-file /p ctr",
            "--systemd-cgroup --root /r create --bundle /b --console-socket /s ctr",
            "start ctr",
            "state ctr",
            "kill ctr KILL",
            "kill --all ctr 9",
            "--root /r delete --force ctr",
            "--rootless=false delete ctr",
            "pause ctr",
            "resume ctr",
            "--debug --root /r start ctr",
            "bench-layer lockdown -- /bin/true",
        ] {
            let one = Cli::parse_one_verb(&words(line))
                .unwrap_or_else(|| panic!("{line:?}: the one-verb parser refused it"));
            let full = full(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(format!("{one:?}"), format!("{full:?}"), "{line:?}");
        }
    }

    #[test]
    fn what_the_one_verb_parser_refuses_goes_to_the_full_one() {
        for line in [
            "run --help",
            "--version",
            "start",
            "kill",
            "delete --bogus ctr",
            "--root run list",
            "--root start state ctr",
            "list",
            "spec --bundle /b",
            "bench-layer",
            "bench-layer nosuch -- /bin/true",
        ] {
            let one = Cli::parse_one_verb(&words(line));
            let full = full(line);
            match (one, full) {
                (None, _) => {}
                (Some(one), Ok(full)) => {
                    assert_eq!(format!("{one:?}"), format!("{full:?}"), "{line:?}")
                }
                (Some(one), Err(e)) => {
                    panic!("{line:?}: one-verb parser took {one:?}, the full one said {e}")
                }
            }
            // And the caller's answer is the full parser's, message included.
            let answer = Cli::parse_args(words(line)).map_err(|e| e.to_string());
            let expected = full_text(line);
            assert_eq!(answer.map(|c| format!("{c:?}")), expected, "{line:?}");
        }
    }

    fn full_text(line: &str) -> Result<String, String> {
        full(line)
            .map(|c| format!("{c:?}"))
            .map_err(|e| e.to_string())
    }
}
