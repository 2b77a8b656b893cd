"""Hugepage reservation per NUMA node on a fake sysfs, and its restore."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtkvm.dataplane import hugepages
from rtkvm.errors import DataplaneError
from rtkvm.hostfs import HostFS


def _pool(root: Path, node: int, total: int, free: int) -> Path:
    d = root / hugepages.pool_path(node, 2048).lstrip("/")
    d.mkdir(parents=True)
    (d / "nr_hugepages").write_text(f"{total}\n")
    (d / "free_hugepages").write_text(f"{free}\n")
    return d


class KernelLikeFS(HostFS):
    """A fake sysfs does not allocate: make free_hugepages follow writes, as the kernel does."""

    def write(self, host_path: str, text: str) -> None:
        super().write(host_path, text)
        if host_path.endswith("/nr_hugepages"):
            super().write(host_path.replace("nr_hugepages", "free_hugepages"), text)


def test_reserve_and_restore(tmp_path: Path) -> None:
    d = _pool(tmp_path, 0, 10, 10)
    fs = KernelLikeFS(tmp_path, writable=True)
    res = hugepages.reserve(fs, {0: 256}, 2048)
    assert (d / "nr_hugepages").read_text() == "266"
    assert res.original == {0: 10} and res.added == {0: 256}
    hugepages.restore(fs, res)
    assert (d / "nr_hugepages").read_text() == "10"


def test_kernel_falls_short_rolls_back(tmp_path: Path) -> None:
    d = _pool(tmp_path, 0, 0, 0)  # free stays 0: the kernel allocated nothing
    with pytest.raises(DataplaneError, match="too fragmented"):
        hugepages.reserve(HostFS(tmp_path, writable=True), {0: 256}, 2048)
    assert (d / "nr_hugepages").read_text() == "0"


def test_missing_pool(tmp_path: Path) -> None:
    with pytest.raises(DataplaneError, match="NUMA node 3"):
        hugepages.reserve(HostFS(tmp_path, writable=True), {3: 1}, 2048)
