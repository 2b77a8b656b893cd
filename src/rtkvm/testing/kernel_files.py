"""Kernel files of a made-up host: everything inspection reads except topology.

:class:`KernelFiles` describes the non-topology state of a host (command line,
PREEMPT_RT, sysctls, /sys/kernel/mm, workqueue mask, the /proc/irq tree and
/proc/interrupts, cpufreq and cpuidle per CPU, /proc/self/status and limits,
/proc/mounts and cgroup files, irqbalance, /dev/kvm) and :meth:`write` lays
those files under a root for ``HostFS(root)``. :func:`untuned` and
:func:`tuned` give the two states tests need most; :func:`write_tuned_2node`
writes the checked-in ``tuned-2node`` fixture (with the topology from
:mod:`rtkvm.testing.synthetic`).

This module only writes below the directory it is given; it must not touch
the real host nor write topology files itself (synthetic.py owns those).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from rtkvm.cpuset import CpuSet
from rtkvm.host.experiments import RECORD, Trial, record
from rtkvm.host.power import IdleState
from rtkvm.host.process import CAPABILITY_NAMES
from rtkvm.testing.synthetic import SyntheticHost

ALL_CAPS = (1 << len(CAPABILITY_NAMES)) - 1
CAP_SYS_RESOURCE = 1 << CAPABILITY_NAMES.index("CAP_SYS_RESOURCE")

_Mask = Callable[[CpuSet | None], str]

INTEL_IDLE_STATES = (
    IdleState("POLL", 0, False),
    IdleState("C1", 2, False),
    IdleState("C1E", 10, False),
    IdleState("C6", 133, False),
)


@dataclass(frozen=True)
class IrqSpec:
    """One IRQ: its action name, smp_affinity, and effective affinity (None = no file)."""

    name: str
    affinity: CpuSet
    effective: CpuSet | None


@dataclass(frozen=True)
class KernelFiles:
    cpus: CpuSet
    """Online CPUs: per-CPU files are written for these, masks are sized for them."""
    cmdline: str = "BOOT_IMAGE=/vmlinuz-6.1.0-18-amd64 root=/dev/sda1 ro quiet"
    release: str = "6.1.0-18-amd64"
    preempt_rt: bool = False
    isolated: CpuSet = field(default_factory=CpuSet)
    nohz_full: CpuSet | None = None
    """None: the kernel has no NO_HZ_FULL (no nohz_full file)."""
    rt_runtime_us: int = 950000
    rt_period_us: int = 1000000
    timer_migration: int = 1
    nmi_watchdog: int = 1
    stat_interval: int = 1
    ksm_run: int = 0
    thp_enabled: str = "always"
    thp_defrag: str = "madvise"
    workqueue_mask: CpuSet | None = None
    """None: all CPUs."""
    default_irq_affinity: CpuSet | None = None
    """None: all CPUs."""
    irqs: Mapping[int, IrqSpec] = field(default_factory=dict)
    irqbalance_running: bool = True
    irqbalance_config: str | None = "#IRQBALANCE_BANNED_CPULIST=\n"
    """Text of /etc/default/irqbalance; None writes no config."""
    governor: str | None = "powersave"
    """None: no cpufreq."""
    cpufreq_driver: str = "intel_pstate"
    idle_driver: str = "intel_idle"
    idle_states: tuple[IdleState, ...] = INTEL_IDLE_STATES
    cap_eff: int = ALL_CAPS
    memlock: tuple[int | None, int | None] = (8 * 1024 * 1024, 8 * 1024 * 1024)
    cgroup: str = "v2"
    """'v1', 'v2' or 'hybrid'."""
    rt_group_sched: bool = False
    kvm: bool = True
    hugepages: Mapping[int, tuple[int, int]] = field(
        default_factory=lambda: {2048: (0, 0), 1048576: (0, 0)}
    )
    """Global pools: page size kB -> (total, free)."""

    def write(self, root: str | os.PathLike[str]) -> Path:
        """Write the files under ``root`` (created if missing); returns the root."""
        t = _Tree(Path(root))
        words = max(1, (max(self.cpus, default=0) + 32) // 32)
        every = self.cpus

        def mask(cpus: CpuSet | None) -> str:
            return (every if cpus is None else cpus).format_mask(width_words=words)

        variant = "PREEMPT_RT" if self.preempt_rt else "PREEMPT_DYNAMIC"
        t.put("proc/cmdline", self.cmdline)
        t.put("proc/sys/kernel/osrelease", self.release)
        t.put(
            "proc/version",
            f"Linux version {self.release} (debian-kernel@lists.debian.org) "
            f"(gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP {variant} Debian {self.release}",
        )
        if self.preempt_rt:
            t.put("sys/kernel/realtime", "1")
        t.put("proc/sys/kernel/sched_rt_runtime_us", str(self.rt_runtime_us))
        t.put("proc/sys/kernel/sched_rt_period_us", str(self.rt_period_us))
        t.put("proc/sys/kernel/timer_migration", str(self.timer_migration))
        t.put("proc/sys/kernel/nmi_watchdog", str(self.nmi_watchdog))
        t.put("proc/sys/vm/stat_interval", str(self.stat_interval))
        t.put("sys/kernel/mm/ksm/run", str(self.ksm_run))
        t.put("sys/kernel/mm/transparent_hugepage/enabled", _select(self.thp_enabled, _THP))
        t.put("sys/kernel/mm/transparent_hugepage/defrag", _select(self.thp_defrag, _THP_DEFRAG))
        t.put("sys/devices/virtual/workqueue/cpumask", mask(self.workqueue_mask))
        t.put("sys/devices/system/cpu/isolated", self.isolated.format())
        if self.nohz_full is not None:
            t.put("sys/devices/system/cpu/nohz_full", self.nohz_full.format() or "(null)")
        for size_kb, (total, free) in self.hugepages.items():
            t.put(f"sys/kernel/mm/hugepages/hugepages-{size_kb}kB/nr_hugepages", str(total))
            t.put(f"sys/kernel/mm/hugepages/hugepages-{size_kb}kB/free_hugepages", str(free))
        self._write_irqs(t, mask)
        self._write_power(t)
        self._write_process(t)
        return Path(root)

    def _write_irqs(self, t: _Tree, mask: _Mask) -> None:
        t.put("proc/irq/default_smp_affinity", mask(self.default_irq_affinity))
        header = " " * 4 + "".join(f"CPU{cpu}".rjust(11) for cpu in self.cpus)
        rows = [header]
        for number, spec in sorted(self.irqs.items()):
            counts = "".join(f"{0:>11}" for _ in self.cpus)
            rows.append(f"{number:>3}:{counts}  IR-PCI-MSI {number}-edge      {spec.name}")
            base = f"proc/irq/{number}"
            t.put(f"{base}/smp_affinity", mask(spec.affinity))
            t.put(f"{base}/smp_affinity_list", spec.affinity.format())
            if spec.effective is not None:
                t.put(f"{base}/effective_affinity", mask(spec.effective))
        rows.append("NMI:" + "".join(f"{0:>11}" for _ in self.cpus) + "   Non-maskable interrupts")
        t.put("proc/interrupts", "\n".join(rows))
        if self.irqbalance_running:
            t.put("proc/812/comm", "irqbalance")
        t.put("proc/1/comm", "init")
        if self.irqbalance_config is not None:
            t.put("etc/default/irqbalance", self.irqbalance_config.rstrip("\n"))

    def _write_power(self, t: _Tree) -> None:
        base = "sys/devices/system/cpu"
        t.put(f"{base}/cpuidle/current_driver", self.idle_driver)
        t.put(f"{base}/cpuidle/current_governor", "menu")
        for cpu in self.cpus:
            if self.governor is not None:
                t.put(f"{base}/cpu{cpu}/cpufreq/scaling_governor", self.governor)
                t.put(f"{base}/cpu{cpu}/cpufreq/scaling_driver", self.cpufreq_driver)
            for index, state in enumerate(self.idle_states):
                d = f"{base}/cpu{cpu}/cpuidle/state{index}"
                t.put(f"{d}/name", state.name)
                t.put(f"{d}/latency", str(state.latency_us))
                t.put(f"{d}/disable", "1" if state.disabled else "0")

    def _write_process(self, t: _Tree) -> None:
        t.put(
            "proc/self/status",
            "Name:\trtkvm\nState:\tR (running)\nCapInh:\t0000000000000000\n"
            f"CapPrm:\t{self.cap_eff:016x}\nCapEff:\t{self.cap_eff:016x}\n"
            f"CapBnd:\t{self.cap_eff:016x}\nCapAmb:\t0000000000000000",
        )
        soft, hard = ("unlimited" if value is None else str(value) for value in self.memlock)
        t.put(
            "proc/self/limits",
            f"{'Limit':<26}{'Soft Limit':<21}{'Hard Limit':<21}Units     \n"
            f"{'Max stack size':<26}{'8388608':<21}{'unlimited':<21}bytes     \n"
            f"{'Max locked memory':<26}{soft:<21}{hard:<21}bytes     ",
        )
        mounts = [
            "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0",
            "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0",
        ]
        if self.cgroup == "v2":
            mounts.append("cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0")
            t.put("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids")
        else:
            mounts.append("tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0")
            for ctrl in ("cpu,cpuacct", "cpuset", "memory"):
                mounts.append(f"cgroup /sys/fs/cgroup/{ctrl} cgroup rw,nosuid,relatime,{ctrl} 0 0")
                t.put(f"sys/fs/cgroup/{ctrl}/tasks", "1")
            if self.cgroup == "hybrid":
                mounts.append("cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,relatime 0 0")
                t.put("sys/fs/cgroup/unified/cgroup.controllers", "")
            if self.rt_group_sched:
                t.put("sys/fs/cgroup/cpu,cpuacct/cpu.rt_runtime_us", "950000")
                t.put("sys/fs/cgroup/cpu,cpuacct/cpu.rt_period_us", "1000000")
        t.put("proc/mounts", "\n".join(mounts))
        if self.kvm:
            t.put("dev/kvm", "", newline=False)


_THP = ("always", "madvise", "never")
_THP_DEFRAG = ("always", "defer", "defer+madvise", "madvise", "never")


def _select(word: str, choices: tuple[str, ...]) -> str:
    if word not in choices:
        raise ValueError(f"{word!r} is not one of {', '.join(choices)}")
    return " ".join(f"[{c}]" if c == word else c for c in choices)


class _Tree:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def put(self, relative: str, text: str, *, newline: bool = True) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + ("\n" if newline else ""), encoding="utf-8")


# -- the two states tests need ----------------------------------------------------------


def _device_irqs(affinity: CpuSet, count: int) -> dict[int, IrqSpec]:
    """``count`` NIC queue IRQs from 120 up, effective on successive allowed CPUs."""
    allowed = list(affinity)
    return {
        120 + i: IrqSpec(f"ens1f0-TxRx-{i}", affinity, CpuSet([allowed[i % len(allowed)]]))
        for i in range(count)
    }


def untuned(cpus: CpuSet) -> KernelFiles:
    """A stock Debian host: no isolation, RT throttling on, IRQs everywhere."""
    return KernelFiles(cpus=cpus, irqs=_device_irqs(cpus, len(cpus)))


def tuned(cpus: CpuSet, housekeeping: CpuSet) -> KernelFiles:
    """A host tuned like tuned's realtime-virtual-host, housekeeping on ``housekeeping``."""
    iso = (cpus - housekeeping).format()
    hk = housekeeping.format()
    cmdline = (
        "BOOT_IMAGE=/vmlinuz-6.1.0-18-rt-amd64 root=/dev/sda1 ro quiet "
        f"isolcpus=managed_irq,domain,{iso} nohz=on nohz_full={iso} rcu_nocbs={iso} "
        f"irqaffinity={hk} skew_tick=1 tsc=reliable nosoftlockup "
        "processor.max_cstate=1 intel_idle.max_cstate=1 intel_pstate=disable "
        "default_hugepagesz=1G hugepagesz=1G hugepages=8"
    )
    return KernelFiles(
        cpus=cpus,
        cmdline=cmdline,
        release="6.1.0-18-rt-amd64",
        preempt_rt=True,
        isolated=cpus - housekeeping,
        nohz_full=cpus - housekeeping,
        rt_runtime_us=-1,
        timer_migration=0,
        nmi_watchdog=0,
        stat_interval=10,
        ksm_run=2,
        thp_enabled="never",
        thp_defrag="never",
        workqueue_mask=housekeeping,
        default_irq_affinity=housekeeping,
        irqs=_device_irqs(housekeeping, 4),
        irqbalance_config=f"IRQBALANCE_BANNED_CPULIST={iso}\n",
        governor="performance",
        cpufreq_driver="acpi-cpufreq",
        idle_states=tuple(replace(s, disabled=s.latency_us > 2) for s in INTEL_IDLE_STATES),
        memlock=(None, None),
        cgroup="v2",
        hugepages={1048576: (8, 8), 2048: (0, 0)},
    )


TUNED_2NODE = SyntheticHost(
    sockets=2,
    cores_per_socket=4,
    threads_per_core=1,
    nics={"ens1f0": 1},
    virtual_nics=("lo", "br0"),
    mem_kb_per_node=32 * 1024 * 1024,
    hugepages_1g_per_node=4,
)
"""The shape of the ``tuned-2node`` fixture: 2 nodes x 4 CPUs, NIC on node 1."""


TUNED_TRIALS = {
    "sched_fifo": Trial(True, "a child process ran at SCHED_FIFO priority 1"),
    "memlock": Trial(True, "a child raised its memlock limit to unlimited and locked 64 MiB"),
    "kvm_vcpu": Trial(True, "a KVM VM with one vCPU was created (KVM API 12)"),
}
"""What the doctor's experiments answer on a tuned RT host."""


def write_tuned_2node(root: str | os.PathLike[str]) -> Path:
    """Write the ``tuned-2node`` fixture: housekeeping 0-1, CPUs 2-7 isolated, and the
    doctor's experiments recorded as a tuned RT host answers them."""
    TUNED_2NODE.write(root)
    written = tuned(TUNED_2NODE.online, CpuSet([0, 1])).write(root)
    (Path(root) / RECORD.lstrip("/")).write_text(record(TUNED_TRIALS), encoding="utf-8")
    return written
