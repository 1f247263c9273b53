//! Helpers for the end-to-end tests: run the real binary, as root or as nobody.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test: $MKOSI_SANDBOX (the static musl build, set by `make test`), else the
/// one cargo built for these tests. Tests run a world-readable copy of it in the temporary
/// directory: the checkout may sit where uid 65534 cannot reach (CI clones anywhere; /root is 0700).
pub fn binary() -> PathBuf {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let built = match std::env::var_os("MKOSI_SANDBOX") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(env!("CARGO_BIN_EXE_mkosi-sandbox")),
        };
        let suite = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "tests".into());
        // One directory per user: a user cannot write into one that root made before (the
        // non-root run, whose tests skip, still copies the binary).
        let top = std::env::temp_dir().join(format!("mkosi-sandbox-tests-{}", rustix::process::getuid().as_raw()));
        let dir = top.join(suite);
        std::fs::create_dir_all(&dir).unwrap();
        for d in [&top, &dir] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let staging = dir.join(format!(".mkosi-sandbox.{}", std::process::id()));
        std::fs::copy(&built, &staging).unwrap_or_else(|e| panic!("copy {}: {e}", built.display()));
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755)).unwrap();
        let target = dir.join("mkosi-sandbox");
        std::fs::rename(&staging, &target).unwrap();
        target
    })
    .clone()
}

/// Whether the end-to-end tests can run here: they make namespaces and mounts as root, and switch
/// to nobody themselves. Otherwise [`needs_root!`] counts the test as skipped.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

static SKIPPED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Notes that `test` did not run (it needs root). When the suite's process exits, one line says
/// how many of its tests were skipped and which: the harness itself counts them as passed.
pub fn skipped(test: &str) {
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    SKIPPED.lock().unwrap_or_else(|e| e.into_inner()).push(test.to_string());
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn()` that takes no arguments and only reads a
        // static; libc runs it once, from exit(), after the harness has printed its summary.
        let registered = unsafe { libc::atexit(say_skipped) };
        assert_eq!(registered, 0, "atexit");
    });
}

extern "C" fn say_skipped() {
    use std::io::Write;
    let skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    // The test binary is named <suite>-<hash>.
    let exe = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
    let exe = exe.unwrap_or_default();
    let suite = exe.rsplit_once('-').map_or(exe.as_str(), |(suite, _)| suite);
    let names: Vec<&str> = skipped.iter().map(|t| t.rsplit("::").next().unwrap_or(t)).collect();
    // Straight to fd 2, one write: the harness has already printed "test result: ok".
    let tests = if skipped.len() == 1 { "test" } else { "tests" };
    let line = format!("SKIP {suite}: {} {tests} skipped, they need root: {}\n", skipped.len(), names.join(" "));
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Returns from the calling test unless running as root (see [`is_root`]), counting it as
/// skipped ([`skipped`]).
#[macro_export]
macro_rules! needs_root {
    () => {
        if !common::is_root() {
            fn here() {}
            let name = std::any::type_name_of_val(&here);
            common::skipped(name.strip_suffix("::here").unwrap_or(name));
            return;
        }
    };
}

pub fn require_root() {
    assert!(is_root(), "the end-to-end tests run as root (they also switch to nobody)");
}

/// A minimal host-backed root: /usr read-only plus the merged-/usr symlinks, /proc and /dev.
pub const BASE: &[&str] = &[
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/sbin",
    "/sbin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
];

#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &str {
        assert_eq!(self.status, 0, "sandbox failed: stderr={}", self.stderr);
        &self.stdout
    }
}

fn finish(out: Output) -> Run {
    use std::os::unix::process::ExitStatusExt;
    let status = out.status.code().unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
    Run {
        status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the sandbox as root with `args` (options, then `--`, then the command).
pub fn run(args: &[&str]) -> Run {
    require_root();
    let out = Command::new(binary()).args(args).stdin(Stdio::null()).output().expect("spawn");
    finish(out)
}

/// Runs the sandbox as uid/gid 65534 with no supplementary groups.
pub fn run_as_nobody(args: &[&str]) -> Run {
    require_root();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawn setpriv");
    finish(out)
}

/// BASE + extra options + `-- sh -c SCRIPT`.
pub fn sh(extra: &[&str], script: &str) -> Vec<String> {
    let mut v: Vec<String> = BASE.iter().map(|s| s.to_string()).collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v.extend(["--".into(), "sh".into(), "-c".into(), script.into()]);
    v
}

pub fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(|s| s.as_str()).collect()
}

/// A scratch directory on the host, world-writable so that nobody can use it too.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("mkosi-sandbox-e2e-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        Scratch(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> String {
        self.0.join(p).to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The mount entry for `mountpoint` from a mountinfo dump: (fstype, mount options, super options,
/// optional fields).
pub fn mount_entry(mountinfo: &str, mountpoint: &str) -> Option<(String, String, String, String)> {
    mountinfo.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let f: Vec<&str> = left.split(' ').collect();
        if f.get(4) != Some(&mountpoint) {
            return None;
        }
        let r: Vec<&str> = right.split(' ').collect();
        Some((r[0].to_string(), f[5].to_string(), r.get(2).unwrap_or(&"").to_string(), f[6..].join(" ")))
    })
}

pub fn host_mount_count() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().count()
}

/// Hands a scratch tree to uid 65534, as mkosi's unprivileged build roots belong to the building
/// user: whatever nobody could write there, an escape from the sandbox would show.
pub fn give_to_nobody(dir: &Path) {
    fn walk(dir: &Path, all: &mut Vec<PathBuf>) {
        all.push(dir.to_path_buf());
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), all);
            } else {
                all.push(e.path());
            }
        }
    }
    let mut all = Vec::new();
    walk(dir, &mut all);
    for p in all {
        std::os::unix::fs::lchown(&p, Some(65534), Some(65534)).unwrap();
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}
