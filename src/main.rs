//! The executable: the C runtime's `main` hands argv and environ to [`mkosi_sandbox::run`], with
//! the one static instance of the stages' storage. No std runtime, no heap: start-up is musl's
//! crt and nothing else. The C entry point is a boundary: `unsafe` is allowed here.

// Nothing here is built for `cargo test` (which would bring std's own panic handler).
#![cfg(not(test))]
#![no_std]
#![no_main]

use core::ffi::c_char;

use mkosi_sandbox::Storage;
use mkosi_sandbox::sys::Entry;
use mkosi_sandbox::sys::args::{CArgs, CEnv};

static mut STORAGE: Storage = Storage::new();

#[unsafe(no_mangle)]
extern "C" fn main(argc: i32, argv: *const *const c_char, envp: *const *const c_char) -> i32 {
    // SAFETY: `main` runs once, single-threaded; this is the only reference ever made to STORAGE.
    let storage = unsafe { &mut *core::ptr::addr_of_mut!(STORAGE) };
    // SAFETY: argv comes from the C runtime: argc C strings, NULL-terminated, alive until exit.
    let args = unsafe { CArgs::new(argc, argv) };
    // SAFETY: envp comes from the C runtime: NULL-terminated C strings alive until exit.
    let environ = unsafe { CEnv::new(envp) };
    // SAFETY: this is the program's entry: one thread (nothing here starts another), and every
    // descriptor from 3 up was inherited, none is owned yet.
    let entry = unsafe { Entry::claim() };
    mkosi_sandbox::run(&args, &environ, entry, storage)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Unreachable by design (no unwrap, no indexing that can fail on input); if it ever happens,
    // fail loudly with one line and never run the command.
    let _ = rustix::io::write(mkosi_sandbox::sys::stderr(), b"mkosi-sandbox: internal error\n");
    mkosi_sandbox::sys::exit_group(70)
}

// The test profile builds this binary with panic=unwind against a panic=abort-less core; the
// symbol is never called because the panic handler above never unwinds.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

// No std: link musl's libc (its crt calls `main`) explicitly.
#[link(name = "c")]
unsafe extern "C" {}
