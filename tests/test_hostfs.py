"""HostFS: rooted reads, unknowns instead of defaults, recording, guarded writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtkvm.errors import HostReadError, HostWriteError
from rtkvm.hostfs import HostFS, PathInfo, Unknown


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cmdline").write_text("quiet isolcpus=2-3\n")
    (tmp_path / "sys" / "kernel").mkdir(parents=True)
    return tmp_path


def test_reads_are_rooted(root: Path) -> None:
    fs = HostFS(root)
    assert fs.read("/proc/cmdline") == "quiet isolcpus=2-3\n"
    assert fs.read_line("/proc/cmdline") == "quiet isolcpus=2-3"
    assert fs.local("/proc/cmdline") == root / "proc" / "cmdline"


def test_missing_file_raises_or_reads_unknown(root: Path) -> None:
    fs = HostFS(root)
    with pytest.raises(HostReadError, match="/sys/kernel/realtime: does not exist"):
        fs.read("/sys/kernel/realtime")
    value = fs.read_maybe("/sys/kernel/realtime")
    assert value == Unknown("/sys/kernel/realtime", "does not exist")
    assert "unknown" in str(value)
    assert fs.read_maybe("/sys/kernel") == Unknown("/sys/kernel", "is a directory")


def test_listing_and_globs(root: Path) -> None:
    fs = HostFS(root)
    assert fs.listdir("/") == ["proc", "sys"]
    assert fs.glob_names("/proc", "cmd*") == ["cmdline"]
    assert fs.glob_names("/nonexistent", "*") == []
    assert isinstance(fs.listdir_maybe("/nonexistent"), Unknown)
    with pytest.raises(HostReadError, match="is not a directory"):
        fs.listdir("/proc/cmdline")


def test_records_what_it_touched(root: Path) -> None:
    fs = HostFS(root)
    fs.read("/proc/cmdline")
    fs.read_maybe("/sys/kernel/realtime")
    fs.exists("/dev/kvm")
    assert fs.touched() == {"/proc/cmdline", "/sys/kernel/realtime", "/dev/kvm"}


@pytest.mark.parametrize("bad", ["proc/cmdline", "/proc/../etc/shadow", "/../x"])
def test_rejects_relative_and_escaping_paths(root: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="host path"):
        HostFS(root).read(bad)


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(HostReadError, match="root is not a directory"):
        HostFS(tmp_path / "missing")


def test_writes_need_a_writable_hostfs(root: Path) -> None:
    with pytest.raises(HostWriteError, match="read-only"):
        HostFS(root).write("/proc/cmdline", "x")
    fs = HostFS(root, writable=True)
    fs.write("/proc/cmdline", "new")
    assert (root / "proc" / "cmdline").read_text() == "new"
    with pytest.raises(HostWriteError, match="does not exist"):
        fs.write("/no/such/dir/file", "x")


def test_is_real_host(root: Path) -> None:
    assert HostFS("/").is_real_host
    assert not HostFS(root).is_real_host


def test_a_fifo_under_the_root_is_an_error_not_a_hang(root: Path) -> None:
    import os

    os.mkfifo(root / "proc" / "trap")
    fs = HostFS(root)
    with pytest.raises(HostReadError, match="not a regular file"):
        fs.read("/proc/trap")
    assert fs.read_maybe("/proc/trap") == Unknown("/proc/trap", "is not a regular file")
    info = fs.info("/proc/trap")
    assert info is not None and info.kind == "other"


def test_info_tells_files_dirs_and_absent_paths(root: Path) -> None:
    fs = HostFS(root)
    cmdline = fs.info("/proc/cmdline")
    assert cmdline is not None and (cmdline.kind, cmdline.size) == ("file", 19)
    proc = fs.info("/proc")
    assert proc is not None and proc.kind == "dir"
    assert fs.info("/dev/kvm") is None
    assert HostFS("/").info("/dev/null") == PathInfo("device", 0)
