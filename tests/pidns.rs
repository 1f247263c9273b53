//! End to end: `--unshare-pid` (a PID namespace with our init as PID 1) and `--die-with-parent`,
//! as root and as uid 65534. Processes are found on the host by a unique variable that only the
//! command's environment carries (`--setenv`), so parallel tests never see each other's.

mod common;
use common::*;

use rustix::process::{Pid, Signal};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
enum Caller {
    Root,
    Nobody,
}

const BOTH: [Caller; 2] = [Caller::Root, Caller::Nobody];

/// `program args...` as the given caller (nobody through setpriv, which execs: the child's pid is
/// the program's).
fn command(caller: Caller, program: &std::path::Path, args: &[String]) -> Command {
    require_root();
    let mut c = match caller {
        Caller::Root => Command::new(program),
        Caller::Nobody => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(program);
            c
        }
    };
    c.args(args).stdin(Stdio::null());
    c
}

fn run_as(caller: Caller, args: &[String]) -> Run {
    let v = refs(args);
    match caller {
        Caller::Root => run(&v),
        Caller::Nobody => run_as_nobody(&v),
    }
}

/// A unique `NAME=VALUE` marker for the command's environment; on drop, every host process that
/// carries it is killed, so a failing test leaves nothing behind.
struct Marker(String);

impl Marker {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Marker(format!("{tag}-{}-{n}", std::process::id()))
    }

    /// `--setenv MKOSI_SANDBOX_TEST_MARK <value>`.
    fn options(&self) -> [String; 3] {
        ["--setenv".into(), "MKOSI_SANDBOX_TEST_MARK".into(), self.0.clone()]
    }

    /// Host pids of the processes whose environment carries the marker.
    fn pids(&self) -> Vec<i32> {
        let needle = format!("MKOSI_SANDBOX_TEST_MARK={}", self.0);
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let Ok(env) = std::fs::read(entry.path().join("environ")) else { continue };
            if env.split(|&b| b == 0).any(|var| var == needle.as_bytes()) {
                found.push(pid);
            }
        }
        found
    }

    /// Waits up to 10 s until there are some marked processes (`some`) or none; returns them.
    fn wait_until(&self, some: bool) -> Vec<i32> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = self.pids();
            if pids.is_empty() != some || Instant::now() > deadline {
                return pids;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        for _ in 0..50 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                kill_pid(pid, Signal::KILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn kill_pid(pid: i32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

fn kill(child: &Child, signal: Signal) {
    let pid = Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// The child's exit code, if it exits within 10 s; else it is killed (and `None`).
fn exit_code_within_10s(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait().unwrap() {
            Some(status) => return status.code(),
            None if Instant::now() > deadline => break,
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    kill(child, Signal::KILL);
    child.wait().unwrap();
    None
}

fn args(extra: &[String], script: &str) -> Vec<String> {
    sh(&refs(extra), script)
}

#[test]
fn daemons_die_with_the_command_only_in_a_pid_namespace() {
    needs_root!();
    let daemon = "setsid sh -c 'sleep 1000' </dev/null >/dev/null 2>&1 & exit 0";
    for caller in BOTH {
        let mark = Marker::new("daemon");
        let mut extra = vec!["--unshare-pid".to_string()];
        extra.extend(mark.options());
        run_as(caller, &args(&extra, daemon)).ok();
        assert_eq!(mark.pids(), Vec::<i32>::new(), "{caller:?}: a process of the namespace outlived the sandbox");

        // Without the option the daemon is still there: the check above can see one.
        let mark = Marker::new("daemon-control");
        run_as(caller, &args(&mark.options(), daemon)).ok();
        assert!(!mark.wait_until(true).is_empty(), "{caller:?}: the daemon should survive without --unshare-pid");
    }
}

#[test]
fn exit_status_is_the_commands_or_128_plus_the_signal() {
    needs_root!();
    for caller in BOTH {
        for (script, status) in [("exit 0", 0), ("exit 3", 3), ("kill -TERM $$", 128 + 15), ("kill -KILL $$", 128 + 9)]
        {
            let out = run_as(caller, &args(&["--unshare-pid".into()], script));
            assert_eq!(out.status, status, "{caller:?} {script}: stderr={}", out.stderr);
        }
    }
}

#[test]
fn sigterm_to_the_sandbox_reaches_the_command() {
    use std::io::BufRead;
    needs_root!();
    for caller in BOTH {
        let script = "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done";
        let mark = Marker::new("sigterm");
        let mut extra = vec!["--unshare-pid".to_string()];
        extra.extend(mark.options());
        let mut child = command(caller, &binary(), &args(&extra, script)).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n", "{caller:?}");
        kill(&child, Signal::TERM);
        let status = exit_code_within_10s(&mut child);
        assert_eq!(status, Some(42), "{caller:?}: SIGTERM did not end the command");
    }
}

#[test]
fn proc_and_ps_show_the_init_and_the_command_only() {
    needs_root!();
    for caller in BOTH {
        let out = run_as(caller, &args(&["--unshare-pid".into()], "echo $$ /proc/[0-9]*; exec ps -e -o pid=,comm="));
        let text = out.ok();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("2 /proc/1 /proc/2"), "{caller:?}: {text}");
        let ps: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(ps, [vec!["1", "mkosi-sandbox"], vec!["2", "ps"]], "{caller:?}: {text}");
    }
}

#[test]
fn killing_the_caller_kills_a_die_with_parent_sandbox() {
    needs_root!();
    for caller in BOTH {
        for options in [&["--die-with-parent"][..], &["--die-with-parent", "--unshare-pid"], &[]] {
            let mark = Marker::new("orphan");
            let mut extra: Vec<String> = options.iter().map(|s| s.to_string()).collect();
            extra.extend(mark.options());
            // The caller: a shell that starts the sandbox and waits for it.
            let mut script = vec!["-c".to_string(), "\"$0\" \"$@\" & wait".into(), binary().to_str().unwrap().into()];
            script.extend(args(&extra, "exec sleep 1000"));
            let mut shell = command(caller, std::path::Path::new("sh"), &script).spawn().unwrap();
            assert!(!mark.wait_until(true).is_empty(), "{caller:?} {options:?}: the command never started");
            kill(&shell, Signal::KILL);
            shell.wait().unwrap();
            if options.is_empty() {
                // The control: without the option the command outlives its caller.
                std::thread::sleep(Duration::from_millis(300));
                assert!(!mark.pids().is_empty(), "{caller:?}: the command should survive without --die-with-parent");
            } else {
                let left = mark.wait_until(false);
                assert_eq!(left, Vec::<i32>::new(), "{caller:?} {options:?}: the command outlived its caller");
            }
        }
    }
}

#[test]
fn listen_pid_is_the_commands_pid_inside_the_namespace() {
    needs_root!();
    for caller in BOTH {
        // The caller passes one descriptor (3) for --pack-fds.
        let mut script = vec!["-c".to_string(), "exec 3</dev/null; exec \"$0\" \"$@\"".into()];
        script.push(binary().to_str().unwrap().into());
        script.extend(args(&["--pack-fds".into(), "--unshare-pid".into()], "echo $LISTEN_PID $$ $LISTEN_FDS"));
        let out = command(caller, std::path::Path::new("sh"), &script).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{caller:?}: {}", String::from_utf8_lossy(&out.stderr));
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert_eq!(fields.len(), 3, "{caller:?}: {text}");
        assert_eq!(fields[0], fields[1], "{caller:?}: LISTEN_PID must be what $$ is inside");
        // At least ours; the test harness may pass more.
        assert!(fields[2].parse::<u32>().unwrap() >= 1, "{caller:?}: LISTEN_FDS={}", fields[2]);
    }
}

/// The `State:` letter of a process and its children, from /proc.
fn state_and_children(pid: u32) -> (char, Vec<u32>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let state = status.lines().find_map(|l| l.strip_prefix("State:")).and_then(|s| s.trim().chars().next());
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    (state.unwrap_or('?'), children.split_whitespace().filter_map(|p| p.parse().ok()).collect())
}

#[test]
fn suspend_stops_the_command_and_sigcont_to_the_sandbox_resumes_it() {
    needs_root!();
    for caller in BOTH {
        let extra = ["--unshare-pid".to_string(), "--suspend".to_string()];
        let mut child = command(caller, &binary(), &args(&extra, "exit 5")).spawn().unwrap();
        // The sandbox process (the child: setpriv execs) → the init → the command's process,
        // which stops itself before exec.
        let deadline = Instant::now() + Duration::from_secs(10);
        let stopped = loop {
            let (_, inits) = state_and_children(child.id());
            let commands: Vec<u32> = inits.iter().flat_map(|&i| state_and_children(i).1).collect();
            if commands.iter().any(|&c| state_and_children(c).0 == 'T') {
                break true;
            }
            if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
                break false;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if !stopped {
            let _ = child.kill();
        }
        assert!(stopped, "{caller:?}: the command's process never stopped (status {:?})", child.try_wait());
        assert!(child.try_wait().unwrap().is_none(), "{caller:?}: the sandbox exited while the command was stopped");
        kill(&child, Signal::CONT);
        let status = exit_code_within_10s(&mut child);
        assert_eq!(status, Some(5), "{caller:?}: SIGCONT to the sandbox did not resume the command");
    }
}
