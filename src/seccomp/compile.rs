//! OCI seccomp profile to a stack of classic BPF programs.
//!
//! seccompiler builds one program per match action, so a profile becomes a
//! stack of filters. The kernel runs every filter of the stack and keeps the
//! result with the highest precedence (KILL_PROCESS, KILL_THREAD, TRAP, ERRNO,
//! USER_NOTIF, TRACE, LOG, ALLOW); between two results of the same action it
//! keeps the one from the most recently installed filter
//! (`seccomp_run_filters()` in kernel/seccomp.c). The stack is laid out so that
//! this precedence gives OCI semantics:
//!
//! - the *default filter* returns ALLOW for every call that any rule matches,
//!   whatever the rule's action, and the profile's default action for the
//!   rest. It is left out when the default action is ALLOW.
//! - one *action filter* per distinct non-ALLOW action (ERRNO values and TRACE
//!   data count as distinct) returns that action for calls its rules match and
//!   ALLOW otherwise.
//!
//! A call that no rule matches gets the default action from the default filter
//! and ALLOW from every action filter. A call that rules match gets ALLOW from
//! the default filter, so only the matching rules decide: if they disagree,
//! the most restrictive action wins; between two ERRNO (or TRACE) rules the
//! later filter wins, and action filters are installed in the order their
//! action first appears in the profile.
//!
//! Because later filters are installed under the earlier ones, the `seccomp(2)`
//! call that installs them must get through. The one filter that can deny it
//! goes last; a profile where two could is rejected.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::SeccompError;

/// The largest errno the kernel passes through unchanged (`MAX_ERRNO`).
const MAX_ERRNO: u32 = 4095;

/// Syscall argument indexes run from 0 to 5.
const MAX_ARG_INDEX: usize = 5;

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: TargetArch = TargetArch::aarch64;
#[cfg(target_arch = "riscv64")]
const NATIVE_ARCH: TargetArch = TargetArch::riscv64;

/// Rules for one syscall number: `None` matches the syscall whatever its
/// arguments, `Some` matches when any of the rules does.
type Chain = Option<Vec<SeccompRule>>;

/// The rules of one filter, by syscall number.
type RuleMap = BTreeMap<i64, Chain>;

/// One filter of the stack, before code generation.
#[derive(Debug, Clone)]
pub(super) struct FilterPlan {
    /// Returned for matching calls.
    pub(super) on_match: SeccompAction,
    /// Returned for the other calls.
    pub(super) on_mismatch: SeccompAction,
    /// The calls that match.
    pub(super) rules: RuleMap,
}

impl FilterPlan {
    /// Whether this filter can stop a `seccomp(2)` call.
    fn may_deny_seccomp(&self) -> bool {
        let nr = i64::from(syscalls::Sysno::seccomp.id());
        match self.rules.get(&nr) {
            // Matched whatever the arguments.
            Some(None) => !lets_through(&self.on_match),
            // Matched for some arguments only.
            Some(Some(_)) => !lets_through(&self.on_match) || !lets_through(&self.on_mismatch),
            None => !lets_through(&self.on_mismatch),
        }
    }

    /// Generates the BPF program: seccompiler's chain with an index in
    /// front (`index`).
    fn into_program(self) -> Result<BpfProgram, SeccompError> {
        self.into_chain().map(super::index::add)
    }

    /// Generates seccompiler's program: one block per syscall, in a chain.
    pub(super) fn into_chain(self) -> Result<BpfProgram, SeccompError> {
        let rules = self
            .rules
            .into_iter()
            .map(|(nr, chain)| (nr, chain.unwrap_or_default()))
            .collect();
        let filter = SeccompFilter::new(rules, self.on_mismatch, self.on_match, NATIVE_ARCH)
            .map_err(|source| SeccompError::Generate { source })?;
        BpfProgram::try_from(filter).map_err(|source| SeccompError::Generate { source })
    }
}

/// Turns `profile` into filter plans, in installation order.
pub(super) fn plan(profile: &LinuxSeccomp) -> Result<Vec<FilterPlan>, SeccompError> {
    let default_action = action(
        profile.default_action(),
        profile.default_errno_ret(),
        "the default action",
    )?;
    let mut any_rule = RuleMap::new();
    let mut by_action: Vec<(SeccompAction, RuleMap)> = Vec::new();

    for (position, syscall) in profile.syscalls().iter().flatten().enumerate() {
        let what = describe(position, syscall.names());
        let on_match = action(syscall.action(), syscall.errno_ret(), &what)?;
        let chain = conditions(syscall.args().as_deref().unwrap_or_default(), &what)?;

        for name in syscall.names() {
            let Some(nr) = resolve(name) else {
                tracing::debug!(syscall = %name, rule = position, "syscall unknown on this architecture, skipped");
                continue;
            };
            if on_match == SeccompAction::Allow && default_action == SeccompAction::Allow {
                continue;
            }
            add(&mut any_rule, nr, &chain);
            if on_match != SeccompAction::Allow {
                let index = match by_action.iter().position(|(a, _)| *a == on_match) {
                    Some(index) => index,
                    None => {
                        by_action.push((on_match.clone(), RuleMap::new()));
                        by_action.len() - 1
                    }
                };
                add(&mut by_action[index].1, nr, &chain);
            }
        }
    }

    let mut plans = Vec::with_capacity(by_action.len() + 1);
    if default_action != SeccompAction::Allow {
        plans.push(FilterPlan {
            on_match: SeccompAction::Allow,
            on_mismatch: default_action,
            rules: any_rule,
        });
    }
    for (on_match, rules) in by_action {
        plans.push(FilterPlan {
            on_match,
            on_mismatch: SeccompAction::Allow,
            rules,
        });
    }
    order_for_installation(plans)
}

/// Moves the one filter that may deny `seccomp(2)` to the end of the stack,
/// so that it cannot block the installation of the others.
fn order_for_installation(mut plans: Vec<FilterPlan>) -> Result<Vec<FilterPlan>, SeccompError> {
    let deniers: Vec<usize> = plans
        .iter()
        .enumerate()
        .filter(|(_, plan)| plan.may_deny_seccomp())
        .map(|(index, _)| index)
        .collect();
    match deniers.as_slice() {
        [] => {}
        [index] => {
            let plan = plans.remove(*index);
            plans.push(plan);
        }
        _ => return Err(SeccompError::SeccompDeniedTwice),
    }
    Ok(plans)
}

/// Whether `action` lets the syscall run (LOG runs it after logging).
fn lets_through(action: &SeccompAction) -> bool {
    matches!(action, SeccompAction::Allow | SeccompAction::Log)
}

/// Whether, for every call, at most one filter of the stack returns
/// something other than ALLOW, so that their order cannot change the
/// result (see `chain`). A filter must answer ALLOW either on a match (the
/// default filter, at most one) or on a mismatch (an action filter). Action
/// filters must not share a syscall; and whatever an action filter
/// matches, the default filter must match too, which the layout above
/// gives: it allows every call any rule matches.
pub(super) fn exclusive(plans: &[FilterPlan]) -> bool {
    let allow = |a: &SeccompAction| matches!(a, SeccompAction::Allow);
    let mut default = None;
    let mut actions = Vec::new();
    for plan in plans {
        match (allow(&plan.on_match), allow(&plan.on_mismatch)) {
            (true, false) if default.is_none() => default = Some(plan),
            (false, true) => actions.push(plan),
            _ => return false,
        }
    }
    let mut seen = std::collections::HashSet::new();
    for plan in &actions {
        for (nr, chain) in &plan.rules {
            if !seen.insert(*nr) {
                return false;
            }
            let covered = default.is_none_or(|d| match (d.rules.get(nr), chain) {
                (Some(None), _) => true,
                (Some(Some(all)), Some(these)) => these.iter().all(|r| all.contains(r)),
                _ => false,
            });
            if !covered {
                return false;
            }
        }
    }
    true
}

/// Generates the BPF programs for `plans`, in the same order.
pub(super) fn generate(plans: Vec<FilterPlan>) -> Result<Vec<BpfProgram>, SeccompError> {
    plans.into_iter().map(FilterPlan::into_program).collect()
}

/// Adds `chain` to the rules for `nr`, OR-ed with what is there.
fn add(rules: &mut RuleMap, nr: i64, chain: &Chain) {
    let entry = rules.entry(nr).or_insert_with(|| Some(Vec::new()));
    match (entry.as_mut(), chain) {
        // Already unconditional: more rules cannot widen it.
        (None, _) => {}
        (Some(_), None) => *entry = None,
        (Some(existing), Some(new)) => existing.extend(new.iter().cloned()),
    }
}

/// Looks `name` up in the native architecture's syscall table.
fn resolve(name: &str) -> Option<i64> {
    name.parse::<syscalls::Sysno>()
        .ok()
        .map(|nr| i64::from(nr.id()))
}

/// Maps an OCI action (with its `errnoRet`) to a seccompiler action.
fn action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    what: &str,
) -> Result<SeccompAction, SeccompError> {
    let data = errno_ret.unwrap_or(libc::EPERM.unsigned_abs());
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno if data > MAX_ERRNO => {
            return Err(SeccompError::ErrnoOutOfRange {
                what: what.to_string(),
                errno: data,
            })
        }
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(data),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActTrace if data > 0xFFFF => {
            return Err(SeccompError::ErrnoOutOfRange {
                what: what.to_string(),
                errno: data,
            })
        }
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(data),
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(SeccompError::Unsupported {
                what: what.to_string(),
                feature: "SCMP_ACT_NOTIFY (no seccomp agent support)",
            })
        }
    })
}

/// Maps a rule's `args` to seccompiler rules: `None` when the rule has no
/// arguments (the syscall matches unconditionally).
///
/// Conditions on different arguments are AND-ed into one rule. As in runc, if
/// two conditions name the same argument they are OR-ed instead (one rule
/// each), because libseccomp could not AND them and profiles rely on that.
fn conditions(args: &[LinuxSeccompArg], what: &str) -> Result<Chain, SeccompError> {
    if args.is_empty() {
        return Ok(None);
    }
    let conditions = args
        .iter()
        .map(|arg| condition(arg, what))
        .collect::<Result<Vec<_>, _>>()?;

    let mut indexes: Vec<usize> = args.iter().map(|arg| arg.index()).collect();
    indexes.sort_unstable();
    indexes.dedup();
    let groups = if indexes.len() < args.len() {
        conditions.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![conditions]
    };

    let rules = groups
        .into_iter()
        .map(|group| SeccompRule::new(group).map_err(|source| SeccompError::Generate { source }))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(rules))
}

/// Maps one OCI argument comparison to a seccompiler condition.
fn condition(arg: &LinuxSeccompArg, what: &str) -> Result<SeccompCondition, SeccompError> {
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|index| usize::from(*index) <= MAX_ARG_INDEX)
        .ok_or_else(|| SeccompError::ArgIndex {
            what: what.to_string(),
            index: arg.index(),
        })?;

    let (len, op, value) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpArgLen::Qword, SeccompCmpOp::Ne, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpArgLen::Qword, SeccompCmpOp::Lt, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpArgLen::Qword, SeccompCmpOp::Le, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpArgLen::Qword, SeccompCmpOp::Ge, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpArgLen::Qword, SeccompCmpOp::Gt, arg.value()),
        LinuxSeccompOperator::ScmpCmpMaskedEq => masked_eq(arg, what)?,
    };
    SeccompCondition::new(index, len, op, value).map_err(|source| SeccompError::Generate { source })
}

/// MASKED_EQ is `(arg & value) == valueTwo` (libseccomp's datum_a, datum_b).
///
/// seccompiler masks the expected value as well, which would make a rule with
/// bits of `valueTwo` outside the mask match instead of never matching, so
/// such a rule is rejected. A mask within the low 32 bits is compared on the
/// low word only, which is also how `int` arguments are meant to be checked.
fn masked_eq(
    arg: &LinuxSeccompArg,
    what: &str,
) -> Result<(SeccompCmpArgLen, SeccompCmpOp, u64), SeccompError> {
    let mask = arg.value();
    let expected = arg.value_two().unwrap_or(0);
    if expected & !mask != 0 {
        return Err(SeccompError::MaskedValue {
            what: what.to_string(),
            mask,
            value: expected,
        });
    }
    let len = if mask >> 32 == 0 {
        SeccompCmpArgLen::Dword
    } else {
        SeccompCmpArgLen::Qword
    };
    if mask == 0xFFFF_FFFF {
        return Ok((len, SeccompCmpOp::Eq, expected));
    }
    Ok((len, SeccompCmpOp::MaskedEq(mask), expected))
}

/// Names a rule in error messages: its position and its first few names.
fn describe(position: usize, names: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut shown = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        shown.push_str(&format!(", ... ({} names)", names.len()));
    }
    format!("rule {position} ({shown})")
}
