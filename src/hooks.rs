//! OCI hooks (runtime-spec `config.md`, "POSIX-platform Hooks"): programs
//! the runtime runs at points of the lifecycle, each with the container's
//! state JSON on its standard input.
//!
//! prestart, createRuntime, poststart and poststop run in the runtime's
//! namespaces, from the runtime. createContainer and startContainer run in
//! the container's namespaces, so the container's first process runs them
//! itself, with the state it receives from the runtime. Hooks run in order;
//! the first that fails or outlives its timeout stops the operation.
//!
//! createContainer runs before the process gives up any privilege (user,
//! capabilities, seccomp), as root of the container. Known deviation: it
//! runs after pivot_root rather than just before it, so its path and the
//! files it names resolve in the container's root, not the host's.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// A hook that failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// It could not be started.
    #[error("{kind} hook {path}: cannot run it: {source}")]
    Spawn {
        /// The lifecycle point.
        kind: &'static str,
        /// The hook's path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It exited non-zero or was killed.
    #[error("{kind} hook {path} failed: {status}")]
    Failed {
        /// The lifecycle point.
        kind: &'static str,
        /// The hook's path.
        path: String,
        /// How it ended.
        status: String,
    },
    /// It ran longer than its timeout and was killed.
    #[error("{kind} hook {path} timed out after {seconds}s and was killed")]
    TimedOut {
        /// The lifecycle point.
        kind: &'static str,
        /// The hook's path.
        path: String,
        /// The timeout.
        seconds: i64,
    },
}

/// Runs `hooks` one after the other with `state` on their stdin.
///
/// # Errors
///
/// The first hook that cannot start, fails, or times out.
pub fn run(kind: &'static str, hooks: &[Hook], state: &str) -> Result<(), HookError> {
    for hook in hooks {
        run_one(kind, hook, state)?;
    }
    Ok(())
}

fn run_one(kind: &'static str, hook: &Hook, state: &str) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let args = hook.args().clone().unwrap_or_default();
    let mut command = Command::new(hook.path());
    if let Some((arg0, rest)) = args.split_first() {
        command.arg0(arg0).args(rest);
    }
    command.env_clear();
    for var in hook.env().iter().flatten() {
        if let Some((name, value)) = var.split_once('=') {
            command.env(name, value);
        }
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| HookError::Spawn {
            kind,
            path: path.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state may close stdin early.
        let _ = stdin.write_all(state.as_bytes());
    }

    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| (Instant::now() + Duration::from_secs(t.unsigned_abs()), t));
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(HookError::Failed {
                    kind,
                    path,
                    status: status.to_string(),
                })
            }
            Ok(None) => {}
            Err(source) => return Err(HookError::Spawn { kind, path, source }),
        }
        if let Some((at, seconds)) = deadline {
            if Instant::now() >= at {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookError::TimedOut {
                    kind,
                    path,
                    seconds,
                });
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(script: &str, timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default().path("/bin/sh").args(vec![
            "sh".to_string(),
            "-c".into(),
            script.into(),
        ]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    #[test]
    fn hooks_read_the_state_and_failures_stop_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("state");
        let ok = hook(&format!("cat > {}", out.display()), None);
        run("prestart", &[ok], "{\"id\":\"c\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"c\"}");

        let err = run("poststart", &[hook("exit 3", None)], "{}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("poststart") && err.contains('3'), "{err}");
        let err = run("prestart", &[hook("sleep 5", Some(1))], "{}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("timed out"), "{err}");
    }
}
