//! End to end, as an unprivileged user (uid/gid 65534): the user namespace, maps, capabilities.

mod common;
use common::*;

fn status_field(status: &str, name: &str) -> String {
    status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_default()
}

#[test]
fn maps_the_caller_to_itself_with_ambient_capabilities() {
    needs_root!();
    let out = run_as_nobody(&refs(&sh(
        &[],
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; cat /proc/self/status",
    )));
    let text = out.ok();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("65534"));
    assert_eq!(lines.next(), Some("65534"));
    let uid_map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(uid_map, ["65534", "65534", "1"]);
    let gid_map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(gid_map, ["65534", "65534", "1"]);
    assert_eq!(lines.next(), Some("deny"));
    let cap_eff = status_field(text, "CapEff:");
    let cap_amb = status_field(text, "CapAmb:");
    let last_cap: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").unwrap().trim().parse().unwrap();
    let full = format!("{:016x}", (1u128 << (last_cap + 1)) as u64 - 1);
    assert_eq!(cap_amb, full, "every capability is ambient, so the command keeps them");
    assert_eq!(cap_eff, full);
}

#[test]
fn become_root_maps_root_without_ambient_capabilities() {
    needs_root!();
    let out = run_as_nobody(&refs(&sh(
        &["--become-root"],
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; grep CapAmb /proc/self/status",
    )));
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0");
    assert_eq!(lines[1], "0");
    assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["0", "65534", "1"]);
    assert_eq!(lines[3].split_whitespace().collect::<Vec<_>>(), ["0", "65534", "1"]);
    assert_eq!(lines[4].split_whitespace().nth(1), Some("0000000000000000"));
}

#[test]
fn unprivileged_unshare_net_gets_a_network_namespace() {
    needs_root!();
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    let out = run_as_nobody(&refs(&sh(
        &["--unshare-net", "--become-root"],
        "readlink /proc/self/ns/net; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '",
    )));
    let text = out.ok();
    let mut lines = text.lines();
    assert_ne!(lines.next().unwrap(), host_net.to_str().unwrap());
    assert_eq!(lines.collect::<Vec<_>>(), ["lo"], "only loopback in the new namespace");
}

#[test]
fn unprivileged_mounts_work_inside() {
    needs_root!();
    let s = Scratch::new("nobody");
    let d = s.join("");
    let out = run_as_nobody(&refs(&sh(
        &[
            "--bind",
            &d,
            "/out",
            "--tmpfs",
            "/run",
            "--dir",
            "/var/tmp",
            "--write",
            "x",
            "/etc/x",
            "--overlay-lowerdir",
            "/usr",
            "--overlay-upperdir",
            "tmpfs",
            "--overlay",
            "/ovl",
        ],
        "touch /out/made && stat -c '%u' /out/made; mount -t tmpfs tmpfs /run && echo can-mount; echo hi > /ovl/new && cat /ovl/new",
    )));
    assert_eq!(out.ok(), "65534\ncan-mount\nhi\n");
    let meta = std::fs::metadata(s.path().join("made")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);
}

#[test]
fn unprivileged_errors_are_one_line_too() {
    needs_root!();
    let out = run_as_nobody(&refs(&sh(&["--ro-bind", "/root/nope", "/x"], "echo ran")));
    assert_eq!(out.status, 1);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.starts_with("mkosi-sandbox: --ro-bind /root/nope /x: "), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1);
}

#[test]
fn suppress_chown_makes_package_manager_chowns_succeed_without_effect() {
    needs_root!();
    let script = "touch /var/tmp/f && chown 123:456 /var/tmp/f && echo chown-ok; stat -c '%u:%g' /var/tmp/f; sync; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t' ' '";
    let out = run_as_nobody(&refs(&sh(
        &["--become-root", "--suppress-chown", "--suppress-sync", "--tmpfs", "/var/tmp"],
        script,
    )));
    assert_eq!(out.ok(), "chown-ok\n0:0\nNoNewPrivs: 1\nSeccomp: 2\n");
    // Without the filter the same chown fails: the ids are not mapped.
    let out = run_as_nobody(&refs(&sh(&["--become-root", "--tmpfs", "/var/tmp"], script)));
    assert!(out.stdout.starts_with("0:0\nNoNewPrivs: 0\nSeccomp: 0"), "{}", out.stdout);
    assert!(out.stderr.contains("Invalid argument"), "{}", out.stderr);
}

#[test]
fn suppress_chown_is_not_applied_for_privileged_root() {
    needs_root!();
    // Root with CAP_SYS_ADMIN gets no user namespace and a full uid_map: chown stays real.
    let out = run(&refs(&sh(
        &["--suppress-chown", "--tmpfs", "/var/tmp"],
        "touch /var/tmp/f && chown 123:456 /var/tmp/f && stat -c '%u:%g' /var/tmp/f; grep -E '^Seccomp:' /proc/self/status | tr -s '\\t' ' '",
    )));
    assert_eq!(out.ok(), "123:456\nSeccomp: 0\n");
}
