"""Kernel files that show one thing and accept another; a fake tree that answers like a kernel;
a rollback that converges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtkvm.errors import HostWriteError
from rtkvm.host.kernel import selected
from rtkvm.tune.engine import rollback
from rtkvm.tune.fakes import write_task, write_tuning_host
from rtkvm.tune.journal import Journal
from rtkvm.tune.kernelfiles import displays_as, restorable, selector_accepts
from rtkvm.tune.simkernel import SimulatedHostFS, SimulatedProcessControl
from rtkvm.tune.system import RecordingRunner

THP = "/sys/kernel/mm/transparent_hugepage/enabled"


@pytest.mark.parametrize(
    ("display", "word"),
    [
        ("always [madvise] never\n", "madvise"),
        ("[always] madvise never", "always"),
        ("always defer defer+madvise [madvise] never\n", "madvise"),
        ("[none] mq-deadline\n", "none"),
        ("madvise\n", None),
        ("always [madvise] [never]\n", None),
        ("1\n", None),
        ("", None),
    ],
)
def test_selected_word(display: str, word: str | None) -> None:
    assert selected(display) == word


def test_restorable_and_displays_as() -> None:
    assert restorable(THP, "always [madvise] never\n") == "madvise\n"
    assert restorable("/proc/sys/vm/stat_interval", "1\n") == "1\n"
    assert restorable("/sys/fs/cgroup/cgroup.subtree_control", "cpu io\n") == "cpu io\n"
    assert displays_as("always [madvise] never\n", "madvise\n")
    assert not displays_as("always madvise [never]\n", "madvise\n")


def test_selector_accepts_only_its_choices() -> None:
    assert selector_accepts("always [madvise] never\n", "never\n") == "always madvise [never]\n"
    assert selector_accepts("always [madvise] never\n", "always [madvise] never") is None
    assert selector_accepts("always [madvise] never\n", "sometimes") is None


def test_simulated_tree_refuses_what_the_kernel_refuses(tmp_path: Path) -> None:
    write_tuning_host(tmp_path, cgroup="v1", cpus=4)
    (tmp_path / "sys/devices/system/cpu/possible").write_text("0-7\n")  # 4 online of 8
    fs = SimulatedHostFS(tmp_path, refuse_irqs={0})
    with pytest.raises(HostWriteError, match="Invalid argument"):
        fs.write(THP, "always [madvise] never\n")  # what the journal used to write back
    fs.write(THP, "never")
    assert fs.read(THP) == "always madvise [never]\n"
    group = "/sys/fs/cgroup/cpuset/rtkvm-x"
    assert fs.make_dirs(group) == [group]
    assert fs.read(f"{group}/cpuset.cpus") == "\n"  # control files come with the directory
    with pytest.raises(HostWriteError, match="Invalid argument"):
        fs.write(f"{group}/cpuset.cpus", "2-7")  # outside the parent's 0-3
    with pytest.raises(HostWriteError, match="out of range"):
        fs.write(f"{group}/cpuset.cpus", "0-4095")  # beyond the CPUs this machine can have
    fs.write(f"{group}/cpuset.cpus", "2-3")
    proc = SimulatedProcessControl(fs)
    with pytest.raises(HostWriteError, match="No space left on device"):
        proc.attach(300, "/sys/fs/cgroup/cpuset", "/rtkvm-x", "cpuset")  # mems not set yet
    fs.write(f"{group}/cpuset.mems", "0")
    proc.attach(300, "/sys/fs/cgroup/cpuset", "/rtkvm-x", "cpuset")
    assert fs.read(f"{group}/cgroup.procs") == "300\n"
    with pytest.raises(HostWriteError, match="busy"):
        fs.remove_dir(group)  # a group with tasks
    proc.attach(300, "/sys/fs/cgroup/cpuset", "/", "cpuset")
    fs.remove_dir(group)  # takes its control files along, as rmdir on cgroupfs does
    assert not (tmp_path / group.lstrip("/")).exists()
    with pytest.raises(HostWriteError, match="Input/output error"):
        fs.write("/proc/irq/0/smp_affinity", "1")
    with pytest.raises(HostWriteError):
        SimulatedHostFS("/")  # never on the real host


def _applied(tmp_path: Path, make_tuning, only: tuple[str, ...]) -> SimulatedHostFS:  # type: ignore[no-untyped-def]
    write_tuning_host(tmp_path, cgroup="v1")
    make_tuning(tmp_path, only=only).apply()
    return SimulatedHostFS(tmp_path)


def test_thp_is_journaled_and_restored_by_its_selected_word(tmp_path: Path, make_tuning) -> None:  # type: ignore[no-untyped-def]
    fs = _applied(tmp_path, make_tuning, ("sysfs:*",))
    assert fs.read(THP) == "always madvise [never]\n"
    [entry] = [e for e in Journal(fs).entries() if e.target == THP]
    assert entry.original == "madvise\n"
    result = rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner())
    assert result.failed == []
    assert fs.read(THP) == "always [madvise] never\n"


def test_a_journal_of_the_old_format_still_restores_a_selector(tmp_path: Path, make_tuning) -> None:  # type: ignore[no-untyped-def]
    """Journals written before this change hold the display; rollback takes its word."""
    fs = _applied(tmp_path, make_tuning, ("sysfs:*",))
    [entry] = [e for e in Journal(fs).entries() if e.target == THP]
    path = tmp_path / f"run/rtkvm/tune/entries/{entry.seq:08d}.json"
    data = json.loads(path.read_text())
    data["original"] = "always [madvise] never\n"
    path.write_text(json.dumps(data))
    result = rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner())
    assert result.failed == [] and fs.read(THP) == "always [madvise] never\n"


def test_rollback_converges_and_a_second_one_has_nothing_to_do(tmp_path: Path, make_tuning) -> None:  # type: ignore[no-untyped-def]
    fs = _applied(tmp_path, make_tuning, ("cpuset:*",))
    write_task(tmp_path, 700, "late", cgroup={"cpuset": "/rtkvm-housekeeping", "": "/"})
    procs = tmp_path / "sys/fs/cgroup/cpuset/rtkvm-housekeeping/cgroup.procs"
    procs.write_text(procs.read_text() + "700\n")
    first = rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner())
    assert first.failed == []
    assert any("goes with /sys/fs/cgroup/cpuset/rtkvm-housekeeping" in n for n in first.notes)
    assert not (tmp_path / "sys/fs/cgroup/cpuset/rtkvm-housekeeping").exists()
    assert Journal(fs).entries() == []
    second = rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner())
    assert (second.restored, second.failed, second.notes) == (0, [], [])


def test_entries_of_a_directory_already_gone_are_closed(tmp_path: Path, make_tuning) -> None:  # type: ignore[no-untyped-def]
    """The issue's stuck state: the group was removed, its file entries stayed behind."""
    fs = _applied(tmp_path, make_tuning, ("cpuset:*",))
    journal = Journal(fs)
    for entry in journal.entries():  # undo everything but the group's file entries, by hand
        if entry.kind == "cgroup":
            SimulatedProcessControl(fs).attach(
                entry.pid or 0, entry.cgroup_mount or "", "/", "cpuset"
            )
    for name in ("rtkvm-housekeeping", "rtkvm-rt", "rtkvm-dataplane"):
        fs.remove_dir(f"/sys/fs/cgroup/cpuset/{name}")
    for entry in journal.entries():
        if entry.kind in ("mkdir", "cgroup") or "cpuset." not in entry.target:
            journal.discard(entry)
    left = journal.entries()
    assert left and all(e.kind == "file" for e in left)
    result = rollback(fs, Journal(fs), SimulatedProcessControl(fs), RecordingRunner())
    assert result.failed == [] and Journal(fs).entries() == []


def test_forget_drops_an_entry_without_restoring_it(tmp_path: Path, make_tuning) -> None:  # type: ignore[no-untyped-def]
    fs = _applied(tmp_path, make_tuning, ("sysfs:*",))
    [entry] = [e for e in Journal(fs).entries() if e.target == THP]
    result = rollback(
        fs,
        Journal(fs),
        SimulatedProcessControl(fs),
        RecordingRunner(),
        forget=frozenset({entry.seq}),
    )
    assert result.failed == [] and Journal(fs).entries() == []
    assert any(n.startswith("forgotten without restoring") for n in result.notes)
    assert fs.read(THP) == "always madvise [never]\n"  # left as the operator decided
