"""Capture a host: copy exactly the files rtkvm reads into a replayable fake root.

``capture_host(fs, dest)`` runs the full inspection on ``fs`` (the real ``/``
or another root), then copies every path the inspection touched
(``fs.touched()``): regular files with their content, directories as empty
directories, device nodes such as /dev/kvm as empty placeholder files. Paths
that do not exist (probes) are left out; files that cannot be read are
skipped and listed. A MANIFEST (source, date, kernel, counts) is written at
the top of DEST, with the doctor's experiments as the source answered them
(:data:`rtkvm.host.experiments.RECORD`; run live on ``/``, copied from a
captured tree). ``HostFS(dest)`` then reads the same values as the source.

This module must never copy a directory recursively (sysfs and procfs are
huge and full of cycles), never write outside DEST, and never write to the
source.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rtkvm import __version__
from rtkvm.errors import HostReadError, InputError
from rtkvm.host.experiments import RECORD, experiments_for, record
from rtkvm.host.inspect import HostReport, inspect_host
from rtkvm.hostfs import HostFS, Unknown

MANIFEST = "MANIFEST"
MAX_FILE_BYTES = 1024 * 1024
"""Files larger than this are skipped: no file rtkvm reads is anywhere near it."""


@dataclass(frozen=True)
class CaptureResult:
    dest: Path
    files: int
    bytes: int
    directories: int
    placeholders: int
    """Device nodes written as empty files (e.g. /dev/kvm)."""
    absent: int
    """Probed paths that do not exist on the source (nothing to copy)."""
    skipped: tuple[tuple[str, str], ...]
    """(path, reason) of files that exist but could not be copied."""
    report: HostReport


def _check_dest(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise InputError(f"capture destination {dest} is a file; give a new directory")
    if dest.is_dir() and any(dest.iterdir()):
        raise InputError(
            f"capture destination {dest} is not empty; give a new or empty directory "
            "(captures are never merged)"
        )


def capture_host(fs: HostFS, dest: Path, *, now: datetime | None = None) -> CaptureResult:
    """Inspect the host under ``fs`` and copy what was read into ``dest``."""
    dest = Path(dest)
    _check_dest(dest)
    report = inspect_host(fs)
    touched = sorted(fs.touched())
    dest.mkdir(parents=True, exist_ok=True)
    files = size = directories = placeholders = absent = 0
    skipped: list[tuple[str, str]] = []
    made = _Dirs()
    for host_path in touched:
        target = dest.joinpath(*[p for p in host_path.split("/") if p])
        try:
            info = fs.info(host_path)
        except HostReadError as exc:
            skipped.append((host_path, exc.reason))
            continue
        if info is None:
            absent += 1
            directories += _keep_parent(fs, host_path, dest)
            continue
        if info.kind == "dir":
            made.ensure(target)
            directories += 1
        elif info.kind == "device":
            made.ensure(target.parent)
            target.write_bytes(b"")
            placeholders += 1
        elif info.kind != "file":
            skipped.append((host_path, "neither a file, a directory nor a device"))
        elif info.size > MAX_FILE_BYTES:
            skipped.append((host_path, f"larger than {MAX_FILE_BYTES} bytes"))
        else:
            text = fs.read_maybe(host_path)
            if isinstance(text, Unknown):
                skipped.append((host_path, text.reason))
                continue
            made.ensure(target.parent)
            target.write_text(text, encoding="utf-8")
            files += 1
            size += len(text.encode("utf-8"))
    trials = experiments_for(fs, kvm=report.process.kvm_present is True)
    if isinstance(trials, dict):  # what the source's experiments found goes with the tree
        (dest / RECORD.lstrip("/")).write_text(record(trials), encoding="utf-8")
        files += 1
    else:
        skipped.append((RECORD, trials))
    result = CaptureResult(
        dest, files, size, directories, placeholders, absent, tuple(skipped), report
    )
    _write_manifest(result, fs, now or datetime.now(UTC))
    return result


class _Dirs:
    """Creates directories under DEST once each (a big host has thousands of files)."""

    def __init__(self) -> None:
        self._made: set[Path] = set()

    def ensure(self, directory: Path) -> None:
        if directory not in self._made:
            directory.mkdir(parents=True, exist_ok=True)
            self._made.add(directory)


def _keep_parent(fs: HostFS, host_path: str, dest: Path) -> int:
    """Create the deepest existing directory above an absent path; 1 if created.

    A probe such as /sys/class/net/lo/device (absent for a virtual NIC) is how
    inspection learnt that lo exists, so lo must exist in the capture too.
    """
    parts = [p for p in host_path.split("/") if p]
    for depth in range(len(parts) - 1, 0, -1):
        info = fs.info("/" + "/".join(parts[:depth]))
        if info is not None and info.kind == "dir":
            target = dest.joinpath(*parts[:depth])
            if target.is_dir():
                return 0
            target.mkdir(parents=True)
            return 1
        if info is not None:
            return 0
    return 0


def _write_manifest(result: CaptureResult, fs: HostFS, now: datetime) -> None:
    kernel = result.report.kernel
    lines = [
        f"source: {fs.root}",
        f"captured: {now.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"kernel: {kernel.release}",
        f"preempt_rt: {kernel.preempt_rt}",
        f"rtkvm: {__version__}",
        f"files: {result.files} ({result.bytes} bytes)",
        f"directories: {result.directories}",
        f"device placeholders: {result.placeholders}",
    ]
    lines += [f"skipped: {path}: {reason}" for path, reason in result.skipped]
    (result.dest / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_manifest(dest: Path) -> dict[str, str]:
    """The MANIFEST of a capture as ``{key: value}`` (``skipped`` lines joined)."""
    path = Path(dest) / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{dest} has no {MANIFEST}: it is not an rtkvm capture") from None
    manifest: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        manifest[key] = f"{manifest[key]}\n{value}" if key in manifest else value
    return manifest
