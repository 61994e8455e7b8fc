//! The cgroup writes an OCI `LinuxResources` asks for, computed without
//! touching the filesystem.
//!
//! v2 files are described in the kernel's `Documentation/admin-guide/
//! cgroup-v2.rst`; v1 files in `Documentation/admin-guide/cgroup-v1/`
//! (`memory.rst`, `cpusets.rst`, `pids.rst`) and `scheduler/sched-bwc.rst`.
//! Conversions follow the OCI runtime spec's `config-linux.md` and, for v2,
//! the conventions runc and crun share: shares map linearly onto weight, and
//! OCI `memory.swap` is memory plus swap, as in docker.
//!
//! Writes are in the order the kernel needs them. Anything asked for that
//! this module cannot enforce is either refused (an invalid value, an
//! unknown `unified` key) or listed in [`Plan::unenforced`].

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxResources};

use super::CgroupError;

/// A controller sunaba writes limits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    /// CPU bandwidth and weight.
    Cpu,
    /// CPU and memory-node placement.
    Cpuset,
    /// Memory limits and OOM handling.
    Memory,
    /// Process count.
    Pids,
    /// Device access (v1 only; v2 would need a BPF program).
    Devices,
    /// Huge page limits, one file per page size.
    Hugetlb,
}

impl Controller {
    /// The kernel's name for the controller.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Devices => "devices",
            Controller::Hugetlb => "hugetlb",
        }
    }

    /// Every controller sunaba writes to.
    pub const ALL: [Controller; 6] = [
        Controller::Cpu,
        Controller::Cpuset,
        Controller::Memory,
        Controller::Pids,
        Controller::Devices,
        Controller::Hugetlb,
    ];

    fn from_name(name: &str) -> Option<Controller> {
        Controller::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// One value to write into a file of the new cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupWrite {
    /// The controller owning the file (on v1: which hierarchy).
    pub controller: Controller,
    /// The file name inside the cgroup directory.
    pub file: String,
    /// The exact text written.
    pub value: String,
    /// The file may be missing because the kernel lacks the feature (swap
    /// accounting, `memory.oom.group`, CFS burst): then the limit is listed
    /// as unenforced instead of failing the run.
    pub optional: bool,
}

/// The complete set of writes for one cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Writes, in order.
    pub writes: Vec<CgroupWrite>,
    /// Requested settings that this backend does not enforce.
    pub unenforced: Vec<String>,
    /// The memory limit in bytes, when one is set.
    pub memory_limit: Option<u64>,
    /// Device rules for a BPF device program (v2).
    pub device_rules: Vec<oci_spec::runtime::LinuxDeviceCgroup>,
}

impl Plan {
    fn write(&mut self, controller: Controller, file: &str, value: impl ToString) {
        self.push(controller, file, value, false);
    }

    fn write_optional(&mut self, controller: Controller, file: &str, value: impl ToString) {
        self.push(controller, file, value, true);
    }

    fn push(&mut self, controller: Controller, file: &str, value: impl ToString, optional: bool) {
        self.writes.push(CgroupWrite {
            controller,
            file: file.to_string(),
            value: value.to_string(),
            optional,
        });
    }

    /// The controllers this plan writes to.
    pub fn controllers(&self) -> Vec<Controller> {
        let mut all: Vec<Controller> = self.writes.iter().map(|w| w.controller).collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Converts OCI (v1) CPU shares to a v2 `cpu.weight`, so that the ends of
/// the ranges and the defaults meet: 2 becomes 1, 1024 (v1's default) 100
/// (v2's default), 262144 becomes 10000. With `l = log2(shares)` the weight
/// is `10^((l² + 125·l − 126) / 612)`, rounded up: the parabola in log space
/// through those three points, as runc and crun convert since 2025. (The
/// linear map they used before gave 1024 shares a weight of 39, so a
/// container asking for the default got well under half of it.) Values
/// outside v1's range are clamped first, as the v1 kernel does.
// The float is between 1 and 10000 at both casts' ends: nothing is lost.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn shares_to_weight(shares: u64) -> u64 {
    let l = (shares.clamp(2, 262_144) as f64).log2();
    // One division keeps the exponent exact at the three integer points.
    let exponent = (l * l + 125.0 * l - 126.0) / 612.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
}

/// Plans the writes for a cgroup on the unified (v2) hierarchy.
///
/// # Errors
///
/// Fails on values the kernel would reject or that cannot be converted.
pub fn plan_v2(resources: &LinuxResources) -> Result<Plan, CgroupError> {
    let mut plan = Plan::default();
    if let Some(cpu) = resources.cpu() {
        cpu_v2(&mut plan, cpu)?;
    }
    if let Some(memory) = resources.memory() {
        memory_v2(&mut plan, memory)?;
    }
    // One OOM kill takes the whole sandbox down, like the container it is,
    // rather than leaving a half-killed process tree behind.
    plan.write_optional(Controller::Memory, "memory.oom.group", 1);
    if let Some(pids) = pids_value(resources)? {
        plan.write(Controller::Pids, "pids.max", pids);
    }
    for (size, limit) in hugepage_limits(resources)? {
        plan.write(Controller::Hugetlb, &format!("hugetlb.{size}.max"), limit);
        // Reservations count against the limit too where the kernel keeps
        // them apart (Linux 5.7), so a mapping cannot reserve past it.
        plan.write_optional(
            Controller::Hugetlb,
            &format!("hugetlb.{size}.rsvd.max"),
            limit,
        );
    }
    if let Some(unified) = resources.unified() {
        let mut keys: Vec<(&String, &String)> = unified.iter().collect();
        keys.sort();
        for (file, value) in keys {
            let controller = unified_controller(file)?;
            plan.write(controller, file, value);
        }
    }
    // cgroup v2 controls devices through a BPF program attached when the
    // cgroup is made.
    plan.device_rules = resources.devices().clone().unwrap_or_default();
    common_unenforced(&mut plan, resources);
    Ok(plan)
}

/// Plans the writes for cgroups on the v1 hierarchies.
///
/// # Errors
///
/// Fails on invalid values and on a `unified` map, which has no meaning on
/// v1 (the OCI spec requires a runtime to refuse it there).
pub fn plan_v1(resources: &LinuxResources) -> Result<Plan, CgroupError> {
    let mut plan = Plan::default();
    if let Some(cpu) = resources.cpu() {
        cpu_v1(&mut plan, cpu)?;
    }
    if let Some(memory) = resources.memory() {
        memory_v1(&mut plan, memory)?;
    }
    if let Some(pids) = pids_value(resources)? {
        plan.write(Controller::Pids, "pids.max", pids);
    }
    for (size, limit) in hugepage_limits(resources)? {
        plan.write(
            Controller::Hugetlb,
            &format!("hugetlb.{size}.limit_in_bytes"),
            limit,
        );
    }
    if resources.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::Unsupported {
            what: "linux.resources.unified on a cgroup v1 host".to_string(),
        });
    }
    let rules = resources.devices().clone().unwrap_or_default();
    for rule in &rules {
        devices_v1(&mut plan, rule);
    }
    if !rules.is_empty() {
        // The devices every container gets in its /dev stay usable whatever
        // the rules say, as under runc: null, zero, full, tty, random,
        // urandom, the ptmx multiplexer and the pseudo-terminals.
        for (typ, major, minor) in super::devices::DEFAULT_ALLOWED {
            let minor = minor.map_or("*".to_string(), |m| m.to_string());
            plan.write(
                Controller::Devices,
                "devices.allow",
                format!("{typ} {major}:{minor} rwm"),
            );
        }
    }
    common_unenforced(&mut plan, resources);
    Ok(plan)
}

fn cpu_v2(plan: &mut Plan, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        plan.write(Controller::Cpu, "cpu.weight", shares_to_weight(shares));
    }
    if cpu.quota().is_some() || cpu.period().is_some() {
        let quota = match quota(cpu.quota())? {
            Some(q) => q.to_string(),
            None => "max".to_string(),
        };
        let period = cpu.period().unwrap_or(100_000);
        plan.write(Controller::Cpu, "cpu.max", format!("{quota} {period}"));
    }
    if let Some(burst) = cpu.burst() {
        plan.write_optional(Controller::Cpu, "cpu.max.burst", burst);
    }
    if let Some(idle) = cpu.idle() {
        plan.write_optional(Controller::Cpu, "cpu.idle", idle);
    }
    cpuset(plan, cpu);
    realtime_unenforced(plan, cpu);
    Ok(())
}

fn cpu_v1(plan: &mut Plan, cpu: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        plan.write(Controller::Cpu, "cpu.shares", shares);
    }
    // The period first: the kernel checks a quota against the period.
    if let Some(period) = cpu.period() {
        plan.write(Controller::Cpu, "cpu.cfs_period_us", period);
    }
    if let Some(q) = quota(cpu.quota())? {
        plan.write(Controller::Cpu, "cpu.cfs_quota_us", q);
    }
    if let Some(burst) = cpu.burst() {
        plan.write_optional(Controller::Cpu, "cpu.cfs_burst_us", burst);
    }
    if let Some(idle) = cpu.idle() {
        plan.write_optional(Controller::Cpu, "cpu.idle", idle);
    }
    cpuset(plan, cpu);
    realtime_unenforced(plan, cpu);
    Ok(())
}

/// A CFS quota in microseconds; `None` is unlimited (-1 in OCI).
fn quota(quota: Option<i64>) -> Result<Option<u64>, CgroupError> {
    match quota {
        None | Some(-1) => Ok(None),
        Some(q) => u64::try_from(q)
            .ok()
            .filter(|q| *q > 0)
            .map(Some)
            .ok_or_else(|| invalid("linux.resources.cpu.quota", q, "must be positive or -1")),
    }
}

fn cpuset(plan: &mut Plan, cpu: &LinuxCpu) {
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        plan.write(Controller::Cpuset, "cpuset.cpus", cpus);
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        plan.write(Controller::Cpuset, "cpuset.mems", mems);
    }
}

fn realtime_unenforced(plan: &mut Plan, cpu: &LinuxCpu) {
    if cpu.realtime_runtime().is_some() || cpu.realtime_period().is_some() {
        plan.unenforced
            .push("cpu.realtimeRuntime/realtimePeriod".to_string());
    }
}

/// A memory value: `None` when unset (OCI 0 is treated as unset, as runc
/// does), `Some(None)` for unlimited (-1), `Some(Some(bytes))` otherwise.
fn memory_value(
    field: &'static str,
    value: Option<i64>,
) -> Result<Option<Option<u64>>, CgroupError> {
    match value {
        None | Some(0) => Ok(None),
        Some(-1) => Ok(Some(None)),
        Some(v) => u64::try_from(v)
            .map(|v| Some(Some(v)))
            .map_err(|_| invalid(field, v, "must be positive or -1")),
    }
}

/// The swap part of OCI's memory+swap value, checked against the limit.
/// `Some(None)` is unlimited.
fn swap_value(memory: &LinuxMemory) -> Result<Option<Option<u64>>, CgroupError> {
    let field = "linux.resources.memory.swap";
    let Some(total) = memory_value(field, memory.swap())? else {
        return Ok(None);
    };
    let limit = memory_value("linux.resources.memory.limit", memory.limit())?.flatten();
    match (total, limit) {
        (None, _) => Ok(Some(None)),
        (Some(total), Some(limit)) if total >= limit => Ok(Some(Some(total))),
        (Some(total), Some(_)) => Err(invalid(
            field,
            total,
            "memory+swap is below the memory limit",
        )),
        (Some(total), None) => Err(invalid(field, total, "a swap limit needs a memory limit")),
    }
}

fn memory_v2(plan: &mut Plan, memory: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = memory_value("linux.resources.memory.limit", memory.limit())?;
    if let Some(limit) = limit {
        plan.memory_limit = limit;
        plan.write(Controller::Memory, "memory.max", max_or(limit));
    }
    if let Some(low) = memory_value("linux.resources.memory.reservation", memory.reservation())? {
        plan.write(Controller::Memory, "memory.low", max_or(low));
    }
    // v2 limits swap alone: memory.swap.max = (memory+swap) - memory.
    let swap = swap_value(memory)?
        .map(|total| total.and_then(|total| plan.memory_limit.map(|limit| total - limit)));
    if let Some(swap) = swap {
        plan.write_optional(Controller::Memory, "memory.swap.max", max_or(swap));
    }
    if memory.swappiness().is_some() {
        plan.unenforced
            .push("memory.swappiness (no v2 equivalent)".to_string());
    }
    if memory.disable_oom_killer() == Some(true) {
        plan.unenforced
            .push("memory.disableOOMKiller (no v2 equivalent)".to_string());
    }
    kernel_memory_unenforced(plan, memory);
    Ok(())
}

fn memory_v1(plan: &mut Plan, memory: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = memory_value("linux.resources.memory.limit", memory.limit())?;
    if let Some(limit) = limit {
        plan.memory_limit = limit;
        plan.write(
            Controller::Memory,
            "memory.limit_in_bytes",
            minus_one_or(limit),
        );
    }
    // The kernel keeps memsw >= limit at all times; the cgroup is new (both
    // unlimited), so the limit goes first and memsw follows.
    if let Some(total) = swap_value(memory)? {
        plan.write_optional(
            Controller::Memory,
            "memory.memsw.limit_in_bytes",
            minus_one_or(total),
        );
    }
    if let Some(soft) = memory_value("linux.resources.memory.reservation", memory.reservation())? {
        plan.write(
            Controller::Memory,
            "memory.soft_limit_in_bytes",
            minus_one_or(soft),
        );
    }
    if let Some(swappiness) = memory.swappiness() {
        if swappiness > 100 {
            return Err(invalid(
                "linux.resources.memory.swappiness",
                swappiness,
                "must be 0..=100",
            ));
        }
        plan.write(Controller::Memory, "memory.swappiness", swappiness);
    }
    if memory.disable_oom_killer() == Some(true) {
        plan.write(Controller::Memory, "memory.oom_control", 1);
    }
    kernel_memory_unenforced(plan, memory);
    Ok(())
}

fn kernel_memory_unenforced(plan: &mut Plan, memory: &LinuxMemory) {
    // Kernel memory limits were deprecated in 5.4 and removed in 6.x; the
    // kernel counts that memory in the main limit instead.
    if memory.kernel().is_some() || memory.kernel_tcp().is_some() {
        plan.unenforced
            .push("memory.kernel/kernelTCP (deprecated by the kernel)".to_string());
    }
}

fn pids_value(resources: &LinuxResources) -> Result<Option<String>, CgroupError> {
    // OCI: 0 and unset mean no limit is asked for; a negative value is
    // explicitly unlimited.
    Ok(resources.pids().as_ref().and_then(|p| match p.limit() {
        0 => None,
        l if l < 0 => Some("max".to_string()),
        l => Some(l.to_string()),
    }))
}

fn unified_controller(file: &str) -> Result<Controller, CgroupError> {
    let prefix = file.split('.').next().unwrap_or_default();
    if file.contains('/') || file.starts_with("cgroup.") {
        return Err(invalid(
            "linux.resources.unified",
            file,
            "not a controller file",
        ));
    }
    Controller::from_name(prefix).ok_or_else(|| CgroupError::Unsupported {
        what: format!("linux.resources.unified key {file}"),
    })
}

/// One device rule as the v1 devices controller takes it: `devices.allow`
/// or `devices.deny` gets "TYPE MAJOR:MINOR ACCESS", `*` for any number
/// (Documentation/admin-guide/cgroup-v1/devices.rst). Rules apply in order.
fn devices_v1(plan: &mut Plan, rule: &oci_spec::runtime::LinuxDeviceCgroup) {
    use oci_spec::runtime::LinuxDeviceType;
    let typ = match rule.typ() {
        None | Some(LinuxDeviceType::A) => "a",
        Some(LinuxDeviceType::B) => "b",
        Some(LinuxDeviceType::C | LinuxDeviceType::U) => "c",
        Some(LinuxDeviceType::P) => return,
    };
    let number = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let access = rule.access().clone().unwrap_or_else(|| "rwm".to_string());
    let file = if rule.allow() {
        "devices.allow"
    } else {
        "devices.deny"
    };
    let value = if typ == "a" {
        "a".to_string()
    } else {
        format!(
            "{typ} {}:{} {access}",
            number(rule.major()),
            number(rule.minor())
        )
    };
    plan.write(Controller::Devices, file, value);
}

fn common_unenforced(plan: &mut Plan, resources: &LinuxResources) {
    if resources.block_io().is_some() {
        plan.unenforced.push("blockIO".to_string());
    }
    if resources.network().is_some() {
        plan.unenforced.push("network".to_string());
    }
    if resources.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        plan.unenforced.push("rdma".to_string());
    }
}

/// The huge page limits, each as (page size as the kernel names it in
/// `hugetlb.<size>.*`, bytes). The size must be a number and a unit, "2MB"
/// or "1GB"; the kernel then tells whether the machine has that size.
fn hugepage_limits(resources: &LinuxResources) -> Result<Vec<(String, u64)>, CgroupError> {
    let mut out = Vec::new();
    for h in resources.hugepage_limits().iter().flatten() {
        let size = h.page_size();
        let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &size[digits.len()..];
        if digits.is_empty()
            || !digits.chars().all(|c| c.is_ascii_digit())
            || !["KB", "MB", "GB", "TB", "PB"].contains(&unit)
        {
            return Err(invalid(
                "linux.resources.hugepageLimits.pageSize",
                size,
                "not a page size such as 2MB or 1GB",
            ));
        }
        let limit = u64::try_from(h.limit()).map_err(|_| {
            invalid(
                "linux.resources.hugepageLimits.limit",
                h.limit(),
                "must not be negative",
            )
        })?;
        out.push((size.clone(), limit));
    }
    Ok(out)
}

fn max_or(value: Option<u64>) -> String {
    value.map_or_else(|| "max".to_string(), |v| v.to_string())
}

fn minus_one_or(value: Option<u64>) -> String {
    value.map_or_else(|| "-1".to_string(), |v| v.to_string())
}

fn invalid(field: &'static str, value: impl ToString, reason: &'static str) -> CgroupError {
    CgroupError::InvalidValue {
        field,
        value: value.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    use super::*;

    fn values(plan: &Plan) -> Vec<(&str, &str)> {
        plan.writes
            .iter()
            .map(|w| (w.file.as_str(), w.value.as_str()))
            .collect()
    }

    fn resources(cpu: LinuxCpu, memory: LinuxMemory, pids: i64) -> LinuxResources {
        LinuxResourcesBuilder::default()
            .cpu(cpu)
            .memory(memory)
            .pids(
                LinuxPidsBuilder::default()
                    .limit(pids)
                    .build()
                    .expect("pids"),
            )
            .build()
            .expect("resources")
    }

    fn memory(limit: i64, swap: Option<i64>) -> LinuxMemory {
        let mut m = LinuxMemoryBuilder::default()
            .limit(limit)
            .build()
            .expect("memory");
        m.set_swap(swap);
        m
    }

    #[test]
    fn shares_map_onto_weight_range() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(512), 59);
        assert_eq!(shares_to_weight(2048), 174);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
    }

    #[test]
    fn v2_plan_converts_every_limit() {
        let cpu = LinuxCpuBuilder::default()
            .shares(512u64)
            .quota(50_000i64)
            .period(100_000u64)
            .build()
            .expect("cpu");
        let mib = 1 << 20;
        let mut mem = memory(64 * mib, Some(96 * mib));
        mem.set_reservation(Some(32 * mib));
        let plan = plan_v2(&resources(cpu, mem, 32)).expect("plans");
        assert_eq!(
            values(&plan),
            [
                ("cpu.weight", "59"),
                ("cpu.max", "50000 100000"),
                ("memory.max", "67108864"),
                ("memory.low", "33554432"),
                ("memory.swap.max", "33554432"),
                ("memory.oom.group", "1"),
                ("pids.max", "32"),
            ]
        );
        assert_eq!(plan.memory_limit, Some(64 << 20));
        assert_eq!(
            plan.controllers(),
            [Controller::Cpu, Controller::Memory, Controller::Pids]
        );
    }

    #[test]
    fn v1_plan_orders_period_before_quota_and_limit_before_memsw() {
        let cpu = LinuxCpuBuilder::default()
            .shares(512u64)
            .quota(20_000i64)
            .period(50_000u64)
            .build()
            .expect("cpu");
        let plan =
            plan_v1(&resources(cpu, memory(4096 * 1024, Some(4096 * 1024)), 10)).expect("plans");
        assert_eq!(
            values(&plan),
            [
                ("cpu.shares", "512"),
                ("cpu.cfs_period_us", "50000"),
                ("cpu.cfs_quota_us", "20000"),
                ("memory.limit_in_bytes", "4194304"),
                ("memory.memsw.limit_in_bytes", "4194304"),
                ("pids.max", "10"),
            ]
        );
        let memsw = &plan.writes[4];
        assert!(memsw.optional, "memsw exists only with swap accounting");
    }

    #[test]
    fn unlimited_values_become_max_or_minus_one() {
        let cpu = LinuxCpuBuilder::default()
            .quota(-1i64)
            .build()
            .expect("cpu");
        let res = resources(cpu.clone(), memory(-1, Some(-1)), -1);
        assert_eq!(
            values(&plan_v2(&res).expect("v2")),
            [
                ("cpu.max", "max 100000"),
                ("memory.max", "max"),
                ("memory.swap.max", "max"),
                ("memory.oom.group", "1"),
                ("pids.max", "max"),
            ]
        );
        assert_eq!(
            values(&plan_v1(&res).expect("v1")),
            [
                ("memory.limit_in_bytes", "-1"),
                ("memory.memsw.limit_in_bytes", "-1"),
                ("pids.max", "max"),
            ]
        );
    }

    #[test]
    fn swap_equal_to_limit_means_no_swap_on_v2() {
        let res = resources(LinuxCpu::default(), memory(1 << 20, Some(1 << 20)), 0);
        let plan = plan_v2(&res).expect("plans");
        assert!(values(&plan).contains(&("memory.swap.max", "0")));
        assert!(!values(&plan).iter().any(|(f, _)| *f == "pids.max"));
    }

    #[test]
    fn swap_below_limit_or_without_limit_is_refused() {
        let res = resources(LinuxCpu::default(), memory(1 << 20, Some(1 << 10)), 0);
        assert!(matches!(
            plan_v2(&res),
            Err(CgroupError::InvalidValue { .. })
        ));
        assert!(matches!(
            plan_v1(&res),
            Err(CgroupError::InvalidValue { .. })
        ));
        let mut mem = LinuxMemory::default();
        mem.set_swap(Some(1 << 20));
        let res = resources(LinuxCpu::default(), mem, 0);
        assert!(matches!(
            plan_v2(&res),
            Err(CgroupError::InvalidValue { .. })
        ));
    }

    #[test]
    fn negative_values_are_refused_with_the_field() {
        let res = resources(LinuxCpu::default(), memory(-5, None), 0);
        match plan_v1(&res) {
            Err(CgroupError::InvalidValue { field, value, .. }) => {
                assert_eq!(field, "linux.resources.memory.limit");
                assert_eq!(value, "-5");
            }
            other => panic!("unexpected {other:?}"),
        }
        let cpu = LinuxCpuBuilder::default().quota(0i64).build().expect("cpu");
        let res = resources(cpu, LinuxMemory::default(), 0);
        assert!(matches!(
            plan_v2(&res),
            Err(CgroupError::InvalidValue { .. })
        ));
    }

    #[test]
    fn hugepage_limits_name_their_page_size_on_both_versions() {
        let with = |size: &str, limit: i64| -> LinuxResources {
            serde_json::from_value(serde_json::json!({
                "hugepageLimits": [{"pageSize": size, "limit": limit}]
            }))
            .expect("resources")
        };
        let v2 = plan_v2(&with("2MB", 4 << 20)).expect("plans");
        let hugetlb: Vec<_> = values(&v2)
            .into_iter()
            .filter(|(f, _)| f.starts_with("hugetlb."))
            .collect();
        assert_eq!(
            hugetlb,
            [
                ("hugetlb.2MB.max", "4194304"),
                ("hugetlb.2MB.rsvd.max", "4194304")
            ]
        );
        assert!(v2.unenforced.is_empty(), "{:?}", v2.unenforced);
        let v1 = plan_v1(&with("1GB", 1 << 30)).expect("plans");
        assert_eq!(values(&v1), [("hugetlb.1GB.limit_in_bytes", "1073741824")]);
        for (size, limit) in [("2M", 1), ("MB", 1), ("2 MB", 1), ("../x", 1), ("2MB", -1)] {
            let err = plan_v2(&with(size, limit)).expect_err(size).to_string();
            assert!(err.contains("hugepageLimits"), "{size}: {err}");
        }
    }

    #[test]
    fn unified_map_is_v2_only() {
        let mut res = LinuxResources::default();
        res.set_unified(Some(
            [("memory.high".to_string(), "1000000".to_string())].into(),
        ));
        let plan = plan_v2(&res).expect("v2");
        assert!(values(&plan).contains(&("memory.high", "1000000")));
        assert!(matches!(
            plan_v1(&res),
            Err(CgroupError::Unsupported { .. })
        ));
        res.set_unified(Some([("io.max".to_string(), "x".to_string())].into()));
        assert!(matches!(
            plan_v2(&res),
            Err(CgroupError::Unsupported { .. })
        ));
        res.set_unified(Some([("../x".to_string(), "x".to_string())].into()));
        assert!(plan_v2(&res).is_err());
    }

    #[test]
    fn settings_without_a_backend_are_listed() {
        let mut mem = memory(1 << 20, None);
        mem.set_swappiness(Some(10));
        mem.set_kernel(Some(1 << 20));
        let res = resources(LinuxCpu::default(), mem, 0);
        let v2 = plan_v2(&res).expect("v2");
        assert_eq!(v2.unenforced.len(), 2, "{:?}", v2.unenforced);
        let v1 = plan_v1(&res).expect("v1");
        assert!(values(&v1).contains(&("memory.swappiness", "10")));
        assert_eq!(v1.unenforced.len(), 1, "{:?}", v1.unenforced);
    }
}
