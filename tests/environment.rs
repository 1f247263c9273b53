//! The caller's environment reaches the command as the original hands it on: entries without `=`,
//! with an empty name, repeated names and bytes that are not UTF-8 included (execve() allows them
//! all). `--setenv` and `--unsetenv` edit it as the original's `os.environ` does through glibc's
//! setenv() and unsetenv(). Every expectation below is what mkosi 25.3's sandbox.py under CPython
//! 3.11 handed to the same command from the same raw environment (a bare `PATH` once made every
//! start of this binary fail with "internal error", exit 70).
//!
//! The environment is passed with a raw execve() (python3's ctypes: no library call can make an
//! entry without `=`), as root and as uid 65534; the command prints /proc/self/environ.

mod common;
use common::*;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};

/// Runs argv[2+n:] with the n entries argv[2:2+n] as its whole environment (bytes as given).
const LAUNCH: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
n = int(sys.argv[1])
env = [os.fsencode(a) for a in sys.argv[2:2 + n]]
args = [os.fsencode(a) for a in sys.argv[2 + n:]]
argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
envp = (ctypes.c_char_p * (len(env) + 1))(*env, None)
libc.execve(args[0], argv, envp)
sys.exit("execve: " + os.strerror(ctypes.get_errno()))
"#;

/// Odd entries, in an order a test can follow: what CPython, bubblewrap and this binary keep.
const ODD: &[&[u8]] =
    &[b"TERM", b"=x", b"A=1", b"A=2", b"B=\xff\xfe", b"PATH=/usr/bin:/bin", b"==y", b"", b"A=1=", b"C"];

struct Outcome {
    status: i32,
    /// The command's environment, entry by entry.
    environ: Vec<Vec<u8>>,
    stderr: String,
}

/// Runs the sandbox with exactly `env` as its environment; `options`, then `-- cat
/// /proc/self/environ` (unless `command` is given).
fn run_with_env(nobody: bool, env: &[&[u8]], options: &[&str], command: &[&str]) -> Outcome {
    require_root();
    // The system's python3: one on root's PATH may be out of uid 65534's reach (pyenv in /root).
    let python = if std::path::Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" };
    let mut cmd = if nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", python]);
        c
    } else {
        Command::new(python)
    };
    cmd.args(["-I", "-c", LAUNCH]).arg(env.len().to_string());
    cmd.args(env.iter().map(|e| OsStr::from_bytes(e)));
    cmd.arg(binary()).args(BASE).args(options).arg("--");
    let cat = ["cat", "/proc/self/environ"];
    cmd.args(if command.is_empty() { &cat[..] } else { command });
    let out = cmd.stdin(Stdio::null()).output().expect("python3");
    let mut environ: Vec<Vec<u8>> = out.stdout.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    // /proc/self/environ ends each entry with a NUL: the last split is the empty rest.
    if environ.last().is_some_and(|e| e.is_empty()) {
        environ.pop();
    }
    let status = out.status.code().unwrap_or(-1);
    Outcome { status, environ, stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

fn list(entries: &[&[u8]]) -> Vec<Vec<u8>> {
    entries.iter().map(|e| e.to_vec()).collect()
}

#[test]
fn odd_entries_reach_the_command_unchanged() {
    needs_root!();
    for nobody in [false, true] {
        let out = run_with_env(nobody, ODD, &[], &[]);
        assert_eq!(out.status, 0, "nobody={nobody}: {}", out.stderr);
        assert_eq!(out.environ, list(ODD), "nobody={nobody}");
    }
}

#[test]
fn a_bare_path_or_listen_variable_is_no_variable() {
    needs_root!();
    // A bare PATH is no PATH: the command is found on the default search path (/bin:/usr/bin).
    for bare in [&b"PATH"[..], b"LISTEN_FDS", b"LISTEN_PID"] {
        for options in [&[][..], &["--pack-fds"], &["--pack-fds", "--unshare-pid"]] {
            let out = run_with_env(false, &[bare], options, &[]);
            assert_eq!(out.status, 0, "{bare:?} {options:?}: {}", out.stderr);
            // Descriptors the test harness left open would add LISTEN_FDS and LISTEN_PID.
            let (first, rest) = out.environ.split_first().expect("an environment");
            assert_eq!(first, bare, "{options:?}");
            assert!(rest.iter().all(|e| e.starts_with(b"LISTEN_FDS=") || e.starts_with(b"LISTEN_PID=")), "{options:?}");
        }
    }
}

#[test]
fn setenv_and_unsetenv_edit_as_the_original() {
    needs_root!();
    let odd = |edits: &[(usize, &[u8])]| {
        let mut l = list(ODD);
        for &(i, e) in edits.iter().rev() {
            if e.is_empty() {
                l.remove(i);
            } else {
                l[i] = e.to_vec();
            }
        }
        l
    };
    let appended = |e: &[u8]| {
        let mut l = list(ODD);
        l.push(e.to_vec());
        l
    };
    for (options, want) in [
        // The first entry of a name is replaced, later ones stay (setenv()).
        (&["--setenv", "A", "3"][..], odd(&[(2, b"A=3")])),
        // A bare TERM is no TERM: the new entry goes last, the bare one stays.
        (&["--setenv", "TERM", "t"], appended(b"TERM=t")),
        // Every entry of a name goes (unsetenv()), a bare one of that name stays.
        (&["--unsetenv", "A"], odd(&[(2, b""), (3, b""), (8, b"")])),
        (&["--unsetenv", "TERM"], list(ODD)),
        // No variable has a name with `=`: not even `A=1=` (`A` is its name), which glibc's
        // unsetenv("A=1") would drop (found by `make proptest`).
        (&["--unsetenv", "A=1"], list(ODD)),
        (&["--unsetenv", "=y"], list(ODD)),
        (&["--setenv", "B", "\u{e9}"], odd(&[(4, "B=\u{e9}".as_bytes())])),
        (&["--setenv", "A", "3", "--unsetenv", "A"], odd(&[(2, b""), (3, b""), (8, b"")])),
    ] {
        for nobody in [false, true] {
            let out = run_with_env(nobody, ODD, options, &[]);
            assert_eq!(out.status, 0, "{options:?}: {}", out.stderr);
            assert_eq!(out.environ, want, "{options:?} nobody={nobody}");
        }
    }
}

#[test]
fn names_the_original_cannot_set_or_unset_are_one_line_errors() {
    needs_root!();
    for (env, options, line) in [
        // setenv() refuses an empty name (EINVAL), os.putenv() one with `=` (ValueError).
        (ODD, &["--setenv", "", "v"][..], "mkosi-sandbox: --setenv : invalid variable name\n"),
        (ODD, &["--setenv", "A=1", "v"], "mkosi-sandbox: --setenv A=1: invalid variable name\n"),
        // `'' in os.environ` holds where an entry has an empty name, and unsetenv('') fails.
        (ODD, &["--unsetenv", ""], "mkosi-sandbox: --unsetenv : invalid variable name\n"),
    ] {
        let out = run_with_env(false, env, options, &["sh", "-c", "echo ran"]);
        assert_eq!((out.status, out.stderr.as_str()), (1, line), "{options:?}");
        assert!(out.environ.is_empty(), "the command ran: {options:?}");
    }
    // Without an entry of an empty name there is nothing to unset.
    let out = run_with_env(false, &[b"A=1", b"TERM"], &["--unsetenv", ""], &[]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(out.environ, list(&[b"A=1", b"TERM"]));
}

#[test]
fn a_long_and_full_environment() {
    needs_root!();
    // Values of 100 KiB pass whole; 4096 entries are the capacity, one more is refused.
    let long = [b"L=".to_vec(), vec![b'v'; 100 << 10]].concat();
    let out = run_with_env(false, &[&long, b"TERM"], &[], &[]);
    assert_eq!((out.status, out.environ), (0, vec![long.clone(), b"TERM".to_vec()]));
    let many: Vec<Vec<u8>> = (0..4096).map(|i| format!("V{i}=x").into_bytes()).collect();
    let refs: Vec<&[u8]> = many.iter().map(|e| &e[..]).collect();
    let out = run_with_env(false, &refs, &[], &[]);
    assert_eq!((out.status, out.environ.len()), (0, 4096), "{}", out.stderr);
    let mut refs = refs;
    refs.push(b"ONE=more");
    let out = run_with_env(false, &refs, &[], &["sh", "-c", "echo ran"]);
    assert_eq!((out.status, out.stderr.as_str()), (1, "mkosi-sandbox: too many environment entries (max 4096)\n"));
    assert!(out.environ.is_empty());
}
