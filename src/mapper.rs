//! Writing multi-range uid/gid maps. A process inside a new user namespace may only map its own
//! ids, so maps with ranges are written from the parent namespace: one short-lived helper is
//! forked *before* `unshare()` (and before the seccomp filter, whose NO_NEW_PRIVS would disarm
//! the setuid tools), waits until the sandbox has unshared, then either runs `newuidmap` and
//! `newgidmap` against it (unprivileged caller) or writes `/proc/PID/{uid,gid}_map` itself (root).
//! Its verdict comes back through a pipe: the sandbox goes on only when both maps are written,
//! and the helper is reaped in every case.

use core::ffi::CStr;

use rustix::fd::OwnedFd;
use rustix::fs::{Access, CWD, Mode, OFlags};
use rustix::io::Errno;
use rustix::pipe::PipeFlags;
use rustix::process::{Pid, WaitOptions};

use crate::containers::{Bump, Bytes};
use crate::decimal::{MAX_DIGITS, format as decimal};
use crate::error::{Cause, During, Error, Limit, Overflow, Reason, Result, Stage, Syscall, strerror};
use crate::subid::{Kind, MAX_RANGES, Range};
use crate::sys::{self, SingleThreaded};

const NEWUIDMAP: &CStr = c"/usr/bin/newuidmap";
const NEWGIDMAP: &CStr = c"/usr/bin/newgidmap";

/// Bytes of a map the kernel takes in its single write (less than a page).
const MAP_TEXT_CAP: usize = 4095;
/// The longest report a helper sends back (the rest of a chatty tool's output is dropped).
const REPORT_CAP: usize = 1024;

/// Why the maps were not written, when the tools have no words of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// newuidmap/newgidmap are missing.
    ToolNotInstalled,
    /// The helper died without saying how it went.
    HelperSilent,
}

impl Reason for Refusal {
    fn text(self) -> &'static str {
        match self {
            Refusal::ToolNotInstalled => {
                "not installed (it comes with the package uidmap on Debian and Ubuntu, shadow-utils on Fedora, \
                 shadow elsewhere)"
            }
            Refusal::HelperSilent => "the id-mapping helper ended without a verdict",
        }
    }
}

/// The helper process, between fork and verdict.
pub(crate) struct Mapper {
    pid: Option<Pid>,
    /// Writing one byte says "unshared, go"; closing it unwritten says "give up".
    go: Option<OwnedFd>,
    verdict: OwnedFd,
    /// Used in messages: `--map-auto`, or the option of the map that failed.
    auto: bool,
}

impl Mapper {
    /// Forks the helper in the caller's namespaces. `direct`: the caller is root and writes the
    /// maps itself; otherwise the setuid tools must be installed (checked here, before forking).
    #[cold]
    #[inline(never)]
    pub(crate) fn start(
        one_thread: SingleThreaded,
        uid_map: &[Range],
        gid_map: &[Range],
        direct: bool,
        auto: bool,
    ) -> Result<Mapper> {
        let subject = |kind: Kind| if auto { "--map-auto" } else { kind.option() };
        if !direct {
            for (tool, kind) in [(NEWUIDMAP, Kind::Uid), (NEWGIDMAP, Kind::Gid)] {
                if let Err(errno) = rustix::fs::access(tool, Access::EXEC_OK) {
                    let e = if errno == Errno::NOENT {
                        Error::invalid(Refusal::ToolNotInstalled)
                    } else {
                        Error::sys(Syscall::Access, errno)
                    };
                    return Err(e.for_option(subject(kind), Some(tool), None));
                }
            }
        }
        let target = rustix::process::getpid();
        let fail = |e: Error| e.in_stage(Stage::UserNamespace);
        let (go_read, go_write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC).during(Syscall::Pipe).map_err(fail)?;
        let (verdict_read, verdict_write) =
            rustix::pipe::pipe_with(PipeFlags::CLOEXEC).during(Syscall::Pipe).map_err(fail)?;
        match sys::fork(one_thread).during(Syscall::Fork).map_err(fail)? {
            None => {
                // The helper must see EOF on `go` when the sandbox dies: keep no copy of its write end.
                drop(go_write);
                drop(verdict_read);
                helper(one_thread, go_read, verdict_write, target, uid_map, gid_map, direct)
            }
            Some(child) => Ok(Mapper { pid: Some(child), go: Some(go_write), verdict: verdict_read, auto }),
        }
    }

    /// After `unshare()`: lets the helper write the maps and waits for its verdict. The message
    /// of a failure (the tool's own words) is copied into `bump`.
    #[cold]
    #[inline(never)]
    pub(crate) fn finish(mut self, bump: &mut Bump<'static>) -> Result<()> {
        // Set-id history makes a process non-dumpable, and then its /proc files belong to root,
        // which newuidmap refuses.
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
            .during(Syscall::Prctl)
            .map_err(|e| e.in_stage(Stage::UserNamespace))?;
        if let Some(go) = self.go.take() {
            rustix::io::write(&go, &[1]).during(Syscall::Write).map_err(|e| e.in_stage(Stage::UserNamespace))?;
        }
        let mut report = [0u8; REPORT_CAP];
        let len = read_to_end(&self.verdict, &mut report);
        self.reap();
        let auto = self.auto;
        let subject = |kind: Kind| if auto { "--map-auto" } else { kind.option() };
        match report[..len] {
            [OK, ..] => Ok(()),
            [kind @ (b'u' | b'g'), ref text @ ..] => {
                let kind = if kind == b'u' { Kind::Uid } else { Kind::Gid };
                let text = bump.cstr(&[text]).overflow(Limit::DerivedStrings)?;
                Err(Error::new(Cause::Report(text)).for_option(subject(kind), None, None))
            }
            _ => Err(Error::invalid(Refusal::HelperSilent).for_option(subject(Kind::Uid), None, None)),
        }
    }

    fn reap(&mut self) {
        // Closing `go` first releases a helper still waiting for it.
        self.go = None;
        if let Some(pid) = self.pid.take() {
            // ECHILD when SIGCHLD is ignored (the kernel reaped it): nothing is left either way.
            let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
        }
    }
}

impl Drop for Mapper {
    /// On any failure between fork and `finish` (seccomp, unshare): the helper gives up and is
    /// reaped, so no stray process or zombie is left.
    fn drop(&mut self) {
        self.reap();
    }
}

const OK: u8 = 0;

/// The helper process: waits for the go, writes both maps, reports, exits.
fn helper(
    one_thread: SingleThreaded,
    go: OwnedFd,
    verdict: OwnedFd,
    target: Pid,
    uid_map: &[Range],
    gid_map: &[Range],
    direct: bool,
) -> ! {
    let mut byte = [0u8];
    if !matches!(rustix::io::read(&go, &mut byte), Ok(1)) {
        // The sandbox gave up before unsharing (its error is its own to report).
        sys::exit_group(0);
    }
    // An inherited SIG_IGN would make the kernel reap the tools and hide their exit status.
    sys::default_sigchld();
    let mut report = Report::new();
    let written = if direct {
        write_map(target, Kind::Uid, uid_map, &mut report)
            .and_then(|()| write_map(target, Kind::Gid, gid_map, &mut report))
    } else {
        run_tools(one_thread, target, uid_map, gid_map, &mut report)
    };
    let status = if written.is_ok() {
        report.0.clear();
        report.push(&[OK]);
        0
    } else {
        1
    };
    let _ = rustix::io::write(&verdict, report.as_bytes());
    sys::exit_group(status)
}

/// The helper's message: a leading `u` or `g` (which map failed), then one line of text.
struct Report(Bytes<REPORT_CAP>);

impl Report {
    fn new() -> Self {
        Self(Bytes::new())
    }

    fn start(&mut self, kind: Kind) {
        self.0.clear();
        self.push(if kind == Kind::Uid { b"u" } else { b"g" });
    }

    fn push(&mut self, bytes: &[u8]) {
        self.0.push(bytes);
    }

    fn push_u32(&mut self, n: u32) {
        let mut digits = [0u8; MAX_DIGITS];
        self.push(decimal(u64::from(n), &mut digits));
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Reports `WHAT: strerror` for map `kind`; returns the failure.
    fn errno<T>(&mut self, kind: Kind, what: &[u8], errno: Errno) -> core::result::Result<T, ()> {
        self.start(kind);
        self.push(what);
        self.push(b": ");
        self.push(strerror(errno).as_bytes());
        Err(())
    }
}

/// Root: writes `/proc/PID/uid_map` (or gid_map) in one write, as the kernel requires.
fn write_map(target: Pid, kind: Kind, map: &[Range], report: &mut Report) -> core::result::Result<(), ()> {
    let mut path = Bytes::new();
    let path = proc_path(target, kind, &mut path);
    let mut text = Bytes::<{ MAP_TEXT_CAP + 40 }>::new();
    for range in map.iter() {
        for (n, sep) in [(range.inner, b" "), (range.outer, b" "), (range.count, b"\n")] {
            let mut digits = [0u8; MAX_DIGITS];
            text.push(decimal(u64::from(n), &mut digits));
            text.push(sep);
        }
        if text.as_bytes().len() > MAP_TEXT_CAP {
            report.start(kind);
            report.push(path.to_bytes());
            report.push(b": map longer than the kernel's 4095 bytes");
            return Err(());
        }
    }
    let written = rustix::fs::openat(CWD, path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
        .and_then(|fd| sys::write_whole(&fd, text.as_bytes()));
    match written {
        Ok(()) => Ok(()),
        Err(errno) => {
            report.start(kind);
            report.push(b"write ");
            report.push(path.to_bytes());
            report.push(b": ");
            report.push(strerror(errno).as_bytes());
            Err(())
        }
    }
}

fn proc_path(target: Pid, kind: Kind, buf: &mut Bytes<32>) -> &CStr {
    let mut digits = [0u8; MAX_DIGITS];
    let pid = decimal(target.as_raw_nonzero().get() as u64, &mut digits);
    let file: &[u8] = if kind == Kind::Uid { b"/uid_map\0" } else { b"/gid_map\0" };
    buf.clear();
    for part in [&b"/proc/"[..], pid, file] {
        buf.push(part);
    }
    CStr::from_bytes_until_nul(buf.as_bytes()).unwrap_or(c"")
}

/// Unprivileged: runs `newuidmap PID INNER OUTER COUNT...` and `newgidmap ...` at the same time
/// (they write different files), each with its output captured; a failure reports that output
/// and the exit status, the uid map's first.
fn run_tools(
    one_thread: SingleThreaded,
    target: Pid,
    uid_map: &[Range],
    gid_map: &[Range],
    report: &mut Report,
) -> core::result::Result<(), ()> {
    let mut gid_report = Report::new();
    let uid = spawn_tool(one_thread, target, Kind::Uid, uid_map, report);
    let gid = spawn_tool(one_thread, target, Kind::Gid, gid_map, &mut gid_report);
    let uid = uid.and_then(|tool| tool.wait(report));
    let gid = gid.and_then(|tool| tool.wait(&mut gid_report));
    if uid.is_ok() && gid.is_err() {
        report.0 = gid_report.0;
    }
    uid.and(gid)
}

/// A tool started against the sandbox, its output going into `output`.
struct Tool {
    kind: Kind,
    path: &'static CStr,
    pid: Pid,
    output: OwnedFd,
}

fn spawn_tool(
    one_thread: SingleThreaded,
    target: Pid,
    kind: Kind,
    map: &[Range],
    report: &mut Report,
) -> core::result::Result<Tool, ()> {
    let path = if kind == Kind::Uid { NEWUIDMAP } else { NEWGIDMAP };
    // Every argument as a C string, laid end to end in `strings`.
    let mut strings = [0u8; 16 + (MAX_RANGES * 3 + 1) * 11];
    let mut at = 0;
    let mut digits = [0u8; MAX_DIGITS];
    let mut add = |bytes: &[u8]| {
        strings[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len() + 1;
    };
    add(path.to_bytes().rsplit(|&b| b == b'/').next().unwrap_or(b""));
    add(decimal(target.as_raw_nonzero().get() as u64, &mut digits));
    for range in map.iter() {
        for n in [range.inner, range.outer, range.count] {
            add(decimal(u64::from(n), &mut digits));
        }
    }
    let args = &strings[..at];

    let (out_read, out_write) = match rustix::pipe::pipe_with(PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => return report.errno(kind, b"pipe", e),
    };
    match sys::fork(one_thread) {
        Ok(Some(pid)) => Ok(Tool { kind, path, pid, output: out_read }),
        Ok(None) => {
            drop(out_read);
            let _ = rustix::stdio::dup2_stdout(&out_write);
            let _ = rustix::stdio::dup2_stderr(&out_write);
            let mut argv = [core::ptr::null::<u8>(); MAX_RANGES * 3 + 3];
            let errno = sys::execve_packed(path, args, &mut argv);
            let mut line = Report::new();
            line.push(path.to_bytes());
            line.push(b": ");
            line.push(strerror(errno).as_bytes());
            let _ = rustix::io::write(&out_write, line.as_bytes());
            sys::exit_group(127)
        }
        Err(e) => report.errno(kind, b"fork", e),
    }
}

impl Tool {
    /// Collects the output and the exit status; on failure, puts both into `report`.
    fn wait(self, report: &mut Report) -> core::result::Result<(), ()> {
        let mut output = [0u8; REPORT_CAP];
        let len = read_to_end(&self.output, &mut output);
        let exit = match rustix::process::waitpid(Some(self.pid), WaitOptions::empty()) {
            Ok(Some((_, status))) if status.exit_status() == Some(0) => return Ok(()),
            Ok(Some((_, status))) => status,
            Ok(None) => return report.errno(self.kind, self.path.to_bytes(), Errno::CHILD),
            Err(e) => return report.errno(self.kind, self.path.to_bytes(), e),
        };
        report.start(self.kind);
        // The tool's lines, joined into one; its name is in them already ("newuidmap: ...").
        let text = output[..len].trim_ascii();
        if text.is_empty() {
            report.push(self.path.to_bytes());
            report.push(b" failed");
        }
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                report.push(b"; ");
            }
            report.push(line.trim_ascii());
        }
        match (exit.exit_status(), exit.terminating_signal()) {
            (Some(code), _) => {
                report.push(b" (exit status ");
                report.push_u32(code as u32);
            }
            (None, Some(signal)) => {
                report.push(b" (killed by signal ");
                report.push_u32(signal as u32);
            }
            _ => report.push(b" (stopped"),
        }
        report.push(b")");
        Err(())
    }
}

/// Reads until EOF (or until `buf` is full, then drains the rest); returns the bytes kept.
fn read_to_end(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut len = 0;
    let mut sink = [0u8; 256];
    loop {
        let target: &mut [u8] = if len < buf.len() { &mut buf[len..] } else { &mut sink };
        match rustix::io::read(fd, target) {
            Ok(0) => return len,
            Ok(n) if len < buf.len() => len += n,
            Ok(_) => {}
            Err(Errno::INTR) => {}
            Err(_) => return len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_paths() {
        let mut buf = Bytes::new();
        let pid = Pid::from_raw(4194304).unwrap();
        assert_eq!(proc_path(pid, Kind::Uid, &mut buf).to_bytes(), b"/proc/4194304/uid_map");
        assert_eq!(proc_path(pid, Kind::Gid, &mut buf).to_bytes(), b"/proc/4194304/gid_map");
    }
}
