//! OCI bundles: a directory with `config.json` and the root filesystem it
//! names (runtime-spec `bundle.md`). Loading one gives the same `Spec` the
//! engine runs for `sunaba run`, with the bundle-relative paths made
//! absolute.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

/// A bundle that cannot be used, naming the file and field.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// config.json is missing or does not parse.
    #[error("cannot load {path}: {reason}")]
    Load {
        /// The config file.
        path: PathBuf,
        /// What went wrong, as the parser said.
        reason: String,
    },
    /// A field has a value this runtime cannot carry out.
    #[error("{path}: {field}: {reason}")]
    Field {
        /// The config file.
        path: PathBuf,
        /// The JSON path of the field.
        field: &'static str,
        /// Why, and what would work.
        reason: String,
    },
}

/// A field of the process that sunaba cannot carry out: its name and why.
/// Such a field is refused, never dropped silently.
pub fn unsupported_process_field(
    process: &oci_spec::runtime::Process,
) -> Option<(&'static str, &'static str)> {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|p| !p.is_empty());
    if set(process.apparmor_profile()) {
        return Some((
            "process.apparmorProfile",
            "AppArmor profiles are not applied by sunaba; remove it (or run the container with runc)",
        ));
    }
    if set(process.selinux_label()) {
        return Some((
            "process.selinuxLabel",
            "SELinux labels are not applied by sunaba; remove it (or run the container with runc)",
        ));
    }
    if process.scheduler().is_some() {
        return Some((
            "process.scheduler",
            "scheduling policies are not set by sunaba; remove it, or set it with chrt(1) inside",
        ));
    }
    if process.io_priority().is_some() {
        return Some((
            "process.ioPriority",
            "I/O priorities are not set by sunaba; remove it, or set it with ionice(1) inside",
        ));
    }
    if process.exec_cpu_affinity().is_some() {
        return Some((
            "process.execCPUAffinity",
            "CPU affinity is not set by sunaba; remove it, or use linux.resources.cpu.cpus",
        ));
    }
    None
}

/// Loads `bundle/config.json` and makes its paths absolute: `root.path`
/// and bind mount sources are relative to the bundle (runtime-spec
/// `config.md`, "Root" and "Mounts"). A missing `linux.cgroupsPath` becomes
/// `sunaba/<id>`; a leading `/` is dropped, since every cgroup path is taken
/// from the root of each hierarchy.
///
/// # Errors
///
/// A missing or invalid config, an ociVersion other than 1.x, a missing
/// `process` or `root`, or a systemd-style cgroup path.
pub fn load(bundle: &Path, id: &str) -> Result<Spec, BundleError> {
    let path = bundle.join("config.json");
    let field = |field, reason: &str| BundleError::Field {
        path: path.clone(),
        field,
        reason: reason.to_string(),
    };
    let mut spec = Spec::load(&path).map_err(|e| BundleError::Load {
        path: path.clone(),
        reason: e.to_string(),
    })?;

    if !spec.version().starts_with("1.") {
        return Err(field(
            "ociVersion",
            &format!(
                "{:?} is not a 1.x version of the runtime-spec",
                spec.version()
            ),
        ));
    }
    let Some(process) = spec.process() else {
        return Err(field("process", "missing: there is no program to run"));
    };
    if let Some((name, reason)) = unsupported_process_field(process) {
        return Err(field(name, reason));
    }
    if let Some(linux) = spec.linux() {
        if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(field(
                "linux.timeOffsets",
                "time namespaces are not made by sunaba; remove it",
            ));
        }
        if linux.intel_rdt().is_some() {
            return Err(field(
                "linux.intelRdt",
                "Intel RDT is not configured by sunaba; remove it",
            ));
        }
        if linux
            .personality()
            .as_ref()
            .and_then(|p| p.flags().as_ref())
            .is_some_and(|f| !f.is_empty())
        {
            return Err(field(
                "linux.personality.flags",
                "personality flags are not set by sunaba; keep the domain alone",
            ));
        }
    }
    if spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.uid_mappings().is_some() || m.gid_mappings().is_some())
    {
        return Err(field(
            "mounts[].uidMappings",
            "idmapped mounts are not made by sunaba; remove the mount's mappings",
        ));
    }
    let mut root = spec
        .root()
        .clone()
        .ok_or_else(|| field("root", "missing: a root filesystem is required"))?;
    root.set_path(bundle.join(root.path()));
    spec.set_root(Some(root));

    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for m in &mut mounts {
        let is_bind = m.typ().as_deref() == Some("bind")
            || m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind");
        if let Some(source) = m.source().clone().filter(|s| is_bind && s.is_relative()) {
            m.set_source(Some(bundle.join(source)));
        }
    }
    spec.set_mounts(Some(mounts));

    let mut linux = spec
        .linux()
        .clone()
        .ok_or_else(|| field("linux", "missing: a Linux container needs it"))?;
    if linux
        .mount_label()
        .as_deref()
        .is_some_and(|l| !l.is_empty())
    {
        return Err(field(
            "linux.mountLabel",
            "SELinux mount labels are not applied by sunaba; remove it",
        ));
    }

    let cgroup = match linux.cgroups_path() {
        None => PathBuf::from(format!("sunaba/{id}")),
        Some(p) if p.to_string_lossy().contains(':') => {
            return Err(field(
                "linux.cgroupsPath",
                &format!("{} is a systemd slice:prefix:name path; sunaba manages cgroupfs directly, so give a path such as /machine/{id} (podman: --cgroup-manager cgroupfs)", p.display()),
            ))
        }
        Some(p) => p.strip_prefix("/").unwrap_or(p).to_path_buf(),
    };
    linux.set_cgroups_path(Some(cgroup));
    spec.set_linux(Some(linux));
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        dir
    }

    #[test]
    fn relative_paths_become_bundle_paths() {
        let dir = bundle(
            r#"{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},
                "root":{"path":"rootfs"},
                "mounts":[{"destination":"/data","type":"bind","source":"data","options":["rbind"]}],
                "linux":{"cgroupsPath":"/machine/c1"}}"#,
        );
        let spec = load(dir.path(), "c1").unwrap();
        assert_eq!(
            spec.root().as_ref().unwrap().path(),
            &dir.path().join("rootfs")
        );
        let m = &spec.mounts().as_ref().unwrap()[0];
        assert_eq!(m.source().as_ref().unwrap(), &dir.path().join("data"));
        assert_eq!(
            spec.linux().as_ref().unwrap().cgroups_path().as_deref(),
            Some(Path::new("machine/c1"))
        );
    }

    #[test]
    fn unusable_configs_name_the_field() {
        let dir = bundle(
            r#"{"ociVersion":"2.0.0","root":{"path":"r"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},"linux":{}}"#,
        );
        assert!(load(dir.path(), "c")
            .unwrap_err()
            .to_string()
            .contains("ociVersion"));
        let dir = bundle(
            r#"{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}},"linux":{"cgroupsPath":"system.slice:x:y"}}"#,
        );
        assert!(load(dir.path(), "c")
            .unwrap_err()
            .to_string()
            .contains("cgroupsPath"));
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), "c")
            .unwrap_err()
            .to_string()
            .contains("config.json"));
        let dir = bundle(
            r#"{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},"apparmorProfile":"x"},"linux":{}}"#,
        );
        assert!(load(dir.path(), "c")
            .unwrap_err()
            .to_string()
            .contains("apparmorProfile"));
    }

    #[test]
    fn fields_sunaba_does_not_carry_out_are_refused_by_name() {
        let process = r#""process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}"#;
        for (extra_process, linux, mounts, name) in [
            (
                r#","scheduler":{"policy":"SCHED_FIFO"}"#,
                "{}",
                "[]",
                "process.scheduler",
            ),
            (
                r#","ioPriority":{"class":"IOPRIO_CLASS_RT"}"#,
                "{}",
                "[]",
                "process.ioPriority",
            ),
            (
                r#","execCPUAffinity":{"initial":"0"}"#,
                "{}",
                "[]",
                "process.execCPUAffinity",
            ),
            (
                "",
                r#"{"timeOffsets":{"monotonic":{"secs":1}}}"#,
                "[]",
                "linux.timeOffsets",
            ),
            ("", r#"{"intelRdt":{"closID":"x"}}"#, "[]", "linux.intelRdt"),
            (
                "",
                r#"{"personality":{"domain":"LINUX","flags":["x"]}}"#,
                "[]",
                "linux.personality.flags",
            ),
            (
                "",
                "{}",
                r#"[{"destination":"/m","type":"bind","source":"/tmp","options":["bind"],"uidMappings":[{"containerID":0,"hostID":1,"size":1}],"gidMappings":[{"containerID":0,"hostID":1,"size":1}]}]"#,
                "mounts[].uidMappings",
            ),
        ] {
            let config = format!(
                r#"{{"ociVersion":"1.0.0","root":{{"path":"r"}},{process}{extra_process}}},"linux":{linux},"mounts":{mounts}}}"#
            );
            let dir = bundle(&config);
            let err = load(dir.path(), "c").expect_err(name).to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
        // The same config without them loads.
        let dir = bundle(&format!(
            r#"{{"ociVersion":"1.0.0","root":{{"path":"r"}},{process}}},"linux":{{}}}}"#
        ));
        load(dir.path(), "c").expect("loads");
    }
}
