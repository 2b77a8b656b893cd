"""A writable HostFS over a captured or synthetic tree that answers writes as a kernel does.

Plain files take any text; kernel files do not, and a tuning engine tested on
plain files passes where the real host fails. On a tree that is not the real
host (``--root DIR``, tests) :class:`SimulatedHostFS` applies the rules that
matter to tuning:

- a selector (``always [madvise] never``) takes only one of its words and then
  shows it in brackets; anything else is "Invalid argument";
- a cgroup cpuset directory (v1 or v2) gets its control files when it is made, its
  ``cpuset.cpus`` / ``cpuset.mems`` refuse CPUs or nodes outside its parent's,
  and ``rmdir`` takes the control files along but refuses a group with tasks
  ("Device or resource busy"); moving a task into a group whose
  ``cpuset.mems`` is empty is "No space left on device" (see
  :class:`rtkvm.tune.fakes.SimulatedProcessControl`, which asks :func:`attach_refusal`);
- ``cgroup.subtree_control`` takes ``+name``/``-name`` and shows the enabled list;
- IRQs named in ``refuse_irqs`` refuse a new affinity ("Input/output error"),
  as IRQ 0 and per-CPU IRQs do.

This module must not be used on the real host (the kernel answers there) and
must not decide what to write.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from rtkvm.cpuset import CpuSet
from rtkvm.errors import CpuListError, HostWriteError
from rtkvm.host.kernel import selected
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.tune.kernelfiles import CONTROLLER_LIST_FILE, selector_accepts

_IRQ_AFFINITY = re.compile(r"^/proc/irq/(\d+)/smp_affinity(_list)?$")
_CPUSET_LISTS = ("cpuset.cpus", "cpuset.mems")
V1_CONTROL_FILES = {
    "cpuset.cpus": "\n",
    "cpuset.mems": "\n",
    "cpuset.sched_load_balance": "1\n",
    "cgroup.procs": "",
    "tasks": "",
}


V2_CONTROL_FILES = {
    "cpuset.cpus": "\n",
    "cpuset.mems": "\n",
    "cpuset.cpus.partition": "member\n",
    "cgroup.procs": "",
}
_GROUP_MARKERS = ("cpuset.cpus", "cgroup.procs", "cgroup.controllers")


class SimulatedHostFS(HostFS):
    """Writable fake tree with the kernel's answers to the writes tuning makes."""

    def __init__(self, root: str | os.PathLike[str], *, refuse_irqs: Iterable[int] = ()) -> None:
        super().__init__(root, writable=True)
        if self.is_real_host:
            raise HostWriteError(str(root), "the real host's kernel answers for itself")
        self.refuse_irqs = frozenset(refuse_irqs)

    def _is_cpuset_group(self, host_path: str) -> bool:
        parent = host_path.rstrip("/").rsplit("/", 1)[0]
        return host_path.startswith("/sys/fs/cgroup/") and any(
            self.is_file(f"{parent}/{name}") for name in _GROUP_MARKERS
        )

    def _version(self, directory: str) -> str:
        parent = directory.rstrip("/").rsplit("/", 1)[0]
        return "v2" if self.is_file(f"{parent}/cgroup.controllers") else "v1"

    def write(self, host_path: str, text: str) -> None:
        irq = _IRQ_AFFINITY.match(host_path)
        if irq and int(irq.group(1)) in self.refuse_irqs:
            raise HostWriteError(host_path, "Input/output error")
        live = self.read_maybe(host_path) if self.is_file(host_path) else None
        if isinstance(live, str) and selected(live) is not None:
            shown = selector_accepts(live, text)
            if shown is None:
                raise HostWriteError(host_path, "Invalid argument")
            text = shown
        directory, _, name = host_path.rpartition("/")
        if name == CONTROLLER_LIST_FILE and isinstance(live, str):
            text = self._controller_edit(host_path, directory, live, text)
        elif name in _CPUSET_LISTS and self._is_cpuset_group(directory):
            self._check_within_parent(host_path, directory, name, text)
        super().write(host_path, text)

    def _controller_edit(self, host_path: str, directory: str, live: str, text: str) -> str:
        """cgroup.subtree_control takes ``+name``/``-name`` edits and shows the result."""
        offered = self.read_maybe(f"{directory}/cgroup.controllers")
        order = offered.split() if isinstance(offered, str) else []
        enabled = set(live.split())
        for word in text.split():
            name = word[1:]
            if word[:1] not in "+-" or not word[1:] or (order and name not in order):
                raise HostWriteError(host_path, "Invalid argument")
            if word[0] == "+":
                enabled.add(name)
            else:
                enabled.discard(name)
        return " ".join(n for n in order if n in enabled) + "\n"

    def _check_within_parent(self, host_path: str, directory: str, name: str, text: str) -> None:
        above = directory.rsplit("/", 1)[0]
        parent = self.read_maybe(f"{above}/{name}")
        if isinstance(parent, Unknown) or not parent.strip():  # a v2 root shows .effective
            parent = self.read_maybe(f"{above}/{name}.effective")
        try:
            wanted = CpuSet.parse(text.strip())
            allowed = CpuSet.parse(parent.strip()) if isinstance(parent, str) else None
        except CpuListError:
            raise HostWriteError(host_path, "Invalid argument") from None
        if name == "cpuset.cpus":
            possible = self.read_maybe("/sys/devices/system/cpu/possible")
            if isinstance(possible, Unknown):
                possible = self.read_maybe("/sys/devices/system/cpu/online")
            if (
                isinstance(possible, str)
                and wanted
                and max(wanted) > max(CpuSet.parse(possible.strip()))
            ):
                raise HostWriteError(host_path, "Numerical result out of range")
        if allowed is not None and not wanted <= allowed:
            raise HostWriteError(host_path, "Invalid argument")

    def make_dirs(self, host_path: str) -> list[str]:
        created = super().make_dirs(host_path)
        for directory in created:
            if self._is_cpuset_group(directory):
                files = V1_CONTROL_FILES if self._version(directory) == "v1" else V2_CONTROL_FILES
                for name, content in files.items():
                    self.local(f"{directory}/{name}").write_text(content)
        return created

    def remove_dir(self, host_path: str) -> None:
        if self.is_dir(host_path) and self._is_cpuset_group(host_path):
            procs = self.read_maybe(f"{host_path}/cgroup.procs")
            if isinstance(procs, str) and procs.split():
                raise HostWriteError(host_path, "Device or resource busy")
            for name in self.listdir(host_path):
                if not self.is_dir(f"{host_path}/{name}"):
                    self.local(f"{host_path}/{name}").unlink()
        super().remove_dir(host_path)


def attach_refusal(fs: HostFS, mount: str, group: str, controller: str) -> str | None:
    """Why the kernel refuses to move a task into ``group``, or None (v1 cpuset rules)."""
    if controller != "cpuset" or group in ("", "/"):
        return None
    mems = fs.read_maybe(f"{mount}{group.rstrip('/')}/cpuset.mems")
    if isinstance(mems, Unknown) or not mems.strip():
        return "No space left on device"
    return None


class SimulatedProcessControl:
    """ProcessControl over a simulated or captured /proc tree: it edits the files the
    kernel would change (stat, status, cgroup, cgroup.procs) instead of calling
    sched_setscheduler / sched_setaffinity, and refuses threads listed in ``refuse``."""

    def __init__(self, fs: HostFS, *, refuse: Iterable[int] = ()) -> None:
        self.fs = fs
        self.refuse = frozenset(refuse)

    def _task_dirs(self, tid: int) -> list[str]:
        found = [
            f"/proc/{pid}/task/{tid}"
            for pid in self.fs.listdir("/proc")
            if pid.isdigit() and self.fs.is_dir(f"/proc/{pid}/task/{tid}")
        ]
        if not found:
            raise HostWriteError(f"/proc/{tid}", "No such process")
        if self.fs.is_dir(f"/proc/{tid}/task/{tid}"):
            found.append(f"/proc/{tid}")
        return found

    def _check(self, tid: int, what: str) -> None:
        if tid in self.refuse:
            raise HostWriteError(f"/proc/{tid} ({what})", "Invalid argument")

    def set_sched(self, tid: int, policy: int, priority: int) -> None:
        self._check(tid, "scheduler")
        for directory in self._task_dirs(tid):
            text = self.fs.read(f"{directory}/stat")
            head, _, tail = text.rpartition(")")
            fields = tail.split()
            fields[37], fields[38] = str(priority), str(policy)
            self.fs.write(f"{directory}/stat", f"{head}) {' '.join(fields)}\n")

    def set_affinity(self, tid: int, cpus: CpuSet) -> None:
        self._check(tid, "affinity")
        for directory in self._task_dirs(tid):
            lines = self.fs.read(f"{directory}/status").splitlines()
            lines = [
                f"Cpus_allowed_list:\t{cpus.format()}"
                if ln.startswith("Cpus_allowed_list:")
                else ln
                for ln in lines
            ]
            self.fs.write(f"{directory}/status", "\n".join(lines) + "\n")

    def attach(self, pid: int, mount: str, group: str, controller: str) -> None:
        """Move a process: its /proc/PID/cgroup line and both groups' cgroup.procs."""
        self._check(pid, "cgroup")
        if not self.fs.is_dir(f"{mount}{group.rstrip('/')}" or "/"):
            raise HostWriteError(f"{mount}{group}/cgroup.procs", "No such file or directory")
        refusal = attach_refusal(self.fs, mount, group, controller)
        if refusal is not None:
            raise HostWriteError(f"{mount}{group}/cgroup.procs", refusal)
        path = f"/proc/{pid}/cgroup"
        if not self.fs.is_file(path):
            raise HostWriteError(path, "No such process")
        out: list[str] = []
        old = "/"
        for line in self.fs.read(path).splitlines():
            parts = line.split(":", 2)
            names = parts[1].split(",") if parts[1] else []
            if (controller and controller in names) or (not controller and parts[0] == "0"):
                old = parts[2]
                line = f"{parts[0]}:{parts[1]}:{group}"
            out.append(line)
        self.fs.write(path, "\n".join(out) + "\n")
        self._membership(f"{mount}{old.rstrip('/')}/cgroup.procs", pid, add=False)
        self._membership(f"{mount}{group.rstrip('/')}/cgroup.procs", pid, add=True)

    def _membership(self, procs: str, pid: int, *, add: bool) -> None:
        if not self.fs.is_file(procs):
            return
        pids = {int(w) for w in self.fs.read(procs).split()} - {pid}
        if add:
            pids.add(pid)
        self.fs.local(procs).write_text("".join(f"{p}\n" for p in sorted(pids)))
