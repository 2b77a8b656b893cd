"""The deterministic newc writer: round trip, determinism, and GNU cpio reads it."""

from __future__ import annotations

import shutil
import stat
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtkvm.image.cpio import Entry, read_newc, with_parents, write_newc


def _entries() -> list[Entry]:
    return [
        Entry.file("usr/bin/tool", b"\x7fELF" + bytes(range(200)), 0o755),
        Entry.symlink("bin/sh", "busybox"),
        Entry.file("init", b"#!/bin/sh\n", 0o755),
        Entry.chardev("dev/console", 5, 1),
    ]


def test_same_entries_in_any_order_give_the_same_bytes() -> None:
    a = write_newc(_entries(), mtime=0)
    b = write_newc(list(reversed(_entries())), mtime=0)
    assert a == b
    assert write_newc(_entries(), mtime=1) != a  # the mtime is in the headers


def test_parents_are_added_and_sorted_before_children() -> None:
    paths = [e.path for e in with_parents(_entries())]
    assert paths == sorted(paths)
    for parent in ("usr", "usr/bin", "bin", "dev"):
        assert parent in paths


def test_round_trip_keeps_modes_and_data() -> None:
    members = {path: (mode, data) for path, mode, data in read_newc(write_newc(_entries(), 0))}
    assert members["init"] == (stat.S_IFREG | 0o755, b"#!/bin/sh\n")
    assert members["bin/sh"] == (stat.S_IFLNK | 0o777, b"busybox")
    assert stat.S_ISCHR(members["dev/console"][0])
    assert stat.S_ISDIR(members["usr/bin"][0])


@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.binary(max_size=64)))
def test_round_trip_property(files: dict[str, bytes]) -> None:
    entries = [Entry.file(f"d/{name}", data) for name, data in files.items()]
    back = {p: d for p, _, d in read_newc(write_newc(entries, 0)) if p.startswith("d/")}
    assert back == {f"d/{name}": data for name, data in files.items()}


@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio (apt package cpio) absent")
def test_gnu_cpio_lists_the_archive() -> None:
    out = subprocess.run(
        ["cpio", "-t", "--quiet"],
        input=write_newc(_entries(), 0),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert out.split() == [e.path for e in with_parents(_entries())]
