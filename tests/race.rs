//! A build root that changes while the sandbox sets it up (tests/hostile.rs covers roots that hold
//! still). A thread of this test owns the build root and keeps exchanging, with
//! `renameat2(RENAME_EXCHANGE)`, its component `sw` between a real directory and a symlink whose
//! target cycles through every form that could escape: `/oldroot/<host dir>`, the absolute host
//! path, a path relative to the root's host location (`../canary`), a long `../` chain to the host
//! path, a long `../` chain to `oldroot/<host dir>`, and `/proc/self/root/oldroot/<host dir>`.
//! Meanwhile sandboxes start again and again, each with one operation whose destination runs
//! through `sw`: `--dir`, `--write` (over an existing file), `--symlink`, `--tmpfs`, `--bind` of a
//! directory and of a file, `--dev`, `--proc` and the overlay; as root, as nobody, and as nobody
//! with `--become-root`.
//!
//! Checked from the host after every start: the canary directory the links aim at still holds
//! exactly its one file with the same content and times, a second one stays empty, their own
//! times are unchanged (nothing was made and removed there), and no mount names the scratch directory. Each case runs for
//! [`CASE_TIME`] and prints its starts, swaps and exit statuses; a case that saw fewer than
//! [`MIN_STARTS`] starts or [`MIN_SWAPS`] swaps fails (a race that never happened cannot pass), and
//! so does one in which no start met the link: a start met it when it failed or when it made the
//! link's target inside the root (`root/oldroot/...`, `root/canary`, `root/tmp/...`: where each
//! form leads when resolved in the root; "landed in" counts them).

mod common;
use common::*;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags, RenameFlags};

/// How long each case (one operation, one way of running) starts sandboxes.
const CASE_TIME: Duration = Duration::from_millis(1500);
/// Fewer starts or swaps than these in a case: the case proves nothing and fails.
const MIN_STARTS: u64 = 20;
const MIN_SWAPS: u64 = 1000;
/// The link is retargeted to the next form after this many exchanges.
const SWAPS_PER_FORM: u64 = 7;

const KEEP: &str = "canary-content-5d1c";

/// The workspace: `root` (the build root, with `sw` and `alt`), `canary` and `empty` (the host
/// directories the links aim at; `canary` holds `keep`), `src` and `srcfile` (bind sources).
fn workspace(w: &Path) {
    let root = w.join("root");
    for d in [root.join("usr"), root.join("sw"), w.join("canary"), w.join("empty"), w.join("src")] {
        std::fs::create_dir_all(d).unwrap();
    }
    for (name, target) in [("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")] {
        symlink(target, root.join(name)).unwrap();
    }
    std::fs::create_dir_all(w.join("src2")).unwrap();
    std::fs::write(root.join("sw/keep"), "inside").unwrap();
    std::fs::write(w.join("canary/keep"), KEEP).unwrap();
    std::fs::write(w.join("src/file"), "src").unwrap();
    std::fs::write(w.join("srcfile"), "srcfile").unwrap();
    symlink(&forms(w)[0], root.join("alt")).unwrap();
    // nobody builds in it and could write to the canary: an escape would show.
    give_to_nobody(w);
}

/// Every form of link target that could leave the root for a host canary directory: `canary`
/// (holding `keep`) and `empty`.
fn forms(w: &Path) -> Vec<String> {
    let chain = "../".repeat(40);
    let mut forms = Vec::new();
    for name in ["canary", "empty"] {
        let canary = w.join(name).to_str().unwrap().to_string();
        forms.extend([
            format!("/oldroot{canary}"),
            canary.clone(),
            format!("../{name}"),
            format!("{chain}{}", &canary[1..]),
            format!("{chain}oldroot{canary}"),
            format!("/proc/self/root/oldroot{canary}"),
        ]);
    }
    forms
}

/// What the host must still look like; the canaries' state is taken once before the case.
#[derive(PartialEq, Debug)]
struct Canary {
    empty: Vec<String>,
    empty_times: (i64, i64, i64, i64),
    entries: Vec<String>,
    dir_times: (i64, i64, i64, i64),
    keep: String,
    keep_times: (i64, i64, i64, i64),
}

fn canary(w: &Path) -> Canary {
    let dir = w.join("canary");
    let mut entries: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    entries.sort();
    let times = |m: std::fs::Metadata| (m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec());
    let mut empty: Vec<String> = std::fs::read_dir(w.join("empty"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    empty.sort();
    Canary {
        empty,
        empty_times: times(std::fs::symlink_metadata(w.join("empty")).unwrap()),
        entries,
        dir_times: times(std::fs::symlink_metadata(&dir).unwrap()),
        keep: std::fs::read_to_string(dir.join("keep")).unwrap_or_else(|e| format!("<{e}>")),
        keep_times: times(std::fs::symlink_metadata(dir.join("keep")).unwrap()),
    }
}

fn mounts_naming(w: &Path) -> Vec<String> {
    let w = w.to_str().unwrap();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(w))
        .map(String::from)
        .collect()
}

/// Entries of the root that only a link's target can have made (inside the root), removed.
fn extras(w: &Path) -> Vec<String> {
    let root = w.join("root");
    let mut found = Vec::new();
    for e in std::fs::read_dir(&root).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if ["usr", "bin", "lib", "lib64", "sw", "alt", "swap.tmp"].contains(&name.as_str()) {
            continue;
        }
        // Not through links: remove_dir_all does not follow them.
        if e.file_type().unwrap().is_dir() {
            std::fs::remove_dir_all(e.path()).unwrap();
        } else {
            std::fs::remove_file(e.path()).unwrap();
        }
        found.push(name);
    }
    found
}

/// The owner of the root: exchanges `sw` and `alt` until told to stop, retargeting the link every
/// [`SWAPS_PER_FORM`] exchanges; leaves `sw` the real directory. Returns the number of exchanges.
fn swapper(root: PathBuf, forms: Vec<String>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let dir =
            rustix::fs::open(root.to_str().unwrap(), OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .unwrap();
        let mut swaps = 0u64;
        let mut form = 0;
        while !stop.load(Ordering::Relaxed) {
            rustix::fs::renameat_with(&dir, "sw", &dir, "alt", RenameFlags::EXCHANGE).unwrap();
            swaps += 1;
            if swaps.is_multiple_of(SWAPS_PER_FORM) {
                // The link is at `sw` after an odd number of exchanges.
                let at = if swaps % 2 == 1 { "sw" } else { "alt" };
                form = (form + 1) % forms.len();
                let _ = rustix::fs::unlinkat(&dir, "swap.tmp", rustix::fs::AtFlags::empty());
                rustix::fs::symlinkat(forms[form].as_str(), &dir, "swap.tmp").unwrap();
                rustix::fs::renameat(&dir, "swap.tmp", &dir, at).unwrap();
            }
        }
        if swaps % 2 == 1 {
            rustix::fs::renameat_with(&dir, "sw", &dir, "alt", RenameFlags::EXCHANGE).unwrap();
        }
        swaps
    })
}

/// The operations, each with its destination through `sw`.
fn operations(w: &Path) -> Vec<(&'static str, Vec<String>)> {
    let src = w.join("src").to_str().unwrap().to_string();
    let src2 = w.join("src2").to_str().unwrap().to_string();
    let srcfile = w.join("srcfile").to_str().unwrap().to_string();
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        ("dir", v(&["--dir", "/sw/new"])),
        ("write", v(&["--write", "ESCAPED", "/sw/keep"])),
        ("symlink", v(&["--symlink", "target", "/sw/new"])),
        ("tmpfs", v(&["--tmpfs", "/sw/new"])),
        ("bind-dir", v(&["--bind", &src, "/sw/new"])),
        ("bind-file", v(&["--bind", &srcfile, "/sw/keep"])),
        ("bind-file-new", v(&["--ro-bind", &srcfile, "/sw/newfile"])),
        ("dev", v(&["--dev", "/sw/new"])),
        ("proc", v(&["--proc", "/sw/new"])),
        ("overlay", v(&["--overlay-lowerdir", &src, "--overlay-lowerdir", &src2, "--overlay", "/sw/new"])),
    ]
}

#[derive(Clone, Copy)]
enum As {
    Root,
    Nobody,
    NobodyBecomeRoot,
}

fn case(way: As, name: &str, op_index: usize) -> String {
    let tag = match way {
        As::Root => "root",
        As::Nobody => "nobody",
        As::NobodyBecomeRoot => "become-root",
    };
    let s = Scratch::new(&format!("race-{tag}-{name}"));
    let w = s.path();
    workspace(w);
    let (_, op) = operations(w).swap_remove(op_index);
    let root = w.join("root").to_str().unwrap().to_string();
    let mut args: Vec<String> = ["--bind", &root, "/", "--ro-bind", "/usr", "/usr"].map(String::from).to_vec();
    if matches!(way, As::NobodyBecomeRoot) {
        args.push("--become-root".into());
    }
    args.extend(op);
    args.extend(["--", "/usr/bin/true"].map(String::from));

    let before = canary(w);
    assert_eq!(before.entries, ["keep"]);
    assert!(before.empty.is_empty());
    let stop = Arc::new(AtomicBool::new(false));
    let swaps_thread = swapper(w.join("root"), forms(w), stop.clone());
    let starts = AtomicU64::new(0);
    let mut statuses: BTreeMap<i32, u64> = BTreeMap::new();
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let deadline = Instant::now() + CASE_TIME;
    let mut failure = None;
    let mut met_link = 0u64;
    let mut places: BTreeMap<String, u64> = BTreeMap::new();
    while Instant::now() < deadline {
        let r = match way {
            As::Root => run(&refs(&args)),
            _ => run_as_nobody(&refs(&args)),
        };
        starts.fetch_add(1, Ordering::Relaxed);
        *statuses.entry(r.status).or_default() += 1;
        if r.status != 0 {
            // The message without the path's variable part: which errors the race produced.
            let kind = r.stderr.trim_end().rsplit(": ").next().unwrap_or("").to_string();
            *errors.entry(kind).or_default() += 1;
        }
        let now = canary(w);
        // Where the link led inside the root (the in-root place of a link's target): proof that
        // this start met the link. Removed so that the next start makes it afresh.
        let landed = extras(w);
        if !landed.is_empty() || r.status != 0 {
            met_link += 1;
        }
        for name in &landed {
            *places.entry(name.clone()).or_default() += 1;
        }
        let leaked = mounts_naming(w);
        if now != before || !leaked.is_empty() || r.stderr.contains("panic") || r.status == 70 {
            failure = Some(format!(
                "{args:?} (status {}, stderr {:?}): canary {before:?} became {now:?}, mounts {leaked:?}",
                r.status, r.stderr
            ));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swaps_thread.join().unwrap();
    let starts = starts.into_inner();
    let line = format!(
        "race: {tag:<11} {name:<13} {starts:>4} starts {swaps:>6} swaps {met_link:>4} met the link  statuses {statuses:?}  \
         errors {errors:?}  landed in {places:?}\n"
    );
    // Straight to fd 2, in one write: the harness captures the output of passing tests.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(f) = failure {
        panic!("escaped: {f}");
    }
    // After the case the root holds still again: the operation works in it.
    assert!(starts >= MIN_STARTS, "{tag} {name}: only {starts} starts, the case proves nothing");
    assert!(swaps >= MIN_SWAPS, "{tag} {name}: only {swaps} swaps, the case proves nothing");
    assert!(met_link >= 1, "{tag} {name}: no start met the link, the case proves nothing");
    assert_eq!(canary(w), before);
    assert!(mounts_naming(w).is_empty());
    line
}

fn battery(way: As) {
    let w = Path::new("/nonexistent");
    let names: Vec<&str> = operations(w).iter().map(|(n, _)| *n).collect();
    for (i, name) in names.iter().enumerate() {
        case(way, name, i);
    }
}

#[test]
fn a_changing_root_as_root() {
    needs_root!();
    battery(As::Root);
}

#[test]
fn a_changing_root_as_nobody() {
    needs_root!();
    battery(As::Nobody);
}

#[test]
fn a_changing_root_as_nobody_with_become_root() {
    needs_root!();
    battery(As::NobodyBecomeRoot);
}
