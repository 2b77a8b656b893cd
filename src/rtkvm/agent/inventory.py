"""What an agent registers: its host's facts turned into the API's HostReport.

From the flat facts of ``rtkvm.host.facts`` (the topology with its NUMA
nodes, cores and hugepage pools), the host's partition plan, the doctor's
report on that plan, the data plane's state and the host wiring, build the
registration payload: the topology summary per NUMA node, the plan, the
doctor verdict with the ids of the blocking checks, ``ready`` / ``down`` /
``none`` for the data plane, and the physical network labels whose uplink
interface exists. :func:`collect` does it for a host seen through a HostFS;
:func:`guest_disk_gb` says how much room the servers' disks have.

This module must not talk to the API, change the host or judge facts itself
(the doctor does).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from stat import S_ISREG

from rtkvm.dataplane.backend import DataPlane
from rtkvm.errors import InputError, RtkvmError
from rtkvm.findings import Report, Severity, Status
from rtkvm.host.checks import CheckSet, shipped_checks
from rtkvm.host.doctor import evaluate
from rtkvm.host.observe import observe
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import Topology
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.net.lldp import Neighbor, cross_check, live_physnets
from rtkvm.net.model import HostWiring
from rtkvm.tune.drift import tuning_drift
from rtkvm.wire.node import DataplaneDoc, DoctorVerdict, HostReport
from rtkvm.wire.topology import topology_doc

log = logging.getLogger("rtkvm.agent.inventory")

NO_DATAPLANE = "none"
"""The agent runs without a switch: guests with networks are not scheduled here."""


GIB = 1 << 30


def guest_disk_gb(
    directory: Path, *, statvfs: Callable[[str], os.statvfs_result] = os.statvfs
) -> int | None:
    """GiB the servers' disks may take on the filesystem that holds ``directory``: its free
    space plus what the files already there take (so the figure does not shrink as the
    disks fill). None when the filesystem cannot be read (then no disk is placed here)."""
    where = directory
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        fs = statvfs(str(where))
    except OSError as exc:
        log.warning("cannot read the filesystem of %s: %s", directory, exc)
        return None
    taken = 0
    if directory.is_dir():
        for path in directory.rglob("*"):
            try:
                stat = path.lstat()
            except OSError:
                continue  # a disk deleted meanwhile
            if S_ISREG(stat.st_mode):
                taken += stat.st_blocks * 512
    return (fs.f_bavail * fs.f_frsize + taken) // GIB


def wired_physnets(wiring: HostWiring, interfaces: Iterable[str]) -> list[str]:
    """Physical network labels whose uplink interface exists on the host."""
    present = set(interfaces)
    return sorted(up.physnet for up in wiring.uplinks if up.interface in present)


def doctor_verdict(report: Report) -> DoctorVerdict:
    """'ready' or 'not-ready' with the ids of the failed (or unverifiable) errors."""
    failed = [f.id for f in report.findings if f.blocking]
    return DoctorVerdict(verdict="ready" if report.ok else "not-ready", failed=failed)


def describe(switch: DataPlane | None) -> tuple[str, DataplaneDoc | None]:
    """'ready' with what the switch describes, 'down' when it cannot, 'none' without one."""
    if switch is None:
        return NO_DATAPLANE, None
    try:
        caps = switch.describe()
    except RtkvmError:
        return "down", None
    doc = DataplaneDoc(
        backend=caps.backend,
        vif_type=caps.vif_type,
        networks=list(caps.networks),
        pmd_cpus=caps.pmd_cpus,
        pmd_sched=caps.pmd_sched,
        shared_with_rt_vcpus=caps.shared_with_rt_vcpus,
        physnets=list(caps.physnets),
        uplinks=dict(caps.uplinks),
        links_down=list(caps.links_down),
    )
    return "ready", doc


def dataplane_state(switch: DataPlane | None) -> str:
    """The switch's state alone (heartbeats): 'ready', 'down' or 'none'."""
    return describe(switch)[0]


def registration(
    facts: Mapping[str, object],
    plan: PartitionPlan,
    doctor: Report,
    *,
    dataplane: str,
    physnets: Iterable[str],
    described: DataplaneDoc | None = None,
) -> HostReport:
    """The host report this node registers (:meth:`ControlPlane.register`)."""
    topology = facts.get("topology")
    if not isinstance(topology, Topology):
        raise InputError(
            "cannot register: the host's CPU and NUMA topology could not be read "
            f"({topology}); run `rtkvm host inspect` to see what is missing"
        )
    return HostReport(
        topology=topology_doc(topology),
        plan=plan.model_dump(mode="json"),
        doctor=doctor_verdict(doctor),
        dataplane_state=dataplane,
        dataplane=described,
        physnets=sorted(set(physnets)),
    )


def live_wires(
    fs: HostFS, wiring: HostWiring, neighbors: Callable[[], dict[str, Neighbor] | Unknown]
) -> list[str]:
    """The wired physical networks whose uplink has carrier now and whose LLDP neighbour is
    not another than the wiring expects (a pulled cable or a wrong port is no wire)."""
    report = cross_check(fs, wiring, (), neighbors())
    for f in report.findings:
        if f.status in (Status.FAIL, Status.UNKNOWN) and f.severity is Severity.ERROR:
            log.warning("wiring: %s", f.message)
    return live_physnets(report, wiring)


def _no_lldp() -> Unknown:
    return Unknown("lldpctl", "not asked")


def collect(
    fs: HostFS,
    plan: PartitionPlan,
    *,
    wiring: HostWiring | None = None,
    switch: DataPlane | None = None,
    checks: CheckSet | None = None,
    neighbors: Callable[[], dict[str, Neighbor] | Unknown] = _no_lldp,
    guest_dir: Path | None = None,
) -> HostReport:
    """Inspect the host, run the doctor against the plan, check the wires, build the payload.

    A physical network counts as wired when its uplink exists with carrier and LLDP (when
    ``neighbors`` asks lldpd) does not contradict the wiring. With ``guest_dir`` (where
    the servers' disks go) the report says how much room they have."""
    _, facts = observe(fs)
    doctor = evaluate(checks or shipped_checks(), facts, plan, subject=f"host {fs.root}")
    state, described = describe(switch)
    physnets = live_wires(fs, wiring, neighbors) if wiring is not None else []
    if described is not None:  # a wire the switch has no bridge for carries no guest traffic
        unswitched = sorted(set(physnets) - set(described.physnets))
        if unswitched:
            log.warning(
                "wired to %s but the switch has no bridge for them: not offered to guests "
                "(add a network on each to `rtkvm net up --networks`)",
                ", ".join(unswitched),
            )
        physnets = [p for p in physnets if p in described.physnets]
        down = sorted(set(physnets) & set(described.links_down))
        if down:
            log.warning(
                "the switch sees the link of the NIC uplink of %s down: not offered to guests "
                "(cable it, or check the port with `rtkvm net status`)",
                ", ".join(down),
            )
            physnets = [p for p in physnets if p not in down]
    report = registration(
        facts, plan, doctor, dataplane=state, physnets=physnets, described=described
    )
    try:
        drift = tuning_drift(fs)
    except RtkvmError as exc:
        log.warning("the tuning could not be verified: %s", exc)
        drift = [f"the last tuning could not be verified: {exc}"]
    if drift:
        log.warning("tuning drift: %s", "; ".join(drift))
    disk = guest_disk_gb(guest_dir) if guest_dir is not None else None
    return report.model_copy(update={"tuning_drift": drift, "disk_gb": disk})
