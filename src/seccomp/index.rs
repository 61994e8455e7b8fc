//! A binary search over syscall numbers in front of a generated filter.
//!
//! seccompiler lays a filter out as a linear chain: after the architecture
//! check and the load of the syscall number, one block per syscall starts
//! with `JEQ nr`, and a number that is not the block's skips to the next
//! block. A call walks the chain until its block, and the kernel walks it
//! once per syscall number when a filter is attached, to fill its cache of
//! always-allowed calls (`seccomp_cache_prepare()` in kernel/seccomp.c). For
//! a profile of some 300 syscalls and 1,500 instructions, that walk is most
//! of the time the attach takes.
//!
//! The index is inserted right after the load of the syscall number. It
//! compares that number, which stays in the accumulator, in a binary search
//! over the stretches of consecutive numbers that go to the same place (an
//! allow-list is mostly long runs), so it grows with the number of
//! stretches, not of syscalls. A number whose block checks
//! arguments jumps straight to that block's `JEQ`. One whose block matches
//! whatever the arguments jumps to a single shared return of the match
//! action. A number with no block jumps to the chain's final return. For a
//! number with a block, the linear walk would have failed every `JEQ` before
//! it, and those comparisons and the jumps between them read nothing and
//! write nothing. So starting at the block gives the same result, and
//! starting at the final return does for a number with none.
//!
//! Entered from the index, a block's `JEQ` always matches. The walk to the
//! next block, which its false branch took, is dead. The blocks that check
//! arguments are kept, each whole, so their relative jumps keep their
//! targets. Their dead jumps out of the block are pointed at the block's own
//! last return, so every jump stays in bounds. The blocks without conditions
//! are dropped, which leaves the program shorter than the chain.
//!
//! The layout is checked, not assumed. A block must be self-contained: every
//! path from its matching `JEQ` must stay inside it and end in a return.
//! When the program does not have that shape, or would not fit the kernel's
//! limit, it is returned unchanged.

use std::collections::{HashMap, HashSet};

use seccompiler::sock_filter;

const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JMP_JA: u16 = 0x05; // BPF_JMP | BPF_JA
const BPF_JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JMP_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
/// `offsetof(struct seccomp_data, nr)`.
const NR_OFFSET: u32 = 0;
/// `BPF_MAXINSNS`.
const MAX_LEN: usize = 4096;
/// Blocks so few that the chain's own walk is as quick as an index.
const LEAF: usize = 4;

/// The chain as found: where it starts, its blocks by syscall number, and
/// the return reached when no block matches.
struct Chain {
    /// Index of the instruction that loads the syscall number.
    load: usize,
    /// Syscall number and the index of its block's `JEQ`, by number.
    blocks: Vec<(u32, usize)>,
    /// Index of the final return.
    no_match: usize,
}

/// Returns `program` with an index in front of its chain, or unchanged when
/// it does not have the expected layout or would grow too long.
pub(super) fn add(program: Vec<sock_filter>) -> Vec<sock_filter> {
    let Some(chain) = find_chain(&program) else {
        return program;
    };
    // A handful of blocks is searched as fast by the chain itself.
    if chain.blocks.len() <= LEAF {
        return program;
    }
    let Some(layout) = lay_out(&program, &chain) else {
        return program;
    };
    let index = build(&chain, &layout);
    let mut out = Vec::with_capacity(layout.len + index.len());
    out.extend_from_slice(&program[..=chain.load]);
    out.extend(index);
    for block in &layout.kept {
        out.extend(block.code.iter().cloned());
    }
    if let Some(allow) = layout.shared_match {
        out.push(insn(BPF_RET_K, 0, 0, allow));
    }
    out.push(program[chain.no_match].clone());
    if out.len() > MAX_LEN {
        return program;
    }
    out
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// A block copied behind the index.
struct Kept {
    /// Its syscall number.
    nr: u32,
    /// Its instructions, jumps that only the chain's walk took rewritten.
    code: Vec<sock_filter>,
}

/// What follows the index: the blocks that test arguments, one shared
/// return for the syscalls allowed whatever their arguments, and the
/// chain's final return.
struct Layout {
    kept: Vec<Kept>,
    /// The return of the unconditional blocks, when there are any.
    shared_match: Option<u32>,
    /// Instructions before the index, and after it.
    len: usize,
}

/// Splits the chain into its blocks. Entered from the index, a block's
/// `JEQ` always matches, so the jumps its false branch leads to (the walk
/// to the next block) are never taken: a block whose every other path
/// stays inside it and ends in a return is self-contained. A block that
/// matches whatever the arguments (seccompiler's five-instruction form) is
/// replaced by a jump to one shared return.
fn lay_out(program: &[sock_filter], chain: &Chain) -> Option<Layout> {
    let mut starts: Vec<(usize, u32)> = chain.blocks.iter().map(|&(nr, at)| (at, nr)).collect();
    starts.sort_unstable();
    let mut kept = Vec::new();
    let mut shared_match = None;
    for (n, &(start, nr)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(chain.no_match, |s| s.0);
        let block = &program[start..end];
        if let Some(allow) = unconditional(block, nr) {
            if shared_match.is_some_and(|a| a != allow) {
                return None;
            }
            shared_match = Some(allow);
            continue;
        }
        kept.push(Kept {
            nr,
            code: self_contained(block)?,
        });
    }
    let len = chain.load + 1 + kept.iter().map(|k| k.code.len()).sum::<usize>();
    Some(Layout {
        kept,
        shared_match,
        len: len + usize::from(shared_match.is_some()) + 1,
    })
}

/// The return value of a block that matches its syscall whatever the
/// arguments: `JEQ nr; JA 1; JA 2; RET match; RET mismatch`.
fn unconditional(block: &[sock_filter], nr: u32) -> Option<u32> {
    let [eq, enter, skip, matched, _] = block else {
        return None;
    };
    let shape = eq.code == BPF_JMP_JEQ_K
        && eq.k == nr
        && (eq.jt, eq.jf) == (0, 1)
        && (enter.code, enter.k) == (BPF_JMP_JA, 1)
        && (skip.code, skip.k) == (BPF_JMP_JA, 2)
        && matched.code == BPF_RET_K;
    shape.then_some(matched.k)
}

/// The block with every jump that leaves it pointed at its own last
/// instruction instead, after checking that no path from the matching
/// `JEQ` takes such a jump or runs off the block.
fn self_contained(block: &[sock_filter]) -> Option<Vec<sock_filter>> {
    let last = block.len().checked_sub(1)?;
    // Every path from the JEQ's true branch (the next instruction).
    let mut seen = vec![false; block.len()];
    let mut todo = vec![1usize];
    while let Some(at) = todo.pop() {
        let i = block.get(at)?;
        if std::mem::replace(&mut seen[at], true) {
            continue;
        }
        match i.code {
            BPF_RET_K => {}
            BPF_JMP_JA => todo.push(at + 1 + usize::try_from(i.k).ok()?),
            code if code & 0x07 == 0x05 => {
                todo.push(at + 1 + usize::from(i.jt));
                todo.push(at + 1 + usize::from(i.jf));
            }
            _ => todo.push(at + 1),
        }
    }
    let mut code = block.to_vec();
    for (at, i) in code.iter_mut().enumerate().filter(|(at, _)| !seen[*at]) {
        // Unreachable from the index: only the chain's walk came here.
        let to_last = u8::try_from(last.saturating_sub(at + 1)).ok();
        if i.code == BPF_JMP_JA && at + 1 + usize::try_from(i.k).ok()? > last {
            i.k = u32::try_from(last - at - 1).ok()?;
        } else if i.code & 0x07 == 0x05 && i.code != BPF_JMP_JA {
            if at + 1 + usize::from(i.jt) > last {
                i.jt = to_last?;
            }
            if at + 1 + usize::from(i.jf) > last {
                i.jf = to_last?;
            }
        }
    }
    Some(code)
}

/// Follows the path of a number no block tests: from each block's `JEQ`
/// along its false branch and the jumps after it, to the next block's `JEQ`,
/// and finally to a return.
fn find_chain(program: &[sock_filter]) -> Option<Chain> {
    let load = program
        .iter()
        .position(|i| i.code == BPF_LD_W_ABS && i.k == NR_OFFSET)?;
    // Nothing before the load may jump past it: the index goes right after.
    for (at, i) in program[..load].iter().enumerate() {
        if let Some(furthest) = furthest_target(at, i) {
            if furthest > load {
                return None;
            }
        }
    }
    let mut blocks = Vec::new();
    let mut at = load + 1;
    loop {
        let i = program.get(at)?;
        match i.code {
            BPF_JMP_JEQ_K => {
                blocks.push((i.k, at));
                at += 1 + usize::from(i.jf);
            }
            BPF_JMP_JA => at += 1 + usize::try_from(i.k).ok()?,
            BPF_RET_K => break,
            _ => return None,
        }
    }
    // The blocks must follow one another, each starting where the walk
    // found it, and test distinct numbers.
    if blocks.windows(2).any(|w| w[0].1 >= w[1].1) {
        return None;
    }
    blocks.sort_unstable();
    if blocks.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    Some(Chain {
        load,
        blocks,
        no_match: at,
    })
}

/// The furthest index an instruction at `at` can go to, if it jumps.
fn furthest_target(at: usize, i: &sock_filter) -> Option<usize> {
    if i.code & 0x07 != 0x05 {
        return None; // not BPF_JMP
    }
    if i.code == BPF_JMP_JA {
        return Some(at + 1 + usize::try_from(i.k).unwrap_or(usize::MAX - at - 1));
    }
    Some(at + 1 + usize::from(i.jt.max(i.jf)))
}

/// Where a leaf of the index sends a number.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The kept block of this syscall number.
    Block(u32),
    /// The shared return of the unconditional blocks.
    Match,
    /// The chain's final return.
    NoMatch,
}

/// A node of the index before jump offsets are known.
enum Op {
    /// `JGE k`: true to the next instruction, false past the next one.
    Ge(u32),
    /// An unconditional jump within the index.
    ToIndex(usize),
    /// An unconditional jump behind the index.
    To(Target),
}

/// Lays out the search over `chain.blocks` and resolves its jumps into the
/// layout that follows it.
fn build(chain: &Chain, layout: &Layout) -> Vec<sock_filter> {
    let kept: HashSet<u32> = layout.kept.iter().map(|k| k.nr).collect();
    let leaves: Vec<(u32, Target)> = chain
        .blocks
        .iter()
        .map(|&(nr, _)| {
            let target = if kept.contains(&nr) {
                Target::Block(nr)
            } else {
                Target::Match
            };
            (nr, target)
        })
        .collect();
    let mut ops = Vec::new();
    node(&ranges(&leaves), &mut ops);

    // Where each part lands once the index is in.
    let start = chain.load + 1;
    let after = start + ops.len();
    let mut at = after;
    let mut block_at = HashMap::new();
    for k in &layout.kept {
        block_at.insert(k.nr, at);
        at += k.code.len();
    }
    let match_at = at;
    let no_match_at = at + usize::from(layout.shared_match.is_some());
    ops.iter()
        .enumerate()
        .map(|(n, op)| {
            let here = start + n;
            let ja = |target: usize| {
                insn(
                    BPF_JMP_JA,
                    0,
                    0,
                    u32::try_from(target - here - 1).unwrap_or(u32::MAX),
                )
            };
            match *op {
                Op::Ge(k) => insn(BPF_JMP_JGE_K, 0, 1, k),
                Op::ToIndex(i) => ja(start + i),
                Op::To(Target::Block(nr)) => ja(block_at[&nr]),
                Op::To(Target::Match) => ja(match_at),
                Op::To(Target::NoMatch) => ja(no_match_at),
            }
        })
        .collect()
}

/// The number line cut where the target changes: (first number, target)
/// for each stretch, from 0 up. A syscall allow-list is mostly long runs of
/// consecutive numbers, so a search over stretches needs far fewer
/// comparisons than one over numbers. A kept block has a stretch of its own.
fn ranges(leaves: &[(u32, Target)]) -> Vec<(u32, Target)> {
    let mut out: Vec<(u32, Target)> = Vec::new();
    let mut push = |start: u32, target: Target| {
        let joins = out
            .last()
            .is_some_and(|&(_, last)| last == target && !matches!(target, Target::Block(_)));
        if !joins {
            out.push((start, target));
        }
    };
    let mut next = Some(0u32);
    for &(nr, target) in leaves {
        if let Some(from) = next.filter(|&from| from < nr) {
            push(from, Target::NoMatch);
        }
        push(nr, target);
        next = nr.checked_add(1);
    }
    if let Some(from) = next {
        push(from, Target::NoMatch);
    }
    out
}

/// Emits the search over `ranges` (sorted, the first starting at 0): a
/// jump to the target of a single stretch, or a split with the lower half
/// right after it.
fn node(ranges: &[(u32, Target)], ops: &mut Vec<Op>) {
    if let [(_, target)] = ranges {
        ops.push(Op::To(*target));
        return;
    }
    let (low, high) = ranges.split_at(ranges.len() / 2);
    ops.push(Op::Ge(high[0].0));
    let to_high = ops.len();
    ops.push(Op::ToIndex(0)); // patched below
    node(low, ops);
    ops[to_high] = Op::ToIndex(ops.len());
    node(high, ops);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::builtin;
    use crate::seccomp::compile::plan;

    /// A classic BPF interpreter for what seccomp filters use, over a
    /// `seccomp_data` of (nr, arch, args). Panics on anything else.
    // Splitting 64-bit arguments into their 32-bit words is the point.
    #[allow(clippy::cast_possible_truncation)]
    fn run(program: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let word = |offset: u32| -> u32 {
            match offset {
                0 => nr,
                4 => arch,
                8 | 12 => 0,
                o if (16..64).contains(&o) => {
                    let arg = args[((o - 16) / 8) as usize];
                    if (o - 16) % 8 == 0 {
                        arg as u32
                    } else {
                        (arg >> 32) as u32
                    }
                }
                o => panic!("load at {o}"),
            }
        };
        let (mut a, mut pc) = (0u32, 0usize);
        loop {
            let i = &program[pc];
            let jump = |taken: bool| pc + 1 + usize::from(if taken { i.jt } else { i.jf });
            pc = match i.code {
                0x20 => {
                    a = word(i.k);
                    pc + 1
                }
                0x54 => {
                    a &= i.k;
                    pc + 1
                }
                0x05 => pc + 1 + i.k as usize,
                0x15 => jump(a == i.k),
                0x25 => jump(a > i.k),
                0x35 => jump(a >= i.k),
                0x45 => jump(a & i.k != 0),
                0x06 => return i.k,
                code => panic!("instruction {code:#x} at {pc}"),
            };
        }
    }

    fn argument_cases() -> Vec<[u64; 6]> {
        let interesting = [
            0,
            1,
            2,
            17,          // AF_PACKET
            40,          // AF_VSOCK
            0x5412,      // TIOCSTI
            0x541c,      // TIOCLINUX
            0x1000_0000, // CLONE_NEWUSER
            0x7e02_0000, // every namespace flag
            0xffff_ffff,
            0x1_0000_5412, // TIOCSTI with high bits
            u64::MAX,
        ];
        let mut cases = Vec::new();
        for &v in &interesting {
            for position in 0..3 {
                let mut args = [0u64; 6];
                args[position] = v;
                cases.push(args);
            }
        }
        cases
    }

    #[test]
    fn indexed_filters_decide_every_call_as_the_chain_does() {
        const X86_64: u32 = 0xc000_003e;
        const I386: u32 = 0x4000_0003;
        for name in ["default", "agent"] {
            for plan in plan(&builtin(name).unwrap()).unwrap() {
                let chain = plan.into_chain().unwrap();
                let indexed = add(chain.clone());
                let numbers = (0..=480).chain([0x4000_0000, 0x4000_0001, 0x4000_0200, u32::MAX]);
                for nr in numbers {
                    for arch in [X86_64, I386] {
                        for args in argument_cases() {
                            assert_eq!(
                                run(&indexed, nr, arch, args),
                                run(&chain, nr, arch, args),
                                "{name}: nr {nr} arch {arch:#x} args {args:x?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn big_chains_get_an_index_a_short_walk_and_fewer_instructions() {
        let plans = plan(&builtin("agent").unwrap()).unwrap();
        let chain = plans.into_iter().next().unwrap().into_chain().unwrap();
        let indexed = add(chain.clone());
        assert!(
            indexed.iter().any(|i| i.code == BPF_JMP_JGE_K),
            "no index added"
        );
        // The blocks without conditions are gone: shorter, not longer.
        assert!(
            indexed.len() < chain.len(),
            "{} >= {}",
            indexed.len(),
            chain.len()
        );

        // Instructions executed for getppid (110): the chain walks most of
        // its blocks, the index a few comparisons.
        #[allow(clippy::cast_possible_truncation)] // u32 jump offsets
        let steps = |program: &[sock_filter]| {
            let (mut pc, mut n) = (0usize, 0);
            let nr = 110u32;
            let mut a = 0u32;
            loop {
                let i = &program[pc];
                n += 1;
                pc = match i.code {
                    0x20 => {
                        a = if i.k == 0 { nr } else { 0xc000_003e };
                        pc + 1
                    }
                    0x05 => pc + 1 + i.k as usize,
                    0x15 => pc + 1 + usize::from(if a == i.k { i.jt } else { i.jf }),
                    0x35 => pc + 1 + usize::from(if a >= i.k { i.jt } else { i.jf }),
                    0x06 => return n,
                    code => panic!("instruction {code:#x}"),
                };
            }
        };
        let (linear, searched) = (steps(&chain), steps(&indexed));
        assert!(
            searched * 5 < linear,
            "{searched} steps indexed, {linear} in the chain"
        );
    }

    #[test]
    fn unexpected_layouts_are_left_alone() {
        // A program whose chain holds something other than jumps between
        // the blocks' comparisons.
        let odd = vec![
            insn(BPF_LD_W_ABS, 0, 0, NR_OFFSET),
            insn(BPF_LD_W_ABS, 0, 0, 16),
            insn(BPF_RET_K, 0, 0, 0),
        ];
        assert_eq!(add(odd.clone()).len(), odd.len());
        // Too few blocks to be worth it.
        let small = vec![
            insn(BPF_LD_W_ABS, 0, 0, NR_OFFSET),
            insn(BPF_JMP_JEQ_K, 0, 1, 1),
            insn(BPF_RET_K, 0, 0, 0x7fff_0000),
            insn(BPF_RET_K, 0, 0, 0),
        ];
        assert_eq!(add(small.clone()).len(), small.len());
    }
}
