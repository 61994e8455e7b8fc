//! OCI bundles for the conformance tests: a private directory holding a
//! busybox `rootfs/` and a `config.json` built here as JSON.
//!
//! The default config is the minimal Linux container of the runtime-spec
//! (config.md, config-linux.md): a non-terminal process, a read-only root,
//! the usual `/proc`, `/dev`, `/dev/pts`, `/dev/shm`, `/dev/mqueue` and
//! read-only `/sys` mounts, new pid, network, ipc, uts and mount
//! namespaces, the three capabilities `runc spec` grants, no_new_privs, and
//! the masked and read-only paths every runtime applies. Builder methods
//! change one field each; `config_mut` reaches anything else.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::temp_dir;

/// The statically linked busybox every rootfs is made from (Debian's
/// `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// The capabilities of the default config, in every set.
pub const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// A bundle directory, removed when dropped.
pub struct Bundle {
    dir: tempfile::TempDir,
    config: Value,
}

impl Bundle {
    /// A bundle whose process runs `args` (resolved through `PATH` inside,
    /// where every busybox applet is a symlink in `/bin`).
    pub fn new(args: &[&str]) -> Self {
        let dir = temp_dir();
        populate_rootfs(&dir.path().join("rootfs"));
        Bundle {
            dir,
            config: default_config(args),
        }
    }

    /// A bundle whose process runs `sh -c script`.
    pub fn sh(script: &str) -> Self {
        Self::new(&["sh", "-c", script])
    }

    /// The bundle directory (absolute).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The root filesystem directory on the host.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Creates a directory (and its parents) inside the rootfs.
    pub fn mkdir(&self, path: &str) -> PathBuf {
        let dir = self.rootfs().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).expect("create directory in rootfs");
        dir
    }

    /// Writes a file (and its parent directories) inside the rootfs.
    pub fn write_file(&self, path: &str, contents: &str) -> PathBuf {
        let file = self.rootfs().join(path.trim_start_matches('/'));
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).expect("create parent in rootfs");
        }
        std::fs::write(&file, contents).expect("write file in rootfs");
        file
    }

    /// The whole config, for fields no builder method covers.
    pub fn config_mut(&mut self) -> &mut Value {
        &mut self.config
    }

    /// The config as it will be written.
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// Writes `config.json` into the bundle. The runtime driver calls this
    /// before every `create` and `run`.
    pub fn write_config(&self) {
        let text = serde_json::to_string_pretty(&self.config).expect("serialize config");
        std::fs::write(self.path().join("config.json"), text).expect("write config.json");
    }

    /// Sets `process.args`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.config["process"]["args"] = json!(args);
        self
    }

    /// Adds (or replaces) `NAME=value` in `process.env`.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        let prefix = format!("{name}=");
        let env = self.config["process"]["env"]
            .as_array_mut()
            .expect("process.env is an array");
        env.retain(|v| !v.as_str().is_some_and(|s| s.starts_with(&prefix)));
        env.push(json!(format!("{name}={value}")));
        self
    }

    /// Sets `process.cwd` and creates that directory in the rootfs, so the
    /// test does not depend on the runtime creating it.
    pub fn cwd(mut self, dir: &str) -> Self {
        self.mkdir(dir);
        self.config["process"]["cwd"] = json!(dir);
        self
    }

    /// Sets `process.user`.
    pub fn user(mut self, uid: u32, gid: u32, additional_gids: &[u32]) -> Self {
        let mut user = json!({ "uid": uid, "gid": gid });
        if !additional_gids.is_empty() {
            user["additionalGids"] = json!(additional_gids);
        }
        self.config["process"]["user"] = user;
        self
    }

    /// Sets every capability set (bounding, effective, permitted,
    /// inheritable, ambient) to `caps`.
    pub fn capabilities(mut self, caps: &[&str]) -> Self {
        let sets = [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ];
        let object: serde_json::Map<String, Value> =
            sets.iter().map(|s| (s.to_string(), json!(caps))).collect();
        self.config["process"]["capabilities"] = Value::Object(object);
        self
    }

    /// Sets `process.noNewPrivileges`.
    pub fn no_new_privileges(mut self, on: bool) -> Self {
        self.config["process"]["noNewPrivileges"] = json!(on);
        self
    }

    /// Adds (or replaces) one entry of `process.rlimits`.
    pub fn rlimit(mut self, kind: &str, soft: u64, hard: u64) -> Self {
        let process = &mut self.config["process"];
        if !process["rlimits"].is_array() {
            process["rlimits"] = json!([]);
        }
        let rlimits = process["rlimits"].as_array_mut().expect("array");
        rlimits.retain(|r| r["type"] != kind);
        rlimits.push(json!({ "type": kind, "soft": soft, "hard": hard }));
        self
    }

    /// Sets `process.oomScoreAdj`.
    pub fn oom_score_adj(mut self, value: i32) -> Self {
        self.config["process"]["oomScoreAdj"] = json!(value);
        self
    }

    /// Sets `hostname`.
    pub fn hostname(mut self, name: &str) -> Self {
        self.config["hostname"] = json!(name);
        self
    }

    /// Removes `hostname`, for containers that share the host's uts
    /// namespace (a runtime must refuse a hostname there).
    pub fn no_hostname(mut self) -> Self {
        if let Some(object) = self.config.as_object_mut() {
            object.remove("hostname");
        }
        self
    }

    /// Sets `domainname`.
    pub fn domainname(mut self, name: &str) -> Self {
        self.config["domainname"] = json!(name);
        self
    }

    /// Sets `root.readonly`.
    pub fn readonly_root(mut self, on: bool) -> Self {
        self.config["root"]["readonly"] = json!(on);
        self
    }

    /// Appends a mount. The destination directory is created in the rootfs
    /// first, so the test does not depend on the runtime creating it.
    pub fn mount(mut self, destination: &str, kind: &str, source: &str, options: &[&str]) -> Self {
        self.mkdir(destination);
        let mounts = self.config["mounts"].as_array_mut().expect("mounts array");
        mounts.push(json!({
            "destination": destination,
            "type": kind,
            "source": source,
            "options": options,
        }));
        self
    }

    /// Appends a bind mount of the host directory `source` at
    /// `destination`, with `options` besides `rbind`.
    pub fn bind(self, source: &Path, destination: &str, options: &[&str]) -> Self {
        let mut all = vec!["rbind"];
        all.extend_from_slice(options);
        let source = source.to_str().expect("utf-8 path");
        self.mount(destination, "bind", source, &all)
    }

    /// Appends a tmpfs at `destination` with `options`.
    pub fn tmpfs(self, destination: &str, options: &[&str]) -> Self {
        self.mount(destination, "tmpfs", "tmpfs", options)
    }

    /// Appends paths to `linux.maskedPaths`.
    pub fn masked_paths(mut self, paths: &[&str]) -> Self {
        push_strings(&mut self.config["linux"]["maskedPaths"], paths);
        self
    }

    /// Appends paths to `linux.readonlyPaths`.
    pub fn readonly_paths(mut self, paths: &[&str]) -> Self {
        push_strings(&mut self.config["linux"]["readonlyPaths"], paths);
        self
    }

    /// Adds a namespace of `kind` (pid, network, ipc, uts, mount, cgroup,
    /// user) unless the config already has one.
    pub fn with_namespace(mut self, kind: &str) -> Self {
        let list = self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces array");
        if !list.iter().any(|n| n["type"] == kind) {
            list.push(json!({ "type": kind }));
        }
        self
    }

    /// Adds a namespace of `kind` to join at `path` (an existing one).
    pub fn with_namespace_path(mut self, kind: &str, path: &str) -> Self {
        let list = self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces array");
        list.retain(|n| n["type"] != kind);
        list.push(json!({ "type": kind, "path": path }));
        self
    }

    /// Removes the namespace of `kind`: the container shares the runtime's.
    pub fn without_namespace(mut self, kind: &str) -> Self {
        let list = self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces array");
        list.retain(|n| n["type"] != kind);
        self
    }

    /// Sets one `linux.sysctl` entry.
    pub fn sysctl(mut self, key: &str, value: &str) -> Self {
        let linux = &mut self.config["linux"];
        if !linux["sysctl"].is_object() {
            linux["sysctl"] = json!({});
        }
        linux["sysctl"][key] = json!(value);
        self
    }

    /// Sets `linux.cgroupsPath`.
    pub fn cgroups_path(mut self, path: &str) -> Self {
        self.config["linux"]["cgroupsPath"] = json!(path);
        self
    }

    /// Merges `resources` (an object in the shape of `linux.resources`)
    /// into the config's, key by key.
    pub fn resources(mut self, resources: Value) -> Self {
        let linux = &mut self.config["linux"];
        if !linux["resources"].is_object() {
            linux["resources"] = json!({});
        }
        for (key, value) in resources.as_object().expect("resources object") {
            linux["resources"][key] = value.clone();
        }
        self
    }

    /// Sets `linux.seccomp` to an OCI seccomp profile.
    pub fn seccomp(mut self, profile: Value) -> Self {
        self.config["linux"]["seccomp"] = profile;
        self
    }

    /// Appends a hook of `kind` (prestart, createRuntime, createContainer,
    /// startContainer, poststart, poststop).
    pub fn hook(mut self, kind: &str, path: &str, args: &[&str]) -> Self {
        if !self.config["hooks"].is_object() {
            self.config["hooks"] = json!({});
        }
        let hooks = &mut self.config["hooks"];
        if !hooks[kind].is_array() {
            hooks[kind] = json!([]);
        }
        let list = hooks[kind].as_array_mut().expect("array");
        list.push(json!({ "path": path, "args": args }));
        self
    }

    /// Sets one annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        if !self.config["annotations"].is_object() {
            self.config["annotations"] = json!({});
        }
        self.config["annotations"][key] = json!(value);
        self
    }
}

fn push_strings(list: &mut Value, items: &[&str]) {
    if !list.is_array() {
        *list = json!([]);
    }
    let list = list.as_array_mut().expect("array");
    list.extend(items.iter().map(|s| json!(s)));
}

/// Copies busybox to `rootfs/bin/busybox` and links each of its applets
/// next to it, plus the directories the default mounts land on.
fn populate_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    std::fs::create_dir_all(&bin).expect("create rootfs/bin");
    std::fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox into the rootfs");
    for dir in ["proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(rootfs.join(dir)).expect("create rootfs directory");
    }

    let list = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("run busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            symlink("busybox", bin.join(applet)).expect("link busybox applet");
        }
    }
}

/// The minimal Linux config `runc spec` would give, without a terminal.
fn default_config(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS,
                "ambient": DEFAULT_CAPS,
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true,
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "oci-test",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            {
                "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
            {
                "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" },
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
            ],
        },
    })
}
