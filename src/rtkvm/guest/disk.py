"""A server's own disk: a qcow2 copy-on-write overlay over its image's cached base.

:func:`make_overlay` runs ``qemu-img create -f qcow2 -F FMT -b BASE DEST SIZE``:
the base is read-only and shared by every server of that image on the host;
what a guest writes lands in its overlay. The backing format is always given
(``-F``), so QEMU never probes the base. :func:`remove_overlay` deletes the
overlay and nothing else. This module must not fetch images, choose sizes or
touch the base.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from rtkvm.errors import GuestError

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=120)


def overlay_argv(base: Path, base_format: str, dest: Path, size_bytes: int) -> list[str]:
    return [
        "qemu-img",
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        base_format,
        "-b",
        str(base),
        str(dest),
        str(size_bytes),
    ]


def make_overlay(
    base: Path, base_format: str, dest: Path, size_bytes: int, *, run: Runner = _run
) -> None:
    """Create ``dest`` over ``base`` (a partial file from an interrupted try is replaced)."""
    if not base.is_absolute():
        raise GuestError(f"the base image path {base} must be absolute: QEMU resolves it later")
    partial = dest.with_name(dest.name + ".part")
    partial.unlink(missing_ok=True)
    try:
        done = run(overlay_argv(base, base_format, partial, size_bytes))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GuestError(f"cannot run qemu-img to make the disk {dest}: {exc}") from None
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise GuestError(
            f"qemu-img could not make the disk {dest} over {base}: "
            f"{(done.stderr or done.stdout).strip() or f'exit {done.returncode}'}"
        )
    partial.replace(dest)


def remove_overlay(dest: Path) -> bool:
    """Delete the overlay; True when there was one."""
    try:
        dest.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise GuestError(f"cannot delete the disk {dest}: {exc}") from None
    return True
