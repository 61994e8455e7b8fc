//! The cgroup backend against the real kernel, on whatever layout the host
//! has (v1 hierarchies on a hybrid host, cgroup2 in the test VM). Needs root;
//! without it each test prints why it is skipped, and fails instead when
//! `REQUIRE_PRIVILEGED_TESTS=1`.
//!
//! Every test makes its own `sunaba/test-<pid>-<n>` and removes it even when
//! an assertion fails.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};
use sunaba::cgroups::{Cgroup, CgroupError, Layout};

mod common;
use common::privileged;

const MIB: i64 = 1 << 20;

fn unique_rel() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    PathBuf::from(format!("sunaba/test-{}-{n}", std::process::id()))
}

/// Destroys the cgroup when the test ends, whatever the outcome.
struct Guard(Option<Cgroup>);

impl Guard {
    fn cg(&self) -> &Cgroup {
        self.0.as_ref().expect("cgroup present until destroy")
    }

    fn destroy(mut self) -> Result<(), CgroupError> {
        self.0.take().expect("cgroup present").destroy()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            if let Err(e) = cg.destroy() {
                eprintln!("cleanup failed: {e}");
            }
        }
    }
}

/// Kills and reaps a child on drop, in case an assertion fails first.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn resources(memory: i64, swap: i64, pids: i64) -> LinuxResources {
    LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(30_000i64)
                .period(100_000u64)
                .build()
                .expect("cpu"),
        )
        .memory(
            LinuxMemoryBuilder::default()
                .limit(memory)
                .swap(swap)
                .build()
                .expect("memory"),
        )
        .pids(
            LinuxPidsBuilder::default()
                .limit(pids)
                .build()
                .expect("pids"),
        )
        .build()
        .expect("resources")
}

fn setup(res: &LinuxResources) -> (Layout, PathBuf, Guard) {
    let layout = Layout::detect().expect("detect layout");
    let rel = unique_rel();
    let cg = Cgroup::create(&layout, &rel, res).expect("create cgroup");
    (layout, rel, Guard(Some(cg)))
}

/// The directory holding `controller`'s files for `rel`.
fn dir_of(layout: &Layout, rel: &Path, controller: &str) -> PathBuf {
    match layout.v1_hierarchy(controller) {
        Some(h) => h.mount.join(rel),
        None => layout.unified_root().expect("cgroup2 root").join(rel),
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Starts `sh -c script` waiting on its stdin, so it can be placed in the
/// cgroup before it does anything; `go` releases it.
fn held_shell(script: &str) -> Reaped {
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("read _go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    Reaped(child)
}

fn go(child: &mut Reaped) {
    let stdin = child.0.stdin.as_mut().expect("piped stdin");
    stdin.write_all(b"go\n").expect("release child");
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kernel_holds_the_written_limits() {
    if !privileged("kernel_holds_the_written_limits") {
        return;
    }
    let (layout, rel, guard) = setup(&resources(64 * MIB, 64 * MIB, 20));
    let cpu = dir_of(&layout, &rel, "cpu");
    let memory = dir_of(&layout, &rel, "memory");
    let pids = dir_of(&layout, &rel, "pids");
    if layout.is_unified() {
        assert_eq!(read(&cpu.join("cpu.max")), "30000 100000");
        assert_eq!(read(&cpu.join("cpu.weight")), "59");
        assert_eq!(read(&memory.join("memory.max")), (64 * MIB).to_string());
        assert_eq!(read(&memory.join("memory.oom.group")), "1");
        if memory.join("memory.swap.max").exists() {
            assert_eq!(read(&memory.join("memory.swap.max")), "0");
        }
        assert_eq!(guard.cg().clone_dir(), Some(memory.as_path()));
        assert!(guard.cg().open_v1_tasks().expect("no v1").is_empty());
    } else {
        assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "30000");
        assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(&cpu.join("cpu.shares")), "512");
        assert_eq!(
            read(&memory.join("memory.limit_in_bytes")),
            (64 * MIB).to_string()
        );
        let memsw = memory.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            assert_eq!(read(&memsw), (64 * MIB).to_string());
        } else {
            assert!(!guard.cg().unenforced().is_empty());
        }
        // Every v1 directory has a tasks file the sandbox can move into.
        let tasks = guard.cg().open_v1_tasks().expect("open tasks files");
        assert!(tasks.iter().any(|(_, dir)| dir == &memory), "{tasks:?}");
    }
    assert_eq!(read(&pids.join("pids.max")), "20");
    assert_eq!(guard.cg().memory_limit(), Some(64 << 20));
    guard.destroy().expect("destroy");
}

#[test]
fn added_process_is_listed_and_destroy_kills_it() {
    if !privileged("added_process_is_listed_and_destroy_kills_it") {
        return;
    }
    let (layout, rel, guard) = setup(&resources(64 * MIB, 64 * MIB, 20));
    let mut child = Reaped(
        Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("spawn sleep"),
    );
    let pid = i32::try_from(child.0.id()).expect("pid fits i32");
    guard.cg().add_process(pid).expect("add_process");

    // Every hierarchy the cgroup lives in lists the child under `rel`.
    let membership = read(Path::new(&format!("/proc/{pid}/cgroup")));
    let want = format!("/{}", rel.display());
    for dir in guard.cg().dirs() {
        assert!(read(&dir.join("cgroup.procs"))
            .lines()
            .any(|l| l == pid.to_string()));
    }
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next(), fields.next(), fields.next());
        let managed = controllers
            .unwrap_or_default()
            .split(',')
            .any(|c| ["cpu", "memory", "pids"].contains(&c));
        let unified = controllers == Some("") && layout.unified_root().is_some();
        if managed || unified {
            assert_eq!(path, Some(want.as_str()), "{line}");
        }
    }

    let dirs: Vec<PathBuf> = guard.cg().dirs().iter().map(|d| d.to_path_buf()).collect();
    guard.destroy().expect("destroy");
    let status = child.0.wait().expect("wait");
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    for dir in dirs {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn allocation_past_the_limit_is_oom_killed_and_counted() {
    if !privileged("allocation_past_the_limit_is_oom_killed_and_counted") {
        return;
    }
    // memory+swap equal to the limit: swap cannot rescue the child.
    let (_layout, _rel, guard) = setup(&resources(16 * MIB, 16 * MIB, 20));
    assert_eq!(guard.cg().oom_kill_count().expect("count"), 0);

    // dd allocates one 64 MiB block and fills it from /dev/zero.
    let mut child = held_shell("exec dd if=/dev/zero of=/dev/null bs=64M count=1");
    let pid = i32::try_from(child.0.id()).expect("pid fits i32");
    guard.cg().add_process(pid).expect("add_process");
    go(&mut child);
    let status = child.0.wait().expect("wait");

    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(guard.cg().oom_kill_count().expect("count") >= 1);
    guard.destroy().expect("destroy");
}

#[test]
fn allocation_below_the_limit_is_not_killed() {
    if !privileged("allocation_below_the_limit_is_not_killed") {
        return;
    }
    let (_layout, _rel, guard) = setup(&resources(64 * MIB, 64 * MIB, 20));
    let mut child = held_shell("exec dd if=/dev/zero of=/dev/null bs=8M count=1");
    let pid = i32::try_from(child.0.id()).expect("pid fits i32");
    guard.cg().add_process(pid).expect("add_process");
    go(&mut child);
    assert!(child.0.wait().expect("wait").success());
    assert_eq!(guard.cg().oom_kill_count().expect("count"), 0);
    guard.destroy().expect("destroy");
}

#[test]
fn forks_past_pids_max_fail() {
    if !privileged("forks_past_pids_max_fail") {
        return;
    }
    let (layout, rel, guard) = setup(&resources(64 * MIB, 64 * MIB, 5));
    let mut child = held_shell("for i in 1 2 3 4 5 6 7 8 9 10; do sleep 600 & done; wait");
    let pid = i32::try_from(child.0.id()).expect("pid fits i32");
    guard.cg().add_process(pid).expect("add_process");
    go(&mut child);

    // The shell plus four sleeps reach the limit; the other forks get EAGAIN
    // and the kernel counts them in pids.events.
    let pids = dir_of(&layout, &rel, "pids");
    wait_until("the pids controller to refuse a fork", || {
        read(&pids.join("pids.events"))
            .split_whitespace()
            .nth(1)
            .is_some_and(|n| n != "0")
    });
    let listed = read(&pids.join("cgroup.procs")).lines().count();
    assert!(listed <= 5, "{listed} processes under pids.max 5");
    assert!(
        listed >= 4,
        "only {listed} processes: the allowed forks failed too"
    );
    guard.destroy().expect("destroy");
    let _ = child.0.wait();
}

#[test]
fn rejected_value_leaves_no_cgroup() {
    if !privileged("rejected_value_leaves_no_cgroup") {
        return;
    }
    let layout = Layout::detect().expect("detect layout");
    let rel = unique_rel();
    let mut res = resources(64 * MIB, 64 * MIB, 20);
    // The kernel refuses a CFS quota below 1 ms (sched-bwc.rst).
    let mut cpu = res.cpu().clone().expect("cpu");
    cpu.set_quota(Some(500));
    res.set_cpu(Some(cpu));

    let err = Cgroup::create(&layout, &rel, &res).expect_err("quota of 500us is refused");
    assert!(matches!(err, CgroupError::WriteFile { .. }), "{err}");
    for controller in ["cpu", "memory", "pids"] {
        let dir = dir_of(&layout, &rel, controller);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    if let Some(root) = layout.unified_root() {
        assert!(!root.join(&rel).exists());
    }
}

/// Set in the re-executed test binary that drops to an unprivileged uid.
const AS_NOBODY: &str = "SUNABA_CGROUP_TEST_AS_NOBODY";

#[test]
fn undelegated_create_reports_not_delegated() {
    if !privileged("undelegated_create_reports_not_delegated") {
        return;
    }
    // Credentials are process-wide: drop them in a fresh copy of this binary.
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "create_as_nobody", "--test-threads=1"])
        .env(AS_NOBODY, "1")
        .status()
        .expect("re-exec test binary");
    assert!(status.success(), "unprivileged create: {status:?}");
}

#[test]
fn create_as_nobody() {
    if std::env::var_os(AS_NOBODY).is_none() {
        return;
    }
    let nobody_gid = nix::unistd::Gid::from_raw(65534);
    let nobody_uid = nix::unistd::Uid::from_raw(65534);
    nix::unistd::setgroups(&[]).expect("setgroups");
    nix::unistd::setresgid(nobody_gid, nobody_gid, nobody_gid).expect("setresgid");
    nix::unistd::setresuid(nobody_uid, nobody_uid, nobody_uid).expect("setresuid");

    let layout = Layout::detect().expect("detect layout");
    let err = Cgroup::create(&layout, &unique_rel(), &resources(64 * MIB, 64 * MIB, 20))
        .expect_err("nobody has no delegated cgroup");
    assert!(matches!(err, CgroupError::NotDelegated { .. }), "{err}");
}

#[test]
fn memory_reservation_is_protected_from_reclaim() {
    if !privileged("memory_reservation_is_protected_from_reclaim") {
        return;
    }
    let res = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64 * MIB)
                .reservation(16 * MIB)
                .build()
                .expect("memory"),
        )
        .build()
        .expect("resources");
    let (layout, rel, _guard) = setup(&res);
    let memory = dir_of(&layout, &rel, "memory");
    // memory.low on v2 (reclaim protection), the soft limit on v1.
    let file = if layout.is_unified() {
        "memory.low"
    } else {
        "memory.soft_limit_in_bytes"
    };
    assert_eq!(read(&memory.join(file)), (16 * MIB).to_string());
}
