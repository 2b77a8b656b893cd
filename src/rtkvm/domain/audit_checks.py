"""The real-time checks of the guest audit: one small function per rule id.

Each check reads a parsed :class:`Domain` and what is known of the host
(:class:`AuditHost`) through a :class:`AuditContext` and returns an
:class:`Outcome` (status, what it saw, what it expected). The rules' words,
severities, why and fix are data (``rtkvm/data/guest_audit.toml``), joined to
these functions by id in :mod:`rtkvm.domain.audit`. This module must not
read the host, talk to libvirt, or phrase the findings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from rtkvm import priorities
from rtkvm.cpuset import CpuSet
from rtkvm.domain.xml import Domain
from rtkvm.errors import HostReadError
from rtkvm.findings import Status
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import Topology

RT_SCHEDULERS = ("fifo", "rr")


@dataclass(frozen=True)
class AuditHost:
    """What is known of the host the domain runs on; None = not given."""

    housekeeping: CpuSet | None = None
    rt_cpus: CpuSet | None = None
    """The plan's rt_vcpu set: the CPUs RT vCPUs belong on."""
    topology: Topology | None = None

    @classmethod
    def from_plan(cls, plan: PartitionPlan, topology: Topology | None = None) -> AuditHost:
        return cls(plan.housekeeping, plan.rt_vcpu, topology)


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str = ""
    observed: Any = None
    expected: Any = None


@dataclass(frozen=True)
class AuditContext:
    domain: Domain
    host: AuditHost
    rt: CpuSet
    rt_declared: bool
    pins: dict[int, CpuSet]

    @property
    def rt_pcpus(self) -> CpuSet:
        """pCPUs of the RT vCPUs that are pinned to exactly one pCPU."""
        return CpuSet(p.min() for v, p in self.pins.items() if v in self.rt and len(p) == 1)


Check = Callable[[AuditContext], Outcome]
CHECKS: dict[str, Check] = {}
"""Rule id -> check; filled by the ``@_check`` decorator below."""


def _check(rule_id: str) -> Callable[[Check], Check]:
    def register(func: Check) -> Check:
        CHECKS[rule_id] = func
        return func

    return register


def _ok(detail: str = "", observed: Any = None, expected: Any = None) -> Outcome:
    return Outcome(Status.PASS, detail, observed, expected)


def _bad(detail: str, observed: Any = None, expected: Any = None) -> Outcome:
    return Outcome(Status.FAIL, detail, observed, expected)


def _skip(detail: str) -> Outcome:
    return Outcome(Status.SKIP, detail)


# -- checks ---------------------------------------------------------------------------


@_check("vcpu.rt-scheduler")
def _rt_scheduler(c: AuditContext) -> Outcome:
    if c.rt_declared:
        return _ok(f"vCPUs {c.rt}", {"rt_vcpus": c.rt}, "fifo or rr")
    return _bad(
        "no <vcpusched> with fifo or rr (a scheduler set at run time, as KubeVirt does, "
        "is not visible in the definition)",
        "none",
        "fifo or rr on the RT vCPUs",
    )


@_check("vcpu.priority")
def _priority(c: AuditContext) -> Outcome:
    if not c.rt_declared:
        return _skip("no RT vCPUs declared")
    cputune = c.domain.cputune
    assert cputune is not None
    seen: dict[str, int | None] = {}
    bad: dict[str, int | None] = {}
    for sched in cputune.vcpuscheds:
        if sched.scheduler in RT_SCHEDULERS:
            seen[sched.vcpus.format()] = sched.priority
            p = sched.priority
            if p is None or not priorities.in_rt_band(p):
                bad[sched.vcpus.format()] = p
    expected = f"{priorities.RT_BAND_MIN}..{priorities.RT_BAND_MAX}"
    if bad:
        text = ", ".join(f"vCPU {v}: {p}" for v, p in bad.items())
        return _bad(text, bad, expected)
    return _ok(observed=seen, expected=expected)


@_check("vcpu.pinned")
def _pinned(c: AuditContext) -> Outcome:
    bad = {v: (c.pins[v].format() if v in c.pins else "unpinned") for v in c.rt}
    bad = {v: p for v, p in bad.items() if p == "unpinned" or len(c.pins[v]) != 1}
    if bad:
        text = ", ".join(f"vCPU {v}: {p}" for v, p in bad.items())
        return _bad(text, bad, "one pCPU each")
    return _ok(observed={v: c.pins[v] for v in c.rt}, expected="one pCPU each")


@_check("vcpu.exclusive")
def _exclusive(c: AuditContext) -> Outcome:
    clashes: list[str] = []
    for v in c.rt:
        mine = c.pins.get(v)
        if mine is None or len(mine) != 1:
            continue
        for w in range(c.domain.vcpus):
            if w == v or (w in c.rt and w < v):
                continue
            theirs = c.pins.get(w)
            if theirs is None:
                clashes.append(f"vCPU {w} is unpinned and may run on vCPU {v}'s pCPU {mine}")
            elif mine & theirs:
                clashes.append(f"vCPU {v} and vCPU {w} on pCPU {mine & theirs}")
    if clashes:
        return _bad("; ".join(clashes), clashes, "one vCPU per pCPU")
    return _ok(expected="one vCPU per pCPU")


@_check("emulator.apart")
def _emulator(c: AuditContext) -> Outcome:
    cputune = c.domain.cputune
    pin = cputune.emulatorpin if cputune is not None else None
    where = "<emulatorpin>"
    if pin is None:
        pin, where = c.domain.vcpu_cpuset, "<vcpu cpuset> (no <emulatorpin>)"
    if pin is None:
        return _bad("no <emulatorpin>: they may run on any CPU", "unpinned", "not on RT pCPUs")
    overlap = pin & c.rt_pcpus
    if overlap:
        return _bad(f"{where} {pin} includes RT pCPUs {overlap}", pin, f"not {c.rt_pcpus}")
    return _ok(observed=pin, expected=f"not {c.rt_pcpus}")


@_check("iothreads.apart")
def _iothreads(c: AuditContext) -> Outcome:
    count = c.domain.iothreads
    if not count:
        return _skip("the domain has no I/O threads")
    pins = {p.iothread: p.cpuset for p in c.domain.cputune.iothreadpins} if c.domain.cputune else {}
    bad: dict[int, str] = {}
    for i in range(1, count + 1):
        pin = pins.get(i, c.domain.vcpu_cpuset)
        if pin is None:
            bad[i] = "unpinned"
        elif pin & c.rt_pcpus:
            bad[i] = pin.format()
    if bad:
        text = ", ".join(f"iothread {i}: {p}" for i, p in bad.items())
        return _bad(text, bad, f"not {c.rt_pcpus}")
    return _ok(observed={i: pins.get(i) for i in range(1, count + 1)}, expected=f"not {c.rt_pcpus}")


@_check("vcpu.isolated")
def _isolated(c: AuditContext) -> Outcome:
    pcpus = c.rt_pcpus
    if c.host.rt_cpus is not None:
        outside = pcpus - c.host.rt_cpus
        if outside:
            return _bad(f"pCPUs {outside} are not in the plan's rt_vcpu set", pcpus, c.host.rt_cpus)
        return _ok(observed=pcpus, expected=f"within {c.host.rt_cpus}")
    if c.host.housekeeping is not None:
        inside = pcpus & c.host.housekeeping
        if inside:
            return _bad(
                f"pCPUs {inside} are housekeeping CPUs", pcpus, f"not {c.host.housekeeping}"
            )
        return _ok(observed=pcpus, expected=f"not {c.host.housekeeping}")
    return _skip("not checked: no host partition given (pass --housekeeping or --plan)")


@_check("vcpu.quiet-sibling")
def _sibling(c: AuditContext) -> Outcome:
    topo = c.host.topology
    if topo is None:
        return _skip("not checked: the host's topology was not given (pass --root)")
    if not topo.smt_active:
        return _skip("the host has no SMT")
    emulator = c.domain.cputune.emulatorpin if c.domain.cputune is not None else None
    noisy = {"housekeeping": c.host.housekeeping, "emulator": emulator}
    bad: list[str] = []
    for pcpu in c.rt_pcpus:
        try:
            siblings = topo.siblings(pcpu) - CpuSet([pcpu])
        except HostReadError:
            return Outcome(Status.UNKNOWN, f"pCPU {pcpu} is not online on this host")
        for what, cpus in noisy.items():
            if cpus is not None and siblings & cpus:
                bad.append(f"pCPU {pcpu} with {what} CPU {siblings & cpus}")
    if bad:
        return _bad("; ".join(bad), bad, "quiet siblings")
    return _ok(observed=c.rt_pcpus, expected="quiet siblings")


@_check("memory.hugepages")
def _hugepages(c: AuditContext) -> Outcome:
    backing = c.domain.memory_backing
    if backing is None or not backing.hugepages:
        return _bad("4 KiB pages", "4k pages", "hugepages")
    sizes = sorted({p.size_kib for p in backing.hugepages})
    return _ok(observed=[f"{s} KiB" if s else "host default" for s in sizes], expected="hugepages")


@_check("memory.locked")
def _locked(c: AuditContext) -> Outcome:
    locked = c.domain.memory_backing is not None and c.domain.memory_backing.locked
    return (
        _ok(observed="locked", expected="locked")
        if locked
        else _bad("no <locked/>", "not locked", "locked")
    )


@_check("memory.nosharepages")
def _nosharepages(c: AuditContext) -> Outcome:
    backing = c.domain.memory_backing
    if backing is not None and backing.nosharepages:
        return _ok(observed="nosharepages", expected="nosharepages")
    return _bad("no <nosharepages/>", "mergeable", "nosharepages")


@_check("memory.shared-for-vhost-user")
def _shared(c: AuditContext) -> Outcome:
    nics = len(c.domain.devices.interfaces)
    if not nics:
        return _skip("no vhost-user NICs")
    backing = c.domain.memory_backing
    default = backing.access_mode if backing is not None else None
    cells = c.domain.cpu.cells if c.domain.cpu is not None else ()
    modes = [cell.mem_access or default for cell in cells] if cells else [default]
    if all(m == "shared" for m in modes):
        return _ok(observed="shared", expected="shared")
    return _bad(f"{nics} vhost-user NIC(s), memory access {modes}", modes, "shared")


@_check("numa.strict")
def _numa_strict(c: AuditContext) -> Outcome:
    tune = c.domain.numatune
    if tune is None or (tune.memory_mode is None and not tune.memnodes):
        return _bad("no <numatune>", "unbound", "strict")
    modes = {m.mode for m in tune.memnodes}
    if tune.memory_mode is not None:
        modes.add(tune.memory_mode)
    if modes == {"strict"}:
        return _ok(observed="strict", expected="strict")
    return _bad(f"modes {sorted(modes)}", sorted(modes), "strict")


@_check("numa.local")
def _numa_local(c: AuditContext) -> Outcome:
    topo = c.host.topology
    tune = c.domain.numatune
    if tune is None or (tune.memory_nodeset is None and not tune.memnodes):
        return _bad("memory is not bound to any node", "unbound", "the vCPUs' node")
    if topo is None:
        return _skip("not checked: the host's NUMA layout was not given (pass --root)")
    cell_nodes = {m.cellid: m.nodeset for m in tune.memnodes}
    cells = c.domain.cpu.cells if c.domain.cpu is not None else ()
    bad: list[str] = []
    for v in c.rt:
        pin = c.pins.get(v)
        if pin is None or len(pin) != 1:
            continue
        cell = next((cl.id for cl in cells if v in cl.cpus), None)
        allowed = cell_nodes.get(cell) if cell is not None else None
        allowed = allowed if allowed is not None else tune.memory_nodeset
        if allowed is None:
            continue
        try:
            node = topo.node_of_cpu(pin.min())
        except HostReadError:
            return Outcome(Status.UNKNOWN, f"pCPU {pin} of vCPU {v} is not online on this host")
        if node not in allowed:
            bad.append(f"vCPU {v} on node {node}, its memory on node(s) {allowed}")
    if bad:
        return _bad("; ".join(bad), bad, "same node")
    return _ok(observed=tune.memory_nodeset or "per cell", expected="the vCPUs' node")


@_check("pmu.off")
def _pmu(c: AuditContext) -> Outcome:
    features = c.domain.features
    if features is not None and features.pmu is False:
        return _ok(observed="off", expected="off")
    return _bad("no <pmu state='off'/>", "on", "off")


@_check("balloon.none")
def _balloon(c: AuditContext) -> Outcome:
    model = c.domain.devices.memballoon
    if model == "none":
        return _ok(observed="none", expected="none")
    observed = model or "absent (libvirt adds virtio)"
    return _bad(f"<memballoon> {observed}", observed, "none")


@_check("accel.kvm")
def _kvm(c: AuditContext) -> Outcome:
    kind = c.domain.type
    return _ok(observed=kind) if kind == "kvm" else _bad(f"type={kind!r}", kind, "kvm")


@_check("cpu.passthrough")
def _passthrough(c: AuditContext) -> Outcome:
    if c.domain.type != "kvm":
        return _skip("emulated domain: no host CPU to pass through")
    cpu = c.domain.cpu
    mode = cpu.mode if cpu is not None else None
    features = {f.name: f.policy for f in cpu.features} if cpu is not None else {}
    tsc = features.get("tsc-deadline")
    if tsc in ("disable", "forbid"):
        return _bad(f"tsc-deadline {tsc}", {"mode": mode, "tsc-deadline": tsc}, "host-passthrough")
    if mode == "host-passthrough" or tsc in ("require", "force"):
        return _ok(observed={"mode": mode, "tsc-deadline": tsc or "host"})
    return _bad(f"mode {mode or 'default'}", {"mode": mode}, "host-passthrough")


@_check("devices.no-usb-graphics")
def _usb_graphics(c: AuditContext) -> Outcome:
    devices = c.domain.devices
    found: list[str] = []
    usb = [ctl.model for ctl in devices.controllers if ctl.type == "usb"]
    for text in devices.other:  # a live domain's controllers carry <alias>: kept verbatim
        elem = etree.fromstring(text)
        if elem.tag == "controller" and elem.get("type") == "usb":
            usb.append(elem.get("model"))
    if not usb:
        found.append("no <controller type='usb' model='none'/> (libvirt adds one)")
    found += [f"usb controller {model}" for model in usb if model != "none"]
    for text in devices.other:
        elem = etree.fromstring(text)
        model = elem.find("model")
        if elem.tag == "graphics":
            found.append(f"graphics {elem.get('type')}")
        elif elem.tag == "video" and (model is None or model.get("type") != "none"):
            found.append("video " + (model.get("type", "?") if model is not None else "default"))
        elif elem.tag == "input" and elem.get("bus") == "usb":
            found.append(f"usb input {elem.get('type')}")
    if found:
        return _bad(", ".join(found), found, "none")
    return _ok(observed="none", expected="none")
