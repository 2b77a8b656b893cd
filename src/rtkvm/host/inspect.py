"""Host inspection: everything rtkvm knows about a compute node, in one report.

``inspect_host(fs)`` runs every reader (topology, kernel, command line, IRQs,
power, process) against one HostFS and returns a frozen HostReport; a part
that cannot be read is Unknown with the reason, never a crash and never a
default. ``render_table(report)`` prints it for an operator, section by
section. This module must not judge the values (the doctor does, from
rtkvm.host.facts) nor change the host.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtkvm.cpuset import CpuSet
from rtkvm.errors import HostReadError
from rtkvm.host.cmdline import CMDLINE_PATH, KernelCmdline, parse_cmdline
from rtkvm.host.irqs import Irq, IrqReport, read_irq_report
from rtkvm.host.kernel import KernelReport, parse_cpulist_file, read_kernel
from rtkvm.host.power import IdleState, PowerReport, read_power
from rtkvm.host.process import ProcessReport, read_process
from rtkvm.host.topology import CPU_DIR, Topology, read_topology
from rtkvm.hostfs import HostFS, Unknown

NOTABLE_ARGS = (
    "nohz",
    "kthread_cpus",
    "rcu_nocb_poll",
    "idle",
    "intel_pstate",
    "amd_pstate",
    "processor.max_cstate",
    "intel_idle.max_cstate",
    "skew_tick",
    "tsc",
    "nosoftlockup",
    "nowatchdog",
    "nmi_watchdog",
    "default_hugepagesz",
    "hugepagesz",
    "hugepages",
    "transparent_hugepage",
    "mitigations",
    "audit",
    "mce",
    "preempt",
)
"""Kernel arguments shown in the table when present (all are in the JSON)."""


@dataclass(frozen=True)
class HostReport:
    root: str
    online: CpuSet | Unknown
    topology: Topology | Unknown
    kernel: KernelReport
    cmdline: KernelCmdline | Unknown
    irqs: IrqReport
    power: PowerReport
    process: ProcessReport


def inspect_host(fs: HostFS) -> HostReport:
    """Read everything rtkvm reports about the host under ``fs``."""
    online_text = fs.read_maybe(f"{CPU_DIR}/online")
    online = (
        online_text
        if isinstance(online_text, Unknown)
        else parse_cpulist_file(online_text, f"{CPU_DIR}/online")
    )
    topology: Topology | Unknown
    try:
        topology = read_topology(fs)
    except HostReadError as exc:
        topology = Unknown(exc.path, exc.reason)
    last_cpu = _last_cpu(fs)
    raw = fs.read_maybe(CMDLINE_PATH)
    cmdline = raw if isinstance(raw, Unknown) else parse_cmdline(raw, last_cpu=last_cpu)
    return HostReport(
        root=str(fs.root),
        online=online,
        topology=topology,
        kernel=read_kernel(fs),
        cmdline=cmdline,
        irqs=read_irq_report(fs),
        power=read_power(fs, online if isinstance(online, CpuSet) else CpuSet()),
        process=read_process(fs),
    )


def _last_cpu(fs: HostFS) -> int | None:
    """The highest possible CPU (the kernel's ``N`` in CPU lists), if known."""
    possible = fs.read_maybe(f"{CPU_DIR}/possible")
    if isinstance(possible, Unknown):
        return None
    cpus = parse_cpulist_file(possible, f"{CPU_DIR}/possible")
    return max(cpus) if isinstance(cpus, CpuSet) and cpus else None


# -- rendering ------------------------------------------------------------------------


def show(value: object) -> str:
    """One value for people: Unknown as ``unknown (why)``, empty sets as ``none``."""
    if isinstance(value, Unknown):
        return str(value)
    if isinstance(value, CpuSet):
        return value.format() or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "unlimited"
    return str(value)


def _bytes(value: int | Unknown | None) -> str:
    if isinstance(value, int) and value >= 1024:
        for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
            if value >= size:
                return f"{value / size:.1f} {unit} ({value} bytes)"
    return show(value)


def _kb(value: int | Unknown) -> str:
    return _bytes(value * 1024) if isinstance(value, int) else show(value)


def _pages(size_kb: int) -> str:
    return f"{size_kb // 1024**2}G" if size_kb >= 1024**2 else f"{size_kb // 1024}M"


def render_table(report: HostReport) -> str:
    """The report as sections of ``label: value`` lines for an operator."""
    out: list[str] = [f"rtkvm host inspect (root {report.root})"]
    for title, lines in (
        ("CPUs & topology", _cpus(report)),
        ("NUMA & hugepages", _numa(report)),
        ("Kernel & cmdline", _kernel(report)),
        ("RT knobs", _knobs(report.kernel)),
        ("IRQs", _irqs(report)),
        ("Power", _power(report.power)),
        ("cgroups", _cgroups(report.process)),
        ("Process limits", _limits(report.process)),
        ("Devices & NICs", _devices(report)),
    ):
        out.append("")
        out.append(f"== {title}")
        out.extend(f"  {line}" for line in lines)
    return "\n".join(out) + "\n"


def _cpus(r: HostReport) -> list[str]:
    lines = [f"online CPUs:      {show(r.online)}"]
    topo = r.topology
    if isinstance(topo, Unknown):
        lines.append(f"topology:         {topo}")
    else:
        packages = sorted({c.package for c in topo.cores})
        threads = sorted({len(c.cpus) for c in topo.cores})
        lines.append(f"packages:         {len(packages)}")
        lines.append(
            f"cores:            {len(topo.cores)} "
            f"({'/'.join(map(str, threads))} thread(s) per core)"
        )
        if topo.smt_active:
            groups = [c.cpus.format() for c in topo.cores if len(c.cpus) > 1]
            if len(groups) > 8:
                groups = [*groups[:4], "...", groups[-1]]
            lines.append(f"SMT siblings:     {' '.join(groups)}")
        else:
            lines.append("SMT siblings:     none (one thread per core)")
    lines.append(f"isolated:         {show(r.kernel.isolated)}")
    lines.append(f"nohz_full:        {show(r.kernel.nohz_full)}")
    return lines


def _numa(r: HostReport) -> list[str]:
    lines: list[str] = []
    if isinstance(r.topology, Unknown):
        lines.append(f"nodes:            {r.topology}")
    else:
        for node in r.topology.nodes:
            lines.append(
                f"node{node.id}: CPUs {show(node.cpus)}; memory {_kb(node.mem_total_kb)} total, "
                f"{_kb(node.mem_free_kb)} free"
            )
            pools = node.hugepages
            if isinstance(pools, Unknown):
                lines.append(f"  hugepages: {pools}")
            else:
                for p in pools:
                    lines.append(f"  hugepages {_pages(p.size_kb)}: {p.free} free of {p.total}")
    pools = r.kernel.hugepages
    if isinstance(pools, Unknown):
        lines.append(f"hugepages (all nodes): {pools}")
    else:
        for p in pools:
            lines.append(f"hugepages {_pages(p.size_kb)} (all nodes): {p.free} free of {p.total}")
    return lines


def _kernel(r: HostReport) -> list[str]:
    k, c = r.kernel, r.cmdline
    rt = show(k.preempt_rt)
    if not isinstance(k.preempt_rt, Unknown):
        rt += f" (from {k.preempt_rt_source})"
    lines = [f"release:          {show(k.release)}", f"PREEMPT_RT:       {rt}"]
    if isinstance(c, Unknown):
        return [*lines, f"cmdline:          {c}"]
    flags = f" (flags: {','.join(c.isolcpus_flags)})" if c.isolcpus_flags else ""
    lines += [
        f"cmdline:          {c.raw}",
        f"isolcpus:         {show(c.isolcpus)}{flags}",
        f"nohz_full=:       {show(c.nohz_full)}",
        f"rcu_nocbs=:       {show(c.rcu_nocbs)}",
        f"irqaffinity=:     {show(c.irqaffinity)}",
    ]
    present = [
        name if c.args[name] is None else f"{name}={c.args[name]}"
        for name in NOTABLE_ARGS
        if name in c.args
    ]
    lines.append(f"other RT args:    {' '.join(present) or 'none'}")
    if isinstance(c.hugepages, Unknown) or c.hugepages:
        lines.append(f"boot hugepages:   {_boot_hugepages(c)}")
    if c.init_args:
        lines.append(f"init args:        {len(c.init_args)} word(s) after -- (not for the kernel)")
    return lines


def _boot_hugepages(c: KernelCmdline) -> str:
    if isinstance(c.hugepages, Unknown):
        return str(c.hugepages)
    return ", ".join(
        f"{r.pages} x {_pages(r.size_kb) if r.size_kb else 'default size'}" for r in c.hugepages
    )


def _knobs(k: KernelReport) -> list[str]:
    return [
        f"sched_rt_runtime_us: {show(k.rt_runtime_us)}"
        + (" (unlimited)" if k.rt_runtime_us == -1 else ""),
        f"sched_rt_period_us:  {show(k.rt_period_us)}",
        f"timer_migration:     {show(k.timer_migration)}",
        f"nmi_watchdog:        {show(k.nmi_watchdog)}",
        f"vm.stat_interval:    {show(k.stat_interval)}",
        f"KSM run:             {show(k.ksm_run)}",
        f"THP enabled:         {show(k.thp_enabled)}",
        f"THP defrag:          {show(k.thp_defrag)}",
        f"workqueue cpumask:   {show(k.workqueue_cpumask)}",
    ]


def isolated_cpus(report: HostReport) -> CpuSet:
    """CPUs isolated now or by the command line (whatever of both is known)."""
    cpus = CpuSet()
    for value in (
        report.kernel.isolated,
        report.kernel.nohz_full,
        report.cmdline if isinstance(report.cmdline, Unknown) else report.cmdline.isolcpus,
    ):
        if isinstance(value, CpuSet):
            cpus |= value
    return cpus


def irqs_on(irqs: tuple[Irq, ...], cpus: CpuSet) -> list[Irq]:
    """IRQs whose effective affinity (or, if unknown, affinity) touches ``cpus``."""
    hits = []
    for irq in irqs:
        where = irq.effective if isinstance(irq.effective, CpuSet) else irq.affinity
        if isinstance(where, CpuSet) and not where.isdisjoint(cpus):
            hits.append(irq)
    return hits


def _irqs(r: HostReport) -> list[str]:
    i = r.irqs
    lines = [
        f"default affinity: {show(i.default_affinity)}",
        f"irqbalance:       running {show(i.irqbalance_running)}; "
        f"banned CPUs {show(i.irqbalance_banned)}"
        + (f" (from {i.irqbalance_config})" if i.irqbalance_config else ""),
    ]
    if isinstance(i.irqs, Unknown):
        return [f"IRQs:             {i.irqs}", *lines]
    isolated = isolated_cpus(r)
    lines.insert(0, f"IRQs:             {len(i.irqs)}")
    if not isolated:
        lines.append("on isolated CPUs: n/a (no CPU is isolated)")
        return lines
    hits = irqs_on(i.irqs, isolated)
    lines.append(f"on isolated CPUs: {len(hits)} touch {isolated.format()}")
    for irq in hits:
        lines.append(
            f"  IRQ {irq.irq} {irq.name or '(no action)'}: affinity {show(irq.affinity)}, "
            f"effective {show(irq.effective)}"
        )
    return lines


def _group(values: dict[int, str]) -> str:
    by_value: dict[str, list[int]] = {}
    for cpu, value in values.items():
        by_value.setdefault(value, []).append(cpu)
    return "; ".join(f"{v} on CPUs {CpuSet(cpus).format()}" for v, cpus in by_value.items())


def _state(s: IdleState) -> str:
    return f"{s.name}({s.latency_us}us{', disabled' if s.disabled else ''})"


def _power(p: PowerReport) -> list[str]:
    if p.cpufreq:
        lines = [
            f"cpufreq driver:   {show(p.cpufreq_driver)}",
            f"governors:        {_group({c: show(g) for c, g in p.governors.items()})}",
        ]
    else:
        lines = ["cpufreq:          none (no CPU has a cpufreq policy)"]
    lines.append(f"cpuidle driver:   {show(p.idle_driver)}")
    lines.append(f"cpuidle governor: {show(p.idle_governor)}")
    if isinstance(p.idle_states, Unknown):
        lines.append(f"idle states:      {p.idle_states}")
    elif not p.idle_states:
        lines.append("idle states:      none exposed")
    else:
        states = {c: " ".join(map(_state, s)) or "none" for c, s in p.idle_states.items()}
        lines.append(f"idle states:      {_group(states)}")
    return lines


def _cgroups(p: ProcessReport) -> list[str]:
    lines = [f"version:          {show(p.cgroup_version)}"]
    if not isinstance(p.cgroup_mounts, Unknown):
        for m in p.cgroup_mounts:
            what = ",".join(m.controllers) if m.controllers else m.fstype
            lines.append(f"  {m.path} ({what})")
    rt = show(p.rt_group_sched)
    if p.rt_group_sched is True:
        rt += (
            f" ({p.rt_group_path}): a new group gets no RT budget, so libvirt cannot "
            "give vCPUs SCHED_FIFO unless that is handled"
        )
    lines.append(f"RT group sched:   {rt}")
    return lines


def _limits(p: ProcessReport) -> list[str]:
    caps = p.capabilities
    if isinstance(caps, Unknown):
        lines = [f"capabilities:     {caps}"]
    else:
        lines = [
            f"{name + ':':<18}{show(name in caps)}"
            for name in ("CAP_SYS_NICE", "CAP_IPC_LOCK", "CAP_SYS_RESOURCE")
        ]
    lines.append(f"memlock soft:     {_bytes(p.memlock_soft)}")
    lines.append(f"memlock hard:     {_bytes(p.memlock_hard)}")
    return lines


def _devices(r: HostReport) -> list[str]:
    lines = [f"/dev/kvm:         {'present' if r.process.kvm_present else 'missing'}"]
    if isinstance(r.topology, Unknown):
        return [*lines, f"NICs:             {r.topology}"]
    for nic in r.topology.nics:
        node = "no NUMA affinity" if nic.node is None else f"NUMA node {nic.node}"
        kind = "device" if nic.physical else "virtual"
        lines.append(f"NIC {nic.name}: {kind}, {node}")
    return lines
