//! mkosi-sandbox as a shared library with a C ABI (`libmkosi-sandbox.so`, header
//! `include/mkosi-sandbox.h`): [`mkosi_sandbox_enter`] runs the binary's stages
//! (`mkosi_sandbox::enter_in_process`, the same road as the command, stopping before the exec)
//! on the calling process. This crate is the library's C boundary: `unsafe` is allowed here, as
//! in the binary's `main.rs`, each block with its reason.
//!
//! Never a panic, never an exit: every failure is an errno and one line. (The release profile
//! aborts on a panic; nothing here can panic: no unwrap, no indexing that can fail, and the
//! stages are the binary's, which have no panic reachable from input.)

use core::ffi::{CStr, c_char, c_int};
use core::sync::atomic::{AtomicBool, Ordering};

use mkosi_sandbox::Storage;
use mkosi_sandbox::sys::InProcess;
use mkosi_sandbox::sys::args::{CArgs, CEnv};
use rustix::io::Errno;
use rustix::process::Pid;

/// The stages' storage: one static instance, as in the binary, used by the one call there may be.
static mut STORAGE: Storage = Storage::new();

/// Whether the entry point has been called in this process (a fork keeps the answer).
static CALLED: AtomicBool = AtomicBool::new(false);

/// Options one call takes (the binary's are bounded by the kernel's ARG_MAX; this is above the
/// number of arguments that fit there).
const MAX_OPTIONS: usize = 1 << 20;

unsafe extern "C" {
    static environ: *const *const c_char;
    fn fork() -> c_int;
    fn setenv(name: *const c_char, value: *const c_char, overwrite: c_int) -> c_int;
    fn unsetenv(name: *const c_char) -> c_int;
    fn getenv(name: *const c_char) -> *const c_char;
}

/// Enters the sandbox that `options` describe (the command line's option language, without
/// argv[0] and without a command) in the calling process. Returns 0, or an errno with the one
/// line the binary would print (NUL-terminated, cut to `size`) in `message` (may be NULL).
///
/// # Safety
/// `options` points at `count` NUL-terminated strings that stay valid during the call;
/// `message` is NULL or points at `size` writable bytes. The caller holds no descriptor from 3
/// up that it uses afterwards when it passes `--pack-fds` (they are renumbered), and starts no
/// thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mkosi_sandbox_enter(
    options: *const *const c_char,
    count: usize,
    message: *mut c_char,
    size: usize,
) -> c_int {
    let failure = match enter(options, count) {
        Ok(()) => return 0,
        Err(failure) => failure,
    };
    let Failure { errno, text: line } = failure;
    if !message.is_null() && size > 0 {
        let n = line.len().min(size - 1);
        // SAFETY: `message` points at `size` writable bytes (the caller's contract); n + 1 <= size.
        unsafe {
            core::ptr::copy_nonoverlapping(line.as_ptr(), message.cast::<u8>(), n);
            *message.add(n) = 0;
        }
    }
    errno
}

/// The version of the library (the crate's, as `mkosi-sandbox --version` prints it).
#[unsafe(no_mangle)]
pub extern "C" fn mkosi_sandbox_version() -> *const c_char {
    VERSION.as_ptr()
}

const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(v) => v,
    Err(_) => c"unknown",
};

/// Bytes of one message (the binary's line buffer).
const LINE: usize = 8192;

struct Failure {
    errno: i32,
    text: Vec<u8>,
}

fn refused(errno: Errno, text: &[u8]) -> Failure {
    Failure { errno: errno.raw_os_error(), text: text.to_vec() }
}

fn enter(options: *const *const c_char, count: usize) -> Result<(), Failure> {
    if CALLED.swap(true, Ordering::SeqCst) {
        return Err(refused(
            Errno::ALREADY,
            b"mkosi-sandbox: enter: already called in this process (a process enters one sandbox: \
              call it in a freshly forked child)",
        ));
    }
    if count > MAX_OPTIONS || (options.is_null() && count > 0) {
        return Err(refused(Errno::TOOBIG, b"mkosi-sandbox: enter: too many options"));
    }
    // argv as `main` gets it: a program name, the options, NULL. Kept for good: the stages hold
    // references to its strings, and their storage is never used again.
    let mut argv: Vec<*const c_char> = Vec::with_capacity(count + 2);
    argv.push(c"mkosi-sandbox".as_ptr());
    for i in 0..count {
        // SAFETY: `options` points at `count` pointers (the caller's contract); i < count.
        argv.push(unsafe { *options.add(i) });
    }
    argv.push(core::ptr::null());
    if argv.iter().take(count + 1).any(|p| p.is_null()) {
        return Err(refused(Errno::INVAL, b"mkosi-sandbox: enter: a NULL option"));
    }
    let argv = argv.leak();
    // SAFETY: `argv` holds count + 1 valid C strings, then NULL; the strings are the caller's,
    // valid during this call, after which nothing reads them (the storage is used once).
    let args = unsafe { CArgs::new((count + 1) as i32, argv.as_ptr()) };
    // SAFETY: the C library's environment: NULL-terminated C strings, valid during this call
    // (nothing here changes it before the stages are done with it).
    let env = unsafe { CEnv::new(environ) };
    // SAFETY: called once (CALLED above); the descriptor and thread contract is the caller's
    // (see `mkosi_sandbox_enter`); `libc_fork` is the C library's fork().
    let caller = unsafe { InProcess::claim(libc_fork) };
    // SAFETY: CALLED makes this the only reference ever made to STORAGE in this process.
    let storage = unsafe { &mut *core::ptr::addr_of_mut!(STORAGE) };
    let mut wanted: Vec<&'static CStr> = Vec::new();
    match mkosi_sandbox::enter_in_process(&args, &env, caller, storage, |entries| wanted.extend_from_slice(entries)) {
        Ok(()) => {
            make_environment(&wanted);
            Ok(())
        }
        Err(e) => {
            let mut text = vec![0u8; LINE];
            let n = e.message(&mut text);
            text.truncate(n);
            Err(Failure { errno: e.os_errno(), text })
        }
    }
}

/// The C library's fork(): its own state (cached thread id, locks, atfork handlers) follows.
fn libc_fork() -> Result<Option<Pid>, Errno> {
    // SAFETY: fork() takes no arguments; the in-process entry calls it only for a single-threaded
    // caller (mkosi_sandbox::sys::InProcess's contract).
    match unsafe { fork() } {
        0 => Ok(None),
        pid if pid > 0 => Ok(Pid::from_raw(pid)),
        _ => Err(Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(11))),
    }
}

/// Makes the C environment `wanted` (the environment the command would have had): variables
/// not in it are unset, the others set where they differ.
fn make_environment(wanted: &[&'static CStr]) {
    let name_of = |entry: &[u8]| -> Vec<u8> { entry.split(|&b| b == b'=').next().unwrap_or_default().to_vec() };
    let mut current: Vec<Vec<u8>> = Vec::new();
    // SAFETY: the C library's environment, read before any change below.
    let mut at = unsafe { environ };
    while !at.is_null() {
        // SAFETY: `at` points into the NULL-terminated array (it stops at the NULL).
        let entry = unsafe { *at };
        if entry.is_null() {
            break;
        }
        // SAFETY: a non-NULL entry is a C string.
        current.push(name_of(unsafe { CStr::from_ptr(entry) }.to_bytes()));
        // SAFETY: not past the terminator, checked above.
        at = unsafe { at.add(1) };
    }
    let wanted: Vec<(Vec<u8>, &[u8])> = wanted
        .iter()
        .map(|entry| {
            let bytes = entry.to_bytes();
            let name = name_of(bytes);
            let value = bytes.get(name.len() + 1..).unwrap_or_default();
            (name, value)
        })
        .collect();
    for name in current {
        if !wanted.iter().any(|(n, _)| *n == name)
            && let Ok(name) = std::ffi::CString::new(name)
        {
            // SAFETY: a C string; unsetenv copies nothing and keeps no pointer.
            unsafe { unsetenv(name.as_ptr()) };
        }
    }
    for (name, value) in wanted {
        let (Ok(name), Ok(value)) = (std::ffi::CString::new(name), std::ffi::CString::new(value)) else { continue };
        // SAFETY: a C string; getenv's result is read at once, before any change.
        let now = unsafe { getenv(name.as_ptr()) };
        // SAFETY: non-NULL getenv() results are C strings.
        if now.is_null() || unsafe { CStr::from_ptr(now) } != value.as_c_str() {
            // SAFETY: C strings; setenv copies them. An empty or '='-holding name fails with
            // EINVAL, leaving the environment as it was.
            unsafe { setenv(name.as_ptr(), value.as_ptr(), 1) };
        }
    }
}
