"""What an uploaded disk image is, found by qemu-img, never trusted from its name.

:func:`inspect_image` runs ``qemu-img info --output=json --force-share`` on
the file (no ``-f``: qemu-img probes the format) inside ``prlimit`` limits of
address space and CPU time, the way Nova inspects untrusted images, and
returns :class:`ImageFacts`. An image is refused, with what to change, when:

- its format is not one rtkvm boots (:data:`FORMATS`: raw or qcow2); a raw
  upload that carries a qcow2 header *is* qcow2, and is judged as one;
- it names a backing file or an external data file: either could make QEMU
  open any file on the host (``/etc/shadow``, another tenant's disk);
- qcow2 marks it corrupt;
- its virtual size is over the caller's limit.

This module must not move, store or delete the file (the API's image store
does) and must not decide who may upload.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rtkvm.errors import ImageError, InputError

FORMATS: tuple[str, ...] = ("raw", "qcow2")
"""Disk formats a server boots from: what QEMU's virtio-blk reads without a conversion
rtkvm would have to trust."""

ADDRESS_SPACE_BYTES = 1 << 30
CPU_SECONDS = 30
"""qemu-img's limits on an untrusted header (Nova's are the same: 1 GiB, 30 s); a crafted
image that makes it allocate or loop more is refused, not waited for."""

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=120)


@dataclass(frozen=True)
class ImageFacts:
    """What qemu-img found: the format, the size the guest sees, the bytes on disk."""

    format: Literal["raw", "qcow2"]
    virtual_size: int
    actual_size: int


def info_argv(path: Path) -> list[str]:
    """qemu-img info under prlimit: no format given (probed), shared lock (a guest may
    hold the file), JSON."""
    return [
        "prlimit",
        f"--as={ADDRESS_SPACE_BYTES}",
        f"--cpu={CPU_SECONDS}",
        "--",
        "qemu-img",
        "info",
        "--output=json",
        "--force-share",
        str(path),
    ]


def inspect_image(path: Path, *, max_virtual: int, run: Runner = _run) -> ImageFacts:
    """The facts of the image at ``path``; InputError saying why it is refused.

    ``max_virtual``: the largest virtual size (bytes) accepted.
    """
    try:
        done = run(info_argv(path))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageError(f"cannot run qemu-img on the upload: {exc}") from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise InputError(
            "qemu-img cannot read the upload as a disk image"
            f" ({why[-1] if why else f'exit {done.returncode}'}): upload a raw or qcow2 image"
        )
    try:
        info = json.loads(done.stdout)
    except ValueError:
        raise ImageError(f"qemu-img info gave no JSON: {done.stdout[:200]!r}") from None
    return judge(info, max_virtual=max_virtual)


def judge(info: dict[str, Any], *, max_virtual: int) -> ImageFacts:
    """The facts from qemu-img's JSON, or InputError saying what to change."""
    fmt = str(info.get("format", ""))
    if fmt not in FORMATS:
        raise InputError(
            f"the upload is a {fmt or 'unknown'} image; rtkvm boots {' or '.join(FORMATS)}: "
            f"convert it, e.g. `qemu-img convert -O qcow2 IN OUT`"
        )
    backing = info.get("backing-filename") or info.get("full-backing-filename")
    if backing:
        raise InputError(
            f"the image names a backing file ({backing!r}): a server's disk may read only its "
            "own image; flatten it first (`qemu-img convert -O qcow2 IN OUT`)"
        )
    data = (info.get("format-specific") or {}).get("data") or {}
    if data.get("data-file"):
        raise InputError(
            f"the qcow2 image keeps its data in an external file ({data['data-file']!r}): "
            "convert it into one file (`qemu-img convert -O qcow2 IN OUT`)"
        )
    if data.get("corrupt"):
        raise InputError("qcow2 marks the image corrupt: repair it (`qemu-img check -r all`)")
    virtual = info.get("virtual-size")
    if not isinstance(virtual, int) or virtual <= 0:
        raise InputError(f"the image has no usable virtual size ({virtual!r})")
    if virtual > max_virtual:
        raise InputError(
            f"the image's virtual size is {virtual} bytes ({_gib(virtual)} GiB), over this "
            f"cloud's limit of {max_virtual} bytes ({_gib(max_virtual)} GiB): upload a "
            "smaller disk"
        )
    actual = info.get("actual-size")
    return ImageFacts(
        format="qcow2" if fmt == "qcow2" else "raw",
        virtual_size=virtual,
        actual_size=actual if isinstance(actual, int) else 0,
    )


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.1f}"
