//! The assembled seccomp programs, run by a cBPF interpreter written here, over every (arch, nr)
//! pair that matters. The expected results come from the table below, written separately from
//! `src/seccomp/syscalls.tsv` (from the kernel's syscall tables), so the test is not circular.

use mkosi_sandbox::seccomp::bpf::{self, Program, SockFilter};
use mkosi_sandbox::seccomp::tables::NATIVES;

const ALLOW: u32 = 0x7fff_0000;
const ERRNO0: u32 = 0x0005_0000;
const X32: u32 = 0x4000_0000;

/// A classic-BPF interpreter for the seccomp subset (A register, absolute word loads, K jumps).
fn interpret(program: &[SockFilter], nr: u32, arch: u32) -> u32 {
    let mut pc = 0usize;
    let mut a: u32 = 0;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps <= program.len(), "jumps only go forward");
        let insn = program.get(pc).expect("pc inside the program");
        match insn.code {
            0x20 => {
                a = match insn.k {
                    0 => nr,
                    4 => arch,
                    k => panic!("unexpected load at {k}"),
                };
                pc += 1;
            }
            0x15 | 0x25 | 0x35 | 0x45 => {
                let taken = match insn.code {
                    0x15 => a == insn.k,
                    0x25 => a > insn.k,
                    0x35 => a >= insn.k,
                    _ => a & insn.k != 0,
                };
                pc += 1 + if taken { insn.jt } else { insn.jf } as usize;
            }
            0x05 => pc += 1 + insn.k as usize,
            0x06 => return insn.k,
            code => panic!("unexpected opcode {code:#x}"),
        }
    }
}

struct Expect {
    arch: u32,
    x32: bool,
    chown: &'static [u32],
    sync: &'static [u32],
}

// chown, chown32, fchown, fchown32, fchownat, lchown, lchown32 / fdatasync, fsync, msync, sync,
// sync_file_range, sync_file_range2, syncfs — where the ABI has them.
const X86_64: Expect =
    Expect { arch: 0xC000_003E, x32: true, chown: &[92, 93, 94, 260], sync: &[26, 74, 75, 162, 277, 306] };
const I386: Expect = Expect {
    arch: 0x4000_0003,
    x32: false,
    chown: &[16, 95, 182, 198, 207, 212, 298],
    sync: &[36, 118, 144, 148, 314, 344],
};
const AARCH64: Expect = Expect { arch: 0xC000_00B7, x32: false, chown: &[54, 55], sync: &[81, 82, 83, 84, 227, 267] };
const ARM: Expect = Expect {
    arch: 0x4000_0028,
    x32: false,
    chown: &[16, 95, 182, 198, 207, 212, 325],
    sync: &[36, 118, 144, 148, 341, 373],
};
const RISCV64: Expect = Expect { arch: 0xC000_00F3, x32: false, chown: &[54, 55], sync: &[81, 82, 83, 84, 227, 267] };
const PPC64LE: Expect =
    Expect { arch: 0xC000_0015, x32: false, chown: &[16, 95, 181, 289], sync: &[36, 118, 144, 148, 308, 348] };
const PPC64: Expect =
    Expect { arch: 0x8000_0015, x32: false, chown: &[16, 95, 181, 289], sync: &[36, 118, 144, 148, 308, 348] };
const PPC: Expect =
    Expect { arch: 0x0000_0014, x32: false, chown: &[16, 95, 181, 289], sync: &[36, 118, 144, 148, 308, 348] };
const S390X: Expect =
    Expect { arch: 0x8000_0016, x32: false, chown: &[198, 207, 212, 291], sync: &[36, 118, 144, 148, 307, 338] };
const S390: Expect = Expect {
    arch: 0x0000_0016,
    x32: false,
    chown: &[16, 95, 182, 198, 207, 212, 291],
    sync: &[36, 118, 144, 148, 307, 338],
};
const LOONGARCH64: Expect =
    Expect { arch: 0xC000_0102, x32: false, chown: &[54, 55], sync: &[81, 82, 83, 84, 227, 267] };

fn expected_for(native: &str) -> Vec<&'static Expect> {
    match native {
        "x86_64" => vec![&X86_64, &I386],
        "aarch64" => vec![&AARCH64, &ARM],
        "riscv64" => vec![&RISCV64],
        "powerpc64le" => vec![&PPC64LE, &PPC],
        "powerpc64" => vec![&PPC64, &PPC],
        "s390x" => vec![&S390X, &S390],
        "loongarch64" => vec![&LOONGARCH64],
        other => panic!("no expectations for {other}"),
    }
}

const ALL_ARCHES: &[u32] = &[
    0xC000_003E,
    0x4000_0003,
    0xC000_00B7,
    0x4000_0028,
    0xC000_00F3,
    0xC000_0015,
    0x8000_0015,
    0x14,
    0x8000_0016,
    0x16,
    0xC000_0102,
    0,
    0xDEAD_BEEF,
    0xFFFF_FFFF,
];

fn numbers_to_try() -> Vec<u32> {
    let mut v: Vec<u32> = (0..1100).collect();
    v.extend((0..1100).map(|n| n | X32));
    v.extend([u32::MAX /* -1 */, u32::MAX - 1, 0x7FFF_FFFF, 0x8000_0000, X32 - 1, 0xFFFF_0000 | 92]);
    v
}

#[test]
fn every_arch_and_number_gets_the_expected_action() {
    for &(native, abis) in NATIVES {
        let expected = expected_for(native);
        for (chown, sync) in [(true, true), (true, false), (false, true)] {
            let mut p = Program::new();
            bpf::assemble(abis, chown, sync, &mut p).unwrap();
            bpf::verify(p.as_slice()).unwrap();
            let mut checked = 0;
            for &arch in ALL_ARCHES {
                let abi = expected.iter().find(|e| e.arch == arch);
                for nr in numbers_to_try() {
                    let want = match abi {
                        None => ALLOW,
                        Some(e) => {
                            // x32 numbers are the x86_64 ones with bit 30 set, under the same arch.
                            let base = if e.x32 && nr & X32 != 0 && nr < 0x8000_0000 { nr & !X32 } else { nr };
                            let listed = (chown && e.chown.contains(&base)) || (sync && e.sync.contains(&base));
                            if listed { ERRNO0 } else { ALLOW }
                        }
                    };
                    assert_eq!(
                        interpret(p.as_slice(), nr, arch),
                        want,
                        "{native} chown={chown} sync={sync} arch={arch:#x} nr={nr:#x}"
                    );
                    checked += 1;
                }
            }
            assert!(checked > 30_000);
        }
    }
}

#[test]
fn i386_getpid_and_x86_64_read_are_allowed() {
    let abis = NATIVES.iter().find(|(n, _)| *n == "x86_64").unwrap().1;
    let mut p = Program::new();
    bpf::assemble(abis, true, true, &mut p).unwrap();
    assert_eq!(interpret(p.as_slice(), 20, I386.arch), ALLOW, "i386 getpid");
    assert_eq!(interpret(p.as_slice(), 0, X86_64.arch), ALLOW, "x86_64 read");
    assert_eq!(interpret(p.as_slice(), 212, I386.arch), ERRNO0, "i386 chown32");
    assert_eq!(interpret(p.as_slice(), 212, X86_64.arch), ALLOW, "212 is not chown on x86_64");
}
