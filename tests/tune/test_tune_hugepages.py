"""Guest hugepages on fake trees: per RT node, at least N, shortfalls, refusals, rollback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rtkvm.errors import InputError
from rtkvm.hostfs import HostFS
from rtkvm.tune.engine import Tuning, rollback
from rtkvm.tune.fakes import (
    StingyHostFS,
    differences,
    snapshot,
    write_tuning_host,
)
from rtkvm.tune.journal import Journal
from rtkvm.tune.model import Status
from rtkvm.tune.simkernel import SimulatedHostFS, SimulatedProcessControl
from rtkvm.tune.system import RecordingRunner

MakeTuning = Callable[..., Tuning]
ONLY = ("hugepages:*",)


def pool(root: Path, node: int) -> Path:
    return root / f"sys/devices/system/node/node{node}/hugepages/hugepages-2048kB/nr_hugepages"


def three_nodes(root: Path) -> None:
    """CPUs 0-1, 2-3, 4-5 on nodes 0, 1, 2; the plan's RT vCPUs 1-2 are on nodes 0 and 1."""
    write_tuning_host(root, cpus=6, numa_nodes=3)


def test_plan_one_change_per_rt_vcpu_node(tmp_path: Path, make_tuning: MakeTuning) -> None:
    three_nodes(tmp_path)
    tuning = make_tuning(tmp_path, fs=HostFS(tmp_path), only=ONLY, guest_hugepages=1024)
    changes = tuning.changes()
    assert [(c.target, c.before, c.after, c.needed) for c in changes] == [
        (
            f"/sys/devices/system/node/node{n}/hugepages/hugepages-2048kB/nr_hugepages",
            "0\n",
            "1024",
            True,
        )
        for n in (0, 1)
    ]
    assert "never swapped" in changes[0].why


def test_apply_verify_rollback_is_byte_identical(tmp_path: Path, make_tuning: MakeTuning) -> None:
    three_nodes(tmp_path)
    before = snapshot(tmp_path)
    tuning = make_tuning(tmp_path, guest_hugepages=64)
    result = tuning.apply()
    assert result.short == []
    assert [pool(tmp_path, n).read_text().strip() for n in range(3)] == ["64", "64", "0"]
    checks = [c for c in tuning.verify() if c.setting == "hugepages:guest"]
    assert [(c.status, c.expected) for c in checks] == [(Status.OK, ">= 64")] * 2
    fs = SimulatedHostFS(tmp_path)
    assert rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner()).failed == []
    assert differences(before, snapshot(tmp_path)) == []


def test_extra_pages_of_the_data_plane_are_ok(tmp_path: Path, make_tuning: MakeTuning) -> None:
    three_nodes(tmp_path)
    tuning = make_tuning(tmp_path, only=ONLY, guest_hugepages=64)
    tuning.apply()
    pool(tmp_path, 0).write_text("96\n")  # the switch added 32 pages on top while it runs
    assert {c.status for c in tuning.verify()} == {Status.OK}
    again = tuning.apply()
    assert again.written == [] and pool(tmp_path, 0).read_text() == "96\n"  # never lowered


def test_kernel_granting_fewer_pages_is_reported(tmp_path: Path, make_tuning: MakeTuning) -> None:
    three_nodes(tmp_path)
    before = snapshot(tmp_path)
    fs = StingyHostFS(tmp_path, limit=40)
    tuning = make_tuning(tmp_path, fs=fs, only=ONLY, guest_hugepages=64)
    result = tuning.apply()
    assert len(result.written) == 2 and len(result.short) == 2
    assert "got 40 of 64 hugepages on NUMA node 0" in result.short[0]
    assert "hugepagesz=2M hugepages=" in result.short[0] and "free memory" in result.short[0]
    checks = tuning.verify()
    assert {c.status for c in checks} == {Status.DRIFT}
    assert "fewer than 64" in checks[0].note and checks[0].actual == "40"
    assert rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner()).failed == []
    assert differences(before, snapshot(tmp_path)) == []


def test_too_many_pages_are_refused(tmp_path: Path, make_tuning: MakeTuning) -> None:
    write_tuning_host(tmp_path, numa_nodes=2, node_mem_kb=4 * 1024 * 1024)
    before = snapshot(tmp_path)
    tuning = make_tuning(tmp_path)
    tuning.guest_hugepages = 2000  # 4000 MiB of a 4096 MiB node
    with pytest.raises(InputError, match=r"more than 90% of its 4096 MiB; at most 1843 fit"):
        tuning.apply()
    tuning.guest_hugepages = -1
    with pytest.raises(InputError, match="give a number of hugepages >= 0"):
        tuning.changes()
    assert differences(before, snapshot(tmp_path)) == []


def test_not_requested_changes_nothing(tmp_path: Path, make_tuning: MakeTuning) -> None:
    three_nodes(tmp_path)
    tuning = make_tuning(tmp_path)
    (change,) = [c for c in tuning.changes() if c.setting == "hugepages:guest"]
    assert change.unsupported is not None and change.unsupported.startswith("not requested")
    result = tuning.apply()
    assert any("not requested" in n for n in result.notes)
    assert [pool(tmp_path, n).read_text() for n in range(3)] == ["0\n"] * 3
    assert not any(e.setting == "hugepages:guest" for e in Journal(HostFS(tmp_path)).entries())


def test_profile_without_guest_hugepages_refuses_the_option(
    tmp_path: Path, make_tuning: MakeTuning
) -> None:
    write_tuning_host(tmp_path)
    assert not [
        c for c in make_tuning(tmp_path, profile="realtime").changes() if "hugepages" in c.setting
    ]
    tuning = make_tuning(tmp_path, profile="realtime", guest_hugepages=8)
    with pytest.raises(InputError, match="--profile realtime-virtual-host"):
        tuning.changes()
