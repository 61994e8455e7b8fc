//! The `sunaba` command: parse arguments, set up logging, dispatch, report
//! the error once, exit with the right status.

use std::process::ExitCode;

use sunaba::cli::{
    bench, features, lifecycle, spec, Cli, Command, GlobalArgs, LogFormat, LogLevel,
};
use sunaba::container::{oci, Exit};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn init_logging(cli: &GlobalArgs, verbose: bool) -> Result<(), String> {
    let level = match (cli.log_level, cli.verbose || cli.debug || verbose) {
        (Some(l), _) => l,
        (None, true) => LogLevel::Debug,
        (None, false) => LogLevel::Warn,
    };
    let level = match level {
        LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    };
    // Only sunaba's own events: a plain target filter, without the regular
    // expression engine that an environment-style filter links in.
    let filter = Targets::new().with_target("sunaba", level);
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false);
    let writer: Box<dyn Fn() -> Box<dyn std::io::Write> + Send + Sync> = match &cli.log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
            Box::new(move || {
                Box::new(
                    file.try_clone()
                        .expect("a just-opened log file can be duplicated"),
                )
            })
        }
        None => Box::new(|| Box::new(std::io::stderr())),
    };
    match (cli.log_format, cli.log.is_some()) {
        // On a terminal, a warning reads best as one plain line.
        (LogFormat::Text, false) => builder
            .with_writer(writer)
            .with_ansi(false)
            .without_time()
            .finish()
            .with(filter)
            .init(),
        (LogFormat::Text, true) => builder
            .with_writer(writer)
            .with_ansi(false)
            .finish()
            .with(filter)
            .init(),
        (LogFormat::Json, _) => builder
            .event_format(sunaba::cli::log::RuncJson)
            .with_writer(writer)
            .finish()
            .with(filter)
            .init(),
    }
    Ok(())
}

/// Drops the " (os error N)" that `io::Error` appends: the message already
/// says what the errno means.
fn plain(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" (os error ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + " (os error ".len()..];
        match tail.find(')') {
            Some(end) if tail[..end].chars().all(|c| c.is_ascii_digit()) => rest = &tail[end + 1..],
            _ => {
                out.push_str(" (os error ");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Runs the verb; `Some(exit)` when a sandboxed program ran to its end.
fn dispatch(cli: &Cli) -> Result<Option<Exit>, sunaba::Error> {
    let root = cli.state_root();
    let print = |text: String| {
        println!("{}", text.trim_end());
        None
    };
    match &cli.command {
        Command::Run(args) => {
            let saw_separator = std::env::args().any(|a| a == "--");
            if args.is_bundle_run(saw_separator) {
                let id = args.command.first().map(String::as_str).unwrap_or_default();
                oci::run(&root, id, &args.create_options(), args.detach)
            } else {
                sunaba::cli::run::run(args).map(Some)
            }
        }
        Command::Create(args) => lifecycle::create(&root, args).map(|()| None),
        Command::Start(args) => oci::start(&root, &args.id).map(|()| None),
        Command::State(args) => oci::state(&root, &args.id).map(print),
        Command::Kill(args) => lifecycle::kill(&root, args).map(|()| None),
        Command::Delete(args) => oci::delete(&root, &args.id, args.force).map(|()| None),
        Command::List(args) => Ok(print(lifecycle::list(&root, args))),
        Command::Exec(args) => lifecycle::exec(&root, args),
        Command::Update(args) => lifecycle::update(&root, args).map(|()| None),
        Command::Events(args) => oci::events(
            &root,
            &args.id,
            args.stats,
            std::time::Duration::from_secs(args.interval.max(1)),
        )
        .map(|()| None),
        Command::Pause(args) => oci::pause(&root, &args.id).map(|()| None),
        Command::Resume(args) => oci::resume(&root, &args.id).map(|()| None),
        Command::Ps(args) => {
            oci::ps(&root, &args.id, args.format == lifecycle::Format::Json).map(print)
        }
        Command::Spec(args) => spec::run(args).map(|()| None),
        Command::Bench(args) => bench::run(args).map(|()| None),
        Command::BenchLayer(args) => bench::layer(args).map(Some),
        Command::BenchWorkload(args) => bench::workload(args).map(|()| None),
        Command::Features => Ok(print(
            serde_json::to_string_pretty(&features::features()).unwrap_or_default(),
        )),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::parse_args(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 125 like sunaba's other own failures (and
            // docker's), so a caller can tell them from the program's status.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(125)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let verbose = matches!(&cli.command, Command::Run(args) if args.verbose);
    if let Err(e) = init_logging(&cli.global, verbose) {
        eprintln!("sunaba: {e}");
        return ExitCode::from(125);
    }
    if cli.global.systemd_cgroup {
        tracing::warn!("--systemd-cgroup: sunaba manages cgroups through cgroupfs, not systemd; cgroupsPath is taken as a cgroupfs path");
    }
    let result = dispatch(&cli);
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(exit)) => {
            if let Some(why) = exit.explanation() {
                eprintln!("sunaba: {why}");
            }
            ExitCode::from(u8::try_from(exit.status() & 0xff).unwrap_or(1))
        }
        Err(e) => {
            let message = plain(&e.to_string());
            // Into the log as well: an engine that passed --log reads the
            // reason from there.
            if cli.global.log.is_some() {
                tracing::error!("{message}");
            }
            eprintln!("sunaba: {message}");
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(125))
        }
    }
}
