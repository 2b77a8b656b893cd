"""Fakes for data plane tests: a host tree writer and a kernel-like hugepage pool."""

from __future__ import annotations

from pathlib import Path

from rtkvm.hostfs import HostFS


def write_host_file(root: Path, path: str, text: str) -> None:
    local = root / path.lstrip("/")
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_text(text)


class KernelLikeFS(HostFS):
    """A fake sysfs that behaves like the kernel's pool: writes set the persistent count.

    ``in_use`` pages are mapped by some program; pages beyond the persistent count
    that are in use are surplus, the rest of the persistent pages are free.
    """

    def __init__(self, root: Path, in_use: int = 0) -> None:
        super().__init__(root, writable=True)
        self.in_use = in_use

    def write(self, host_path: str, text: str) -> None:
        if not host_path.endswith("/nr_hugepages"):
            return super().write(host_path, text)
        persistent = int(text)
        base = host_path.rsplit("/", 1)[0]
        surplus = max(0, self.in_use - persistent)
        super().write(host_path, str(persistent + surplus))
        super().write(f"{base}/surplus_hugepages", str(surplus))
        super().write(f"{base}/free_hugepages", str(max(0, persistent - self.in_use)))
        return None
