//! Unit tests of `Cgroup` against a fake cgroupfs in a temporary directory.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

use super::*;

fn resources() -> LinuxResources {
    LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .shares(1024u64)
                .quota(25_000i64)
                .period(100_000u64)
                .build()
                .expect("cpu"),
        )
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64i64 << 20)
                .swap(64i64 << 20)
                .build()
                .expect("memory"),
        )
        .pids(LinuxPidsBuilder::default().limit(16).build().expect("pids"))
        .build()
        .expect("resources")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

fn fake_v2() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("cgroup.subtree_control"), "io\n").expect("write");
    let layout = Layout::fake_unified(dir.path());
    (dir, layout)
}

/// cpu and cpuacct comounted, memory, pids, cpuset, and an empty cgroup2.
fn fake_hybrid() -> (tempfile::TempDir, Layout) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut hierarchies = Vec::new();
    for (name, controllers) in [
        ("cpu,cpuacct", vec!["cpu", "cpuacct"]),
        ("memory", vec!["memory"]),
        ("pids", vec!["pids"]),
        ("cpuset", vec!["cpuset"]),
    ] {
        let mount = dir.path().join(name);
        std::fs::create_dir(&mount).expect("mkdir");
        hierarchies.push(V1Hierarchy {
            mount,
            controllers: controllers.into_iter().map(str::to_string).collect(),
        });
    }
    let unified = dir.path().join("unified");
    std::fs::create_dir(&unified).expect("mkdir");
    let layout = Layout::fake_legacy(hierarchies, Some(unified));
    (dir, layout)
}

#[test]
fn v2_cgroup_gets_converted_limits_and_enabled_controllers() {
    let (root, layout) = fake_v2();
    let cg = Cgroup::create(&layout, Path::new("sunaba/a"), &resources()).expect("create");
    let leaf = root.path().join("sunaba/a");
    assert_eq!(cg.clone_dir(), Some(leaf.as_path()));
    assert!(cg.open_v1_tasks().expect("no v1").is_empty());
    assert_eq!(read(&leaf.join("cpu.weight")), "100");
    assert_eq!(read(&leaf.join("cpu.max")), "25000 100000");
    assert_eq!(read(&leaf.join("memory.max")), "67108864");
    assert_eq!(read(&leaf.join("pids.max")), "16");
    assert_eq!(
        read(&root.path().join("cgroup.subtree_control")),
        "io cpu memory pids"
    );
    assert_eq!(
        read(&root.path().join("sunaba/cgroup.subtree_control")),
        "cpu memory pids"
    );
    // The fake has no swap or oom.group files: both count as unenforced.
    assert!(cg
        .unenforced()
        .iter()
        .any(|u| u.starts_with("memory.swap.max")));
    assert_eq!(cg.memory_limit(), Some(64 << 20));
}

#[test]
fn v2_missing_controller_is_refused_before_anything_is_made() {
    let (root, layout) = fake_v2();
    std::fs::write(root.path().join("cgroup.controllers"), "memory pids\n").expect("write");
    let err = Cgroup::create(&layout, Path::new("sunaba/b"), &resources()).expect_err("no cpu");
    assert!(matches!(
        err,
        CgroupError::ControllerUnavailable {
            controller: "cpu",
            ..
        }
    ));
    assert!(!root.path().join("sunaba/b").exists());
}

#[test]
fn hybrid_cgroup_spans_v1_hierarchies_and_unified() {
    let (root, layout) = fake_hybrid();
    let cg = Cgroup::create(&layout, Path::new("sunaba/c"), &resources()).expect("create");
    let dirs: Vec<PathBuf> = ["cpu,cpuacct", "memory", "pids", "unified"]
        .iter()
        .map(|h| root.path().join(h).join("sunaba/c"))
        .collect();
    // The process-tracking cgroup2 directory is entered by clone3; the v1
    // ones through their tasks files.
    assert_eq!(cg.clone_dir(), Some(dirs[3].as_path()));
    for dir in &dirs[..3] {
        std::fs::write(dir.join("tasks"), "").expect("fake tasks file");
    }
    let tasks: Vec<PathBuf> = cg
        .open_v1_tasks()
        .expect("open tasks")
        .into_iter()
        .map(|(_, dir)| dir)
        .collect();
    assert_eq!(tasks, dirs[..3]);
    assert_eq!(
        cg.dirs(),
        dirs.iter().map(PathBuf::as_path).collect::<Vec<_>>()
    );
    assert!(
        !root.path().join("cpuset/sunaba").exists(),
        "cpuset only when asked"
    );
    assert_eq!(read(&dirs[0].join("cpu.shares")), "1024");
    assert_eq!(read(&dirs[0].join("cpu.cfs_quota_us")), "25000");
    assert_eq!(read(&dirs[1].join("memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&dirs[2].join("pids.max")), "16");
    assert!(cg
        .unenforced()
        .iter()
        .any(|u| u.starts_with("memory.memsw")));

    cg.add_process(4242).expect("add");
    for dir in &dirs {
        assert_eq!(read(&dir.join("cgroup.procs")), "4242");
    }
    std::fs::write(
        dirs[1].join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    )
    .expect("write");
    assert_eq!(cg.oom_kill_count().expect("count"), 3);

    cg.destroy().expect("destroy");
    for h in ["cpu,cpuacct", "memory", "pids", "unified"] {
        assert!(
            !root.path().join(h).join("sunaba/c").exists(),
            "{h} left behind"
        );
        // The shared parent stays for the next run.
        assert!(root.path().join(h).join("sunaba").is_dir(), "{h}");
    }
}

#[test]
fn destroy_prunes_the_parents_it_made_but_keeps_the_shared_one() {
    let (root, layout) = fake_hybrid();
    let nested = Cgroup::create(&layout, Path::new("sunaba/pod/x"), &resources()).expect("create");
    let outside = Cgroup::create(&layout, Path::new("other/y"), &resources()).expect("create");
    nested.destroy().expect("destroy");
    outside.destroy().expect("destroy");
    for h in ["cpu,cpuacct", "memory", "pids", "unified"] {
        let hierarchy = root.path().join(h);
        assert!(
            !hierarchy.join("sunaba/pod").exists(),
            "{h}: sunaba/pod kept"
        );
        assert!(!hierarchy.join("other").exists(), "{h}: other kept");
        assert!(hierarchy.join("sunaba").is_dir(), "{h}: sunaba removed");
    }
}

#[test]
fn cpuset_levels_inherit_the_parent_values() {
    let (root, layout) = fake_hybrid();
    std::fs::write(root.path().join("cpuset/cpuset.cpus"), "0-3\n").expect("write");
    std::fs::write(root.path().join("cpuset/cpuset.mems"), "0\n").expect("write");
    let mut res = resources();
    let mut cpu = res.cpu().clone().expect("cpu");
    cpu.set_cpus(Some("1".to_string()));
    res.set_cpu(Some(cpu));
    let _cg = Cgroup::create(&layout, Path::new("sunaba/d"), &res).expect("create");
    assert_eq!(read(&root.path().join("cpuset/sunaba/cpuset.cpus")), "0-3");
    assert_eq!(read(&root.path().join("cpuset/sunaba/d/cpuset.cpus")), "1");
    assert_eq!(read(&root.path().join("cpuset/sunaba/d/cpuset.mems")), "0");
}

#[test]
fn failed_create_leaves_no_directory() {
    // The cpuset root has no cpus/mems to inherit: the failure comes after
    // the cpu, memory, pids and cpuset directories were made.
    let (root, layout) = fake_hybrid();
    let mut res = resources();
    let mut cpu = res.cpu().clone().expect("cpu");
    cpu.set_cpus(Some("0".to_string()));
    res.set_cpu(Some(cpu));
    let err = Cgroup::create(&layout, Path::new("sunaba/e"), &res).expect_err("fails");
    assert!(matches!(err, CgroupError::Io { op: "read", .. }), "{err}");
    for h in ["cpu,cpuacct", "memory", "pids", "cpuset", "unified"] {
        assert!(
            !root.path().join(h).join("sunaba/e").exists(),
            "{h}/sunaba/e left behind"
        );
    }
}

#[test]
fn existing_cgroup_is_not_taken_over() {
    let (root, layout) = fake_hybrid();
    let first = Cgroup::create(&layout, Path::new("sunaba/f"), &resources()).expect("create");
    let err = Cgroup::create(&layout, Path::new("sunaba/f"), &resources()).expect_err("exists");
    assert!(matches!(err, CgroupError::Exists { .. }), "{err}");
    assert!(root
        .path()
        .join("memory/sunaba/f/memory.limit_in_bytes")
        .exists());
    first.destroy().expect("destroy");
}

#[test]
fn cgroup_path_must_stay_below_the_root() {
    let (_root, layout) = fake_v2();
    for rel in ["/abs", "../up", "sunaba/../../up", "", "./x"] {
        let err = Cgroup::create(&layout, Path::new(rel), &resources()).expect_err(rel);
        assert!(
            matches!(err, CgroupError::InvalidPath { .. }),
            "{rel}: {err}"
        );
    }
}

#[test]
fn v1_device_rules_keep_their_order_and_the_default_devices() {
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResourcesBuilder};
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap();
    let fuse = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(LinuxDeviceType::C)
        .major(10)
        .minor(229)
        .access("rw")
        .build()
        .unwrap();
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![deny_all, fuse])
        .build()
        .unwrap();
    let plan = crate::cgroups::plan::plan_v1(&resources).unwrap();
    let writes: Vec<(String, String)> = plan
        .writes
        .iter()
        .filter(|w| w.file.starts_with("devices."))
        .map(|w| (w.file.clone(), w.value.clone()))
        .collect();
    assert_eq!(writes[0], ("devices.deny".to_string(), "a".to_string()));
    assert_eq!(
        writes[1],
        ("devices.allow".to_string(), "c 10:229 rw".to_string())
    );
    assert!(writes.contains(&("devices.allow".to_string(), "c 1:3 rwm".to_string())));
    assert!(plan.unenforced.iter().all(|u| u != "devices"));

    // On v2 the same rules go to the BPF device program.
    let v2 = crate::cgroups::plan::plan_v2(&resources).unwrap();
    assert_eq!(v2.device_rules.len(), 2);
    assert!(v2.unenforced.iter().all(|u| u != "devices"));
}

#[test]
fn stale_cgroups_are_found_in_the_first_made_hierarchy_and_removed_from_all() {
    let (root, layout) = fake_hybrid();
    let make = |name: &str| {
        let cg =
            Cgroup::create(&layout, &Path::new("sunaba").join(name), &resources()).expect("create");
        let dirs: Vec<PathBuf> = cg.dirs().into_iter().map(Path::to_path_buf).collect();
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        for dir in &dirs {
            std::fs::File::open(dir)
                .and_then(|f| f.set_modified(hour_ago))
                .expect("backdate");
        }
        dirs
    };
    let gone = make("run-1-a");
    let busy = make("run-2-b");
    let alive = make("run-3-c");
    // The sweep lists only the hierarchy a cgroup is made in first.
    assert!(gone[0].starts_with(creation_order(&layout)[0]));
    assert!(gone[0].starts_with(root.path().join("cpu,cpuacct")));
    // A process left in the memory hierarchy keeps all of run-2 but the
    // directories made after that one.
    let busy_memory = busy
        .iter()
        .find(|d| d.starts_with(root.path().join("memory")))
        .expect("memory directory");
    std::fs::write(busy_memory.join("cgroup.procs"), "4242\n").expect("write");

    let removed = remove_stale(&layout, Path::new("sunaba"), |name| name != "run-3-c");

    assert!(gone.iter().all(|d| !d.exists()), "{gone:?}");
    assert!(alive.iter().all(|d| d.exists()), "{alive:?}");
    assert!(busy[0].exists() && busy_memory.exists());
    let after_memory: Vec<&PathBuf> = busy
        .iter()
        .skip_while(|d| *d != busy_memory)
        .skip(1)
        .collect();
    assert!(!after_memory.is_empty());
    assert!(after_memory.iter().all(|d| !d.exists()), "{after_memory:?}");
    assert_eq!(removed, gone.len() + after_memory.len());
}
