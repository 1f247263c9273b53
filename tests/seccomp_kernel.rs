//! The real filter, loaded by the kernel in a forked child: suppressed syscalls return 0 and do
//! nothing, through every ABI; everything else still works.
// Plain libc syscalls with valid arguments in a forked test child, and an `int 0x80`: the unsafe
// blocks here are the test's subject, not a boundary to document one by one.
#![allow(clippy::undocumented_unsafe_blocks)]

mod common;

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;

fn child_checks(real_file: &CString) -> Vec<String> {
    let mut failures = Vec::new();
    let mut check = |name: &str, ok: bool| {
        if !ok {
            failures.push(name.to_string());
        }
    };
    mkosi_sandbox::seccomp::install(true, true).expect("install filter");
    unsafe {
        check("chown(real file) returns 0", libc::chown(real_file.as_ptr(), 12345, 12345) == 0);
        check("chown(/nonexistent) returns 0", libc::chown(c"/nonexistent".as_ptr(), 1, 1) == 0);
        check("lchown returns 0", libc::lchown(c"/nonexistent".as_ptr(), 1, 1) == 0);
        check("fchownat returns 0", libc::fchownat(libc::AT_FDCWD, c"/nonexistent".as_ptr(), 1, 1, 0) == 0);
        check("fchown(-1) returns 0", libc::fchown(-1, 1, 1) == 0);
        check("fsync(-1) returns 0", libc::fsync(-1) == 0);
        check("fdatasync(-1) returns 0", libc::fdatasync(-1) == 0);
        check("syncfs(-1) returns 0", libc::syncfs(-1) == 0);
        check("sync_file_range(-1) returns 0", libc::sync_file_range(-1, 0, 0, 0) == 0);
        check("msync(bad) returns 0", libc::msync(8 as *mut libc::c_void, 4096, libc::MS_SYNC) == 0);
        // Not suppressed: still fails as usual.
        check("open(/nonexistent) still fails", libc::open(c"/nonexistent".as_ptr(), libc::O_RDONLY) == -1);
        #[cfg(target_arch = "x86_64")]
        {
            let x32_chown = libc::syscall(0x4000_0000 | libc::SYS_chown, c"/nonexistent".as_ptr(), 1, 1);
            check("x32 chown returns 0", x32_chown == 0);
            let low = low_string(real_file.as_bytes_with_nul());
            check("i386 int 0x80 chown32 returns 0", int80(212, low as u32, 12345, 12345) == 0);
            check("i386 int 0x80 getpid works", int80(20, 0, 0, 0) == libc::getpid());
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |n: &str| status.lines().find_map(|l| l.strip_prefix(n)).map(|v| v.trim().to_string());
    check("NoNewPrivs: 1", field("NoNewPrivs:").as_deref() == Some("1"));
    check("Seccomp: 2", field("Seccomp:").as_deref() == Some("2"));
    failures
}

/// Copies `bytes` into a mapping below 4 GiB, where an i386 syscall can address it.
#[cfg(target_arch = "x86_64")]
unsafe fn low_string(bytes: &[u8]) -> usize {
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    assert!((p as usize) < (1 << 32));
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p as *mut u8, bytes.len()) };
    p as usize
}

/// An i386 syscall from 64-bit code (`int 0x80`): arguments in ebx, ecx, edx.
#[cfg(target_arch = "x86_64")]
unsafe fn int80(nr: i32, a: u32, b: u32, c: u32) -> i32 {
    let ret: i32;
    unsafe {
        std::arch::asm!(
            "xchg {a:r}, rbx",
            "int 0x80",
            "xchg {a:r}, rbx",
            a = inout(reg) a as u64 => _,
            inlateout("eax") nr => ret,
            in("ecx") b,
            in("edx") c,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    ret
}

#[test]
fn real_filter_in_a_forked_child() {
    // As root: a real file owned by root must keep its owner.
    needs_root!();
    let dir = std::env::temp_dir().join(format!("mkosi-sandbox-seccomp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("owned-by-root");
    std::fs::write(&file, "x").unwrap();
    let path = CString::new(file.to_str().unwrap()).unwrap();

    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read_fd, write_fd) = (fds[0], fds[1]);
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let failures = child_checks(&path).join("\n");
        unsafe {
            libc::write(write_fd, failures.as_ptr().cast(), failures.len());
            libc::_exit(0);
        }
    }
    unsafe { libc::close(write_fd) };
    let mut report = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = unsafe { libc::read(read_fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        report.extend_from_slice(&buf[..n as usize]);
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child died: status {status:#x} (SIGSYS would be {})",
        libc::SIGSYS
    );
    assert_eq!(String::from_utf8_lossy(&report), "", "failed checks");
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "the owner did not change");
    let _ = std::fs::remove_dir_all(&dir);
}
