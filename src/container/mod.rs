//! Sandbox lifecycle, seen from the runtime: create the cgroup, clone the
//! sandbox's process, pass signals on, wait, classify the exit, clean up.

mod run;
mod signals;
mod terminal;

pub use run::{run, Exit};
