"""Run a guest and check it: verify threads in effect, measure latency in the guest.

``verify_guest`` reads the running domain's ``<cputune>`` from libvirt and its
QEMU threads from /proc (through HostFS) and returns the verify report.
``measure_guest`` boots a shut-off guest with cyclictest on its kernel command
line (the image's /init runs it), verifies the threads while cyclictest runs,
collects the histogram from the serial log, stops the guest and restores its
definition. The guest kernel command line is built here from the RT vCPUs.
This module must not render domain XML (the design layer does) nor parse
cyclictest output itself (measure.cyclictest does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
from lxml import etree

from rtkvm.cpuset import CpuSet
from rtkvm.domain.xml import CpuTune
from rtkvm.errors import GuestError
from rtkvm.findings import Report
from rtkvm.guest import console, lifecycle
from rtkvm.guest.verify import read_threads, verify_threads
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.measure import cyclictest

QEMU_PID_DIR = "/var/run/libvirt/qemu"
BASE_CMDLINE = "console=ttyS0 quiet panic=-1"
"""Serial console for the markers; quiet so kernel messages do not interleave with results."""


@dataclass(frozen=True)
class CyclictestParams:
    """One in-guest cyclictest run (microseconds; -n is gone upstream and never passed)."""

    loops: int = 2000
    interval_us: int = 1000
    buckets: int = 400
    priority: int = 90

    def args(self, rt_vcpus: CpuSet, housekeeping_vcpus: CpuSet) -> str:
        threads = len(rt_vcpus)
        if not threads:
            raise GuestError("the guest has no RT vCPU to run cyclictest on")
        main = housekeeping_vcpus.format() if housekeeping_vcpus else rt_vcpus.format()
        return (
            f"-m -q -p {self.priority} --policy=fifo -i {self.interval_us} -l {self.loops} "
            f"-h {self.buckets} -t {threads} -a {rt_vcpus.format()} --mainaffinity {main}"
        )


@dataclass(frozen=True)
class Measurement:
    name: str
    accel: str
    boot_seconds: float
    run_seconds: float
    ready_line: str
    guest_realtime: bool
    verify: Report
    cyclictest_args: str
    result: cyclictest.CyclictestResult
    raw: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``rtkvm guest measure --save`` and of an agent's cyclictest result."""
        return {
            "guest": self.name,
            "accel": self.accel,
            "boot_seconds": self.boot_seconds,
            "run_seconds": self.run_seconds,
            "guest_realtime": self.guest_realtime,
            "cyclictest": self.cyclictest_args,
            "latency": self.result.to_dict(),
            "verify": self.verify.to_dict(),
        }


EMULATED_CMDLINE = "noirqdebug"
"""Only under TCG: an emulated vCPU can lag its serial IRQ thread so long that the guest
kernel's unhandled-IRQ detector disables the serial IRQ in the middle of a long output
('irq 4: nobody cared ... Disabling IRQ #4') and the result markers never arrive. A guest on
KVM keeps the detector."""


def guest_cmdline(rt_vcpus: CpuSet, extra: str = "", *, accel: str = "kvm") -> str:
    """Kernel command line: serial console, and the RT vCPUs kept free of the guest's own noise."""
    parts = [BASE_CMDLINE]
    if accel == "tcg":
        parts.append(EMULATED_CMDLINE)
    if rt_vcpus:
        cpus = rt_vcpus.format()
        parts.append(f"isolcpus={cpus} nohz_full={cpus} rcu_nocbs={cpus}")
    if extra:
        parts.append(extra)
    return " ".join(parts)


def cputune_of(xml: str) -> tuple[CpuTune, int, str]:
    """(cputune, vCPU count, domain type) of domain XML."""
    root = etree.fromstring(xml.encode())
    elem = root.find("cputune")
    tune = CpuTune.from_element(elem) if elem is not None else CpuTune()
    return tune, int(root.findtext("vcpu") or "0"), root.get("type", "")


def rt_and_housekeeping(tune: CpuTune, vcpus: int) -> tuple[CpuSet, CpuSet]:
    rt = CpuSet(v for s in tune.vcpuscheds if s.scheduler in ("fifo", "rr") for v in s.vcpus)
    return rt, CpuSet(range(vcpus)) - rt


def qemu_pid(fs: HostFS, name: str, pid_dir: str = QEMU_PID_DIR) -> int:
    text = fs.read_line(f"{pid_dir}/{name}.pid")
    if isinstance(text, Unknown) or not text.isdigit():
        raise GuestError(f"guest {name!r} has no QEMU process ({text}): is it running?")
    return int(text)


def verify_guest(conn: Any, fs: HostFS, name: str, pid_dir: str = QEMU_PID_DIR) -> Report:
    """Compare the running guest's QEMU threads with its cputune."""
    dom = lifecycle.domain(conn, name)
    if not dom.isActive():
        raise GuestError(f"guest {name!r} is not running: start it first")
    tune, vcpus, _ = cputune_of(dom.XMLDesc(0))
    pid = qemu_pid(fs, name, pid_dir)
    return verify_threads(f"guest {name} (QEMU pid {pid})", read_threads(fs, pid), tune, vcpus)


def boot_and_wait_ready(conn: Any, name: str, timeout: float) -> tuple[console.Ready, Path, int]:
    """Start a guest and wait for its ready marker; returns (ready, log, log offset)."""
    dom = lifecycle.domain(conn, name)
    log = lifecycle.serial_log(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    if log is None:
        raise GuestError(f"guest {name!r} has no serial log file: cannot read its markers")
    path = Path(log)
    if not dom.isActive():
        # QEMU truncates the file on start: the previous boot's output is gone anyway.
        path.unlink(missing_ok=True)
    offset = console.log_size(path)
    lifecycle.start(conn, name)
    text, seconds = console.wait_for(
        path, console.READY, offset=offset, timeout=timeout, alive=lambda: bool(dom.isActive())
    )
    return console.parse_ready(text, seconds), path, offset


def measure_guest(
    conn: Any,
    fs: HostFS,
    name: str,
    params: CyclictestParams,
    *,
    timeout: float = 180.0,
    pid_dir: str = QEMU_PID_DIR,
) -> Measurement:
    """Boot with cyclictest, verify threads during the run, collect, stop, restore."""
    dom = lifecycle.domain(conn, name)
    if dom.isActive():
        raise GuestError(f"guest {name!r} is running: stop it first, measure boots it afresh")
    original = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
    tune, vcpus, dtype = cputune_of(original)
    rt, housekeeping = rt_and_housekeeping(tune, vcpus)
    args = params.args(rt, housekeeping)
    cmdline = f'{lifecycle.cmdline_of(original)} rtkvm.cyclictest="{args}"'.strip()
    lifecycle.redefine(conn, lifecycle.with_cmdline(original, cmdline))
    try:
        ready, path, offset = boot_and_wait_ready(conn, name, timeout)
        report = verify_guest(conn, fs, name, pid_dir)
        started = time.monotonic()
        text, _ = console.wait_for(
            path,
            console.END,
            offset=offset,
            timeout=timeout,
            alive=lambda: bool(dom.isActive()),
        )
        run_seconds = time.monotonic() - started
    finally:
        lifecycle.stop(conn, name)
        lifecycle.redefine(conn, original)
    raw, rc = console.cyclictest_block(text)
    if rc != 0:
        raise GuestError(f"cyclictest exited {rc} in the guest: {raw.strip()[-300:]}")
    return Measurement(
        name=name,
        accel="kvm" if dtype == "kvm" else "tcg",
        boot_seconds=round(ready.seconds, 2),
        run_seconds=round(run_seconds, 2),
        ready_line=ready.line,
        guest_realtime=ready.realtime,
        verify=report,
        cyclictest_args=args,
        result=cyclictest.parse(raw),
        raw=raw,
    )
