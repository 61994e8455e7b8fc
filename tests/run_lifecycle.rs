//! Exit statuses, signals, timeouts, errors before the program starts, and
//! what is left after each way a run can end.

mod common;

use common::{leftover_cgroups, privileged, sandboxed_processes, unique, Sandbox};

fn sandbox(args: &[&str]) -> Sandbox {
    let mut all = vec!["--security-opt", "seccomp=unconfined"];
    all.extend_from_slice(args);
    Sandbox::new(&all)
}

#[test]
fn program_exit_status_is_passed_through() {
    if !privileged("program_exit_status_is_passed_through") {
        return;
    }
    let out = sandbox(&["--", "sh", "-c", "exit 3"]).run();
    out.expect_code(3);
    assert!(out.stderr.is_empty(), "{out:#?}");
    sandbox(&["--", "true"]).run().expect_success();
}

#[test]
fn program_killed_by_a_signal_exits_128_plus_the_signal() {
    if !privileged("program_killed_by_a_signal_exits_128_plus_the_signal") {
        return;
    }
    // Under --init, the program is not pid 1, so its own SIGTERM kills it.
    let out = sandbox(&["--init", "--", "sh", "-c", "kill -TERM $$; sleep 1000"]).run();
    out.expect_code(143);
    assert!(out.sunaba_lines().is_empty(), "{out:#?}");
}

#[test]
fn sigterm_to_sunaba_reaches_the_program_under_init() {
    if !privileged("sigterm_to_sunaba_reaches_the_program_under_init") {
        return;
    }
    let running = sandbox(&["--init", "--", "sleep", "1000"]).spawn();
    running.wait_for_process("sleep 1000");
    running.signal(libc::SIGTERM);
    let out = running.wait();
    out.expect_code(143);
}

#[test]
fn timeout_kills_the_sandbox_with_124() {
    if !privileged("timeout_kills_the_sandbox_with_124") {
        return;
    }
    let out = sandbox(&["--timeout", "1s", "--", "sleep", "1000"]).run();
    out.expect_code(124);
    assert_eq!(out.sunaba_lines(), ["sunaba: killed: timeout after 1s"]);

    // A program that ends in time keeps its own status.
    let out = sandbox(&["--timeout", "30s", "--", "sh", "-c", "exit 5"]).run();
    out.expect_code(5);
    assert!(out.sunaba_lines().is_empty(), "{out:#?}");
}

#[test]
fn missing_program_exits_127_and_unexecutable_one_126() {
    if !privileged("missing_program_exits_127_and_unexecutable_one_126") {
        return;
    }
    let name = unique("no-such-program");
    let out = sandbox(&["--", &name]).run();
    out.expect_code(127);
    assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
    assert!(out.stderr.starts_with("sunaba: "), "{out:#?}");
    assert!(out.stderr.contains(&name), "{out:#?}");

    use std::os::unix::fs::PermissionsExt as _;
    let dir = common::temp_dir();
    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = sandbox(&["--", &script.to_string_lossy()]).run();
    out.expect_code(126);
    assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
    assert!(out.stderr.contains("Permission denied"), "{out:#?}");

    // The same file, executable, runs.
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = sandbox(&["--", &script.to_string_lossy()]).run();
    out.expect_success();
    assert_eq!(out.stdout, "ran\n");
}

/// Runs sunaba with `args` (the command is `true`), expects `code` and a
/// message naming `word`, and (through `run`) that nothing was left.
fn refused(args: &[&str], code: i32, word: &str) {
    let mut all = args.to_vec();
    all.extend(["--", "true"]);
    let out = sandbox(&all).run();
    out.expect_code(code);
    assert!(out.stderr.contains(word), "{word:?} not named: {out:#?}");
    assert!(out.stdout.is_empty(), "{out:#?}");
}

#[test]
fn bad_settings_are_refused_before_anything_is_made() {
    if !privileged("bad_settings_are_refused_before_anything_is_made") {
        return;
    }
    let profile = unique("nope");
    refused(&["--profile", &profile], 125, &profile);
    refused(&["--memory", "12q"], 125, "12q");
    refused(&["--user", "abc"], 125, "abc");
    let missing = format!("/{}", unique("nonexistent"));
    refused(&["-v", &format!("{missing}:/x")], 125, &missing);
    refused(&["-v", "/tmp:/../x"], 125, "/../x");
    let workdir = format!("/{}", unique("nonexistent"));
    refused(&["--workdir", &workdir], 125, &workdir);
    refused(
        &["--security-opt", "seccomp=/nonexistent.json"],
        125,
        "/nonexistent.json",
    );

    // Each sunaba error is one line.
    let out = sandbox(&["--profile", &profile, "--", "true"]).run();
    assert_eq!(out.sunaba_lines().len(), 1, "{out:#?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:#?}");
}

#[test]
fn leftover_check_sees_a_running_sandbox() {
    // The leftover check that every other test relies on must see the
    // cgroups and processes of a sandbox while it runs.
    if !privileged("leftover_check_sees_a_running_sandbox") {
        return;
    }
    let running = sandbox(&["--", "sleep", "1000"]).spawn();
    let sleeper = running.wait_for_process("sleep 1000");
    assert!(!leftover_cgroups(running.pid()).is_empty());
    assert_eq!(sandboxed_processes(running.marker()), [sleeper]);
    running.signal(libc::SIGTERM);
    // sleep is pid 1 without --init and has no SIGTERM handler: the kernel
    // drops the signal. SIGKILL from the host still ends it.
    // SAFETY: kill has no memory-safety preconditions; the PID was found by
    // its marker an instant ago.
    assert_eq!(unsafe { libc::kill(sleeper, libc::SIGKILL) }, 0);
    let out = running.wait();
    out.expect_code(137);
}

#[test]
fn killing_sunaba_takes_the_sandbox_with_it() {
    if !privileged("killing_sunaba_takes_the_sandbox_with_it") {
        return;
    }
    for init in [false, true] {
        let mut args = vec!["--security-opt", "seccomp=unconfined"];
        if init {
            args.push("--init");
        }
        args.extend(["--", "sleep", "1000"]);
        let running = Sandbox::new(&args).spawn();
        running.wait_for_process("sleep 1000");
        running.signal(libc::SIGKILL);
        let finished = running.wait_only();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&finished.output.status),
            Some(libc::SIGKILL)
        );
        // PDEATHSIG ends the sandbox's pid 1, and with it the namespace.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !sandboxed_processes(&finished.marker).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "sandbox (init: {init}) outlived sunaba: {:?}",
                sandboxed_processes(&finished.marker)
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }

        // A SIGKILLed runtime cannot remove its cgroup. The next run removes
        // empty ones whose runtime is gone, once they are older than a few
        // seconds; backdating them stands in for the wait.
        let stale = leftover_cgroups(finished.pid);
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for dir in &stale {
            // A process whose memory is already gone (so its marker can no
            // longer be read) may still be listed for a moment while it
            // exits; on a slow machine that moment is visible.
            let procs = || std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !procs().is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            assert_eq!(procs(), "", "{} still has processes", dir.display());
            if let Ok(f) = std::fs::File::open(dir) {
                f.set_modified(hour_ago).expect("backdate the cgroup");
            }
        }
        sandbox(&["--", "true"]).run().expect_success();
        let left = leftover_cgroups(finished.pid);
        common::remove_cgroups(&left);
        assert!(left.is_empty(), "init {init}: a later run kept {left:?}");
    }
}

#[test]
fn init_reaps_orphans_that_a_plain_pid_1_leaves_as_zombies() {
    if !privileged("init_reaps_orphans_that_a_plain_pid_1_leaves_as_zombies")
        || !common::require(
            "init_reaps_orphans_that_a_plain_pid_1_leaves_as_zombies",
            &["python3"],
        )
    {
        return;
    }
    // python3 never waits for children it did not start: an orphan handed
    // to it as pid 1 stays a zombie, while sunaba's init reaps it.
    let program = "import os, subprocess, time\n\
subprocess.Popen(['sh', '-c', 'sleep 0.2 & exit']).wait()\n\
time.sleep(1)\n\
stats = [open(f'/proc/{p}/stat').read() for p in os.listdir('/proc') if p.isdigit()]\n\
print(sum(1 for s in stats if s.rsplit(')', 1)[1].split()[0] == 'Z'))";
    let out = sandbox(&["--", "python3", "-c", program]).run();
    out.expect_success();
    assert_eq!(out.stdout.trim(), "1", "{out:#?}");
    let out = sandbox(&["--init", "--", "python3", "-c", program]).run();
    out.expect_success();
    assert_eq!(out.stdout.trim(), "0", "{out:#?}");
}

#[test]
fn a_terminal_caller_gets_a_pseudo_terminal_of_the_sandbox() {
    if !privileged("a_terminal_caller_gets_a_pseudo_terminal_of_the_sandbox")
        || !common::require(
            "a_terminal_caller_gets_a_pseudo_terminal_of_the_sandbox",
            &["script"],
        )
    {
        return;
    }
    // script(1) gives sunaba a terminal on stdin and stdout. The program then
    // sees the sandbox's own /dev/pts/0 as its controlling terminal, in a
    // session of its own, and its exit status comes back through.
    let inner = "tty; test -t 0 && echo stdin-is-tty; ps -o sid= -p $$; echo $$; exit 7";
    let command = format!(
        "{} run --security-opt seccomp=unconfined -- sh -c '{inner}'",
        env!("CARGO_BIN_EXE_sunaba")
    );
    // script(1) types a byte into its terminal when its own stdin ends, so
    // that stays open (a pipe nobody writes to) until the run is over.
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run script");
    let keep_open = child.stdin.take();
    // Nothing below may hang the suite: script is killed after a minute.
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let script_pid = i32::try_from(child.id()).expect("pid fits i32");
    let watchdog = {
        let finished = finished.clone();
        std::thread::spawn(move || {
            for _ in 0..600 {
                if finished.load(std::sync::atomic::Ordering::SeqCst) {
                    return false;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            // SAFETY: kill has no memory-safety preconditions; script is our
            // unreaped child, so its PID cannot have been reused.
            unsafe { libc::kill(script_pid, libc::SIGKILL) };
            true
        })
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut stdout)
        .expect("read script's output");
    let status = child.wait().expect("wait for script");
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        !watchdog.join().expect("watchdog"),
        "script and sunaba still ran after a minute; killed: {stdout}"
    );
    drop(keep_open);
    let stdout = stdout.replace('\r', "");
    assert_eq!(status.code(), Some(7), "{stdout}");
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(lines, ["/dev/pts/0", "stdin-is-tty", "1", "1"], "{stdout}");

    // Without a terminal, the standard streams are plain pipes.
    let out = sandbox(&["--", "sh", "-c", "tty; true"]).run();
    assert_eq!(out.stdout.trim(), "not a tty", "{out:#?}");
}
