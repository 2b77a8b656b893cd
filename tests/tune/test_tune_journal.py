"""The journal: atomic entries, one sequence across both directories, damage, cleanup."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtkvm.errors import TuneError
from rtkvm.hostfs import HostFS
from rtkvm.tune.journal import Entry, Journal


def test_entries_are_ordered_across_volatile_and_persistent(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "var/lib").mkdir(parents=True)
    fs = HostFS(tmp_path, writable=True)
    journal = Journal(fs)
    a = journal.record(Entry("sysctl:a", "file", "/proc/sys/a", "1\n"))
    b = journal.record(Entry("cmdline:x", "config", "/etc/default/grub", None, persistent=True))
    c = Journal(fs).record(Entry("sysctl:b", "file", "/proc/sys/b", "2\n"))
    assert (a.seq, b.seq, c.seq) == (1, 2, 3)
    assert (tmp_path / "run/rtkvm/tune/entries/00000001.json").is_file()
    assert (tmp_path / "var/lib/rtkvm/tune/entries/00000002.json").is_file()
    assert [e.target for e in Journal(fs).entries()] == [
        "/proc/sys/a",
        "/etc/default/grub",
        "/proc/sys/b",
    ]
    assert not list(tmp_path.rglob("*.rtkvm-tmp"))  # temp files renamed away
    for entry in Journal(fs).entries():
        journal.discard(entry)
    journal.clear()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["lib", "run", "var"]


def test_clear_refuses_while_entries_remain(tmp_path: Path) -> None:
    fs = HostFS(tmp_path, writable=True)
    journal = Journal(fs, "/j/v", "/j/p")
    journal.record(Entry("sysctl:a", "file", "/proc/sys/a", "1\n"))
    with pytest.raises(TuneError, match="roll them back first"):
        journal.clear()


def test_damaged_entry_says_what_to_do(tmp_path: Path) -> None:
    fs = HostFS(tmp_path, writable=True)
    journal = Journal(fs, "/j/v", "/j/p")
    journal.record(Entry("sysctl:a", "file", "/proc/sys/a", "1\n"))
    (tmp_path / "j/v/entries/00000001.json").write_text("{half")
    with pytest.raises(TuneError, match=r"00000001.json is damaged .*delete it"):
        journal.entries()


def test_header_round_trip(tmp_path: Path) -> None:
    fs = HostFS(tmp_path, writable=True)
    journal = Journal(fs, "/j/v", "/j/p")
    assert journal.read_header() is None
    journal.write_header({"profile": "realtime", "refused": ["/proc/irq/0/smp_affinity"]})
    header = journal.read_header()
    assert header is not None
    assert header["profile"] == "realtime" and header["format"] == 1


def test_one_apply_or_rollback_at_a_time(tmp_path: Path) -> None:
    fs = HostFS(tmp_path, writable=True)
    journal = Journal(fs, "/j/v", "/j/p")
    other = Journal(HostFS(tmp_path, writable=True), "/j/v", "/j/p")
    busy = "another `rtkvm host tune --apply` or rollback"
    with journal.locked(), pytest.raises(TuneError, match=busy), other.locked():
        pass  # pragma: no cover - never reached
    with other.locked():  # released when the holder is done
        pass
    journal.clear()
    assert [p.name for p in tmp_path.rglob("*")] == ["j"]
