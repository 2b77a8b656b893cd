"""The facts contract: a flat dict of host facts for the doctor and other readers.

``host_facts(report)`` flattens a HostReport into ``{"key": value}`` with
stable key names and types (documented in FACT_KEYS); any value may instead
be :class:`rtkvm.hostfs.Unknown` when it could not be read. Keys may be added,
never renamed or retyped: the doctor's checks are written against them. This
module must not read the host (inspection does) nor judge values (the doctor
does).
"""

from __future__ import annotations

from rtkvm.cpuset import CpuSet
from rtkvm.host.experiments import NAMES, Trial
from rtkvm.host.inspect import HostReport
from rtkvm.host.topology import HugepagePool
from rtkvm.hostfs import Unknown

FACT_KEYS: dict[str, str] = {
    "kernel.release": "str",
    "kernel.preempt_rt": "bool",
    "topology": "Topology",
    "cpus.online": "CpuSet",
    "cpus.isolated": "CpuSet",
    "cpus.nohz_full": "CpuSet (Unknown when the kernel has no NO_HZ_FULL)",
    "cmdline.raw": "str",
    "cmdline.args": "dict[str, str | None]",
    "cmdline.isolcpus": "CpuSet",
    "cmdline.isolcpus_flags": "list[str]",
    "cmdline.nohz_full": "CpuSet",
    "cmdline.rcu_nocbs": "CpuSet",
    "cmdline.irqaffinity": "CpuSet",
    "cmdline.init_args": "list[str] (words after --, for init)",
    "sched.rt_runtime_us": "int (-1 = unlimited)",
    "sched.rt_period_us": "int",
    "kernel.timer_migration": "int",
    "kernel.nmi_watchdog": "int",
    "vm.stat_interval": "int",
    "mm.ksm_run": "int",
    "mm.thp_enabled": "str",
    "mm.thp_defrag": "str",
    "workqueue.cpumask": "CpuSet",
    "irq.default_affinity": "CpuSet",
    "irq.list": "list[Irq]",
    "irqbalance.running": "bool",
    "irqbalance.banned": "CpuSet (Unknown when there is no config file)",
    "power.cpufreq": "bool",
    "power.governors": "dict[int, str | Unknown]",
    "power.idle_driver": "str",
    "power.idle_states": "dict[int, list[IdleState]]",
    "cgroup.version": "'v1' | 'v2' | 'hybrid'",
    "cgroup.rt_group_sched": "bool",
    "proc.capabilities": "frozenset[str]",
    "proc.memlock_soft": "int | None (bytes, None = unlimited)",
    "proc.memlock_hard": "int | None (bytes, None = unlimited)",
    "hugepages.total": "dict[int, int] (page size kB -> pages)",
    "hugepages.free": "dict[int, int] (page size kB -> pages)",
    "kvm.present": "bool",
    "nics": "list[Nic]",
    "probe.sched_fifo": "Trial (a child process took SCHED_FIFO; Unknown when not tried)",
    "probe.memlock": "Trial (a child raised its memlock limit and locked memory)",
    "probe.kvm_vcpu": "Trial (a child created a KVM VM and a vCPU; Unknown without /dev/kvm)",
}
"""Every key host_facts returns, with its type (values may also be Unknown)."""


def host_facts(
    report: HostReport, trials: dict[str, Trial] | str | None = None
) -> dict[str, object]:
    """Flatten a HostReport, and the experiments' trials, into the facts dict (FACT_KEYS).

    ``trials``: what :func:`rtkvm.host.experiments.experiments_for` found (a string: why
    none ran; None: not asked). A trial that did not run is Unknown, never a pass."""
    k, i, p, proc = report.kernel, report.irqs, report.power, report.process
    topo = report.topology
    facts: dict[str, object] = {
        "kernel.release": k.release,
        "kernel.preempt_rt": k.preempt_rt,
        "topology": topo,
        "cpus.online": report.online,
        "cpus.isolated": k.isolated,
        "cpus.nohz_full": k.nohz_full,
        "sched.rt_runtime_us": k.rt_runtime_us,
        "sched.rt_period_us": k.rt_period_us,
        "kernel.timer_migration": k.timer_migration,
        "kernel.nmi_watchdog": k.nmi_watchdog,
        "vm.stat_interval": k.stat_interval,
        "mm.ksm_run": k.ksm_run,
        "mm.thp_enabled": k.thp_enabled,
        "mm.thp_defrag": k.thp_defrag,
        "workqueue.cpumask": k.workqueue_cpumask,
        "irq.default_affinity": i.default_affinity,
        "irq.list": i.irqs if isinstance(i.irqs, Unknown) else list(i.irqs),
        "irqbalance.running": i.irqbalance_running,
        "irqbalance.banned": i.irqbalance_banned,
        "power.cpufreq": p.cpufreq,
        "power.governors": dict(p.governors),
        "power.idle_driver": p.idle_driver,
        "power.idle_states": p.idle_states
        if isinstance(p.idle_states, Unknown)
        else {cpu: list(states) for cpu, states in p.idle_states.items()},
        "cgroup.version": proc.cgroup_version,
        "cgroup.rt_group_sched": proc.rt_group_sched,
        "proc.capabilities": proc.capabilities,
        "proc.memlock_soft": proc.memlock_soft,
        "proc.memlock_hard": proc.memlock_hard,
        "hugepages.total": _pool_counts(k.hugepages, total=True),
        "hugepages.free": _pool_counts(k.hugepages, total=False),
        "kvm.present": proc.kvm_present,
        "nics": topo if isinstance(topo, Unknown) else list(topo.nics),
    }
    facts.update(_cmdline_facts(report))
    facts.update(_trial_facts(trials))
    return facts


def _trial_facts(trials: dict[str, Trial] | str | None) -> dict[str, object]:
    why = "the doctor's experiments were not run" if trials is None else trials
    out: dict[str, object] = {}
    for name in NAMES:
        trial = trials.get(name) if isinstance(trials, dict) else None
        key = f"probe.{name}"
        if trial is None:
            reason = why if isinstance(why, str) else f"the {name} experiment did not run"
            out[key] = Unknown(key, reason)
        else:
            out[key] = trial
    return out


def _cmdline_facts(report: HostReport) -> dict[str, object]:
    c = report.cmdline
    keys = (
        "cmdline.raw",
        "cmdline.args",
        "cmdline.isolcpus",
        "cmdline.isolcpus_flags",
        "cmdline.nohz_full",
        "cmdline.rcu_nocbs",
        "cmdline.irqaffinity",
        "cmdline.init_args",
    )
    if isinstance(c, Unknown):
        return dict.fromkeys(keys, c)
    values: tuple[object, ...] = (
        c.raw,
        dict(c.args),
        c.isolcpus,
        list(c.isolcpus_flags),
        c.nohz_full,
        c.rcu_nocbs,
        c.irqaffinity,
        list(c.init_args),
    )
    return dict(zip(keys, values, strict=True))


def _pool_counts(
    pools: tuple[HugepagePool, ...] | Unknown, *, total: bool
) -> dict[int, int] | Unknown:
    if isinstance(pools, Unknown):
        return pools
    return {p.size_kb: p.total if total else p.free for p in pools}


def cpuset_fact(facts: dict[str, object], key: str) -> CpuSet | Unknown:
    """A CpuSet fact, or Unknown (also when the key is missing or mistyped)."""
    value = facts.get(key, Unknown(key, "no such fact"))
    if isinstance(value, CpuSet | Unknown):
        return value
    return Unknown(key, f"expected a CPU set, found {type(value).__name__}")
