"""Capture: copies exactly what inspection reads, replays to the same report, stays small."""

from __future__ import annotations

import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtkvm.cli.main import cli
from rtkvm.errors import InputError
from rtkvm.host.capture import MANIFEST, capture_host, read_manifest
from rtkvm.host.facts import host_facts
from rtkvm.host.inspect import inspect_host
from rtkvm.hostfs import HostFS
from rtkvm.serialize import to_jsonable
from rtkvm.testing.kernel_files import write_tuned_2node

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts"


def _facts_json(root: Path) -> object:
    return to_jsonable(host_facts(inspect_host(HostFS(root))))


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    write_tuned_2node(root)
    return root


def test_replay_gives_the_same_facts(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    result = capture_host(HostFS(source), dest)
    assert result.files > 50 and result.skipped == ()
    assert result.placeholders == 0  # the synthetic /dev/kvm is a regular file
    assert _facts_json(dest) == _facts_json(source)


def test_only_touched_files_are_copied(source: Path, tmp_path: Path) -> None:
    decoy = source / "sys/devices/system/cpu/cpu0/cache/index0/size"
    decoy.parent.mkdir(parents=True)
    decoy.write_text("32K\n")
    (source / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    dest = tmp_path / "dest"
    fs = HostFS(source)
    result = capture_host(fs, dest)
    copied = {
        "/" + str(p.relative_to(dest))
        for p in dest.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    assert not (dest / "etc/passwd").exists()
    assert not (dest / "sys/devices/system/cpu/cpu0/cache").exists()
    assert copied <= fs.touched()
    assert len(copied) == result.files


def test_device_nodes_become_placeholders_and_odd_files_are_skipped(
    source: Path, tmp_path: Path
) -> None:
    (source / "dev/kvm").unlink()
    (source / "dev/kvm").symlink_to("/dev/null")  # a character device without mknod
    (source / "proc/cmdline").unlink()
    sock = socket.socket(socket.AF_UNIX)  # a socket file: neither read nor copied
    sock.bind(str(source / "proc/cmdline"))
    sock.close()
    dest = tmp_path / "dest"
    result = capture_host(HostFS(source), dest)
    assert result.placeholders == 1
    assert (dest / "dev/kvm").is_file() and (dest / "dev/kvm").read_text() == ""
    assert result.skipped == (("/proc/cmdline", "neither a file, a directory nor a device"),)
    assert not (dest / "proc/cmdline").exists()
    assert "skipped: /proc/cmdline" in (dest / MANIFEST).read_text()


def test_virtual_nics_survive_as_directories(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    capture_host(HostFS(source), dest)
    assert (dest / "sys/class/net/lo").is_dir()
    assert (dest / "sys/class/net/br0").is_dir()
    assert not (dest / "sys/class/net/lo/device").exists()


def test_manifest(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    result = capture_host(HostFS(source), dest, now=when)
    manifest = read_manifest(dest)
    assert manifest["source"] == str(source)
    assert manifest["captured"] == "2026-01-02T03:04:05Z"
    assert manifest["kernel"] == "6.1.0-18-rt-amd64"
    assert manifest["preempt_rt"] == "True"
    assert manifest["files"] == f"{result.files} ({result.bytes} bytes)"


def test_read_manifest_of_a_non_capture(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not an rtkvm capture"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("kind", ["file", "nonempty"])
def test_refuses_a_used_destination(source: Path, tmp_path: Path, kind: str) -> None:
    dest = tmp_path / "dest"
    if kind == "file":
        dest.write_text("x")
    else:
        dest.mkdir()
        (dest / "old").write_text("x")
    with pytest.raises(InputError, match="give a new"):
        capture_host(HostFS(source), dest)


def test_an_empty_existing_directory_is_fine(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    assert capture_host(HostFS(source), dest).files > 0


def test_capture_of_a_capture_is_identical(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    shutil.copytree(FIXTURES / "this-machine", tmp_path / "src")
    capture_host(HostFS(tmp_path / "src"), first)
    capture_host(HostFS(first), second)
    for path in first.rglob("*"):
        if path.is_file() and path.name != MANIFEST:
            assert (second / path.relative_to(first)).read_text() == path.read_text()
    assert _facts_json(second) == _facts_json(FIXTURES / "this-machine")


def test_capture_of_the_real_host_is_small_and_replays(tmp_path: Path) -> None:
    """Reads the real host (never writes it): must stay small and replay the same kernel."""
    dest = tmp_path / "real"
    result = capture_host(HostFS("/"), dest)
    assert result.files < 5000
    assert result.bytes < 2 * 1024 * 1024
    real = inspect_host(HostFS("/"))
    replay = inspect_host(HostFS(dest))
    assert replay.kernel.release == real.kernel.release
    assert replay.online == real.online
    assert replay.cmdline == real.cmdline
    assert replay.process.cgroup_version == real.process.cgroup_version


def test_cli_capture(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    result = CliRunner().invoke(cli, ["host", "capture", str(dest), "--root", str(source)])
    assert result.exit_code == 0, result.output
    assert "captured " in result.output and f"--root {dest}" in result.output
    assert (dest / MANIFEST).is_file()
