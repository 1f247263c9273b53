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
    static mut environ: *const *const c_char;
    fn fork() -> c_int;
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

/// Makes the C environment exactly `wanted` (the environment the command would have had, entry
/// for entry: repeated names, entries without `=` and their order included), by pointing
/// `environ` at it, as a program may: the C library's setenv() and putenv() copy such an array
/// before they change it. setenv() per name could not keep a repeated name's later entries nor
/// an entry without `=`.
fn make_environment(wanted: &[&'static CStr]) {
    let mut entries: Vec<*const c_char> = wanted.iter().map(|entry| entry.as_ptr()).collect();
    entries.push(core::ptr::null());
    // SAFETY: a NULL-terminated array of C strings that live for good (the stages' strings are
    // 'static, the array is leaked); the caller starts no thread during the call, so nothing
    // reads `environ` while it changes.
    unsafe { environ = entries.leak().as_ptr() };
}
