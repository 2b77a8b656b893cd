"""cyclictest in a tenant's running guest, through its guest agent: never a reboot.

:func:`measure_running` checks that the guest agent answers and that the
guest has cyclictest (rt-tests), reads the guest's uptime, runs cyclictest
on the guest's RT vCPUs (all its vCPUs when its flavor has none, said as a
warning) with the same arguments as a probe measurement, verifies the QEMU
threads against the domain while it runs, and reads the uptime again: the
result carries both, so anyone can see the guest was not restarted. The
result has the shape of ``rtkvm guest measure --save`` plus ``method`` and
``guest_uptime_s``. This module must not stop, start or redefine the domain.
"""

from __future__ import annotations

import time
from typing import Any

from rtkvm.errors import GuestError
from rtkvm.guest import lifecycle
from rtkvm.guest.qga import GuestAgent
from rtkvm.guest.run import (
    QEMU_PID_DIR,
    CyclictestParams,
    cputune_of,
    rt_and_housekeeping,
    verify_guest,
)
from rtkvm.hostfs import HostFS
from rtkvm.measure import cyclictest

CYCLICTEST = "/usr/bin/cyclictest"
NOT_RT = (
    "the server's flavor has no real-time vCPU (hw:cpu_policy=shared): cyclictest ran on all "
    "its vCPUs, which float on the host's housekeeping CPUs; the figures are an ordinary VM's"
)


def uptime(agent: GuestAgent) -> float:
    """The guest's uptime in seconds (its /proc/uptime)."""
    text = agent.read("/proc/uptime")
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        raise GuestError(f"/proc/uptime in {agent.name} reads {text[:40]!r}") from None


def measure_running(
    conn: Any,
    fs: HostFS,
    name: str,
    params: CyclictestParams,
    *,
    timeout: float = 300.0,
    pid_dir: str = QEMU_PID_DIR,
) -> dict[str, Any]:
    """Measure the running guest ``name``; GuestError saying why it cannot be measured."""
    dom = lifecycle.domain(conn, name)
    if not dom.isActive():
        raise GuestError(f"guest {name!r} is not running: a running guest is measured")
    agent = GuestAgent(dom, name)
    agent.ping()
    probe = agent.run(CYCLICTEST, ["--help"], timeout=30)
    if "cyclictest" not in (probe.stdout + probe.stderr).lower():
        raise GuestError(
            f"{name} has no {CYCLICTEST}: install rt-tests in the image (rtkvm's debian-rt has it)"
        )
    tune, vcpus, dtype = cputune_of(dom.XMLDesc(0))
    rt, housekeeping = rt_and_housekeeping(tune, vcpus)
    warnings: list[str] = []
    if not rt:
        rt, housekeeping = housekeeping, rt
        warnings.append(NOT_RT)
    args = params.args(rt, housekeeping)
    realtime = agent.read("/sys/kernel/realtime").strip() == "1"
    before = uptime(agent)
    started = time.monotonic()
    report = verify_guest(conn, fs, name, pid_dir)
    done = agent.run(CYCLICTEST, args.split(), timeout=timeout)
    seconds = time.monotonic() - started
    if done.code != 0:
        raise GuestError(f"cyclictest exited {done.code} in {name}: {done.stderr.strip()[-300:]}")
    after = uptime(agent)
    if not report.ok:
        warnings.append(f"the guest's threads are not as designed ({report.verdict}): see verify")
    return {
        "guest": name,
        "method": "guest-agent",
        "accel": "kvm" if dtype == "kvm" else "tcg",
        "boot_seconds": None,
        "run_seconds": round(seconds, 2),
        "guest_realtime": realtime,
        "guest_uptime_s": [round(before, 2), round(after, 2)],
        "cyclictest": args,
        "latency": cyclictest.parse(done.stdout).to_dict(),
        "verify": report.to_dict(),
        "notes": warnings,
    }
