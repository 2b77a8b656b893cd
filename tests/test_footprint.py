"""The host footprint: the list of what rtkvm creates, held against the code, and its registry."""

from __future__ import annotations

import ast
import stat
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from rtkvm.footprint import FOREIGN, GUEST_DIR, PATHS, READS, TMP_PREFIX, Footprint

SRC = Path(__file__).resolve().parents[1] / "src" / "rtkvm"
HOST_PREFIXES = ("/var/", "/run/", "/etc/", "/tmp/", "/srv/", "/opt/", "/home/", "/root/")
NOT_HOST_CODE = ("testing/", "tune/fakes.py", "footprint.py")
"""Fake trees and the footprint itself: their paths are not what rtkvm writes on a host."""


def _host_path_literals() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(NOT_HOST_CODE):
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            parts: list[str] = []
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                parts = [node.value]
            elif isinstance(node, ast.JoinedStr):  # f"/tmp/rtkvm-rtt-{pid}.csv"
                head = node.values[0] if node.values else None
                if isinstance(head, ast.Constant) and isinstance(head.value, str):
                    parts = [head.value]
            for text in parts:
                text = text.removeprefix("sqlite:///")
                if text.startswith(HOST_PREFIXES) and " " not in text and "\n" not in text:
                    found.append((rel, node.lineno, text))
    return found


def _declared(text: str) -> bool:
    if text.startswith(TMP_PREFIX):
        return True
    if any(text == p.path or text.startswith(f"{p.path}/") for p in PATHS):
        return True
    if any(text == r or text.startswith(f"{r}/") for r in READS):
        return True
    return any(text in f.what for f in FOREIGN)


def _runtime_dirs() -> set[str]:
    data = tomllib.loads(resources.files("rtkvm.data").joinpath("runtime.toml").read_text())
    return {d["path"] for d in data["directory"]}


def test_every_host_path_in_the_code_is_on_the_footprint() -> None:
    """A path the code names outside the checkout is created by rtkvm (PATHS), changed and
    restored (FOREIGN), only read (READS), or one of rtkvm's temporary files."""
    literals = _host_path_literals()
    assert len(literals) > 10  # the scan finds the paths it is meant to
    runtime_dirs = _runtime_dirs()
    undeclared = [
        f"{rel}:{line}: {text}"
        for rel, line, text in literals
        if not _declared(text) and text not in runtime_dirs
    ]
    assert undeclared == [], "add these to rtkvm.footprint (PATHS, FOREIGN or READS)"


def test_footprint_paths_are_rtkvm_s_own_and_say_why() -> None:
    for item in PATHS:
        assert "rtkvm" in item.path, item.path  # never a directory another program owns
        assert item.why and item.created_by
    assert len({p.path for p in PATHS}) == len(PATHS)


def test_ensure_dir_creates_parents_with_the_footprint_mode(tmp_path: Path) -> None:
    made = Footprint(tmp_path).ensure_dir(GUEST_DIR)
    assert made == tmp_path / "var/lib/rtkvm/guests" and made.is_dir()
    assert stat.S_IMODE(made.stat().st_mode) == GUEST_DIR.mode
    assert Footprint(tmp_path).ensure_dir(GUEST_DIR) == made  # idempotent


def test_registry_round_trip_and_forget(tmp_path: Path) -> None:
    fp = Footprint(tmp_path)
    fp.register("switch", "/run/rtkvm/ovs")
    fp.register("netns_peer", "blue ns/with odd chars", uplink="veth0")
    fp.register("netns_peer", "blue ns/with odd chars", uplink="veth1")  # newest wins
    assert fp.registered("switch") == [{"name": "/run/rtkvm/ovs"}]
    assert fp.lookup("netns_peer", "blue ns/with odd chars") == {
        "name": "blue ns/with odd chars",
        "uplink": "veth1",
    }
    assert (tmp_path / "run/rtkvm/registry/switch").is_dir()  # volatile: under /run
    fp.register("account", "user:x", type="user", account="x")
    assert (tmp_path / "var/lib/rtkvm/registry/account").is_dir()  # persistent
    fp.unregister("switch", "/run/rtkvm/ovs")
    fp.unregister("switch", "/never/registered")
    assert fp.registered("switch") == []


def test_a_damaged_record_is_still_listed(tmp_path: Path) -> None:
    fp = Footprint(tmp_path)
    fp.register("switch", "/a")
    record = next((tmp_path / "run/rtkvm/registry/switch").glob("*.json"))
    record.write_text("{not json")
    [entry] = fp.registered("switch")
    assert entry["damaged"] is True


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    from rtkvm.errors import InputError
    from rtkvm.footprint import DATABASE_FILE

    with pytest.raises(InputError, match="is a file"):
        Footprint(tmp_path).ensure_dir(DATABASE_FILE)
