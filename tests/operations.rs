//! End to end, as root: each operation checked from inside the sandbox.

mod common;
use common::*;

#[test]
fn root_layout_mount_types_and_propagation() {
    needs_root!();
    let out = run(&refs(&sh(
        &["--tmpfs", "/run", "--dir", "/var/tmp", "--tmpfs", "/tmp", "--dir", "/etc"],
        "cat /proc/self/mountinfo; echo ===; stat -c '%n %a %F' / /run /tmp /var/tmp /etc",
    )));
    let text = out.ok();
    let (info, stats) = text.split_once("===\n").unwrap();
    let (fstype, opts, _, optional) = mount_entry(info, "/").unwrap();
    assert_eq!(fstype, "tmpfs");
    assert!(opts.starts_with("rw"), "{opts}");
    assert!(optional.contains("shared:"), "root must be shared: {optional}");
    let (fstype, opts, _, optional) = mount_entry(info, "/usr").unwrap();
    assert_ne!(fstype, "tmpfs");
    assert!(opts.starts_with("ro"), "/usr must be read-only: {opts}");
    assert!(optional.contains("shared:"));
    assert_eq!(mount_entry(info, "/proc").unwrap().0, "proc");
    let (t, _, sup, _) = mount_entry(info, "/run").unwrap();
    assert_eq!(t, "tmpfs");
    assert!(sup.contains("mode=755"), "{sup}");
    let (_, _, sup, _) = mount_entry(info, "/tmp").unwrap();
    assert!(!sup.contains("mode=755"), "/tmp keeps tmpfs's 1777: {sup}");
    assert!(stats.contains("/run 755 directory"), "{stats}");
    assert!(stats.contains("/tmp 1777 directory"), "{stats}");
    assert!(stats.contains("/var/tmp 1777 directory"), "{stats}");
    assert!(stats.contains("/etc 755 directory"), "{stats}");
    // Nothing leaked into the caller's mount namespace.
    assert!(!std::fs::read_to_string("/proc/self/mountinfo").unwrap().contains("/newroot"));
}

#[test]
fn ro_bind_is_recursively_read_only_and_bind_is_writable() {
    needs_root!();
    let s = Scratch::new("rw");
    std::fs::create_dir_all(s.path().join("src/sub")).unwrap();
    // A mount below the source: the recursive read-only bind must cover it too.
    let sub = s.join("src/sub");
    assert!(std::process::Command::new("mount").args(["-t", "tmpfs", "tmpfs", &sub]).status().unwrap().success());
    let script = "touch /ro/x 2>/dev/null && echo ro-writable; touch /ro/sub/y 2>/dev/null && echo sub-writable; touch /rw/z && echo rw-ok";
    let src = s.join("src");
    let out = run(&refs(&sh(&["--ro-bind", &src, "/ro", "--bind", &src, "/rw"], script)));
    let _ = std::process::Command::new("umount").arg(&sub).status();
    assert_eq!(out.ok(), "rw-ok\n");
    assert!(s.path().join("src/z").exists(), "--bind writes through to the host");
}

#[test]
fn bind_creates_file_or_directory_mount_points() {
    needs_root!();
    let s = Scratch::new("mp");
    std::fs::write(s.path().join("file"), "content\n").unwrap();
    std::fs::create_dir(s.path().join("dir")).unwrap();
    let (f, d) = (s.join("file"), s.join("dir"));
    let out = run(&refs(&sh(
        &["--bind", &f, "/deep/a/file", "--bind", &d, "/deep/b/dir"],
        "stat -c '%n %F %a' /deep /deep/a /deep/a/file /deep/b/dir; cat /deep/a/file",
    )));
    let text = out.ok();
    assert!(text.contains("/deep directory 755"), "{text}");
    assert!(text.contains("/deep/a/file regular file"), "{text}");
    assert!(text.contains("/deep/b/dir directory"), "{text}");
    assert!(text.ends_with("content\n"));
}

#[test]
fn bind_try_skips_missing_sources() {
    needs_root!();
    let out = run(&refs(&sh(
        &["--bind-try", "/does/not/exist", "/x", "--ro-bind-try", "/nope", "/y"],
        "test -e /x || test -e /y || echo skipped",
    )));
    assert_eq!(out.ok(), "skipped\n");
}

#[test]
fn relative_binds_resolve_in_the_new_root_and_run_last() {
    needs_root!();
    let s = Scratch::new("rel");
    std::fs::create_dir_all(s.path().join("root/var/lib/pacman/local")).unwrap();
    std::fs::write(s.path().join("root/var/lib/pacman/local/db"), "pkg\n").unwrap();
    let root = s.join("root");
    let out = run(&refs(&sh(
        &["--bind", "+/buildroot/var/lib/pacman/local", "/var/lib/pacman/local", "--bind", &root, "/buildroot"],
        "cat /var/lib/pacman/local/db",
    )));
    assert_eq!(out.ok(), "pkg\n");
}

#[test]
fn bind_follows_symlinks_in_the_destination_inside_the_new_root() {
    needs_root!();
    let s = Scratch::new("chase");
    std::fs::write(s.path().join("f"), "x\n").unwrap();
    let f = s.join("f");
    // /etc/link -> /data inside the sandbox: the bind lands in /data/file.
    let out = run(&refs(&sh(
        &["--dir", "/data", "--symlink", "/data", "/etc/link", "--dir", "/etc", "--bind", &f, "/etc/link/file"],
        "cat /data/file",
    )));
    assert_eq!(out.ok(), "x\n");
}

#[test]
fn file_bound_onto_a_symlink_replaces_the_link_itself() {
    needs_root!();
    let s = Scratch::new("onlink");
    std::fs::create_dir_all(s.path().join("etc")).unwrap();
    std::os::unix::fs::symlink("../run/resolv.conf", s.path().join("etc/resolv.conf")).unwrap();
    std::fs::write(s.path().join("resolv"), "nameserver 1.2.3.4\n").unwrap();
    let (etc, resolv) = (s.join("etc"), s.join("resolv"));
    let out = run(&refs(&sh(
        &["--bind", &etc, "/etc", "--bind", &resolv, "/etc/resolv.conf"],
        "cat /etc/resolv.conf; test -e /run/resolv.conf || echo no-target",
    )));
    assert_eq!(out.ok(), "nameserver 1.2.3.4\nno-target\n");
}

#[test]
fn symlinks_and_the_symlink_over_existing_file_trick() {
    needs_root!();
    let s = Scratch::new("sym");
    std::fs::create_dir_all(s.path().join("etc")).unwrap();
    std::fs::write(s.path().join("etc/os-release"), "ID=host\n").unwrap();
    let etc = s.join("etc");
    let out = run(&refs(&sh(
        &[
            "--ro-bind",
            &etc,
            "/etc",
            "--symlink",
            "../usr/lib/os-release",
            "/etc/os-release",
            "--symlink",
            "usr/bin",
            "/bin",
        ],
        "readlink /etc/os-release; readlink /bin",
    )));
    assert_eq!(out.ok(), "../usr/lib/os-release\nusr/bin\n");
    assert_eq!(std::fs::read_to_string(s.path().join("etc/os-release")).unwrap(), "ID=host\n", "host file untouched");
}

#[test]
fn symlink_onto_a_directory_fails_cleanly() {
    needs_root!();
    let out = run(&refs(&sh(&["--dir", "/d", "--symlink", "x", "/d"], "echo ran")));
    assert_eq!(out.status, 1);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "mkosi-sandbox: --symlink x /d: File exists\n");
}

#[test]
fn write_creates_parents_and_respects_umask() {
    needs_root!();
    let out = run(&refs(&sh(
        &["--write", "hello world", "/etc/a/b/greeting"],
        "stat -c '%a' /etc/a /etc/a/b/greeting; cat /etc/a/b/greeting",
    )));
    assert_eq!(out.ok(), "755\n644\nhello world");
}

#[test]
fn write_goes_through_rw_binds() {
    needs_root!();
    let s = Scratch::new("wr");
    let d = s.join("");
    let out = run(&refs(&sh(&["--bind", &d, "/out", "--write", "data", "/out/file"], "true")));
    out.ok();
    assert_eq!(std::fs::read_to_string(s.path().join("file")).unwrap(), "data");
}

#[test]
fn dir_keeps_existing_and_applies_the_tmp_rule() {
    needs_root!();
    let out = run(&refs(&sh(
        &["--write", "x", "/f", "--dir", "/f", "--dir", "/a/tmp", "--dir", "/b/c"],
        "stat -c '%n %a %F' /f /a /a/tmp /b/c",
    )));
    assert_eq!(out.ok(), "/f 644 regular file\n/a 755 directory\n/a/tmp 1777 directory\n/b/c 755 directory\n");
}

#[test]
fn dev_has_the_api_nodes_and_links() {
    needs_root!();
    let out = run(&refs(&sh(
        &[],
        "stat -c '%n %F %t:%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; for l in stdin stdout stderr fd core ptmx; do echo $l $(readlink /dev/$l); done; stat -c '%a' /dev/shm /dev/pts; echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | od -An -tx1; test -e /dev/console || echo no-console",
    )));
    let text = out.ok();
    for (node, maj_min) in
        [("null", "1:3"), ("zero", "1:5"), ("full", "1:7"), ("random", "1:8"), ("urandom", "1:9"), ("tty", "5:0")]
    {
        assert!(text.contains(&format!("/dev/{node} character special file {maj_min}")), "{node}: {text}");
    }
    for line in [
        "stdin /proc/self/fd/0",
        "stdout /proc/self/fd/1",
        "stderr /proc/self/fd/2",
        "fd /proc/self/fd",
        "core /proc/kcore",
        "ptmx pts/ptmx",
        "1777\n755",
        "null-ok",
        " 00 00 00 00",
        "no-console",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let out = run(&refs(&sh(&[], "grep ' /dev/pts ' /proc/self/mountinfo")));
    let line = out.ok();
    assert!(line.contains("devpts") && line.contains("ptmxmode=666") && line.contains("mode=620"), "{line}");
}

#[test]
fn overlay_with_tmpfs_upper_is_writable_and_leaves_lowers_alone() {
    needs_root!();
    let s = Scratch::new("ovl");
    for (dir, file, text) in [("l1", "a", "from-l1"), ("l2", "a", "from-l2"), ("l2", "b", "only-l2")] {
        std::fs::create_dir_all(s.path().join(dir)).unwrap();
        std::fs::write(s.path().join(dir).join(file), text).unwrap();
    }
    let (l1, l2) = (s.join("l1"), s.join("l2"));
    let out = run(&refs(&sh(
        &["--overlay-lowerdir", &l1, "--overlay-lowerdir", &l2, "--overlay-upperdir", "tmpfs", "--overlay", "/ovl"],
        "cat /ovl/a; echo; cat /ovl/b; echo; echo new > /ovl/c && cat /ovl/c; grep ' /ovl ' /proc/self/mountinfo | tail -n1",
    )));
    let text = out.ok();
    let mut lines = text.lines();
    // The last lowerdir given is the top layer.
    assert_eq!(lines.next(), Some("from-l2"));
    assert_eq!(lines.next(), Some("only-l2"));
    assert_eq!(lines.next(), Some("new"));
    let info = lines.next().unwrap();
    assert!(info.contains(" - overlay overlayfs "), "{info}");
    // index=off and metacopy=off are passed too; the kernel lists them only when not its default.
    assert!(
        info.contains("userxattr")
            && info.contains("upperdir=newroot/ovl/upper")
            && info.contains("workdir=newroot/ovl/cache"),
        "{info}"
    );
    assert!(!s.path().join("l1/c").exists() && !s.path().join("l2/c").exists());
}

#[test]
fn overlay_with_real_upper_and_work_dirs() {
    needs_root!();
    let s = Scratch::new("ovl2");
    for d in ["lower", "upper", "work"] {
        std::fs::create_dir_all(s.path().join(d)).unwrap();
    }
    std::fs::write(s.path().join("lower/a"), "lower").unwrap();
    let (lower, upper, work) = (s.join("lower"), s.join("upper"), s.join("work"));
    let out = run(&refs(&sh(
        &["--overlay-lowerdir", &lower, "--overlay-upperdir", &upper, "--overlay-workdir", &work, "--overlay", "/o"],
        "echo changed > /o/a",
    )));
    out.ok();
    assert_eq!(std::fs::read_to_string(s.path().join("upper/a")).unwrap(), "changed\n");
    assert_eq!(std::fs::read_to_string(s.path().join("lower/a")).unwrap(), "lower");
}

#[test]
fn environment_setenv_then_unsetenv_and_path_search_uses_the_new_path() {
    needs_root!();
    let s = Scratch::new("env");
    std::fs::write(s.path().join("mytool"), "#!/bin/sh\necho mytool-ran\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(s.path().join("mytool")).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(s.path().join("mytool"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let d = s.join("");
    let mut args: Vec<String> = BASE.iter().map(|s| s.to_string()).collect();
    args.extend(
        [
            "--bind",
            &d,
            "/tools",
            "--setenv",
            "PATH",
            "/tools:/usr/bin",
            "--setenv",
            "A",
            "1",
            "--setenv",
            "B",
            "2",
            "--setenv",
            "A",
            "3",
            "--unsetenv",
            "B",
            "--unsetenv",
            "HOME",
            "--",
            "mytool",
        ]
        .map(String::from),
    );
    assert_eq!(run(&refs(&args)).ok(), "mytool-ran\n");
    let out = run(&refs(&sh(
        &[
            "--setenv",
            "A",
            "1",
            "--setenv",
            "B",
            "2",
            "--setenv",
            "A",
            "3",
            "--unsetenv",
            "B",
            "--setenv",
            "B",
            "4",
            "--unsetenv",
            "HOME",
        ],
        "echo A=$A B=${B-unset} HOME=${HOME-unset}",
    )));
    assert_eq!(out.ok(), "A=3 B=unset HOME=unset\n");
}

#[test]
fn chdir_and_same_dir() {
    needs_root!();
    let out = run(&refs(&sh(&["--dir", "/work/x", "--chdir", "/work/x"], "pwd")));
    assert_eq!(out.ok(), "/work/x\n");
    let s = Scratch::new("cwd");
    let d = s.join("");
    let mut args = sh(&["--bind", &d, &d, "--same-dir"], "pwd");
    args.insert(0, "--dir".into());
    args.insert(1, "/unused".into());
    let out = std::process::Command::new(binary()).args(&args).current_dir(s.path()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}\n", s.path().display()));
}

#[test]
fn namespaces_net_and_ipc() {
    needs_root!();
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    let out = run(&refs(&sh(
        &["--unshare-net", "--unshare-ipc"],
        "readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/user",
    )));
    let text = out.ok();
    assert!(!text.contains(host_net.to_str().unwrap()), "{text}");
    assert!(!text.contains(host_ipc.to_str().unwrap()), "{text}");
    let host_user = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert!(text.contains(host_user.to_str().unwrap()), "root needs no user namespace: {text}");
    let out = run(&refs(&sh(&[], "readlink /proc/self/ns/net")));
    assert_eq!(out.ok().trim(), host_net.to_str().unwrap());
}

#[test]
fn mounts_made_inside_do_not_reach_the_host() {
    needs_root!();
    let s = Scratch::new("prop");
    let d = s.join("");
    let out = run(&refs(&sh(
        &["--bind", &d, "/hostdir"],
        "mount -t tmpfs tmpfs /hostdir 2>&1 && touch /hostdir/inside && echo mounted",
    )));
    assert_eq!(out.ok(), "mounted\n");
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host.contains(s.path().to_str().unwrap()), "a sandbox mount propagated to the host");
    assert!(!s.path().join("inside").exists());
}

#[test]
fn exit_status_of_the_command_is_the_sandboxs() {
    needs_root!();
    assert_eq!(run(&refs(&sh(&[], "exit 42"))).status, 42);
    let mut args: Vec<&str> = BASE.to_vec();
    args.extend(["--", "no-such-command-here"]);
    let out = run(&args);
    assert_eq!(out.status, 127);
    assert_eq!(out.stderr, "mkosi-sandbox: no-such-command-here: execvp: No such file or directory\n");
}

#[test]
fn commands_start_at_the_first_non_option_without_double_dash() {
    needs_root!();
    let mut args: Vec<&str> = BASE.to_vec();
    args.extend(["echo", "--tmpfs", "/x"]);
    assert_eq!(run(&args).ok(), "--tmpfs /x\n");
}

#[test]
fn default_command_is_bash() {
    needs_root!();
    let mut args: Vec<&str> = BASE.to_vec();
    args.extend(["--setenv", "BASH_ENV", "/dev/null"]);
    let out = std::process::Command::new(binary())
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"echo $BASH_VERSION | cut -c1-1\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).trim().parse::<u32>().is_ok(), "bash ran: {:?}", out);
}

#[test]
fn pack_fds_moves_descriptors_from_three_and_sets_listen_vars() {
    needs_root!();
    // bash opens fds 5 and 8 (not close-on-exec) and execs the sandbox.
    let bin = binary();
    let base = BASE.join(" ");
    let script = format!(
        "for f in /proc/$$/fd/*; do n=${{f##*/}}; case $n in 0|1|2) ;; *) eval \"exec $n>&-\" 2>/dev/null;; esac; done; exec 5</dev/null 8</etc/hostname; exec {} {base} --pack-fds -- sh -c 'echo LISTEN_FDS=$LISTEN_FDS; test \"$LISTEN_PID\" = \"$$\" && echo pid-ok; for n in 3 4 5 8; do [ -e /proc/$$/fd/$n ] && echo has$n; done; readlink /proc/$$/fd/4'",
        bin.display()
    );
    let out =
        std::process::Command::new("bash").args(["-c", &script]).stdin(std::process::Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "LISTEN_FDS=2\npid-ok\nhas3\nhas4\n/etc/hostname\n", "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn suspend_stops_before_exec() {
    needs_root!();
    let mut args: Vec<String> = BASE.iter().map(|s| s.to_string()).collect();
    args.extend(["--suspend", "--", "sh", "-c", "echo resumed"].map(String::from));
    let child = std::process::Command::new(binary()).args(&args).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let mut stopped = false;
    for _ in 0..500 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.split(") ").nth(1).is_some_and(|s| s.starts_with('T')) {
            stopped = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(stopped, "the sandbox stops itself");
    // SAFETY: kill() takes plain integers.
    unsafe { libc::kill(pid as i32, libc::SIGCONT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "resumed\n");
}

#[test]
fn duplicate_option_sets_are_deduplicated() {
    needs_root!();
    let mut args: Vec<&str> = BASE.to_vec();
    args.extend(BASE);
    args.extend(["--ro-bind", "/usr/lib", "/usr/lib", "--", "sh", "-c", "grep -c ' /usr' /proc/self/mountinfo"]);
    assert_eq!(run(&args).ok(), "1\n");
}

#[test]
fn destinations_below_root_that_exist_as_symlinks_are_resolved() {
    needs_root!();
    let s = Scratch::new("toplink");
    std::fs::write(s.path().join("marker"), "dir-bound\n").unwrap();
    let d = s.join("");
    // /lib -> usr/lib exists when the bind runs: the directory lands in /usr/lib.
    let out = run(&refs(&sh(
        &[
            "--dir",
            "/usr2/lib",
            "--symlink",
            "usr2/lib",
            "/lib2",
            "--bind",
            &d,
            "/lib2",
            "--dir",
            "/data",
            "--symlink",
            "/data/f",
            "/f",
            "--write",
            "x",
            "/f",
            "--dir",
            "/data2",
            "--symlink",
            "data2",
            "/t",
            "--tmpfs",
            "/t",
        ],
        "cat /usr2/lib/marker; readlink /lib2; cat /data/f; echo; grep -c ' /data2 tmpfs ' /proc/self/mounts",
    )));
    assert_eq!(out.ok(), "dir-bound\nusr2/lib\nx\n1\n");
}

#[test]
fn listen_pid_follows_a_listen_fds_given_by_the_caller() {
    needs_root!();
    // mkosi 25 passes LISTEN_FDS itself; LISTEN_PID must name the command's process.
    let out = std::process::Command::new(binary())
        .args(BASE)
        .args(["--", "sh", "-c", "test \"$LISTEN_PID\" = \"$$\" && echo pid-ok $LISTEN_FDS"])
        .env("LISTEN_FDS", "2")
        .env("LISTEN_PID", "1")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pid-ok 2\n");
    let out = std::process::Command::new(binary())
        .args(BASE)
        .args(["--", "sh", "-c", "echo ${LISTEN_PID-unset}"])
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "unset\n");
}

#[test]
fn sources_behind_symlinks_resolve_in_the_callers_root() {
    needs_root!();
    let s = Scratch::new("srclink");
    std::fs::create_dir_all(s.path().join("real/sub")).unwrap();
    std::fs::write(s.path().join("real/sub/x"), "behind-links\n").unwrap();
    std::os::unix::fs::symlink("real", s.path().join("rel")).unwrap();
    std::os::unix::fs::symlink(s.path().join("real"), s.path().join("abs")).unwrap();
    let (rel, abs) = (s.join("rel/sub/x"), s.join("abs/sub"));
    let mut extra: Vec<String> = vec!["--ro-bind".into(), rel, "/y".into(), "--ro-bind".into(), abs, "/z".into()];
    // Many binds below one parent, interleaved with others, exercise the open-parent cache.
    for i in 0..20 {
        std::fs::create_dir_all(s.path().join(format!("many/{i}"))).unwrap();
        std::fs::write(s.path().join(format!("many/{i}/id")), format!("{i}\n")).unwrap();
        extra.extend(["--bind".into(), s.join(&format!("many/{i}")), format!("/m/{i}")]);
        extra.extend(["--dir".into(), format!("/m/{i}/sub")]);
    }
    let out = run(&refs(&sh(&refs(&extra), "cat /y /z/x; cat /m/7/id /m/19/id; test -d /m/3/sub && echo sub-ok")));
    assert_eq!(out.ok(), "behind-links\nbehind-links\n7\n19\nsub-ok\n");
    assert!(s.path().join("many/3/sub").is_dir(), "--dir below a writable bind lands on the host");
}

#[test]
fn nofollow_binds_bind_the_symlink_itself() {
    needs_root!();
    let s = Scratch::new("nofollow");
    std::fs::create_dir_all(s.path().join("etc")).unwrap();
    std::os::unix::fs::symlink("../run/systemd/resolve/stub-resolv.conf", s.path().join("etc/resolv.conf")).unwrap();
    std::fs::write(s.path().join("etc/hosts"), "127.0.0.1 here\n").unwrap();
    std::os::unix::fs::symlink("hosts", s.path().join("etc/hosts-link")).unwrap();
    let (link, hosts, hosts_link) = (s.join("etc/resolv.conf"), s.join("etc/hosts"), s.join("etc/hosts-link"));
    let out = run(&refs(&sh(
        &[
            "--ro-bind-nofollow",
            &link,
            "/etc/resolv.conf",
            "--symlink",
            "../elsewhere",
            "/etc/r2",
            "--ro-bind-nofollow",
            &link,
            "/etc/r2",
            "--ro-bind-nofollow",
            &hosts,
            "/etc/hosts",
            "--bind",
            &hosts_link,
            "/followed",
            "--ro-bind-nofollow",
            &hosts_link,
            "/not-followed",
        ],
        "readlink /etc/resolv.conf /etc/r2 /not-followed; cat /etc/hosts; test -L /followed || cat /followed",
    )));
    assert_eq!(
        out.ok(),
        "../run/systemd/resolve/stub-resolv.conf\n../run/systemd/resolve/stub-resolv.conf\nhosts\n127.0.0.1 here\n127.0.0.1 here\n"
    );
    let out = run(&refs(&sh(&["--ro-bind-nofollow", "/nope/x", "/x"], "echo ran")));
    assert_eq!(
        (out.status, out.stderr.as_str()),
        (1, "mkosi-sandbox: --ro-bind-nofollow /nope/x /x: No such file or directory\n")
    );
}

#[test]
fn debug_prints_each_operation_in_the_order_it_runs() {
    needs_root!();
    let args = [
        "--debug",
        "--dir",
        "/b",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--symlink",
        "usr/lib",
        "/lib",
        "--tmpfs",
        "/a",
        "--",
        "/usr/bin/true",
    ];
    let out = run(&args);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "mkosi-sandbox: --tmpfs /a\nmkosi-sandbox: --dir /b\nmkosi-sandbox: --symlink usr/lib /lib\n\
         mkosi-sandbox: --symlink usr/lib64 /lib64\nmkosi-sandbox: --ro-bind /usr /usr\n"
    );
}
