"""The runtime facts a guest is created with: accelerator and quirks, probed once.

Combines the bounded, cached KVM boot probe (which needs the built guest
image) with the quirk detectors, and resolves the accelerator asked for
(``auto``, ``kvm`` or ``tcg``) into the one to use, with a warning when the
choice contradicts what was detected. This module must not change the host
or define guests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rtkvm.errors import ImageError
from rtkvm.footprint import KVM_PROBE_FILE
from rtkvm.hostfs import HostFS
from rtkvm.runtime import kvmprobe
from rtkvm.runtime.quirks import Quirk, detect_all

DEFAULT_PROBE_CACHE = Path(KVM_PROBE_FILE.path)


@dataclass(frozen=True)
class RuntimeFacts:
    accel: Literal["kvm", "tcg"]
    quirks: tuple[Quirk, ...]
    warnings: tuple[str, ...]


def runtime_facts(
    fs: HostFS,
    kernel: Path,
    initramfs: Path,
    *,
    want: Literal["auto", "kvm", "tcg"] = "auto",
    probe_cache: Path = DEFAULT_PROBE_CACHE,
    qemu: str = "qemu-system-x86_64",
) -> RuntimeFacts:
    """Probe KVM (cached) unless TCG is forced, detect quirks, choose the accelerator."""
    warnings: list[str] = []
    if want == "tcg":
        booted: bool | None = None
        detail = "not probed: TCG asked for"
    else:
        missing = [str(f) for f in (kernel, initramfs) if not f.is_file()]
        if missing:
            raise ImageError(
                f"the guest image is not built ({', '.join(missing)} missing): the KVM probe "
                "boots it; run `rtkvm image build` first"
            )
        probe = kvmprobe.kvm_probe(fs, kernel, initramfs, probe_cache, qemu=qemu)
        booted, detail = probe.booted, probe.detail
    if want == "auto":
        accel: Literal["kvm", "tcg"] = "kvm" if booted else "tcg"
    else:
        accel = want
        if want == "kvm" and booted is False:
            warnings.append(f"KVM asked for although {detail}: the guest will probably hang")
    quirks = tuple(detect_all(fs, accel=accel, probe_booted=booted, probe_detail=detail))
    if accel == "tcg" and booted is not False:  # when KVM failed, the kvm_unusable quirk says it
        warnings.append(
            "guests run under TCG (emulation): latency figures measured in them are "
            "MEANINGLESS for real-time; only the configuration is real"
        )
    return RuntimeFacts(accel, quirks, tuple(warnings))
