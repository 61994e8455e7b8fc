//! Unit tests: profile contents, the OCI to BPF mapping, and the filter stack
//! layout. The behaviour of installed filters is tested in `install.rs`.

use std::io::Write;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};
use seccompiler::SeccompAction;

use super::compile::{exclusive, plan};
use super::*;

fn profile_from_json(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).expect("test profile parses")
}

fn nr(name: &str) -> i64 {
    i64::from(name.parse::<syscalls::Sysno>().expect("known syscall").id())
}

#[test]
fn builtin_names_are_known() {
    assert!(builtin("default").is_ok());
    assert!(builtin("agent").is_ok());
    let err = builtin("lenient").unwrap_err();
    assert!(err.to_string().contains("lenient"), "{err}");
}

#[test]
#[cfg(target_arch = "x86_64")]
fn builtin_names_all_resolve_on_x86_64() {
    for name in ["default", "agent"] {
        let profile = builtin(name).unwrap();
        for rule in profile.syscalls().as_ref().unwrap() {
            for syscall in rule.names() {
                assert!(
                    syscall.parse::<syscalls::Sysno>().is_ok(),
                    "{name}: {syscall} unknown on x86_64"
                );
            }
        }
    }
}

#[test]
fn default_profile_plans_three_filters_and_installs_them_as_one() {
    let filter = compile(&builtin("default").unwrap()).unwrap();

    // The default filter, then the EPERM filter (AF_VSOCK) and the ENOSYS
    // filter (clone3) in the order the profile names them.
    let plans = plan(&builtin("default").unwrap()).unwrap();
    let actions: Vec<_> = plans.iter().map(|p| p.on_match.clone()).collect();
    assert_eq!(
        actions,
        vec![
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM.unsigned_abs()),
            SeccompAction::Errno(libc::ENOSYS.unsigned_abs()),
        ]
    );
    // No call is denied by two of them (AF_VSOCK is socket, ENOSYS is
    // clone3, and the default filter allows both), so they run as one.
    assert!(exclusive(&plans));
    assert_eq!(filter.programs().len(), 1);
    // Some 300 syscalls, but the index compares stretches of consecutive
    // numbers, not each number: a few hundred instructions in all.
    let count = filter.instruction_count();
    assert!((100..400).contains(&count), "{count}");
    assert!(filter.programs().iter().all(|p| p.len() < 4096));
}

#[test]
fn filter_that_denies_seccomp_is_installed_last() {
    // The builtins allow seccomp unconditionally, so no filter can deny it
    // and the default filter stays first.
    let plans = plan(&builtin("agent").unwrap()).unwrap();
    assert_eq!(plans[0].on_match, SeccompAction::Allow);

    // A profile that does not allow seccomp gets its default filter last.
    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
    );
    let plans = plan(&profile).unwrap();
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[1].on_match, SeccompAction::Allow);
}

#[test]
fn two_filters_denying_seccomp_are_rejected() {
    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["seccomp"], "action": "SCMP_ACT_LOG"}]}"#,
    );
    // Default filter allows seccomp (a rule names it), LOG filter is harmless.
    assert!(plan(&profile).is_ok());

    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["seccomp"], "action": "SCMP_ACT_KILL"},
                         {"names": ["seccomp"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    assert!(matches!(
        plan(&profile),
        Err(SeccompError::SeccompDeniedTwice)
    ));
}

#[test]
fn rules_with_non_allow_actions_are_allowed_by_the_default_filter() {
    let profile = builtin("default").unwrap();
    let plans = plan(&profile).unwrap();
    let default_filter = &plans[0];
    assert_eq!(default_filter.on_mismatch, SeccompAction::Errno(1));
    // clone3 is decided by the ENOSYS filter alone.
    assert!(matches!(
        default_filter.rules.get(&nr("clone3")),
        Some(None)
    ));
    let enosys = plans
        .iter()
        .find(|p| p.on_match == SeccompAction::Errno(libc::ENOSYS.unsigned_abs()))
        .unwrap();
    assert!(matches!(enosys.rules.get(&nr("clone3")), Some(None)));
    assert_eq!(enosys.rules.len(), 1);
    // Conditional rules stay conditional.
    assert!(
        matches!(default_filter.rules.get(&nr("clone")), Some(Some(rules)) if rules.len() == 1)
    );
    // Not named by any rule: falls to the default.
    assert!(!default_filter.rules.contains_key(&nr("unshare")));
}

#[test]
fn default_profile_follows_dockers_current_list() {
    let profile = builtin("default").unwrap();
    let plans = plan(&profile).unwrap();
    let default_filter = &plans[0];
    // Left out of Docker's list in 2023; denied with the default EPERM.
    for name in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
        assert!(!default_filter.rules.contains_key(&nr(name)), "{name}");
    }
    // Newer calls a current libc reaches for, which would otherwise fail
    // with EPERM instead of working (libc falls back on ENOSYS only).
    for name in [
        "fchmodat2",
        "cachestat",
        "futex_wait",
        "futex_wake",
        "map_shadow_stack",
    ] {
        assert!(
            default_filter.rules.contains_key(&nr(name)),
            "{name} missing"
        );
    }
}

#[test]
fn agent_profile_drops_what_agents_never_need() {
    let plans = plan(&builtin("agent").unwrap()).unwrap();
    let default_filter = &plans[0];
    for name in [
        "unshare",
        "setns",
        "mount",
        "umount2",
        "pivot_root",
        "open_tree",
        "move_mount",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "mount_setattr",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
    ] {
        assert!(
            !default_filter.rules.contains_key(&nr(name)),
            "{name} allowed"
        );
    }
    for name in ["read", "execve", "ioctl", "socket", "clone", "wait4"] {
        assert!(
            default_filter.rules.contains_key(&nr(name)),
            "{name} missing"
        );
    }
    // ioctl (TIOCSTI, TIOCLINUX) and socket (AF_PACKET, AF_VSOCK) deny rules.
    let eperm = plans
        .iter()
        .find(|p| p.on_match == SeccompAction::Errno(1))
        .unwrap();
    assert!(matches!(eperm.rules.get(&nr("ioctl")), Some(Some(r)) if r.len() == 2));
    assert!(matches!(eperm.rules.get(&nr("socket")), Some(Some(r)) if r.len() == 2));
}

#[test]
fn actions_map_with_their_errno() {
    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [
              {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
              {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"},
              {"names": ["gettid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
              {"names": ["kill"], "action": "SCMP_ACT_KILL"},
              {"names": ["tkill"], "action": "SCMP_ACT_KILL_THREAD"},
              {"names": ["tgkill"], "action": "SCMP_ACT_KILL_PROCESS"},
              {"names": ["pause"], "action": "SCMP_ACT_TRAP"},
              {"names": ["uname"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
              {"names": ["sync"], "action": "SCMP_ACT_LOG"}]}"#,
    );
    let plans = plan(&profile).unwrap();
    let actions: Vec<_> = plans.iter().map(|p| p.on_match.clone()).collect();
    // The default filter denies seccomp(2) here, so it is installed last.
    assert_eq!(
        actions,
        vec![
            SeccompAction::Errno(1),
            SeccompAction::Errno(13),
            SeccompAction::KillThread,
            SeccompAction::KillProcess,
            SeccompAction::Trap,
            SeccompAction::Trace(7),
            SeccompAction::Log,
            SeccompAction::Allow,
        ]
    );
    assert_eq!(plans[7].on_mismatch, SeccompAction::Errno(38));
    assert_eq!(plans[7].rules.len(), 9);
    // KILL and KILL_THREAD share one filter.
    assert_eq!(plans[2].rules.len(), 2);
}

#[test]
fn default_allow_needs_no_default_filter() {
    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["unshare", "setns"], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    let plans = plan(&profile).unwrap();
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].on_match, SeccompAction::Errno(1));
    assert_eq!(plans[0].rules.len(), 2);

    // The x32 guard comes first on x86_64, joined with the filter.
    let filter = compile(&profile).unwrap();
    assert_eq!(filter.programs().len(), 1);
    let first = &filter.programs()[0][0];
    if cfg!(target_arch = "x86_64") {
        // The guard loads the syscall number (offset 0), the filter the
        // architecture (offset 4).
        assert_eq!((first.code, first.k), (0x20, 0));
    }
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["getpid", "no_such_call", "chown32"],
                          "action": "SCMP_ACT_ALLOW"}]}"#,
    );
    let plans = plan(&profile).unwrap();
    assert_eq!(plans[0].rules.len(), 1);
}

#[test]
fn notify_is_rejected_naming_the_rule() {
    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    );
    let err = compile(&profile).unwrap_err().to_string();
    assert!(
        err.contains("rule 0 (mount)") && err.contains("SCMP_ACT_NOTIFY"),
        "{err}"
    );
}

#[test]
fn argument_index_above_five_is_rejected() {
    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mmap"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    let err = compile(&profile).unwrap_err();
    assert!(
        matches!(err, SeccompError::ArgIndex { index: 6, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("mmap"), "{err}");
}

#[test]
fn errno_out_of_range_is_rejected() {
    let profile =
        profile_from_json(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}"#);
    let err = compile(&profile).unwrap_err();
    assert!(
        matches!(err, SeccompError::ErrnoOutOfRange { errno: 5000, .. }),
        "{err}"
    );
}

#[test]
fn masked_eq_that_cannot_match_is_rejected() {
    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": 240, "valueTwo": 1,
                                    "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
    );
    assert!(matches!(
        compile(&profile),
        Err(SeccompError::MaskedValue { .. })
    ));
}

#[test]
fn every_operator_compiles() {
    for op in ["NE", "LT", "LE", "EQ", "GE", "GT"] {
        let json = format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{{"names": ["mmap"], "action": "SCMP_ACT_ERRNO",
                              "args": [{{"index": 2, "value": 7, "op": "SCMP_CMP_{op}"}}]}}]}}"#
        );
        compile(&profile_from_json(&json)).unwrap();
    }
}

#[test]
fn low_32_bit_mask_compiles_to_a_shorter_word_compare() {
    let masked = |mask: u64| {
        let json = format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO",
                              "args": [{{"index": 1, "value": {mask}, "valueTwo": 21522,
                                        "op": "SCMP_CMP_MASKED_EQ"}}]}}]}}"#
        );
        let plans = plan(&profile_from_json(&json)).unwrap();
        super::compile::generate(plans).unwrap()[0].len()
    };
    // Full 64-bit compare loads and checks the high word too.
    assert!(masked(0xFFFF_FFFF) < masked(0xFFFF_FFFF_FFFF_FFFF));
}

#[test]
fn same_argument_twice_is_ored_as_in_runc() {
    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                                   {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                         {"names": ["mmap"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                                   {"index": 2, "value": 3, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    let plans = plan(&profile).unwrap();
    assert!(matches!(plans[0].rules.get(&nr("personality")), Some(Some(r)) if r.len() == 2));
    assert!(matches!(plans[0].rules.get(&nr("mmap")), Some(Some(r)) if r.len() == 1));
}

#[test]
fn a_rule_without_args_makes_the_syscall_unconditional() {
    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["mmap"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                         {"names": ["mmap"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["mmap"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    let plans = plan(&profile).unwrap();
    assert!(matches!(plans[0].rules.get(&nr("mmap")), Some(None)));
}

#[test]
fn flags_map_and_unknown_flags_fail_to_load() {
    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
    );
    compile(&profile).unwrap();

    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
    );
    let err = compile(&profile).unwrap_err().to_string();
    assert!(
        err.contains("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
        "{err}"
    );

    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(
        file,
        r#"{{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}}"#
    )
    .unwrap();
    let err = load_profile(file.path()).unwrap_err().to_string();
    assert!(err.contains("SECCOMP_FILTER_FLAG_BOGUS"), "{err}");
    assert!(err.contains(&file.path().display().to_string()), "{err}");
}

#[test]
fn load_profile_reads_oci_json_and_names_the_file_on_errors() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let json = serde_json::to_string(&builtin("agent").unwrap()).unwrap();
    file.write_all(json.as_bytes()).unwrap();
    assert_eq!(
        load_profile(file.path()).unwrap(),
        builtin("agent").unwrap()
    );

    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(br#"{"defaultAction": "SCMP_ACT_MAYBE"}"#)
        .unwrap();
    let err = load_profile(file.path()).unwrap_err().to_string();
    assert!(err.contains("SCMP_ACT_MAYBE"), "{err}");

    let missing = std::path::Path::new("/nonexistent/seccomp.json");
    let err = load_profile(missing).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/seccomp.json"), "{err}");
}

#[test]
fn default_compiled_filter_is_empty() {
    let filter = CompiledFilter::default();
    assert_eq!(filter.instruction_count(), 0);
    // Installs nothing, so it is harmless even in the test process.
    filter.install().unwrap();
    assert_eq!(
        LinuxSeccomp::default().default_action(),
        LinuxSeccompAction::ScmpActAllow
    );
}

#[test]
fn filters_that_could_both_deny_one_call_stay_stacked() {
    // getppid: ERRNO in one filter, KILL_PROCESS for some arguments in
    // another. The kernel's precedence decides between them, so the two
    // must stay separate filters.
    let profile = profile_from_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                         {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS",
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    let plans = plan(&profile).unwrap();
    assert!(!exclusive(&plans));
    assert_eq!(compile(&profile).unwrap().programs().len(), plans.len());
}
