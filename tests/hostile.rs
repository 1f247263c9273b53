//! A hostile build root: symlinks that point out of it (absolute, relative, through
//! `/proc/self/root`, chains longer than a walk follows) and loops, under every destination of
//! every operation, as root and as nobody. Checked from the host: nothing is created, written or
//! mounted outside the root, and no host file becomes visible inside through a relative source.
//! Exit codes do not matter here (most of these fail, as they should).

mod common;
use common::*;

use std::os::unix::fs::symlink;
use std::path::Path;

const SECRET: &str = "host-secret-7f3a";

/// The hostile root below `w`, and the host directory `w/out` its links aim at.
fn hostile_root(w: &Path) {
    let root = w.join("root");
    let out = w.join("out");
    for d in [&root, &out, &root.join("usr"), &root.join("real")] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(w.join("secret"), SECRET).unwrap();
    for (name, target) in [("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64")] {
        symlink(target, root.join(name)).unwrap();
    }
    let out_s = out.to_str().unwrap();
    let w_s = w.to_str().unwrap();
    // The set-up root is the workspace: /oldroot is the host there.
    symlink(format!("/oldroot{out_s}"), root.join("abs")).unwrap();
    symlink(format!("../oldroot{out_s}"), root.join("rel")).unwrap();
    symlink(format!("real/../../../../../../oldroot{out_s}"), root.join("deep")).unwrap();
    symlink(format!("/proc/self/root/oldroot{out_s}"), root.join("pself")).unwrap();
    symlink(format!("/proc/self/cwd/oldroot{out_s}"), root.join("pcwd")).unwrap();
    // A chain of 45 links: past the 40 a path walk follows, then to the host.
    for i in 0..45 {
        let target = if i == 44 { format!("/oldroot{out_s}") } else { format!("c{}", i + 1) };
        symlink(target, root.join(format!("c{i}"))).unwrap();
    }
    symlink("c0", root.join("chain")).unwrap();
    symlink("loop2", root.join("loop1")).unwrap();
    symlink("loop1", root.join("loop2")).unwrap();
    // Last components that are links to the host, and the secret as a relative source.
    symlink(format!("/oldroot{out_s}/file"), root.join("real/lastabs")).unwrap();
    symlink(format!("/oldroot{w_s}/secret"), root.join("real/secret")).unwrap();
    symlink(format!("../../oldroot{w_s}/secret"), root.join("real/relsecret")).unwrap();
    // nobody builds in it (mkosi's unprivileged roots belong to the building user), and could
    // write to `out`: an escape would show.
    give_to_nobody(w);
}

/// Operations to try under the link `l` (as `/l/...` or `/l` itself).
fn operations(l: &str, w: &Path) -> Vec<Vec<String>> {
    let src_dir = w.join("root/real").to_str().unwrap().to_string();
    let src_file = w.join("secret").to_str().unwrap().to_string();
    let lower = src_dir.clone();
    let mut ops = Vec::new();
    for dst in [format!("/{l}"), format!("/{l}/x"), format!("/{l}/x/y"), format!("/{l}/./x"), format!("/{l}/x/")] {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ops.push(v(&["--symlink", "target", &dst]));
        ops.push(v(&["--write", "escaped", &dst]));
        ops.push(v(&["--dir", &dst]));
        ops.push(v(&["--tmpfs", &dst, "--write", "escaped", &format!("{dst}/f")]));
        ops.push(v(&["--proc", &dst]));
        ops.push(v(&["--dev", &dst]));
        ops.push(v(&["--binfmt-misc", &dst]));
        ops.push(v(&["--bind", &src_dir, &dst]));
        ops.push(v(&["--ro-bind", &src_file, &dst]));
        ops.push(v(&["--bind-nofollow", &src_file, &dst]));
        ops.push(v(&["--overlay-lowerdir", &lower, "--overlay", &dst]));
        ops.push(v(&["--overlay-lowerdir", &lower, "--overlay-upperdir", "tmpfs", "--overlay", &dst]));
        ops.push(v(&["--dir", "/d", "--symlink", &dst, "/d/s", "--write", "escaped", "/d/s"]));
        ops.push(v(&["--chdir", &dst, "--same-dir"]));
        ops.push(v(&["--dir", &format!("{dst}/sub"), "--chdir", &format!("{dst}/sub")]));
    }
    ops
}

/// What the host must still look like: `out` empty and nothing mounted on it.
fn assert_nothing_outside(w: &Path, what: &[String], run: &Run) {
    let out = w.join("out");
    let made: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(made.is_empty(), "{what:?} made {made:?} on the host (status {}, {})", run.status, run.stderr);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(out.to_str().unwrap()), "{what:?} mounted on the host");
    assert!(!run.stdout.contains(SECRET), "{what:?} showed a host file inside");
}

fn battery(tag: &str, as_nobody: bool) {
    let s = Scratch::new(tag);
    let w = s.path();
    hostile_root(w);
    let root = w.join("root").to_str().unwrap().to_string();
    let links = ["abs", "rel", "deep", "pself", "pcwd", "chain", "loop1", "real/lastabs"];
    let mut runs = 0;
    for l in links {
        for op in operations(l, w) {
            let mut args: Vec<String> =
                ["--bind", &root, "/", "--ro-bind", "/usr", "/usr"].iter().map(|s| s.to_string()).collect();
            if l == "pself" || l == "pcwd" {
                args.extend(["--proc".into(), "/proc".into()]);
            }
            if as_nobody {
                args.push("--become-root".into());
            }
            args.extend(op.iter().cloned());
            args.extend(["--".into(), "/usr/bin/true".into()]);
            let r = if as_nobody { run_as_nobody(&refs(&args)) } else { run(&refs(&args)) };
            assert!(r.status != 0 || !r.stderr.contains("panic"), "{args:?}: {}", r.stderr);
            assert_nothing_outside(w, &args, &r);
            runs += 1;
        }
    }
    // Relative sources through links to the host bind nothing of the host.
    let sources = ["+/real/secret", "+/real/relsecret", "+/abs/../secret", "+/chain", "+/pself/../secret", "+/pself"];
    for (src, option) in sources.iter().flat_map(|s| ["--ro-bind-try", "--bind", "--ro-bind-nofollow"].map(|o| (*s, o)))
    {
        let mut args: Vec<String> = ["--bind", &root, "/", "--ro-bind", "/usr", "/usr", "--proc", "/proc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if as_nobody {
            args.push("--become-root".into());
        }
        args.extend([option, src, "/seen", "--", "/usr/bin/cat", "/seen", "/seen/secret"].map(String::from));
        let r = if as_nobody { run_as_nobody(&refs(&args)) } else { run(&refs(&args)) };
        assert_nothing_outside(w, &args, &r);
        runs += 1;
    }
    assert!(runs > 400, "{runs}");
    // The build root itself was usable: a plain operation still works in it.
    let mut args: Vec<String> = ["--bind", &root, "/", "--ro-bind", "/usr", "/usr", "--write", "fine", "/real/ok"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if as_nobody {
        args.push("--become-root".into());
    }
    args.extend(["--".into(), "/usr/bin/true".into()]);
    let r = if as_nobody { run_as_nobody(&refs(&args)) } else { run(&refs(&args)) };
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(w.join("root/real/ok")).unwrap(), "fine");
}

#[test]
fn hostile_root_as_root() {
    needs_root!();
    battery("hostile-root", false);
}

#[test]
fn hostile_root_as_nobody() {
    needs_root!();
    battery("hostile-nobody", true);
}

#[test]
fn symlink_through_an_escaping_parent_stays_inside() {
    needs_root!();
    // The case from the report: the original creates OUT/evil on the host.
    let s = Scratch::new("hostile-symlink");
    let w = s.path();
    hostile_root(w);
    let root = w.join("root").to_str().unwrap().to_string();
    std::fs::create_dir_all(w.join("root/oldroot").join(w.strip_prefix("/").unwrap()).join("out")).unwrap();
    let r = run(&[
        "--bind",
        &root,
        "/",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "target",
        "/abs/evil",
        "--",
        "/usr/bin/true",
    ]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(std::fs::read_dir(w.join("out")).unwrap().count(), 0);
    // The link went where the path leads inside the root.
    let inside = w.join("root/oldroot").join(w.strip_prefix("/").unwrap()).join("out/evil");
    assert_eq!(std::fs::read_link(inside).unwrap().to_str(), Some("target"));
}
