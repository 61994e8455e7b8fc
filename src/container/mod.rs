//! Sandbox lifecycle, seen from the runtime: create the cgroup, clone the
//! sandbox's process, pass signals on, wait, classify the exit, clean up.

pub mod oci;
mod run;
mod signals;
pub mod state;
mod terminal;

pub use run::{run, Exit};
