"""OvsDpdk.start on a fake host: a failure half-way gives the hugepages back (fake runner)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.hugepages import pool_path
from rtkvm.dataplane.layout import DataplaneCpus, compute_layout
from rtkvm.dataplane.ovs import OvsDpdk
from rtkvm.dataplane.settings import load_settings
from rtkvm.errors import DataplaneError
from rtkvm.net.model import HostWiring

from .fakes import KernelLikeFS, write_host_file

SETTINGS = load_settings()


class FailingRunner:
    """Records commands; fails the one that creates the database."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def run(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> str:
        self.commands.append(list(args))
        if "create" in args:
            raise DataplaneError("ovsdb-tool create ... failed: No space left on device")
        return ""


def test_failed_start_restores_hugepages(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for path in vars(SETTINGS.binaries).values():
        write_host_file(root, path, "")
    for driver in SETTINGS.required_drivers:
        write_host_file(root, f"{SETTINGS.drivers_dir}/{driver.file}", "")
    write_host_file(root, "/proc/sys/kernel/sched_rt_runtime_us", "950000\n")
    write_host_file(root, "/proc/sys/kernel/sched_rt_period_us", "1000000\n")
    write_host_file(root, "/proc/self/cgroup", "1:cpu:/\n")
    write_host_file(root, "/sys/fs/cgroup/cpu/cpu.rt_runtime_us", "950000\n")
    write_host_file(root, "/proc/mounts", "nodev /dev/hugepages hugetlbfs rw 0 0\n")
    pool = pool_path(0, 2048)
    for leaf, value in (("nr_hugepages", "3"), ("free_hugepages", "3")):
        write_host_file(root, f"{pool}/{leaf}", value + "\n")
    fs = KernelLikeFS(root)
    cpus = DataplaneCpus(CpuSet([1]), CpuSet([0]), CpuSet([0]))
    layout = compute_layout(
        SETTINGS, cpus, node_of_cpu={0: 0, 1: 0}, nodes=[0], networks=[],
        wiring=HostWiring(), socket_dir=str(tmp_path / "vhost"),
    )  # fmt: skip
    runner = FailingRunner()
    ovs = OvsDpdk(SETTINGS, tmp_path / "run", fs, runner)
    with pytest.raises(DataplaneError, match="No space left on device"):
        ovs.start(layout)
    assert (root / pool.lstrip("/") / "nr_hugepages").read_text() == "3"
    assert not ovs.state_file.exists()  # everything undone, nothing left to undo
    assert runner.commands[0][:2] == [SETTINGS.binaries.ovsdb_tool, "create"]
