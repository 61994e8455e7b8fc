//! The command line: clap definitions and the mapping of each verb onto the
//! library, nothing else.

pub mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// sunaba: run a program in a sandbox built from kernel primitives.
#[derive(Debug, Parser)]
#[command(name = "sunaba", version, about, long_about = None)]
pub struct Cli {
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
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

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
    /// Run a command in a sandbox and wait for it.
    Run(run::RunArgs),
}
