//! A small classic-BPF assembler for seccomp, and a verifier that mirrors the kernel's checks.
//!
//! The program shape keeps every jump short and forward:
//!
//! ```text
//!     ld  [arch]
//!   per ABI:
//!     jeq #AUDIT_ARCH, 0, <skip block>
//!     ld  [nr]
//!     jeq #nr1, <errno>, 0        ; one per suppressed number (x32 forms too)
//!     ...
//!     ret #ALLOW
//!     ret #ERRNO(0)              ; success without effect
//!   finally:
//!     ret #ALLOW                 ; unknown architectures are allowed, never killed
//! ```

use super::Abi;
pub use crate::sys::SockFilter;

use linux_raw_sys::ptrace::{
    BPF_ABS, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_MAXINSNS, BPF_RET, BPF_W,
    seccomp_data,
};

/// The opcodes the assembler emits and the verifier accepts (class | size/op | mode/source).
pub(crate) const LD_W_ABS: u16 = (BPF_LD | BPF_W | BPF_ABS) as u16;
pub(crate) const JMP_JA: u16 = (BPF_JMP | BPF_JA) as u16;
pub(crate) const JMP_JEQ_K: u16 = (BPF_JMP | BPF_JEQ | BPF_K) as u16;
pub(crate) const JMP_JGT_K: u16 = (BPF_JMP | BPF_JGT | BPF_K) as u16;
pub(crate) const JMP_JGE_K: u16 = (BPF_JMP | BPF_JGE | BPF_K) as u16;
pub(crate) const JMP_JSET_K: u16 = (BPF_JMP | BPF_JSET | BPF_K) as u16;
pub(crate) const RET_K: u16 = (BPF_RET | BPF_K) as u16;

pub(crate) use linux_raw_sys::ptrace::{SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO};
/// The x32 ABI shares AUDIT_ARCH_X86_64 and marks its numbers with this bit (linux-raw-sys has
/// `__X32_SYSCALL_BIT` only in its x86_64 tables; the assembler and its tests run everywhere).
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets in `struct seccomp_data`.
pub(crate) const DATA_NR: u32 = core::mem::offset_of!(seccomp_data, nr) as u32;
pub(crate) const DATA_ARCH: u32 = core::mem::offset_of!(seccomp_data, arch) as u32;
const DATA_ARGS: u32 = core::mem::offset_of!(seccomp_data, args) as u32;
const DATA_SIZE: u32 = core::mem::size_of::<seccomp_data>() as u32;
/// The low 32 bits of syscall argument `i` (each of `args` is a u64).
pub(crate) const fn data_arg_low(i: u32) -> u32 {
    DATA_ARGS + 8 * i + if cfg!(target_endian = "big") { 4 } else { 0 }
}
/// `(uid_t)-1`: "leave unchanged", always allowed.
const UNCHANGED: u32 = u32::MAX;

/// The kernel's limit.
pub(crate) const MAX_INSNS: usize = BPF_MAXINSNS as usize;
/// Our buffer: far above what any architecture's plain program needs (43 on x86_64); the id
/// checks of [`assemble_mapped`] take 4 instructions per range and ABI.
pub(crate) const PROGRAM_CAP: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsmError {
    /// The program does not fit the buffer.
    TooLong,
    /// A block is too long for an 8-bit jump offset.
    JumpTooFar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    Empty,
    TooLong,
    BadOpcode { pc: usize },
    BadLoad { pc: usize },
    JumpOutOfRange { pc: usize },
    NoFinalReturn,
}

/// A program in a fixed buffer.
pub struct Program {
    insns: [SockFilter; PROGRAM_CAP],
    len: usize,
}

impl Program {
    pub const fn new() -> Self {
        Self { insns: [SockFilter { code: 0, jt: 0, jf: 0, k: 0 }; PROGRAM_CAP], len: 0 }
    }

    pub fn as_slice(&self) -> &[SockFilter] {
        &self.insns[..self.len]
    }

    fn emit(&mut self, code: u16, jt: u8, jf: u8, k: u32) -> Result<(), AsmError> {
        let slot = self.insns.get_mut(self.len).ok_or(AsmError::TooLong)?;
        *slot = SockFilter { code, jt, jf, k };
        self.len += 1;
        Ok(())
    }

    /// A conditional jump to `label` (on the branch the label was made for), falling through on
    /// the other. Until the label is bound, the branch field links to the label's previous jump
    /// (0: none): a link too long for 8 bits means a jump too far, known at once.
    fn jump(&mut self, code: u16, k: u32, label: &mut Label) -> Result<(), AsmError> {
        let link = match label.last {
            Some(previous) => u8::try_from(self.len - previous).map_err(|_| AsmError::JumpTooFar)?,
            None => 0,
        };
        label.last = Some(self.len);
        if label.on_true { self.emit(code, link, 0, k) } else { self.emit(code, 0, link, k) }
    }

    /// Makes every jump to `label` land on the next instruction emitted.
    fn bind(&mut self, label: Label) -> Result<(), AsmError> {
        let mut next = label.last;
        while let Some(at) = next {
            let offset = u8::try_from(self.len - at - 1).map_err(|_| AsmError::JumpTooFar)?;
            let insn = &mut self.insns[at];
            let branch = if label.on_true { &mut insn.jt } else { &mut insn.jf };
            let link = core::mem::replace(branch, offset);
            next = at.checked_sub(usize::from(link)).filter(|_| link != 0);
        }
        Ok(())
    }
}

/// A place in the program that jumps go to before it is emitted: their offsets are counted when
/// it is bound, never by hand.
struct Label {
    /// The last jump to it, whose branch field links to the one before.
    last: Option<usize>,
    /// Which branch goes there: `jt` (the test holds) or `jf`.
    on_true: bool,
}

impl Label {
    const fn if_true() -> Self {
        Self { last: None, on_true: true }
    }

    const fn if_false() -> Self {
        Self { last: None, on_true: false }
    }
}

impl Default for Program {
    fn default() -> Self {
        Self::new()
    }
}

/// The numbers an ABI's block suppresses.
fn numbers<'a>(abi: &'a Abi, chown: bool, sync: bool) -> impl Iterator<Item = u32> + Clone + 'a {
    let groups = [(chown, abi.chown), (sync, abi.sync)];
    let native = groups.into_iter().filter(|(on, _)| *on).flat_map(|(_, list)| list.iter().copied());
    let x32 = native.clone().filter(move |_| abi.x32).map(|nr| nr | X32_SYSCALL_BIT);
    native.chain(x32)
}

/// The ids mapped inside a user namespace with subordinate ranges, as inclusive (first, last)
/// pairs: chown calls that only use these ids (or -1) can really happen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MappedIds<'a> {
    pub(crate) uids: &'a [(u32, u32)],
    pub(crate) gids: &'a [(u32, u32)],
}

/// Where a chown-group syscall takes its uid and gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdArgs {
    /// chown, fchown, lchown and their 32 forms: (path or fd, uid, gid).
    Second,
    /// fchownat: (dirfd, path, uid, gid, flags).
    Third,
    /// The 16-bit legacy forms (where a `32` form exists beside them): ids are not checked.
    Legacy,
}

fn id_args(uid_arg: u8) -> IdArgs {
    match uid_arg {
        1 => IdArgs::Second,
        2 => IdArgs::Third,
        _ => IdArgs::Legacy,
    }
}

/// Calls `each` with every number of `abi`'s block with id checks and where it goes: sync and
/// 16-bit chowns to ERRNO, the others to their check (x32 forms too), in that order.
fn routes(abi: &Abi, sync: bool, mut each: impl FnMut(u32, IdArgs) -> Result<(), AsmError>) -> Result<(), AsmError> {
    for pass in [IdArgs::Legacy, IdArgs::Second, IdArgs::Third] {
        let syncs = if sync && pass == IdArgs::Legacy { abi.sync } else { &[] };
        let chowns = abi.chown.iter().zip(abi.chown_uid_arg).filter(|(_, arg)| id_args(**arg) == pass);
        for nr in syncs.iter().chain(chowns.map(|(nr, _)| nr)) {
            each(*nr, pass)?;
            if abi.x32 {
                each(nr | X32_SYSCALL_BIT, pass)?;
            }
        }
    }
    Ok(())
}

/// Like [`assemble`] with `chown`, except that a chown whose uid and gid are both mapped (or
/// -1) is allowed to happen: with subordinate ranges, a real chown wins where it can work, and
/// only the ones that would fail (EINVAL for an unmapped id) become a no-op.
pub(crate) fn assemble_mapped(abis: &[Abi], sync: bool, ids: MappedIds<'_>, out: &mut Program) -> Result<(), AsmError> {
    out.len = 0;
    out.emit(LD_W_ABS, 0, 0, DATA_ARCH)?;
    for abi in abis {
        let mut next_arch = Label::if_false();
        out.jump(JMP_JEQ_K, abi.arch, &mut next_arch)?;
        out.emit(LD_W_ABS, 0, 0, DATA_NR)?;
        let (mut to_errno, mut to_check, mut to_third_check) = (Label::if_true(), Label::if_true(), Label::if_true());
        routes(abi, sync, |nr, kind| {
            let label = match kind {
                IdArgs::Legacy => &mut to_errno,
                IdArgs::Second => &mut to_check,
                IdArgs::Third => &mut to_third_check,
            };
            out.jump(JMP_JEQ_K, nr, label)
        })?;
        out.emit(RET_K, 0, 0, SECCOMP_RET_ALLOW)?;
        out.bind(to_errno)?;
        out.emit(RET_K, 0, 0, SECCOMP_RET_ERRNO)?;
        out.bind(to_check)?;
        emit_id_checks(out, 1, ids)?;
        if to_third_check.last.is_some() {
            out.bind(to_third_check)?;
            emit_id_checks(out, 2, ids)?;
        }
        out.bind(next_arch)?;
    }
    out.emit(RET_K, 0, 0, SECCOMP_RET_ALLOW)
}

/// Allows the call when `args[first]` is a mapped uid (or -1) and `args[first + 1]` a mapped gid
/// (or -1); returns ERRNO(0) otherwise.
fn emit_id_checks(out: &mut Program, first: u32, ids: MappedIds<'_>) -> Result<(), AsmError> {
    for (arg, ranges) in [(first, ids.uids), (first + 1, ids.gids)] {
        out.emit(LD_W_ABS, 0, 0, data_arg_low(arg))?;
        let mut passed = Label::if_true();
        out.jump(JMP_JEQ_K, UNCHANGED, &mut passed)?;
        for &(first, last) in ranges {
            // Above the range: skip its lower bound's test.
            out.emit(JMP_JGT_K, 1, 0, last)?;
            out.jump(JMP_JGE_K, first, &mut passed)?;
        }
        out.emit(RET_K, 0, 0, SECCOMP_RET_ERRNO)?;
        out.bind(passed)?;
    }
    out.emit(RET_K, 0, 0, SECCOMP_RET_ALLOW)
}

/// Assembles the filter for `abis` into `out`.
pub fn assemble(abis: &[Abi], chown: bool, sync: bool, out: &mut Program) -> Result<(), AsmError> {
    out.len = 0;
    out.emit(LD_W_ABS, 0, 0, DATA_ARCH)?;
    for abi in abis {
        let mut nrs = numbers(abi, chown, sync).peekable();
        if nrs.peek().is_none() {
            continue;
        }
        let mut next_arch = Label::if_false();
        out.jump(JMP_JEQ_K, abi.arch, &mut next_arch)?;
        out.emit(LD_W_ABS, 0, 0, DATA_NR)?;
        let mut to_errno = Label::if_true();
        for nr in nrs {
            out.jump(JMP_JEQ_K, nr, &mut to_errno)?;
        }
        out.emit(RET_K, 0, 0, SECCOMP_RET_ALLOW)?;
        out.bind(to_errno)?;
        out.emit(RET_K, 0, 0, SECCOMP_RET_ERRNO)?;
        out.bind(next_arch)?;
    }
    out.emit(RET_K, 0, 0, SECCOMP_RET_ALLOW)
}

/// The checks of the kernel's `bpf_check_classic()` and `seccomp_check_filter()` for the
/// instructions we use: length, known opcodes, aligned loads inside `seccomp_data`, jumps that
/// stay inside the program (they are forward by construction of the encoding), final RET.
pub fn verify(program: &[SockFilter]) -> Result<(), VerifyError> {
    if program.is_empty() {
        return Err(VerifyError::Empty);
    }
    if program.len() > MAX_INSNS {
        return Err(VerifyError::TooLong);
    }
    let len = program.len();
    for (pc, insn) in program.iter().enumerate() {
        match insn.code {
            LD_W_ABS => {
                if insn.k % 4 != 0 || insn.k >= DATA_SIZE {
                    return Err(VerifyError::BadLoad { pc });
                }
            }
            JMP_JA => {
                if (insn.k as usize) >= len - pc - 1 {
                    return Err(VerifyError::JumpOutOfRange { pc });
                }
            }
            JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K | JMP_JSET_K => {
                if pc + 1 + insn.jt as usize >= len || pc + 1 + insn.jf as usize >= len {
                    return Err(VerifyError::JumpOutOfRange { pc });
                }
            }
            RET_K => {}
            _ => return Err(VerifyError::BadOpcode { pc }),
        }
    }
    if program[len - 1].code != RET_K {
        return Err(VerifyError::NoFinalReturn);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::tables::*;

    fn program(abis: &[Abi], chown: bool, sync: bool) -> Vec<SockFilter> {
        let mut p = Program::new();
        assemble(abis, chown, sync, &mut p).unwrap();
        verify(p.as_slice()).unwrap();
        p.as_slice().to_vec()
    }

    const fn i(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
        SockFilter { code, jt, jf, k }
    }

    #[test]
    fn labels_patch_every_jump_to_them() {
        let mut p = Program::new();
        let (mut yes, mut no) = (Label::if_true(), Label::if_false());
        p.jump(JMP_JEQ_K, 1, &mut yes).unwrap();
        p.jump(JMP_JEQ_K, 2, &mut no).unwrap();
        p.jump(JMP_JEQ_K, 3, &mut yes).unwrap();
        p.emit(RET_K, 0, 0, SECCOMP_RET_ALLOW).unwrap();
        p.bind(yes).unwrap();
        p.emit(RET_K, 0, 0, SECCOMP_RET_ERRNO).unwrap();
        p.bind(no).unwrap();
        p.emit(RET_K, 0, 0, SECCOMP_RET_ALLOW).unwrap();
        let want = [
            i(JMP_JEQ_K, 3, 0, 1),
            i(JMP_JEQ_K, 0, 3, 2),
            i(JMP_JEQ_K, 1, 0, 3),
            i(RET_K, 0, 0, SECCOMP_RET_ALLOW),
            i(RET_K, 0, 0, SECCOMP_RET_ERRNO),
            i(RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ];
        assert_eq!(p.as_slice(), want);
    }

    #[test]
    fn a_jump_past_255_instructions_is_refused() {
        let mut p = Program::new();
        let mut far = Label::if_true();
        p.jump(JMP_JEQ_K, 0, &mut far).unwrap();
        for _ in 0..255 {
            p.emit(LD_W_ABS, 0, 0, DATA_NR).unwrap();
        }
        // 256 apart: the second jump's link already says the first cannot reach.
        assert_eq!(p.jump(JMP_JEQ_K, 0, &mut far), Err(AsmError::JumpTooFar));
        let mut single = Label::if_true();
        p.jump(JMP_JEQ_K, 0, &mut single).unwrap();
        for _ in 0..256 {
            p.emit(LD_W_ABS, 0, 0, DATA_NR).unwrap();
        }
        assert_eq!(p.bind(single), Err(AsmError::JumpTooFar));
    }

    #[test]
    fn constants_are_the_kernels() {
        assert_eq!(
            (LD_W_ABS, JMP_JA, JMP_JEQ_K, JMP_JGT_K, JMP_JGE_K, JMP_JSET_K, RET_K),
            (0x20, 0x05, 0x15, 0x25, 0x35, 0x45, 0x06)
        );
        assert_eq!((DATA_NR, DATA_ARCH, DATA_SIZE), (0, 4, 64));
        assert_eq!((SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO), (0x7fff_0000, 0x0005_0000));
    }

    #[test]
    fn instruction_counts_per_native_arch() {
        let counts: Vec<(&str, usize)> =
            NATIVES.iter().map(|(name, abis)| (*name, program(abis, true, true).len())).collect();
        assert_eq!(
            counts,
            [
                ("x86_64", 43),
                ("aarch64", 31),
                ("riscv64", 14),
                ("powerpc64le", 30),
                ("powerpc64", 30),
                ("s390x", 33),
                ("loongarch64", 14)
            ]
        );
    }

    #[test]
    fn golden_aarch64() {
        let p = program(&[AARCH64, ARM], true, true);
        let errno = SECCOMP_RET_ERRNO;
        let allow = SECCOMP_RET_ALLOW;
        let want = [
            i(LD_W_ABS, 0, 0, 4),
            i(JMP_JEQ_K, 0, 11, 0xC00000B7),
            i(LD_W_ABS, 0, 0, 0),
            i(JMP_JEQ_K, 8, 0, 55),
            i(JMP_JEQ_K, 7, 0, 54),
            i(JMP_JEQ_K, 6, 0, 83),
            i(JMP_JEQ_K, 5, 0, 82),
            i(JMP_JEQ_K, 4, 0, 227),
            i(JMP_JEQ_K, 3, 0, 81),
            i(JMP_JEQ_K, 2, 0, 84),
            i(JMP_JEQ_K, 1, 0, 267),
            i(RET_K, 0, 0, allow),
            i(RET_K, 0, 0, errno),
            i(JMP_JEQ_K, 0, 16, 0x40000028),
            i(LD_W_ABS, 0, 0, 0),
            i(JMP_JEQ_K, 13, 0, 182),
            i(JMP_JEQ_K, 12, 0, 212),
            i(JMP_JEQ_K, 11, 0, 95),
            i(JMP_JEQ_K, 10, 0, 207),
            i(JMP_JEQ_K, 9, 0, 325),
            i(JMP_JEQ_K, 8, 0, 16),
            i(JMP_JEQ_K, 7, 0, 198),
            i(JMP_JEQ_K, 6, 0, 148),
            i(JMP_JEQ_K, 5, 0, 118),
            i(JMP_JEQ_K, 4, 0, 144),
            i(JMP_JEQ_K, 3, 0, 36),
            i(JMP_JEQ_K, 2, 0, 341),
            i(JMP_JEQ_K, 1, 0, 373),
            i(RET_K, 0, 0, allow),
            i(RET_K, 0, 0, errno),
            i(RET_K, 0, 0, allow),
        ];
        assert_eq!(p, want);
    }

    #[test]
    fn golden_x86_64() {
        let p = program(&[X86_64, I386], true, false);
        let numbers: Vec<u32> = p.iter().filter(|x| x.code == JMP_JEQ_K).map(|x| x.k).collect();
        assert_eq!(
            numbers,
            [
                0xC000003E,
                92,
                93,
                260,
                94,
                92 | X32_SYSCALL_BIT,
                93 | X32_SYSCALL_BIT,
                260 | X32_SYSCALL_BIT,
                94 | X32_SYSCALL_BIT,
                0x40000003,
                182,
                212,
                95,
                207,
                298,
                16,
                198
            ]
        );
        assert_eq!(p[0], i(LD_W_ABS, 0, 0, 4));
        assert_eq!(p[1], i(JMP_JEQ_K, 0, 11, 0xC000003E));
        assert_eq!(p[3], i(JMP_JEQ_K, 8, 0, 92));
        assert_eq!(p.len(), 1 + 12 + 11 + 1);
    }

    #[test]
    fn only_the_asked_groups() {
        let p = program(&[AARCH64], false, true);
        assert!(!p.iter().any(|x| x.code == JMP_JEQ_K && x.k == 55));
        assert!(p.iter().any(|x| x.code == JMP_JEQ_K && x.k == 82));
        assert_eq!(program(&[AARCH64], false, false).len(), 2);
    }

    #[test]
    fn verifier_rejects_what_the_kernel_rejects() {
        let ret = i(RET_K, 0, 0, SECCOMP_RET_ALLOW);
        assert_eq!(verify(&[]), Err(VerifyError::Empty));
        assert_eq!(verify(&vec![ret; MAX_INSNS + 1]), Err(VerifyError::TooLong));
        assert_eq!(verify(&[i(LD_W_ABS, 0, 0, 4)]), Err(VerifyError::NoFinalReturn));
        assert_eq!(verify(&[i(LD_W_ABS, 0, 0, 2), ret]), Err(VerifyError::BadLoad { pc: 0 }));
        assert_eq!(verify(&[i(LD_W_ABS, 0, 0, 64), ret]), Err(VerifyError::BadLoad { pc: 0 }));
        assert_eq!(verify(&[i(JMP_JEQ_K, 1, 0, 0), ret]), Err(VerifyError::JumpOutOfRange { pc: 0 }));
        assert_eq!(verify(&[i(JMP_JA, 0, 0, 1), ret]), Err(VerifyError::JumpOutOfRange { pc: 0 }));
        assert_eq!(verify(&[i(0x07, 0, 0, 0), ret]), Err(VerifyError::BadOpcode { pc: 0 }));
        assert_eq!(verify(&[i(JMP_JEQ_K, 0, 0, 0), ret]), Ok(()));
    }

    /// Runs `p` on (arch, nr, args) with the subset of cBPF the assembler emits.
    fn run(p: &[SockFilter], arch: u32, nr: u32, args: [u32; 6]) -> u32 {
        let mut pc = 0;
        let mut a = 0u32;
        loop {
            let insn = p[pc];
            pc += 1;
            match insn.code {
                LD_W_ABS => {
                    a = match insn.k {
                        DATA_NR => nr,
                        DATA_ARCH => arch,
                        k => args[((k - data_arg_low(0)) / 8) as usize],
                    }
                }
                JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K => {
                    let taken = match insn.code {
                        JMP_JEQ_K => a == insn.k,
                        JMP_JGT_K => a > insn.k,
                        _ => a >= insn.k,
                    };
                    pc += if taken { insn.jt } else { insn.jf } as usize;
                }
                RET_K => return insn.k,
                code => panic!("opcode {code:#x}"),
            }
        }
    }

    #[test]
    fn mapped_ids_let_real_chowns_through() {
        // --become-root --map-auto for uid 1001 with 100000:65536 (inside 0..65535), and gids
        // with a hole (0..10, 20).
        let ids = MappedIds { uids: &[(0, 65535)], gids: &[(0, 10), (20, 20)] };
        let mut prog = Program::new();
        assemble_mapped(&[X86_64, I386], true, ids, &mut prog).unwrap();
        verify(prog.as_slice()).unwrap();
        let p = prog.as_slice();
        let (errno, allow) = (SECCOMP_RET_ERRNO, SECCOMP_RET_ALLOW);
        let x86 = X86_64.arch;
        let m = u32::MAX;
        // chown(path, uid, gid) = 92, fchown = 93, lchown = 94: ids in args 1 and 2.
        for nr in [92, 93, 94, 92 | X32_SYSCALL_BIT] {
            assert_eq!(run(p, x86, nr, [0, 1000, 20, 0, 0, 0]), allow, "{nr}");
            assert_eq!(run(p, x86, nr, [0, 65535, 0, 0, 0, 0]), allow);
            assert_eq!(run(p, x86, nr, [0, m, 5, 0, 0, 0]), allow, "-1 leaves the uid unchanged");
            assert_eq!(run(p, x86, nr, [0, 7, m, 0, 0, 0]), allow);
            assert_eq!(run(p, x86, nr, [0, 65536, 0, 0, 0, 0]), errno, "unmapped uid");
            assert_eq!(run(p, x86, nr, [0, 0, 15, 0, 0, 0]), errno, "gid in the hole");
            assert_eq!(run(p, x86, nr, [0, 0, 21, 0, 0, 0]), errno);
        }
        // fchownat(dirfd, path, uid, gid, flags) = 260: ids in args 2 and 3.
        assert_eq!(run(p, x86, 260, [0, 0, 1000, 20, 0, 0]), allow);
        assert_eq!(run(p, x86, 260, [0, 0, 1000, 11, 0, 0]), errno);
        assert_eq!(run(p, x86, 260, [0, 0, 70000, 0, 0, 0]), errno);
        assert_eq!(run(p, x86, 260 | X32_SYSCALL_BIT, [0, 0, 70000, 0, 0, 0]), errno);
        // sync and everything else as before.
        assert_eq!(run(p, x86, 74, [0; 6]), errno);
        assert_eq!(run(p, x86, 0, [0; 6]), allow);
        // i386: chown32 (212) is checked, the 16-bit chown (182) always suppressed.
        let i386 = I386.arch;
        assert_eq!(run(p, i386, 212, [0, 1000, 0, 0, 0, 0]), allow);
        assert_eq!(run(p, i386, 212, [0, 70000, 0, 0, 0, 0]), errno);
        assert_eq!(run(p, i386, 182, [0, 1000, 0, 0, 0, 0]), errno);
        assert_eq!(run(p, i386, 298, [0, 0, 3, 4, 0, 0]), allow);
        assert_eq!(run(p, 0x1234, 92, [0, 70000, 0, 0, 0, 0]), allow, "unknown arch");
        // Too many ranges for 8-bit jumps: refused, not miscompiled.
        let many: Vec<(u32, u32)> = (0..200).map(|i| (2 * i, 2 * i)).collect();
        let ids = MappedIds { uids: &many, gids: &[(0, 0)] };
        assert_eq!(assemble_mapped(&[X86_64], false, ids, &mut prog), Err(AsmError::JumpTooFar));
    }

    #[test]
    fn overlong_blocks_are_refused_not_miscompiled() {
        static MANY: [u32; 300] = {
            let mut a = [0u32; 300];
            let mut k = 0;
            while k < 300 {
                a[k] = k as u32;
                k += 1;
            }
            a
        };
        let abi = Abi { name: "big", arch: 1, x32: false, chown: &MANY, sync: &[], chown_uid_arg: &[] };
        let mut p = Program::new();
        assert_eq!(assemble(&[abi], true, false, &mut p), Err(AsmError::JumpTooFar));
    }
}
