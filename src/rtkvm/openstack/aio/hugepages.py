"""Hugepages for the all-in-one's Nova guests: held and mounted by ``up``, given back by ``down``.

An RT flavor's memory lives on 2 MiB pages (``hw:mem_page_size=2048``); Nova
counts a host's free pages per NUMA node and libvirt backs the guest with
files on hugetlbfs. A production host reserves pages at boot and its init
system mounts hugetlbfs; this machine has neither, so ``rtkvm openstack up
--guest-hugepages N`` adds N pages on each NUMA node of the plan's RT vCPU
CPUs (on top of what the nodes had, :mod:`rtkvm.dataplane.hugepages`), mounts
hugetlbfs at /dev/hugepages when nothing is mounted, and records both in the
stack's ``run/hugepages.json`` so that ``down`` gives back exactly that.
libvirtd finds hugetlbfs mounts only when it starts: :func:`ensure` says when
it must be restarted. This module must not start or stop services.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict
from pathlib import Path

from rtkvm.dataplane import hugepages
from rtkvm.dataplane.quirks import hugetlbfs_mounts
from rtkvm.errors import AllInOneError
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS

SIZE_KB = 2048
MOUNT_POINT = "/dev/hugepages"


class GuestHugepages:
    def __init__(self, fs: HostFS, state_file: Path) -> None:
        self.fs = fs
        self.state_file = state_file

    def _state(self) -> dict[str, object]:
        try:
            loaded: dict[str, object] = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        return loaded

    def _save(self, state: dict[str, object]) -> None:
        self.state_file.write_text(json.dumps(state) + "\n")

    def reserved(self) -> int:
        """Pages per node the stack holds now."""
        added = self._state().get("added", {})
        return max(added.values(), default=0) if isinstance(added, dict) else 0

    def ensure(self, pages: int, plan: PartitionPlan) -> tuple[list[str], bool]:
        """Hold ``pages`` per RT node (more or fewer than before); (actions, newly mounted)."""
        actions: list[str] = []
        state = self._state()
        if self.reserved() != pages:
            self.release_pages(state)
            if pages > 0:
                topology = read_topology(self.fs)
                nodes = sorted({n.id for n in topology.nodes if n.cpus & plan.rt_vcpu})
                reservation = hugepages.reserve(self.fs, {n: pages for n in nodes}, SIZE_KB)
                state.update(asdict(reservation))
                actions.append(
                    f"reserved {pages} x 2 MiB hugepages on NUMA node(s) "
                    f"{', '.join(map(str, nodes))} for Nova's guests"
                )
            self._save(state)
        mounted = False
        if pages > 0 and not hugetlbfs_mounts(self.fs.read("/proc/mounts")):
            Path(MOUNT_POINT).mkdir(parents=True, exist_ok=True)
            _run(["mount", "-t", "hugetlbfs", "nodev", MOUNT_POINT])
            state["mounted"] = MOUNT_POINT
            self._save(state)
            actions.append(f"mounted hugetlbfs at {MOUNT_POINT} (libvirt backs guests there)")
            mounted = True
        return actions, mounted

    def release_pages(self, state: dict[str, object]) -> None:
        added = state.pop("added", None)
        original = state.pop("original", None)
        size_kb = state.pop("size_kb", SIZE_KB)
        if isinstance(added, dict) and isinstance(original, dict) and isinstance(size_kb, int):
            hugepages.restore(
                self.fs,
                hugepages.Reservation(
                    size_kb,
                    {int(k): int(v) for k, v in original.items()},
                    {int(k): int(v) for k, v in added.items()},
                ),
            )

    def release(self) -> list[str]:
        """Give back the pages and unmount what ``ensure`` mounted; what could not be done."""
        state = self._state()
        problems: list[str] = []
        self.release_pages(state)
        point = state.pop("mounted", None)
        if isinstance(point, str):
            users = hugepages.users(self.fs)
            if users:
                problems.append(f"{point} left mounted: in use by {', '.join(users)}")
                state["mounted"] = point
            else:
                try:
                    _run(["umount", point])
                except AllInOneError as exc:
                    problems.append(str(exc))
                    state["mounted"] = point
        if state:
            self._save(state)
        else:
            self.state_file.unlink(missing_ok=True)
        return problems


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AllInOneError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
