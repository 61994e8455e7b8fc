//! Turns merged settings into an OCI runtime `Spec` and the run options the
//! spec has no field for.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{
    Capabilities, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxIdMappingBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder,
};

use super::layer::{Layer, NetworkMode};
use super::values::{SwapLimit, VolumeSource};
use super::ConfigError;
use crate::capabilities::parse_capability;
use crate::mounts::{ROOT_ANNOTATION, ROOT_TMPFS};

/// The host directories that make up the default root, bound read-only.
pub fn host_system_dirs() -> Vec<PathBuf> {
    [
        "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
    ]
    .iter()
    .map(PathBuf::from)
    .filter(|p| p.exists())
    .collect()
}

/// Paths under /proc and /sys that leak host state; hidden as runc does.
const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths under /proc that change the host when written; read-only as runc does.
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the caller's situation adds to the settings.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// A unique id for this sandbox (names its cgroup).
    pub id: String,
    /// The caller's effective uid; non-zero means rootless.
    pub euid: u32,
    /// The caller's effective gid.
    pub egid: u32,
    /// The directory relative volume sources are resolved against.
    pub cwd: PathBuf,
    /// Where named volumes live.
    pub volume_dir: PathBuf,
    /// Give the program a pseudo-terminal (the caller's stdin and stdout
    /// are terminals).
    pub terminal: bool,
}

/// Run options the runtime-spec has no field for.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run a reaping init as pid 1.
    pub init: bool,
    /// Kill the sandbox after this long.
    pub timeout: Option<Duration>,
    /// Fail when a resource limit cannot be enforced.
    pub require_limits: bool,
    /// Make no cgroup at all. Only `sunaba bench` sets it, to measure what
    /// the layers below the cgroup cost.
    pub no_cgroup: bool,
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, ConfigError> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(|e| invalid("mount", format!("{dest}: {e}")))
}

fn bind(source: &Path, dest: &Path, read_only: bool) -> Result<Mount, ConfigError> {
    let mut options = vec!["rbind", "nosuid", "nodev"];
    if read_only {
        options.push("rro");
    }
    let dest = dest.to_string_lossy();
    mount(&dest, "bind", &source.to_string_lossy(), &options)
}

/// The capability set: the layer's complete set, then drops, then adds.
fn capability_set(layer: &Layer) -> Result<Capabilities, ConfigError> {
    let s = &layer.security;
    let mut set: Capabilities = match &s.capabilities {
        Some(names) => names
            .iter()
            .map(|n| parse_capability(n))
            .collect::<Result<_, _>>()?,
        None => Capabilities::new(),
    };
    // ALL means every capability sunaba itself may pass on: its bounding
    // set, which a restricted host (or an outer sandbox) may have trimmed.
    let all = || -> Capabilities {
        caps::read(None, caps::CapSet::Bounding)
            .unwrap_or_else(|_| caps::all())
            .iter()
            .filter_map(|c| parse_capability(&c.to_string()).ok())
            .collect()
    };
    for name in &s.cap_drop {
        if name.eq_ignore_ascii_case("all") {
            set.clear();
        } else {
            set.remove(&parse_capability(name)?);
        }
    }
    for name in &s.cap_add {
        if name.eq_ignore_ascii_case("all") {
            set.extend(all());
        } else {
            set.insert(parse_capability(name)?);
        }
    }
    Ok(set)
}

fn environment(layer: &Layer, uid: u32) -> Vec<String> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        (
            "HOME".into(),
            if uid == 0 { "/root".into() } else { "/".into() },
        ),
    ];
    if let Ok(term) = std::env::var("TERM") {
        env.push(("TERM".into(), term));
    }
    for var in &layer.process.env {
        let value = match &var.value {
            Some(v) => v.clone(),
            None => match std::env::var(&var.name) {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        env.retain(|(n, _)| *n != var.name);
        env.push((var.name.clone(), value));
    }
    env.into_iter().map(|(n, v)| format!("{n}={v}")).collect()
}

/// The mounts of the sandbox, in the order they are made.
fn mounts(
    layer: &Layer,
    program: Option<&Path>,
    ctx: &RunContext,
) -> Result<Vec<Mount>, ConfigError> {
    let fs = &layer.filesystem;
    let rootless = ctx.euid != 0;
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        // nodev: a node made there with CAP_MKNOD opens nothing; the default
        // devices are bind mounts, which keep their own flags.
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "strictatime", "mode=755", "size=65536k"],
        )?,
        {
            // gid 5 is the tty group on the host; inside a user namespace
            // it is not mapped, so devpts would refuse it.
            let mut opts = vec![
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ];
            if !rootless {
                opts.push("gid=5");
            }
            mount("/dev/pts", "devpts", "devpts", &opts)?
        },
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ];
    if fs.sys == Some(true) {
        if layer.network.mode == Some(NetworkMode::Host) {
            // sysfs can only be mounted by the owner of the network namespace.
            out.push(bind(Path::new("/sys"), Path::new("/sys"), true)?);
        } else {
            out.push(mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            )?);
        }
    }

    if fs.rootfs.is_none() {
        for dir in host_system_dirs() {
            out.push(bind(&dir, &dir, true)?);
        }
        if !fs.tmpfs.iter().any(|t| t.destination == Path::new("/tmp")) {
            out.push(mount(
                "/tmp",
                "tmpfs",
                "tmpfs",
                &["nosuid", "nodev", "mode=1777"],
            )?);
        }
    }

    for t in &fs.tmpfs {
        let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
        if let Some(size) = t.size {
            opts.push(format!("size={}", size.0));
        }
        opts.push(format!("mode={:o}", t.mode.unwrap_or(0o1777)));
        opts.extend(t.options.iter().cloned());
        let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
        out.push(mount(
            &t.destination.to_string_lossy(),
            "tmpfs",
            "tmpfs",
            &opts,
        )?);
    }

    for v in &fs.volumes {
        let source = match &v.source {
            VolumeSource::Path(p) => ctx.cwd.join(p),
            VolumeSource::Named(name) => {
                let dir = ctx.volume_dir.join(name);
                std::fs::create_dir_all(&dir).map_err(|source| ConfigError::Volume {
                    name: name.clone(),
                    path: dir.clone(),
                    source,
                })?;
                dir
            }
        };
        out.push(bind(&source, &v.destination, v.read_only)?);
    }

    // The program itself, when it is a host file outside the system
    // directories (`sunaba run -- /tmp/x/agent`), is bound read-only at the
    // same absolute path so the path the caller gave keeps working. It comes
    // last: a tmpfs or volume mounted over a parent directory (the default
    // /tmp above all) would otherwise hide it.
    if let Some(program) = program {
        out.push(bind(program, program, true)?);
    }
    Ok(out)
}

/// The host file to bind as the program: the command when it is a path
/// (`./agent`, `/tmp/x/agent`) to an existing file outside the system
/// directories, on the default root. It is bound at its canonical path and
/// executed from there, so a path relative to the caller's directory works
/// although the sandbox starts elsewhere.
fn host_program(layer: &Layer, command: &[String], ctx: &RunContext) -> Option<PathBuf> {
    if layer.filesystem.rootfs.is_some() {
        return None;
    }
    let program = command.first().filter(|p| p.contains('/'))?;
    let resolved = std::fs::canonicalize(ctx.cwd.join(program)).ok()?;
    let covered = host_system_dirs().iter().any(|d| resolved.starts_with(d));
    (!covered && resolved.is_file()).then_some(resolved)
}

/// Builds the spec and run options of `sunaba run`.
///
/// # Errors
///
/// No command, an unknown capability, an unreadable seccomp profile, or a
/// setting that cannot work as given.
pub fn build_spec(
    layer: &Layer,
    command: &[String],
    ctx: &RunContext,
) -> Result<(Spec, RunOptions), ConfigError> {
    if command.is_empty() {
        return Err(ConfigError::NoCommand);
    }
    let rootless = ctx.euid != 0;
    let user = layer
        .process
        .user
        .unwrap_or(super::values::UserSpec { uid: 0, gid: 0 });
    if rootless && (user.uid != 0 || user.gid != 0) {
        return Err(invalid(
            "--user",
            format!("{}:{} is not mapped: a rootless sandbox maps only uid 0 (to you); drop --user or run as root", user.uid, user.gid),
        ));
    }

    let caps = capability_set(layer)?;
    // As under Docker, a non-root user keeps the bounding set but starts with
    // no effective or permitted capabilities.
    let active = if user.uid == 0 {
        caps.clone()
    } else {
        Capabilities::new()
    };
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps)
        .effective(active.clone())
        .permitted(active)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .map_err(|e| invalid("capabilities", e.to_string()))?;

    let mut args = command.to_vec();
    let program = host_program(layer, command, ctx);
    if let Some(program) = &program {
        args[0] = program.to_string_lossy().into_owned();
    }
    let process = ProcessBuilder::default()
        .args(args)
        .env(environment(layer, user.uid))
        .cwd(
            layer
                .process
                .workdir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/")),
        )
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .build()
                .map_err(|e| invalid("--user", e.to_string()))?,
        )
        .capabilities(capabilities)
        .no_new_privileges(layer.security.no_new_privileges.unwrap_or(true))
        .terminal(ctx.terminal)
        .build()
        .map_err(|e| invalid("process", e.to_string()))?;
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "--workdir",
            format!("{} must be an absolute path", process.cwd().display()),
        ));
    }

    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(layer, rootless)?)
        .resources(resources(layer)?)
        .cgroups_path(PathBuf::from(format!("sunaba/{}", ctx.id)))
        .masked_paths(
            MASKED_PATHS
                .iter()
                .map(|p| p.to_string())
                .chain(
                    layer
                        .filesystem
                        .mask
                        .iter()
                        .map(|p| p.to_string_lossy().into_owned()),
                )
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            READONLY_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        );
    if rootless {
        let map = |host: u32| {
            LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(host)
                .size(1u32)
                .build()
        };
        linux = linux
            .uid_mappings(vec![
                map(ctx.euid).map_err(|e| invalid("uid map", e.to_string()))?
            ])
            .gid_mappings(vec![
                map(ctx.egid).map_err(|e| invalid("gid map", e.to_string()))?
            ]);
    }
    match layer.security.seccomp.as_deref().unwrap_or("default") {
        "unconfined" => {}
        name @ ("default" | "agent") => linux = linux.seccomp(crate::seccomp::builtin(name)?),
        path => linux = linux.seccomp(crate::seccomp::load_profile(Path::new(path))?),
    }
    let linux = linux.build().map_err(|e| invalid("linux", e.to_string()))?;

    let root_path = layer
        .filesystem
        .rootfs
        .clone()
        .map(|r| ctx.cwd.join(r))
        .unwrap_or_else(|| PathBuf::from("/"));
    let root = RootBuilder::default()
        .path(root_path)
        .readonly(layer.filesystem.read_only.unwrap_or(false))
        .build()
        .map_err(|e| invalid("--rootfs", e.to_string()))?;
    let mut annotations = HashMap::new();
    if layer.filesystem.rootfs.is_none() {
        annotations.insert(ROOT_ANNOTATION.to_string(), ROOT_TMPFS.to_string());
    }

    let spec = SpecBuilder::default()
        .version("1.2.0")
        .process(process)
        .root(root)
        .hostname(
            layer
                .process
                .hostname
                .clone()
                .unwrap_or_else(|| "sunaba".to_string()),
        )
        .mounts(mounts(layer, program.as_deref(), ctx)?)
        .linux(linux)
        .annotations(annotations)
        .build()
        .map_err(|e| invalid("spec", e.to_string()))?;

    let options = RunOptions {
        init: layer.process.init.unwrap_or(false),
        timeout: layer.process.timeout.map(|t| t.0),
        require_limits: layer.resources.require_limits.unwrap_or(false),
        no_cgroup: false,
    };
    Ok((spec, options))
}

fn namespaces(
    layer: &Layer,
    rootless: bool,
) -> Result<Vec<oci_spec::runtime::LinuxNamespace>, ConfigError> {
    let mut kinds = vec![
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Cgroup,
    ];
    if layer.network.mode != Some(NetworkMode::Host) {
        kinds.push(LinuxNamespaceType::Network);
    }
    if rootless {
        kinds.push(LinuxNamespaceType::User);
    }
    kinds
        .into_iter()
        .map(|k| {
            LinuxNamespaceBuilder::default()
                .typ(k)
                .build()
                .map_err(|e| invalid("namespaces", e.to_string()))
        })
        .collect()
}

fn resources(layer: &Layer) -> Result<oci_spec::runtime::LinuxResources, ConfigError> {
    let r = &layer.resources;
    let as_i64 =
        |setting, bytes: u64| i64::try_from(bytes).map_err(|_| invalid(setting, "too large"));

    let mut memory = LinuxMemoryBuilder::default();
    let limit = r.memory.map(|m| as_i64("--memory", m.0)).transpose()?;
    if let Some(limit) = limit {
        memory = memory.limit(limit);
        // As docker: without --memory-swap, swap may add as much again.
        let swap = match r.memory_swap {
            None => limit.saturating_mul(2),
            Some(SwapLimit::Unlimited) => -1,
            Some(SwapLimit::Total(total)) => {
                let total = as_i64("--memory-swap", total.0)?;
                if total < limit {
                    return Err(invalid(
                        "--memory-swap",
                        "must be at least --memory (it counts memory plus swap), or -1",
                    ));
                }
                total
            }
        };
        memory = memory.swap(swap);
    } else if r.memory_swap.is_some() {
        return Err(invalid("--memory-swap", "needs --memory as well"));
    }
    if let Some(res) = r.memory_reservation {
        let res = as_i64("--memory-reservation", res.0)?;
        if limit.is_some_and(|l| res > l) {
            return Err(invalid("--memory-reservation", "must not exceed --memory"));
        }
        memory = memory.reservation(res);
    }

    let mut cpu = LinuxCpuBuilder::default();
    if let Some(cpus) = r.cpus {
        const PERIOD: u64 = 100_000;
        // Rounded to whole microseconds of the period, as docker does.
        #[allow(clippy::cast_possible_truncation)]
        let quota = (cpus.0 * PERIOD as f64).round() as i64;
        cpu = cpu.quota(quota.max(1000)).period(PERIOD);
    }
    if let Some(shares) = r.cpu_shares {
        if !(2..=262_144).contains(&shares) {
            return Err(invalid(
                "--cpu-shares",
                format!("{shares} is outside 2..=262144 (1024 is the default weight)"),
            ));
        }
        cpu = cpu.shares(shares);
    }

    let mut resources = LinuxResourcesBuilder::default()
        .memory(
            memory
                .build()
                .map_err(|e| invalid("memory", e.to_string()))?,
        )
        .cpu(cpu.build().map_err(|e| invalid("cpu", e.to_string()))?);
    if let Some(pids) = r.pids_limit {
        if pids == 0 || pids < -1 {
            return Err(invalid(
                "--pids-limit",
                format!("{pids} must be a positive number, or -1 for unlimited"),
            ));
        }
        resources = resources.pids(
            LinuxPidsBuilder::default()
                .limit(pids)
                .build()
                .map_err(|e| invalid("pids", e.to_string()))?,
        );
    }
    resources
        .build()
        .map_err(|e| invalid("resources", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::profile;
    use oci_spec::runtime::Capability;

    fn ctx() -> RunContext {
        RunContext {
            id: "t".into(),
            euid: 0,
            egid: 0,
            cwd: PathBuf::from("/"),
            volume_dir: std::env::temp_dir().join("sunaba-spec-test-volumes"),
            terminal: false,
        }
    }

    #[test]
    fn agent_profile_becomes_the_compose_sandbox() {
        let mut layer = profile::load("agent").unwrap();
        // The test runs from anywhere; point the input volume at a real dir.
        layer
            .filesystem
            .volumes
            .retain(|v| v.destination != Path::new("/app/input"));
        let (spec, options) = build_spec(&layer, &["/bin/true".into()], &ctx()).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let res = linux.resources().as_ref().unwrap();
        assert_eq!(res.memory().unwrap().limit(), Some(512 << 20));
        assert_eq!(res.memory().unwrap().swap(), Some(512 << 20));
        assert_eq!(res.memory().unwrap().reservation(), Some(256 << 20));
        assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(100_000));
        assert_eq!(res.pids().unwrap().limit(), 256);
        assert!(spec.root().as_ref().unwrap().readonly().unwrap());
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert!(caps.bounding().as_ref().unwrap().is_empty());
        assert!(options.init);
        let tmp = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/tmp"))
            .unwrap();
        assert!(tmp
            .options()
            .as_ref()
            .unwrap()
            .contains(&format!("size={}", 100 << 20)));
        let _ = std::fs::remove_dir_all(ctx().volume_dir);
    }

    #[test]
    fn program_under_tmp_is_bound_after_the_tmp_tmpfs() {
        // The bind of a program under /tmp used to come before the /tmp
        // tmpfs, which then hid it: exec failed with ENOENT.
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("agent");
        std::fs::write(&program, "").unwrap();
        let program = std::fs::canonicalize(program).unwrap();
        let layer: Layer = toml::from_str("[security]\nseccomp = \"unconfined\"").unwrap();
        let command = [program.to_string_lossy().into_owned()];
        let (spec, _) = build_spec(&layer, &command, &ctx()).unwrap();
        let dests: Vec<&Path> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().as_path())
            .collect();
        let tmp = dests.iter().position(|d| *d == Path::new("/tmp")).unwrap();
        let bound = dests.iter().position(|d| *d == program).unwrap();
        assert!(bound > tmp, "{dests:?}");
    }

    #[test]
    fn memory_swap_below_memory_is_refused() {
        let layer: Layer =
            toml::from_str("[resources]\nmemory = \"1g\"\nmemory_swap = \"512m\"").unwrap();
        let err = build_spec(&layer, &["true".into()], &ctx()).unwrap_err();
        assert!(err.to_string().contains("--memory-swap"), "{err}");
    }

    #[test]
    fn cap_drop_all_then_add_one() {
        let layer: Layer = toml::from_str(
            "[security]\ncapabilities = [\"CAP_CHOWN\", \"CAP_KILL\"]\ncap_drop = [\"ALL\"]\ncap_add = [\"NET_BIND_SERVICE\"]",
        )
        .unwrap();
        let set = capability_set(&layer).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.contains(&Capability::NetBindService));
    }
}
