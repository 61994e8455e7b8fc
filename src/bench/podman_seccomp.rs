//! The seccomp filter podman gives its containers, as the OCI
//! `linux.seccomp` it hands its runtime, so that a peer's steady-state rows
//! run under the filter its users get.
//!
//! podman reads `/usr/share/containers/seccomp.json` (containers-common's
//! format, Docker's before it): rules carry conditions on the container's
//! capabilities, the architecture and the kernel (`includes`, `excludes`),
//! and the architectures come as a map from the native one to the others it
//! runs. The engine keeps the rules whose conditions hold and drops the
//! conditions; [`to_oci`] does the same for podman's default capabilities
//! on this machine. A minimum kernel counts as Docker counts it (a rule
//! that includes one needs at least that kernel, one that excludes one
//! needs an older kernel); the profile podman installs names none.

use serde_json::{json, Map, Value};

/// Where podman's profile is installed (with podman, from containers-common).
pub const PROFILE: &str = "/usr/share/containers/seccomp.json";

/// The capabilities podman gives a container unless told otherwise (its
/// `default_capabilities`); the profile's conditions are read against them.
pub const PODMAN_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// The architecture a profile names rules by: libseccomp's name for the
/// filter, and the short name its conditions use (`amd64`, `x86`, `x32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arch {
    /// `SCMP_ARCH_X86_64`.
    pub seccomp: &'static str,
    /// `amd64`.
    pub condition: &'static str,
}

impl Arch {
    /// This machine's.
    ///
    /// # Errors
    ///
    /// An architecture the profiles have no name for.
    pub fn native() -> Result<Arch, String> {
        let little = cfg!(target_endian = "little");
        let (seccomp, condition) = match std::env::consts::ARCH {
            "x86_64" => ("SCMP_ARCH_X86_64", "amd64"),
            "x86" => ("SCMP_ARCH_X86", "x86"),
            "aarch64" => ("SCMP_ARCH_AARCH64", "arm64"),
            "arm" => ("SCMP_ARCH_ARM", "arm"),
            "riscv64" => ("SCMP_ARCH_RISCV64", "riscv64"),
            "s390x" => ("SCMP_ARCH_S390X", "s390x"),
            "powerpc64" if little => ("SCMP_ARCH_PPC64LE", "ppc64le"),
            "powerpc64" => ("SCMP_ARCH_PPC64", "ppc64"),
            other => return Err(format!("no seccomp profile names architecture {other}")),
        };
        Ok(Arch { seccomp, condition })
    }
}

/// The running kernel's major and minor version.
///
/// # Errors
///
/// The release cannot be read or does not start with `MAJOR.MINOR`.
pub fn kernel_version() -> Result<(u32, u32), String> {
    const RELEASE: &str = "/proc/sys/kernel/osrelease";
    let release = std::fs::read_to_string(RELEASE).map_err(|e| format!("{RELEASE}: {e}"))?;
    parse_version(release.trim())
        .ok_or_else(|| format!("{RELEASE}: {:?} is not MAJOR.MINOR", release.trim()))
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The OCI `linux.seccomp` for a container with the bounding set `caps`,
/// on `arch` under kernel `kernel`.
///
/// # Errors
///
/// A profile that is not the containers-common format: the error names the
/// field.
pub fn to_oci(
    profile: &Value,
    caps: &[&str],
    arch: Arch,
    kernel: (u32, u32),
) -> Result<Value, String> {
    let bad = |what: &str| format!("{PROFILE}: {what}");
    let mut out = Map::new();
    let default = profile
        .get("defaultAction")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no defaultAction"))?;
    out.insert("defaultAction".into(), json!(default));
    for key in ["defaultErrnoRet", "flags"] {
        if let Some(v) = profile.get(key) {
            out.insert(key.into(), v.clone());
        }
    }

    // The native architecture and those it also runs (x86 and x32 beside
    // x86_64), as podman fills them in; a profile without a map names them
    // itself.
    let architectures = match profile.get("archMap").and_then(Value::as_array) {
        Some(map) => {
            let entry = map
                .iter()
                .find(|e| e["architecture"] == arch.seccomp)
                .ok_or_else(|| bad(&format!("archMap has no {}", arch.seccomp)))?;
            let mut all = vec![json!(arch.seccomp)];
            if let Some(subs) = entry["subArchitectures"].as_array() {
                all.extend(subs.iter().cloned());
            }
            Value::Array(all)
        }
        None => profile
            .get("architectures")
            .cloned()
            .unwrap_or_else(|| json!([arch.seccomp])),
    };
    out.insert("architectures".into(), architectures);

    let rules = profile
        .get("syscalls")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no syscalls list"))?;
    let mut syscalls = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        if !applies(rule, caps, arch, kernel).map_err(|e| bad(&format!("syscalls[{i}]: {e}")))? {
            continue;
        }
        let mut kept = Map::new();
        for key in ["names", "action", "args", "errnoRet"] {
            match rule.get(key) {
                Some(Value::Null) | None => {}
                Some(v) => {
                    kept.insert(key.into(), v.clone());
                }
            }
        }
        if !kept.contains_key("names") || !kept.contains_key("action") {
            return Err(bad(&format!("syscalls[{i}] lacks names or action")));
        }
        syscalls.push(Value::Object(kept));
    }
    out.insert("syscalls".into(), Value::Array(syscalls));
    Ok(Value::Object(out))
}

/// Whether a rule's conditions hold: every capability it includes is in
/// the set and none it excludes; the architecture is among those it
/// includes (if it names any) and not among those it excludes; the kernel
/// is at least the minimum it includes and below the one it excludes.
fn applies(rule: &Value, caps: &[&str], arch: Arch, kernel: (u32, u32)) -> Result<bool, String> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let has_cap = |c: &String| caps.contains(&c.as_str());
    let (inc, exc) = (&rule["includes"], &rule["excludes"]);

    if !strings(&inc["caps"]).iter().all(has_cap) || strings(&exc["caps"]).iter().any(has_cap) {
        return Ok(false);
    }
    let arches = strings(&inc["arches"]);
    if !arches.is_empty() && !arches.iter().any(|a| a == arch.condition) {
        return Ok(false);
    }
    if strings(&exc["arches"]).iter().any(|a| a == arch.condition) {
        return Ok(false);
    }
    for (condition, holds_below) in [(&inc["minKernel"], false), (&exc["minKernel"], true)] {
        if let Some(min) = condition.as_str().filter(|m| !m.is_empty()) {
            let min = parse_version(min)
                .ok_or_else(|| format!("minKernel {min:?} is not MAJOR.MINOR"))?;
            if (kernel < min) != holds_below {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_64: Arch = Arch {
        seccomp: "SCMP_ARCH_X86_64",
        condition: "amd64",
    };

    fn names(filter: &Value) -> Vec<String> {
        filter["syscalls"]
            .as_array()
            .expect("syscalls")
            .iter()
            .map(|r| r["names"][0].as_str().expect("a name").to_string())
            .collect()
    }

    #[test]
    fn conditions_keep_the_rules_that_hold_and_vanish() {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
            ],
            "syscalls": [
                {"names": ["getppid"], "action": "SCMP_ACT_ALLOW", "args": [],
                 "comment": "", "includes": {}, "excludes": {}},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 4294967295u64, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"arches": ["amd64", "x32"]}},
                {"names": ["sync_file_range2"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"arches": ["ppc64le"]}},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "excludes": {"arches": ["amd64"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"minKernel": "4.8"}},
                {"names": ["futex_waitv"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                 "includes": {"minKernel": "99.0"}},
                {"names": ["open_tree"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                 "excludes": {"minKernel": "5.2"}}
            ]
        });
        let filter = to_oci(&profile, &["CAP_KILL"], X86_64, (6, 1)).expect("translates");
        assert_eq!(
            names(&filter),
            ["getppid", "personality", "clone", "arch_prctl", "ptrace"]
        );
        assert_eq!(
            filter["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        assert_eq!(filter["defaultErrnoRet"], 1);
        // The conditions and comments are gone; the argument checks stay.
        let personality = &filter["syscalls"][1];
        assert!(personality.get("includes").is_none() && personality.get("comment").is_none());
        assert_eq!(personality["args"][0]["value"], 4_294_967_295_u64);

        // With CAP_SYS_ADMIN, mount comes in and clone goes; an old kernel
        // loses ptrace and gains the ENOSYS answer for open_tree.
        let admin = to_oci(&profile, &["CAP_SYS_ADMIN"], X86_64, (4, 4)).expect("translates");
        assert_eq!(
            names(&admin),
            ["getppid", "personality", "mount", "arch_prctl", "open_tree"]
        );
    }

    #[test]
    fn a_profile_in_another_format_is_named() {
        let err = to_oci(&json!({"syscalls": []}), &[], X86_64, (6, 1)).expect_err("no default");
        assert!(
            err.contains("defaultAction") && err.contains(PROFILE),
            "{err}"
        );
        let err = to_oci(
            &json!({"defaultAction": "SCMP_ACT_ERRNO",
                    "archMap": [{"architecture": "SCMP_ARCH_AARCH64"}], "syscalls": []}),
            &[],
            X86_64,
            (6, 1),
        )
        .expect_err("no x86_64 entry");
        assert!(err.contains("archMap has no SCMP_ARCH_X86_64"), "{err}");
        let err = to_oci(
            &json!({"defaultAction": "SCMP_ACT_ERRNO",
                    "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
                                  "includes": {"minKernel": "new"}}]}),
            &[],
            X86_64,
            (6, 1),
        )
        .expect_err("bad minKernel");
        assert!(
            err.contains("syscalls[0]") && err.contains("\"new\""),
            "{err}"
        );
    }

    #[test]
    fn the_installed_profile_translates() {
        let Ok(text) = std::fs::read_to_string(PROFILE) else {
            eprintln!("skipped: no {PROFILE} (podman is not installed)");
            return;
        };
        let profile: Value = serde_json::from_str(&text).expect("the profile is JSON");
        let filter = to_oci(
            &profile,
            PODMAN_CAPABILITIES,
            Arch::native().expect("a known architecture"),
            kernel_version().expect("the kernel's version"),
        )
        .expect("translates");
        let rules = filter["syscalls"].as_array().expect("rules");
        let has = |action: &str, name: &str| {
            rules.iter().any(|r| {
                r["action"] == action
                    && r["names"]
                        .as_array()
                        .is_some_and(|n| n.iter().any(|x| x == name))
            })
        };
        // What every container may do; chroot, which podman's default set
        // reaches (CAP_SYS_CHROOT); and sethostname, refused to a container
        // without CAP_SYS_ADMIN.
        for name in ["getppid", "personality", "chroot"] {
            assert!(has("SCMP_ACT_ALLOW", name), "{name}: {filter}");
        }
        assert!(has("SCMP_ACT_ERRNO", "sethostname"), "{filter}");
        assert!(rules.iter().all(|r| r.get("includes").is_none()));
    }

    #[test]
    fn kernel_releases_read_as_major_minor() {
        assert_eq!(parse_version("6.1.0-27-amd64"), Some((6, 1)));
        assert_eq!(parse_version("5.15"), Some((5, 15)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
        assert_eq!(parse_version("rc"), None);
        assert!(kernel_version().is_ok());
    }
}
