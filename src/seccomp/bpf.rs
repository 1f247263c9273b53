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
pub const LD_W_ABS: u16 = (BPF_LD | BPF_W | BPF_ABS) as u16;
pub const JMP_JA: u16 = (BPF_JMP | BPF_JA) as u16;
pub const JMP_JEQ_K: u16 = (BPF_JMP | BPF_JEQ | BPF_K) as u16;
pub const JMP_JGT_K: u16 = (BPF_JMP | BPF_JGT | BPF_K) as u16;
pub const JMP_JGE_K: u16 = (BPF_JMP | BPF_JGE | BPF_K) as u16;
pub const JMP_JSET_K: u16 = (BPF_JMP | BPF_JSET | BPF_K) as u16;
pub const RET_K: u16 = (BPF_RET | BPF_K) as u16;

pub use linux_raw_sys::ptrace::{SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO};
/// The x32 ABI shares AUDIT_ARCH_X86_64 and marks its numbers with this bit (linux-raw-sys has
/// `__X32_SYSCALL_BIT` only in its x86_64 tables; the assembler and its tests run everywhere).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets in `struct seccomp_data`.
pub const DATA_NR: u32 = core::mem::offset_of!(seccomp_data, nr) as u32;
pub const DATA_ARCH: u32 = core::mem::offset_of!(seccomp_data, arch) as u32;
const DATA_SIZE: u32 = core::mem::size_of::<seccomp_data>() as u32;

/// The kernel's limit.
pub const MAX_INSNS: usize = BPF_MAXINSNS as usize;
/// Our buffer: far above what any architecture's program needs (43 on x86_64).
pub const PROGRAM_CAP: usize = 256;

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

/// Assembles the filter for `abis` into `out`.
pub fn assemble(abis: &[Abi], chown: bool, sync: bool, out: &mut Program) -> Result<(), AsmError> {
    out.len = 0;
    out.emit(LD_W_ABS, 0, 0, DATA_ARCH)?;
    for abi in abis {
        let nrs = numbers(abi, chown, sync);
        let count = nrs.clone().count();
        if count == 0 {
            continue;
        }
        // Instructions after the arch check: ld nr, the checks, ret allow, ret errno.
        let rest = u8::try_from(count + 3).map_err(|_| AsmError::JumpTooFar)?;
        out.emit(JMP_JEQ_K, 0, rest, abi.arch)?;
        out.emit(LD_W_ABS, 0, 0, DATA_NR)?;
        for (i, nr) in nrs.enumerate() {
            // Skip the remaining checks and the `ret allow` to reach `ret errno`.
            let to_errno = u8::try_from(count - 1 - i + 1).map_err(|_| AsmError::JumpTooFar)?;
            out.emit(JMP_JEQ_K, to_errno, 0, nr)?;
        }
        out.emit(RET_K, 0, 0, SECCOMP_RET_ALLOW)?;
        out.emit(RET_K, 0, 0, SECCOMP_RET_ERRNO)?;
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
        let abi = Abi { name: "big", arch: 1, x32: false, chown: &MANY, sync: &[] };
        let mut p = Program::new();
        assert_eq!(assemble(&[abi], true, false, &mut p), Err(AsmError::JumpTooFar));
    }
}
