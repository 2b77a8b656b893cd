"""A server's NoCloud seed as a small FAT disk labelled CIDATA, made without mounting it.

:func:`make_seed` writes ``meta-data``, ``user-data`` and ``network-config``
(their contents come from :mod:`rtkvm.seed.nocloud`) into a new FAT file
with ``mkfs.fat`` and ``mcopy``; the guest sees it as a read-only virtio
disk and cloud-init finds it by its label. The file is readable by root
only (user-data may hold secrets). This module must not decide what the
seed says.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from rtkvm.errors import GuestError
from rtkvm.seed.nocloud import LABEL

SEED_KIB = 2048
"""Room for 64 KiB of user-data and the rest, with FAT's overhead."""

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)


def _check(done: subprocess.CompletedProcess[str], what: str, dest: Path) -> None:
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip() or f"exit {done.returncode}"
        raise GuestError(f"making the seed {dest} failed at {what}: {why}")


def make_seed(dest: Path, files: dict[str, bytes], *, run: Runner = _run) -> None:
    """Write ``files`` (name -> bytes) into a new FAT seed at ``dest``."""
    partial = dest.with_name(dest.name + ".part")
    partial.unlink(missing_ok=True)
    try:
        _check(run(["mkfs.fat", "-n", LABEL, "-C", str(partial), str(SEED_KIB)]), "mkfs.fat", dest)
        partial.chmod(0o600)
        with tempfile.TemporaryDirectory(prefix="rtkvm-seed-") as scratch:
            for name, data in files.items():
                source = Path(scratch) / name
                source.write_bytes(data)
                _check(run(["mcopy", "-i", str(partial), str(source), f"::{name}"]), name, dest)
        partial.replace(dest)
    except OSError as exc:
        raise GuestError(f"making the seed {dest} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
