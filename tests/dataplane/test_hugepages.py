"""Hugepage reservation per NUMA node on a fake sysfs, and its restore."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtkvm.dataplane import hugepages
from rtkvm.errors import DataplaneError
from rtkvm.hostfs import HostFS

from .fakes import KernelLikeFS


def _pool(root: Path, node: int, total: int, free: int) -> Path:
    d = root / hugepages.pool_path(node, 2048).lstrip("/")
    d.mkdir(parents=True)
    (d / "nr_hugepages").write_text(f"{total}\n")
    (d / "free_hugepages").write_text(f"{free}\n")
    return d


def test_reserve_and_restore(tmp_path: Path) -> None:
    d = _pool(tmp_path, 0, 10, 10)
    fs = KernelLikeFS(tmp_path)
    res = hugepages.reserve(fs, {0: 256}, 2048)
    assert (d / "nr_hugepages").read_text() == "266"
    assert res.original == {0: 10} and res.added == {0: 256}
    hugepages.restore(fs, res)
    assert (d / "nr_hugepages").read_text() == "10"


def test_kernel_falls_short_rolls_back(tmp_path: Path) -> None:
    d = _pool(tmp_path, 0, 0, 0)  # free stays 0: the kernel allocated nothing
    with pytest.raises(DataplaneError, match="too fragmented"):
        hugepages.reserve(HostFS(tmp_path, writable=True), {0: 256}, 2048)
    assert (d / "nr_hugepages").read_text() == "0"  # rolled back


def test_missing_pool(tmp_path: Path) -> None:
    with pytest.raises(DataplaneError, match="NUMA node 3"):
        hugepages.reserve(HostFS(tmp_path, writable=True), {3: 1}, 2048)


def test_top_up_after_another_program_took_pages(tmp_path: Path) -> None:
    d = _pool(tmp_path, 0, 0, 0)
    fs = KernelLikeFS(tmp_path)
    res = hugepages.reserve(fs, {0: 288}, 2048)
    fs.in_use = 73  # e.g. PostgreSQL (huge_pages=try) mapped 73 free pages
    fs.write(hugepages.pool_path(0, 2048) + "/nr_hugepages", "288")
    assert (d / "free_hugepages").read_text() == "215"
    res = hugepages.top_up(fs, res, {0: 288})
    assert res.added == {0: 361}
    assert (d / "nr_hugepages").read_text() == "361"
    hugepages.restore(fs, res)
    # Persistent back to 0; the 73 pages still mapped become surplus, freed when unmapped.
    assert (d / "nr_hugepages").read_text() == "73"
    assert (d / "surplus_hugepages").read_text() == "73"


def test_restore_keeps_pages_others_added_meanwhile(tmp_path: Path) -> None:
    d = _pool(tmp_path, 0, 4, 4)
    fs = KernelLikeFS(tmp_path)
    res = hugepages.reserve(fs, {0: 100}, 2048)
    fs.write(hugepages.pool_path(0, 2048) + "/nr_hugepages", "120")  # someone added 16
    hugepages.restore(fs, res)
    assert (d / "nr_hugepages").read_text() == "20"


def test_users_of_hugepages(tmp_path: Path) -> None:
    for pid, comm, maps in [
        (
            "10",
            "postgres",
            "7f0000000000 default file=/anon_hugepage\\040(deleted) huge dirty=73\n",
        ),
        ("11", "bash", "55d0 default file=/usr/bin/bash mapped=10\n"),
    ]:
        d = tmp_path / "proc" / pid
        d.mkdir(parents=True)
        (d / "numa_maps").write_text(maps)
        (d / "comm").write_text(comm + "\n")
    assert hugepages.users(HostFS(tmp_path)) == ["postgres (1 process)"]


def test_surplus_pages_of_others_stay_surplus(tmp_path: Path) -> None:
    d = _pool(tmp_path, 0, 74, 0)  # 74 pages still mapped by a program, all surplus
    (d / "surplus_hugepages").write_text("74\n")
    fs = KernelLikeFS(tmp_path, in_use=74)
    res = hugepages.reserve(fs, {0: 288}, 2048)
    assert res.original == {0: 0}
    assert (d / "free_hugepages").read_text() == "288"
    hugepages.restore(fs, res)
    assert (d / "nr_hugepages").read_text() == "74"
    assert (d / "surplus_hugepages").read_text() == "74"  # still theirs, not made persistent


def test_pages_reserved_by_others_are_not_available(tmp_path: Path) -> None:
    d = _pool(tmp_path, 0, 288, 288)
    fs = KernelLikeFS(tmp_path)
    (tmp_path / "proc").mkdir(exist_ok=True)
    (tmp_path / "proc" / "meminfo").write_text(
        "HugePages_Total:     288\nHugePages_Free:      288\nHugePages_Rsvd:       58\n"
        "HugePages_Surp:        0\nHugepagesize:       2048 kB\n"
    )
    assert hugepages.reserved_elsewhere(fs, 2048) == 58
    res = hugepages.top_up(fs, hugepages.Reservation(2048, {0: 0}, {0: 288}), {0: 288})
    assert res.added == {0: 346}
    assert (d / "nr_hugepages").read_text() == "346"
