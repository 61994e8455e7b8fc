//! sunaba: a daemonless Linux sandbox runtime built directly on kernel primitives.

pub mod cgroups;
pub mod seccomp;
