"""Probe whether KVM can actually boot a Linux guest here, bounded and cached.

/dev/kvm can exist and QEMU can say "kvm support: enabled" while a Linux
guest hangs at boot (seen on nested Firecracker hosts). The probe boots the
RT guest image under ``-accel kvm`` with a timeout and watches the serial
output for the image's ready marker. The result is cached in a JSON file keyed
by the QEMU binary, the host kernel release and the guest kernel, so it runs
once per combination. This module must not choose the accelerator for a guest
(rtkvm.runtime.facts does) nor leave a QEMU process behind.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rtkvm.hostfs import HostFS, Unknown
from rtkvm.image.build import sha256

READY_MARKER = "RTKVM-READY"
DEFAULT_TIMEOUT = 25.0
"""Seconds; under TCG the RT image prints its marker in about 4 s, under working KVM in 1-2 s."""


@dataclass(frozen=True)
class ProbeResult:
    booted: bool
    detail: str
    key: str
    seconds: float


def probe_key(fs: HostFS, qemu: str, kernel: Path) -> str:
    release = fs.read_line("/proc/sys/kernel/osrelease")
    host = "unknown" if isinstance(release, Unknown) else release
    return f"{qemu}|host={host}|guest={sha256(kernel)[:16]}"


def boot_probe(
    qemu: str, kernel: Path, initramfs: Path, timeout: float = DEFAULT_TIMEOUT
) -> tuple[bool, str, float]:
    """Boot under KVM until the ready marker or the timeout; never leaves QEMU running."""
    argv = [
        qemu, "-accel", "kvm", "-smp", "1", "-m", "256", "-nographic", "-no-reboot",
        "-nodefaults", "-serial", "stdio", "-monitor", "none",
        "-kernel", str(kernel), "-initrd", str(initramfs),
        "-append", "console=ttyS0 quiet panic=-1 rtkvm.after=poweroff",
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    seconds = round(time.monotonic() - started, 2)
    text = out.decode("utf-8", "replace")
    if READY_MARKER in text:
        return True, f"a Linux guest booted under KVM in {seconds:.1f}s", seconds
    tail = [line for line in text.strip().splitlines() if "warning" not in line][-1:]
    why = "timed out" if seconds >= timeout else f"QEMU exited {proc.returncode}"
    last = f"; last output: {tail[0][:120]!r}" if tail else ""
    return (
        False,
        f"a Linux guest did not boot under KVM ({why} after {seconds:.0f}s{last})",
        seconds,
    )


def kvm_probe(
    fs: HostFS,
    kernel: Path,
    initramfs: Path,
    cache_file: Path,
    *,
    qemu: str = "qemu-system-x86_64",
    timeout: float = DEFAULT_TIMEOUT,
    refresh: bool = False,
) -> ProbeResult:
    """The cached probe result for this host/QEMU/guest, probing if needed."""
    key = probe_key(fs, qemu, kernel)
    if not refresh and cache_file.exists():
        try:
            cached = json.loads(cache_file.read_text("utf-8"))
            if cached.get("key") == key:
                return ProbeResult(**cached)
        except (json.JSONDecodeError, TypeError):
            pass  # a corrupt cache is probed again
    if not fs.exists("/dev/kvm"):
        result = ProbeResult(False, "/dev/kvm does not exist", key, 0.0)
    else:
        booted, detail, seconds = boot_probe(qemu, kernel, initramfs, timeout)
        result = ProbeResult(booted, detail, key, seconds)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    cache_file.write_text(json.dumps(asdict(result), indent=2) + "\n", "utf-8")
    return result


def cached_result(cache_file: Path) -> ProbeResult | None:
    """The last probe result, whatever it was keyed on (for status displays)."""
    try:
        return ProbeResult(**json.loads(cache_file.read_text("utf-8")))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None


def needs_probe(
    fs: HostFS, kernel: Path, cache_file: Path, qemu: str = "qemu-system-x86_64"
) -> bool:
    """Whether kvm_probe would boot a guest (no cached result for this host/QEMU/kernel)."""
    cached = cached_result(cache_file)
    return cached is None or cached.key != probe_key(fs, qemu, kernel)
