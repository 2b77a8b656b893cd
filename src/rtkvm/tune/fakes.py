"""Test doubles for the tuning engine, shipped so that tests and demos need no real host.

- :func:`write_task` lays out /proc/PID/{stat,status,comm,cgroup} and the
  task/TID copies the way the kernel shows a thread.
  (:class:`rtkvm.tune.simkernel.SimulatedProcessControl` changes them as the
  kernel would.)
- :class:`RejectingHostFS` is a writable HostFS whose chosen paths reject
  writes (EIO), like a sysfs file or an IRQ that cannot move; running as
  root makes file permissions useless for that.
- :func:`write_tuning_host` builds a fake root with every file tuning touches;
  :func:`snapshot` and :func:`differences` prove a root is as it was.

This module must not touch the real host: everything lives under a root.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from rtkvm.cpuset import CpuSet
from rtkvm.errors import HostWriteError
from rtkvm.tune.simkernel import SimulatedHostFS
from rtkvm.tune.system import PF_KTHREAD, PF_NO_SETAFFINITY

_STAT_FIELDS = 52


def _stat_line(tid: int, comm: str, flags: int, priority: int, policy: int) -> str:
    rest = ["0"] * (_STAT_FIELDS - 2)
    rest[0] = "S"
    rest[1] = "1"
    rest[6] = str(flags)
    rest[37] = str(priority)
    rest[38] = str(policy)
    return f"{tid} ({comm}) {' '.join(rest)}\n"


def write_task(
    root: Path,
    pid: int,
    comm: str,
    *,
    tid: int | None = None,
    kthread: bool = False,
    bound: bool = False,
    policy: int = 0,
    priority: int = 0,
    cpus: str = "0-3",
    cgroup: Mapping[str, str] | None = None,
) -> None:
    """Write a thread (``tid``, default the process itself) into a fake /proc."""
    tid = pid if tid is None else tid
    flags = (PF_KTHREAD if kthread else 0) | (PF_NO_SETAFFINITY if bound else 0)
    stat = _stat_line(tid, comm, flags, priority, policy)
    status = f"Name:\t{comm}\nPid:\t{tid}\nCpus_allowed_list:\t{cpus}\n"
    base = root / "proc" / str(pid)
    for directory in ([base] if tid == pid else []) + [base / "task" / str(tid)]:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "stat").write_text(stat)
        (directory / "status").write_text(status)
        (directory / "comm").write_text(comm + "\n")
    lines = cgroup if cgroup is not None else {"cpuset": "/", "": "/"}
    text = "".join(
        f"0::{path}\n" if ctrl == "" else f"{i + 1}:{ctrl}:{path}\n"
        for i, (ctrl, path) in enumerate(lines.items())
    )
    (base / "cgroup").write_text(text)


class RejectingHostFS(SimulatedHostFS):
    """A simulated tree on which writes to ``reject`` paths fail like a refusing kernel file."""

    def __init__(self, root: str | os.PathLike[str], reject: Iterable[str]) -> None:
        super().__init__(root)
        self.reject = frozenset(reject)

    def write(self, host_path: str, text: str) -> None:
        if host_path in self.reject:
            raise HostWriteError(host_path, "Input/output error")
        super().write(host_path, text)


class StingyHostFS(SimulatedHostFS):
    """A simulated tree whose hugepage pools grant at most ``limit`` pages (fragmented memory)."""

    def __init__(self, root: str | os.PathLike[str], limit: int) -> None:
        super().__init__(root)
        self.limit = limit

    def write(self, host_path: str, text: str) -> None:
        if host_path.endswith("/nr_hugepages") and text.strip().isdigit():
            text = str(min(int(text), self.limit)) + "\n"
        super().write(host_path, text)


def _put(root: Path, path: str, text: str) -> None:
    local = root / path.lstrip("/")
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(text)


def write_tuning_host(
    root: Path,
    *,
    cpus: int = 4,
    cgroup: str | None = "v1",
    grub: bool = True,
    irqs: Iterable[int] = (0, 1, 8, 24, 25),
    irqbalance: bool = True,
    irqbalance_running: bool = False,
    cpufreq: bool = True,
    cpuidle: bool = True,
    kvm_loaded: bool = True,
    numa_nodes: int = 1,
    node_mem_kb: int = 16 * 1024 * 1024,
) -> None:
    """Lay out the kernel and config files the tuning engine reads and writes.

    ``cgroup``: "v1" (cpuset hierarchy at /sys/fs/cgroup/cpuset), "v2" (cgroup2
    at /sys/fs/cgroup with the cpuset controller), or None (no cpuset).
    ``numa_nodes``: the CPUs split evenly over that many nodes, each with
    ``node_mem_kb`` of memory and an empty 2 MiB hugepage pool.
    """
    everything = CpuSet(range(cpus))
    full_mask = everything.format_mask()
    files = {
        "/proc/sys/kernel/sched_rt_runtime_us": "950000\n",
        "/proc/sys/kernel/sched_rt_period_us": "1000000\n",
        "/proc/sys/kernel/timer_migration": "1\n",
        "/proc/sys/vm/stat_interval": "1\n",
        "/proc/sys/kernel/nmi_watchdog": "1\n",
        "/proc/cmdline": "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro quiet\n",
        "/proc/interrupts": "           CPU0\n"
        + "".join(f"{n:>3}:          1   IO-APIC   {n}-edge      dev{n}\n" for n in irqs),
        "/proc/irq/default_smp_affinity": f"{full_mask}\n",
        "/sys/kernel/mm/ksm/run": "1\n",
        "/sys/kernel/mm/transparent_hugepage/enabled": "always [madvise] never\n",
        "/sys/kernel/mm/transparent_hugepage/defrag": (
            "always defer defer+madvise [madvise] never\n"
        ),
        "/sys/devices/virtual/workqueue/cpumask": f"{full_mask}\n",
        "/sys/devices/system/machinecheck/machinecheck0/ignore_ce": "0\n",
        "/sys/devices/system/cpu/online": f"{everything.format()}\n",
    }
    for n in irqs:
        files[f"/proc/irq/{n}/smp_affinity"] = f"{full_mask}\n"
    for cpu in range(cpus):
        base = f"/sys/devices/system/cpu/cpu{cpu}"
        if cpufreq:
            files[f"{base}/cpufreq/scaling_governor"] = "powersave\n"
        if cpuidle:
            for index, (name, latency) in enumerate((("POLL", 0), ("C1", 2), ("C6", 133))):
                files[f"{base}/cpuidle/state{index}/name"] = f"{name}\n"
                files[f"{base}/cpuidle/state{index}/latency"] = f"{latency}\n"
                files[f"{base}/cpuidle/state{index}/disable"] = "0\n"
    per_node = max(cpus // numa_nodes, 1)
    for node in range(numa_nodes):
        base = f"/sys/devices/system/node/node{node}"
        files[f"{base}/cpulist"] = f"{CpuSet(range(node * per_node, (node + 1) * per_node))}\n"
        files[f"{base}/meminfo"] = (
            f"Node {node} MemTotal:       {node_mem_kb} kB\n"
            f"Node {node} MemFree:        {node_mem_kb // 2} kB\n"
        )
        for name in ("nr_hugepages", "free_hugepages", "surplus_hugepages"):
            files[f"{base}/hugepages/hugepages-2048kB/{name}"] = "0\n"
    if grub:
        files["/etc/default/grub"] = (
            "# If you change this file, run 'update-grub' afterwards.\n"
            "GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n"
            'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX="console=ttyS0"\n'
        )
    if irqbalance:
        files["/etc/default/irqbalance"] = "# irqbalance configuration\n#IRQBALANCE_ONESHOT=\n"
        files["/usr/sbin/irqbalance"] = ""
    if kvm_loaded:
        files["/sys/module/kvm/parameters/kvmclock_periodic_sync"] = "Y\n"
        files["/sys/module/kvm/parameters/nx_huge_pages"] = "auto\n"
    mounts = "proc /proc proc rw 0 0\nsysfs /sys sysfs rw 0 0\n"
    if cgroup == "v1":
        mounts += "cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0\n"
        mounts += "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
        files["/sys/fs/cgroup/cpuset/cpuset.cpus"] = f"{everything.format()}\n"
        files["/sys/fs/cgroup/cpuset/cpuset.mems"] = "0\n"
        files["/sys/fs/cgroup/cpuset/cpuset.sched_load_balance"] = "1\n"
        files["/sys/fs/cgroup/cpuset/cgroup.procs"] = ""
        files["/sys/fs/cgroup/unified/cgroup.controllers"] = "\n"
    elif cgroup == "v2":
        mounts += "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"
        files["/sys/fs/cgroup/cgroup.controllers"] = "cpuset cpu io memory pids\n"
        files["/sys/fs/cgroup/cgroup.subtree_control"] = "memory pids\n"
        files["/sys/fs/cgroup/cpuset.cpus.effective"] = f"{everything.format()}\n"
        files["/sys/fs/cgroup/cpuset.mems.effective"] = "0\n"
    files["/proc/mounts"] = mounts
    for path, text in files.items():
        _put(root, path, text)
    for d in ("/run", "/var/lib", "/etc/modprobe.d"):
        (root / d.lstrip("/")).mkdir(parents=True, exist_ok=True)
    write_task(root, 1, "init", cpus=everything.format())
    write_task(root, 2, "kthreadd", kthread=True, cpus=everything.format())
    for cpu in range(cpus):
        write_task(root, 10 + cpu, f"ksoftirqd/{cpu}", kthread=True, bound=True, cpus=str(cpu))
        write_task(root, 20 + cpu, f"ktimers/{cpu}", kthread=True, bound=True, cpus=str(cpu))
    write_task(root, 30, "kswapd0", kthread=True, cpus=everything.format())
    write_task(root, 31, "rcuop/1", kthread=True, cpus=everything.format())
    write_task(root, 300, "sshd", cpus=everything.format())
    write_task(root, 400, "ovs-vswitchd", cpus=everything.format())
    write_task(root, 400, "pmd-c03/id:9", tid=401, cpus="3")
    if irqbalance_running:
        write_task(root, 500, "irqbalance", cpus=everything.format())
    if cgroup == "v1":  # the root group lists every process, as the kernel shows it
        pids = sorted(int(p.name) for p in (root / "proc").iterdir() if p.name.isdigit())
        _put(root, "/sys/fs/cgroup/cpuset/cgroup.procs", "".join(f"{p}\n" for p in pids))


Snapshot = dict[str, bytes | None]


def snapshot(root: Path) -> Snapshot:
    """Every file's bytes and every directory (None) under a root, by relative path."""
    out: Snapshot = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = None if path.is_dir() and not path.is_symlink() else path.read_bytes()
    return out


def differences(a: Snapshot, b: Snapshot) -> list[str]:
    """Relative paths that differ between two snapshots (content, presence or type)."""
    missing = b"<missing>"
    return sorted(k for k in set(a) | set(b) if a.get(k, missing) != b.get(k, missing))
