//! End-to-end samples of what the property tests generate: random command lines (options with
//! relative, empty, long and `..`-laden paths, `--` anywhere, options missing their arguments,
//! words of random bytes) run for real, as root and as nobody, with a command that leaves a mark
//! (it writes to an inherited pipe, whatever the sandbox's mounts). Each run must end one of these
//! ways:
//! - the command ran: the status is its own (42) and it left its mark;
//! - an error: status 1 and exactly one line on stderr, and no mark (the command never ran);
//! - the command was not found or not executable (127, 126): no mark, at most one line.
//!
//! And no mount is left on the host. The generator is a fixed-seed xorshift (deterministic: a
//! failure names its sample's number, and the same number gives the same command line).
//!
//! The random bytes hold control characters too: the one-line rendering (src/line.rs) escapes
//! them as Python's repr would, so a newline in a path never splits a message.

mod common;
use common::*;

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SEED: u64 = 0x19_5eed_0b5e_55ed;
/// Samples per way of running, and the time they may take (whichever ends first).
const SAMPLES: usize = 2000;
const TIME: Duration = Duration::from_secs(25);
const STATUS: i32 = 42;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const ONE: &[&str] = &[
    "--tmpfs",
    "--dev",
    "--proc",
    "--dir",
    "--chdir",
    "--unsetenv",
    "--overlay-lowerdir",
    "--overlay-upperdir",
    "--overlay-workdir",
    "--overlay",
    "--exec-fd",
];
const TWO: &[&str] = &[
    "--bind",
    "--bind-try",
    "--ro-bind",
    "--ro-bind-try",
    "--bind-nofollow",
    "--ro-bind-nofollow",
    "--symlink",
    "--write",
    "--setenv",
];
// Not --help/-h/--version (they answer, exit 0, several lines) nor --suspend (stops the command).
const FLAGS: &[&str] = &[
    "--same-dir",
    "--become-root",
    "--suppress-chown",
    "--suppress-sync",
    "--unshare-net",
    "--unshare-ipc",
    "--pack-fds",
    "--unshare-pid",
    "--die-with-parent",
];

/// Random bytes, control characters included, without NUL (argv cannot hold it).
fn word(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(12);
    (0..n)
        .map(|_| {
            loop {
                let b = (rng.next() & 0xff) as u8;
                if b != 0 {
                    break b;
                }
            }
        })
        .collect()
}

/// A destination (inside the sandbox: its root is a fresh tmpfs, so writing anywhere is harmless).
fn destination(rng: &mut Rng) -> Vec<u8> {
    let long = format!("/{}", "d".repeat(300));
    let longer = format!("/{}", "e/".repeat(2100));
    let fixed: &[&str] = &[
        "",
        "rel",
        "rel/x",
        ".",
        "..",
        "/",
        "/x",
        "/x/y",
        "/x/../y",
        "/../../x",
        "/a/./b",
        "//x",
        "/x/",
        "../../etc",
        "/tmp",
        "/usr",
        "/usr/x",
        "/proc",
        "/dev",
        "/x/../../..",
        "-",
        "--",
        "+/x",
        &long,
        &longer,
    ];
    match rng.below(8) {
        0 => word(rng),
        1 => [b"/".as_slice(), &word(rng)].concat(),
        _ => rng.pick(fixed).as_bytes().to_vec(),
    }
}

/// A source: only the scratch directory's paths, missing ones and relative ones. Never a host
/// path that a writable bind could expose (`..` only below the scratch directory).
fn source(rng: &mut Rng, s: &Scratch) -> Vec<u8> {
    let dir = s.join("src");
    let name = s.path().file_name().unwrap().to_str().unwrap().to_string();
    let options = [
        s.join("src"),
        s.join("file"),
        s.join("missing"),
        s.join("src/../src"),
        format!("{dir}/../../{name}/file"),
        format!("{dir}/{}", "s".repeat(400)),
        String::new(),
        "rel".into(),
        "+/x".into(),
        "+rel".into(),
        "+".into(),
        "tmpfs".into(),
        format!("/nonexistent/{}", "n/".repeat(2100)),
    ];
    rng.pick(&options).as_bytes().to_vec()
}

/// One sample: the random part, and whether the mark command follows (`--`, sh).
fn sample(rng: &mut Rng, s: &Scratch) -> (Vec<Vec<u8>>, bool) {
    let mut args: Vec<Vec<u8>> = Vec::new();
    let groups = rng.below(6);
    for _ in 0..groups {
        match rng.below(10) {
            0..=2 => {
                let o = *rng.pick(ONE);
                args.push(o.into());
                args.push(if o.starts_with("--overlay-") {
                    source(rng, s)
                } else if o == "--unsetenv" || o == "--exec-fd" {
                    word(rng)
                } else {
                    destination(rng)
                });
            }
            3..=5 => {
                let o = *rng.pick(TWO);
                args.push(o.into());
                let first = match o {
                    "--symlink" | "--write" | "--setenv" => word(rng),
                    _ => source(rng, s),
                };
                args.push(first);
                args.push(if o == "--setenv" { word(rng) } else { destination(rng) });
            }
            6 | 7 => args.push(rng.pick(FLAGS).as_bytes().to_vec()),
            8 => args.push(b"--".to_vec()),
            _ => args.push(word(rng)),
        }
    }
    // One in eight: the command line ends with an option missing its arguments, and no command.
    if rng.below(8) == 0 {
        let o = if rng.below(2) == 0 { *rng.pick(ONE) } else { *rng.pick(TWO) };
        args.push(o.into());
        if TWO.contains(&o) && rng.below(2) == 0 {
            args.push(b"/x".to_vec());
        }
        return (args, false);
    }
    (args, true)
}

const MARK: &str = "echo ran >&3; exit 42";

struct Outcome {
    status: i32,
    stderr: String,
    ran: bool,
}

/// Runs the sandbox with `args` (+ `-- /usr/bin/sh -c MARK` when `command`), fd 3 the write end
/// of a pipe whose other end tells whether the command ran.
fn run_sample(args: &[Vec<u8>], command: bool, nobody: bool) -> Outcome {
    let (mut r, w) = std::io::pipe().unwrap();
    let mut cmd = if nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(binary());
        c
    } else {
        Command::new(binary())
    };
    cmd.args(BASE);
    cmd.args(args.iter().map(|a| std::ffi::OsStr::from_bytes(a)));
    if command {
        cmd.args(["--", "/usr/bin/sh", "-c", MARK]);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let fd = std::os::fd::AsRawFd::as_raw_fd(&w);
    // SAFETY: between fork and exec only dup2 and fcntl, which are async-signal-safe; the pipe's
    // write end stays open in the parent until after the spawn.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep the close-on-exec flag (the pipe may be fd 3 already).
            let r = if fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(fd, 3) };
            if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
        });
    }
    let child = cmd.spawn().expect("spawn");
    drop(w);
    let out = child.wait_with_output().unwrap();
    let mut mark = Vec::new();
    r.read_to_end(&mut mark).unwrap();
    use std::os::unix::process::ExitStatusExt;
    Outcome {
        status: out.status.code().unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0)),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        ran: mark == b"ran\n",
    }
}

fn show(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| {
            let s = String::from_utf8_lossy(a);
            if s.len() > 60 { format!("{:?}…({} bytes)", &s[..boundary(&s, 60)], a.len()) } else { format!("{s:?}") }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The largest char boundary of `s` at or below `i` (str::floor_char_boundary is newer than the MSRV).
fn boundary(s: &str, i: usize) -> usize {
    (0..=i.min(s.len())).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

fn mount_lines() -> std::collections::BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().map(String::from).collect()
}

fn battery(tag: &str, nobody: bool) {
    let s = Scratch::new(tag);
    std::fs::create_dir(s.path().join("src")).unwrap();
    std::fs::write(s.path().join("src/inner"), "inner").unwrap();
    std::fs::write(s.path().join("file"), "file").unwrap();
    let mut rng = Rng(SEED ^ u64::from(nobody));
    let start = Instant::now();
    let mounts_before = mount_lines();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let mut n = 0;
    while n < SAMPLES && start.elapsed() < TIME {
        let (args, command) = sample(&mut rng, &s);
        let o = run_sample(&args, command, nobody);
        let stderr = if o.stderr.len() > 300 {
            let (head, tail) = (boundary(&o.stderr, 150), boundary(&o.stderr, o.stderr.len() - 100));
            format!("{:?}…{:?} ({} bytes)", &o.stderr[..head], &o.stderr[tail..], o.stderr.len())
        } else {
            format!("{:?}", o.stderr)
        };
        let what =
            format!("{tag} sample {n}: {} (command: {command}) → status {}, stderr {stderr}", show(&args), o.status);
        let lines = o.stderr.lines().count();
        let kind = match (o.status, o.ran) {
            (STATUS, true) => "ran",
            (1, false) => {
                assert_eq!(lines, 1, "{what}: an error is one line");
                assert!(o.stderr.ends_with('\n') && o.stderr.starts_with("mkosi-sandbox: "), "{what}");
                "error"
            }
            (126 | 127, false) => {
                assert!(lines <= 1, "{what}: one line at most");
                "not run (126/127)"
            }
            _ => panic!("{what}: neither the command's own status nor a one-line error (ran: {})", o.ran),
        };
        *counts.entry(kind.into()).or_default() += 1;
        // Mounts that appeared meanwhile on one of the sample's paths or below the scratch
        // directory (the host's other mounts may change under other tests).
        let scratch = s.path().to_str().unwrap();
        let named: std::collections::BTreeSet<String> =
            args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).filter(|a| a.starts_with('/')).collect();
        let leaked: Vec<_> = mount_lines()
            .difference(&mounts_before)
            .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(scratch) || named.contains(m)))
            .cloned()
            .collect();
        assert!(leaked.is_empty(), "{what}: left mounts on the host: {leaked:?}");
        n += 1;
    }
    use std::io::Write;
    let line = format!("samples: {tag}: {n} samples in {:.1} s: {counts:?}\n", start.elapsed().as_secs_f64());
    let _ = std::io::stderr().write_all(line.as_bytes());
    assert!(n >= 50, "only {n} samples: proves little");
    for kind in ["ran", "error"] {
        assert!(counts.get(kind).copied().unwrap_or(0) >= 5, "{tag}: too few samples that {kind}: {counts:?}");
    }
}

#[test]
fn random_command_lines_as_root() {
    needs_root!();
    battery("samples-root", false);
}

#[test]
fn random_command_lines_as_nobody() {
    needs_root!();
    battery("samples-nobody", true);
}

/// Control characters in paths are escaped (src/line.rs), so the message stays one line.
#[test]
fn control_characters_give_one_line() {
    needs_root!();
    for path in ["/a\nb", "/a\rb", "/a\x1b[31mb", "/a\tb"] {
        for args in [vec!["--ro-bind", "/nonexistent", path], vec!["--dir", &path[1..]], vec!["--bind", path, "/x"]] {
            let a: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
            let o = run_sample(&a, true, false);
            assert_eq!((o.status, o.ran), (1, false), "{args:?}: {}", o.stderr);
            assert_eq!(o.stderr.lines().count(), 1, "{args:?}: {:?}", o.stderr);
        }
    }
}

/// Long values are shortened (src/line.rs): before, a message past 8 KiB was cut there, without
/// its error and without a newline.
#[test]
fn long_messages_end_with_the_error() {
    needs_root!();
    let src = format!("/nonexistent/{}", "n/".repeat(2100));
    let dst = format!("/{}", "e/".repeat(2100));
    let a = vec![b"--ro-bind".to_vec(), src.into_bytes(), dst.into_bytes()];
    for nobody in [false, true] {
        let o = run_sample(&a, true, nobody);
        assert_eq!((o.status, o.ran), (1, false));
        let end = &o.stderr[boundary(&o.stderr, o.stderr.len().saturating_sub(40))..];
        // 8 KiB of path is past PATH_MAX: the kernel says so, and the line ends with it.
        assert!(o.stderr.ends_with(": File name too long\n"), "{} bytes, ends {end:?}", o.stderr.len());
        assert!(o.stderr.len() < 1024, "shortened: {} bytes", o.stderr.len());
        assert_eq!(o.stderr.lines().count(), 1);
    }
}
