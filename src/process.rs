//! The process around the sandbox: argv and environ as the kernel handed them over, the new
//! environment, `--pack-fds`, the terminal name, and the final `execvp()`.

use core::ffi::{CStr, c_char};

use rustix::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::fs::{AtFlags, CWD, Mode, OFlags};
use rustix::io::{Errno, FdFlags};

use crate::arena::{Bump, FixedVec, MAX_ENV, MAX_ENV_EDITS, MAX_FDS};
use crate::cli::Args;
use crate::error::{During, Error, Result};
use crate::path::PathBuf;
use crate::sys;

/// argv as the kernel laid it out: `argc` pointers to C strings, then NULL.
pub struct CArgs {
    argv: *const *const c_char,
    argc: usize,
}

impl CArgs {
    /// # Safety
    /// `argv` must point at `argc` valid C-string pointers followed by NULL, alive for the whole
    /// process (true of what the C runtime passes to `main`).
    pub unsafe fn new(argc: i32, argv: *const *const c_char) -> Self {
        Self { argv, argc: argc.max(0) as usize }
    }

    /// The NULL-terminated argv of the command starting at option index `index`.
    pub fn tail(&self, index: usize) -> sys::Argv {
        // SAFETY: index + 1 <= argc, so the result stays inside the array (at worst at its NULL),
        // which lives for the whole process (see `new`).
        unsafe { sys::Argv::new(self.argv.add((index + 1).min(self.argc)).cast()) }
    }
}

impl Args for CArgs {
    fn count(&self) -> usize {
        self.argc.saturating_sub(1)
    }

    fn arg(&self, index: usize) -> &'static CStr {
        // SAFETY: index < count, so the pointer is one of argv's C strings, which live as long as
        // the process (see `new`).
        unsafe { CStr::from_ptr(*self.argv.add(index + 1)) }
    }
}

/// environ as the C runtime handed it over: NULL-terminated C-string pointers (or NULL).
pub struct CEnv {
    envp: *const *const c_char,
}

impl CEnv {
    /// # Safety
    /// `envp` must be NULL or a NULL-terminated array of C strings alive for the whole process.
    pub unsafe fn new(envp: *const *const c_char) -> Self {
        Self { envp }
    }

    /// Copies the inherited environment's entries (borrowed, not copied) into `env`.
    pub fn inherit_into(&self, env: &mut FixedVec<&'static CStr, MAX_ENV>) -> Result<()> {
        if self.envp.is_null() {
            return Ok(());
        }
        let mut at = self.envp;
        loop {
            // SAFETY: `at` stays within the NULL-terminated array (we stop at the NULL).
            let entry = unsafe { *at };
            if entry.is_null() {
                return Ok(());
            }
            // SAFETY: a non-NULL entry of environ is a C string alive for the process.
            let entry = unsafe { CStr::from_ptr(entry) };
            env.push(entry).map_err(|_| Error::capacity("environment entries", MAX_ENV))?;
            // SAFETY: not past the NULL terminator, checked above.
            at = unsafe { at.add(1) };
        }
    }
}

fn name_of(entry: &CStr) -> &[u8] {
    let bytes = entry.to_bytes();
    &bytes[..bytes.iter().position(|&b| b == b'=').unwrap_or(bytes.len())]
}

/// The value of `name` in `env`.
pub fn getenv(env: &FixedVec<&'static CStr, MAX_ENV>, name: &[u8]) -> Option<&'static [u8]> {
    env.iter().find(|e| name_of(e) == name).map(|e| &e.to_bytes()[name.len() + 1..])
}

/// Sets `name=value`: an existing variable keeps its place (as in Python's `os.environ`), a new
/// one goes last; later duplicates of the name are dropped.
pub fn setenv(
    env: &mut FixedVec<&'static CStr, MAX_ENV>,
    bump: &mut Bump<'static>,
    name: &[u8],
    value: &[u8],
) -> Result<()> {
    let entry = bump.cstr(&[name, b"=", value])?;
    let mut placed = false;
    let mut i = 0;
    while i < env.len() {
        match env.get(i) {
            Some(e) if name_of(e) == name => {
                if placed {
                    remove_keep_order(env, i);
                    continue;
                }
                env.set(i, entry);
                placed = true;
            }
            _ => {}
        }
        i += 1;
    }
    if !placed {
        env.push(entry).map_err(|_| Error::capacity("environment entries", MAX_ENV))?;
    }
    Ok(())
}

pub fn unsetenv(env: &mut FixedVec<&'static CStr, MAX_ENV>, name: &[u8]) {
    let mut i = 0;
    while i < env.len() {
        match env.get(i) {
            Some(e) if name_of(e) == name => remove_keep_order(env, i),
            _ => i += 1,
        }
    }
}

fn remove_keep_order(env: &mut FixedVec<&'static CStr, MAX_ENV>, index: usize) {
    for k in index + 1..env.len() {
        if let Some(e) = env.get(k) {
            env.set(k - 1, e);
        }
    }
    env.truncate(env.len() - 1);
}

/// `--setenv` in order, then `--unsetenv` (unset wins).
pub fn apply_env_edits(
    env: &mut FixedVec<&'static CStr, MAX_ENV>,
    bump: &mut Bump<'static>,
    set: &FixedVec<(&'static CStr, &'static CStr), MAX_ENV_EDITS>,
    unset: &FixedVec<&'static CStr, MAX_ENV_EDITS>,
) -> Result<()> {
    for (name, value) in set.iter() {
        setenv(env, bump, name.to_bytes(), value.to_bytes())?;
    }
    for name in unset.iter() {
        unsetenv(env, name.to_bytes());
    }
    Ok(())
}

/// `--pack-fds`: moves the inherited descriptors to 3, 4, ... as systemd's `pack_fds()` does;
/// returns how many there are. Descriptors marked close-on-exec would vanish at exec and are
/// closed instead of packed.
pub fn pack_fds(fds: &mut FixedVec<u32, MAX_FDS>) -> Result<usize> {
    const START: i32 = 3;
    let dir =
        rustix::fs::openat(CWD, c"/proc/self/fd", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .during("open")
            .map_err(|e| e.about("--pack-fds /proc/self/fd", None, None))?;
    let own = dir.as_raw_fd();
    let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 4096];
    let mut entries = rustix::fs::RawDir::new(&dir, &mut buf);
    while let Some(entry) = entries.next() {
        let entry = entry.during("getdents64").map_err(|e| e.about("--pack-fds", None, None))?;
        let Some(fd) = parse_u32(entry.file_name().to_bytes()) else {
            continue;
        };
        if (fd as i32) < START || fd as i32 == own {
            continue;
        }
        fds.push(fd).map_err(|_| Error::capacity("descriptors for --pack-fds", MAX_FDS))?;
    }
    drop(dir);

    // Sort (insertion sort: the list comes from the kernel almost sorted) and drop the ones
    // that are close-on-exec.
    let mut list = [0i32; MAX_FDS];
    let mut n = 0;
    for fd in fds.iter() {
        let fd = fd as i32;
        // SAFETY: `fd` was listed in /proc/self/fd; borrowing it for F_GETFD is harmless even if it
        // was closed meanwhile (the call then fails with EBADF).
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        match rustix::io::fcntl_getfd(borrowed) {
            Ok(flags) if flags.contains(FdFlags::CLOEXEC) => {
                // SAFETY: we own the inherited descriptor and nothing else refers to it.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
                continue;
            }
            Ok(_) => {}
            Err(_) => continue,
        }
        let mut at = n;
        while at > 0 && list[at - 1] > fd {
            list[at] = list[at - 1];
            at -= 1;
        }
        list[at] = fd;
        n += 1;
    }
    let list = &mut list[..n];

    let mut start = 0;
    loop {
        let mut restart_from = None;
        for (i, fd) in list.iter_mut().enumerate().skip(start) {
            let want = START + i as i32;
            if *fd == want {
                continue;
            }
            let new = sys::dup_at_least(*fd, want).during("fcntl").map_err(|e| e.about("--pack-fds", None, None))?;
            // SAFETY: the old descriptor was inherited, is owned by this process and now duplicated.
            drop(unsafe { OwnedFd::from_raw_fd(*fd) });
            *fd = new;
            if new != want && restart_from.is_none() {
                restart_from = Some(i);
            }
        }
        match restart_from {
            Some(i) => start = i,
            None => break,
        }
    }
    Ok(list.len())
}

fn parse_u32(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')))
}

/// Decimal text of `n`, for LISTEN_FDS / LISTEN_PID.
pub fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

/// The host path of the terminal on stderr (`os.ttyname(2)`), or None when stderr is not a
/// terminal or its device node is not reachable under that name (then there is no console).
pub fn stderr_ttyname(bump: &mut Bump<'static>) -> Option<&'static CStr> {
    // SAFETY: fd 2 is borrowed only for these calls.
    let stderr = unsafe { rustix::stdio::stderr() };
    if !rustix::termios::isatty(stderr) {
        return None;
    }
    let mut path = PathBuf::new();
    crate::path::read_link(c"/proc/self/fd/2", &mut path).ok()?;
    let (ours, named) =
        (rustix::fs::fstat(stderr).ok()?, rustix::fs::statat(CWD, path.as_cstr(), AtFlags::empty()).ok()?);
    if ours.st_dev != named.st_dev || ours.st_ino != named.st_ino || ours.st_rdev != named.st_rdev {
        return None;
    }
    bump.cstr(&[path.as_bytes()]).ok()
}

/// `os.execvp()`: a PATH search in the new environment (default `/bin:/usr/bin`), without the
/// shell fallback for ENOEXEC. Returns the error that decides the outcome: the first one other
/// than ENOENT/ENOTDIR, else the last.
pub fn execvp(
    command: &CStr,
    argv: sys::Argv,
    env: &FixedVec<&'static CStr, MAX_ENV>,
    envp: &mut [*const u8; MAX_ENV + 1],
    path: &mut PathBuf,
) -> Errno {
    for (i, entry) in env.iter().enumerate() {
        envp[i] = entry.as_ptr().cast();
    }
    envp[env.len()] = core::ptr::null();
    let envp = &envp[..=env.len()];

    let name = command.to_bytes();
    if name.contains(&b'/') {
        return sys::execve(command, argv, envp);
    }
    let search = getenv(env, b"PATH").unwrap_or(b"/bin:/usr/bin");
    let mut saved: Option<Errno> = None;
    let mut last = Errno::NOENT;
    for dir in search.split(|&b| b == b':') {
        path.clear();
        if !dir.is_empty() {
            if path.push(dir).is_err() || path.push_component(name).is_err() {
                last = Errno::NAMETOOLONG;
                continue;
            }
        } else if path.push(name).is_err() {
            continue;
        }
        let err = sys::execve(path.as_cstr(), argv, envp);
        if err != Errno::NOENT && err != Errno::NOTDIR && saved.is_none() {
            saved = Some(err);
        }
        last = err;
    }
    saved.unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(entries: &[&str]) -> (Box<FixedVec<&'static CStr, MAX_ENV>>, Bump<'static>) {
        let mut env = Box::new(FixedVec::new());
        for e in crate::cli::tests::leak(entries) {
            env.push(e).unwrap();
        }
        (env, Bump::new(Box::leak(vec![0u8; 1 << 16].into_boxed_slice())))
    }

    fn list(env: &FixedVec<&'static CStr, MAX_ENV>) -> Vec<String> {
        env.iter().map(|e| e.to_str().unwrap().to_string()).collect()
    }

    #[test]
    fn setenv_keeps_position_and_appends_new() {
        let (mut env, mut bump) = env_of(&["A=1", "PATH=/x", "B=2", "A=dup"]);
        setenv(&mut env, &mut bump, b"A", b"new").unwrap();
        setenv(&mut env, &mut bump, b"C", b"3").unwrap();
        assert_eq!(list(&env), ["A=new", "PATH=/x", "B=2", "C=3"]);
        unsetenv(&mut env, b"PATH");
        assert_eq!(list(&env), ["A=new", "B=2", "C=3"]);
        assert_eq!(getenv(&env, b"B"), Some(&b"2"[..]));
        assert_eq!(getenv(&env, b"PATH"), None);
    }

    #[test]
    fn unset_wins_over_set() {
        let (mut env, mut bump) = env_of(&["X=1"]);
        let mut set = Box::new(FixedVec::new());
        let mut unset = Box::new(FixedVec::new());
        let names = crate::cli::tests::leak(&["Y", "v", "Y", "X"]);
        set.push((names[0], names[1])).unwrap();
        unset.push(names[2]).unwrap();
        unset.push(names[3]).unwrap();
        apply_env_edits(&mut env, &mut bump, &set, &unset).unwrap();
        assert!(list(&env).is_empty());
    }

    #[test]
    fn decimals() {
        let mut b = [0u8; 20];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(4194304, &mut b), b"4194304");
    }
}
