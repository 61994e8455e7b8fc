//! One program for a stack of filters whose result never depends on which
//! filter the kernel would have preferred.
//!
//! The kernel runs every filter of a stack and keeps the result with the
//! highest precedence. Every filter attached costs its own allocation, JIT
//! and walk to fill the allow cache, and a call the cache cannot answer
//! runs every filter of the stack in turn.
//!
//! When, for every call, the filters that return anything but ALLOW all
//! return the same thing (usually there is at most one), the first of them
//! in any order gives the stack's result. The programs can then run one
//! after the other as a single filter: each `RET ALLOW` of a program but
//! the last becomes a jump to the next program's first instruction, which
//! loads what it compares, as every generated program does. Whether a stack
//! has that property is decided from its plans (`compile::exclusive`).

use seccompiler::{sock_filter, BpfProgram};

const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
const BPF_RET_CLASS_MASK: u16 = 0x07;
const BPF_RET_CLASS: u16 = 0x06;
const BPF_JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
/// `BPF_MAXINSNS`.
const MAX_LEN: usize = 4096;

/// Joins `programs`, in order, into one. `None` when there is only one, when
/// the result would not fit one filter, or when a program returns anything
/// but a constant (which the rewrite does not know how to follow).
pub(super) fn chain(programs: &[BpfProgram]) -> Option<BpfProgram> {
    let total: usize = programs.iter().map(Vec::len).sum();
    if programs.len() < 2 || total > MAX_LEN {
        return None;
    }
    let mut joined = Vec::with_capacity(total);
    for (i, program) in programs.iter().enumerate() {
        let last = i + 1 == programs.len();
        for (at, insn) in program.iter().enumerate() {
            if insn.code & BPF_RET_CLASS_MASK == BPF_RET_CLASS && insn.code != BPF_RET_K {
                return None;
            }
            let allows = insn.code == BPF_RET_K && insn.k == libc::SECCOMP_RET_ALLOW;
            if allows && !last {
                // To the first instruction after this program.
                let skip = u32::try_from(program.len() - at - 1).ok()?;
                joined.push(sock_filter {
                    code: BPF_JMP_JA,
                    jt: 0,
                    jf: 0,
                    k: skip,
                });
            } else {
                joined.push(insn.clone());
            }
        }
    }
    Some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
        sock_filter { code, jt, jf, k }
    }

    /// A classic BPF interpreter for what the generated programs use:
    /// absolute word loads from seccomp_data, JEQ/JSET/JGE/JGT with a
    /// constant, JA, AND with a constant, and constant returns.
    fn run(program: &[sock_filter], data: &[u32]) -> u32 {
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = &program[pc];
            pc += 1;
            let cond = |taken: bool| {
                if taken {
                    usize::from(i.jt)
                } else {
                    usize::from(i.jf)
                }
            };
            match i.code {
                0x20 => a = data[(i.k / 4) as usize],
                0x54 => a &= i.k,
                0x05 => pc += i.k as usize,
                0x15 => pc += cond(a == i.k),
                0x25 => pc += cond(a > i.k),
                0x35 => pc += cond(a >= i.k),
                0x45 => pc += cond(a & i.k != 0),
                0x06 => return i.k,
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn a_joined_stack_returns_what_the_first_non_allowing_program_returns() {
        const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
        const EPERM: u32 = libc::SECCOMP_RET_ERRNO | 1;
        const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | 38;
        // nr 1 and 2 allowed, the rest EPERM.
        let first = vec![
            insn(0x20, 0, 0, 0),
            insn(0x15, 2, 0, 1),
            insn(0x15, 1, 0, 2),
            insn(0x06, 0, 0, EPERM),
            insn(0x06, 0, 0, ALLOW),
        ];
        // nr 2 answered ENOSYS, the rest allowed.
        let second = vec![
            insn(0x20, 0, 0, 0),
            insn(0x15, 0, 1, 2),
            insn(0x06, 0, 0, ENOSYS),
            insn(0x06, 0, 0, ALLOW),
        ];
        let joined = chain(&[first.clone(), second.clone()]).expect("joins");
        assert_eq!(joined.len(), first.len() + second.len());
        for nr in 0..5 {
            let stacked = match (run(&first, &[nr]), run(&second, &[nr])) {
                (ALLOW, b) => b,
                (a, _) => a,
            };
            assert_eq!(run(&joined, &[nr]), stacked, "nr {nr}");
        }
        assert_eq!(run(&joined, &[1]), ALLOW);
        assert_eq!(run(&joined, &[2]), ENOSYS);
        assert_eq!(run(&joined, &[3]), EPERM);
    }

    #[test]
    fn programs_that_do_not_fit_or_return_a_register_stay_apart() {
        let ret_allow = || insn(0x06, 0, 0, libc::SECCOMP_RET_ALLOW);
        assert!(chain(&[vec![ret_allow()]]).is_none());
        assert!(chain(&[vec![ret_allow(); 3000], vec![ret_allow(); 1200]]).is_none());
        // BPF_RET | BPF_A
        assert!(chain(&[vec![insn(0x16, 0, 0, 0)], vec![ret_allow()]]).is_none());
    }
}
