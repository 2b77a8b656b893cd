"""Audit of any libvirt domain against the real-time rules and a host partition.

:func:`audit_domain` reads a :class:`Domain` (parsed from XML written by
rtkvm, Nova, KubeVirt or by hand) and returns a :class:`Report` in the host
doctor's finding format. The rules' texts, severities, why and fix live in
``rtkvm/data/guest_audit.toml``; this module holds one small check function
per rule id and refuses shipped data whose ids do not match the code.

What the host is, is passed in (:class:`AuditHost`: housekeeping CPUs, the
plan's RT CPUs, the topology); a check that needs what was not given reports
``unknown`` and says which option supplies it. This module must not read the
host, talk to libvirt, or change the domain.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rtkvm.cpuset import CpuSet
from rtkvm.domain.spec import VCPU_PRIORITY_MAX
from rtkvm.domain.xml import Domain
from rtkvm.errors import DataError, HostReadError
from rtkvm.findings import Finding, Report, Severity, Status
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import Topology

RT_SCHEDULERS = ("fifo", "rr")
PRIORITY_MIN_SENSIBLE = 2
"""Priority 1 ties with every FIFO-1 thread of the host; see spec.VCPU_PRIORITY_DEFAULT."""


class AuditRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    id: str
    severity: Severity
    pass_: str = Field(alias="pass")
    fail: str
    why: str
    fix: str


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
class _Ctx:
    domain: Domain
    host: AuditHost
    rt: CpuSet
    rt_declared: bool
    pins: dict[int, CpuSet]

    @property
    def rt_pcpus(self) -> CpuSet:
        """pCPUs of the RT vCPUs that are pinned to exactly one pCPU."""
        return CpuSet(p.min() for v, p in self.pins.items() if v in self.rt and len(p) == 1)


Check = Callable[[_Ctx], Outcome]
_CHECKS: dict[str, Check] = {}


def _check(rule_id: str) -> Callable[[Check], Check]:
    def register(func: Check) -> Check:
        _CHECKS[rule_id] = func
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
def _rt_scheduler(c: _Ctx) -> Outcome:
    if c.rt_declared:
        return _ok(f"vCPUs {c.rt}", {"rt_vcpus": c.rt}, "fifo or rr")
    return _bad(
        "no <vcpusched> with fifo or rr (a scheduler set at run time, as KubeVirt does, "
        "is not visible in the definition)",
        "none",
        "fifo or rr on the RT vCPUs",
    )


@_check("vcpu.priority")
def _priority(c: _Ctx) -> Outcome:
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
            if p is None or not PRIORITY_MIN_SENSIBLE <= p <= VCPU_PRIORITY_MAX:
                bad[sched.vcpus.format()] = p
    expected = f"{PRIORITY_MIN_SENSIBLE}..{VCPU_PRIORITY_MAX}"
    if bad:
        text = ", ".join(f"vCPU {v}: {p}" for v, p in bad.items())
        return _bad(text, bad, expected)
    return _ok(observed=seen, expected=expected)


@_check("vcpu.pinned")
def _pinned(c: _Ctx) -> Outcome:
    bad = {v: (c.pins[v].format() if v in c.pins else "unpinned") for v in c.rt}
    bad = {v: p for v, p in bad.items() if p == "unpinned" or len(c.pins[v]) != 1}
    if bad:
        text = ", ".join(f"vCPU {v}: {p}" for v, p in bad.items())
        return _bad(text, bad, "one pCPU each")
    return _ok(observed={v: c.pins[v] for v in c.rt}, expected="one pCPU each")


@_check("vcpu.exclusive")
def _exclusive(c: _Ctx) -> Outcome:
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
def _emulator(c: _Ctx) -> Outcome:
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
def _iothreads(c: _Ctx) -> Outcome:
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
def _isolated(c: _Ctx) -> Outcome:
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
    return Outcome(Status.UNKNOWN, "no host partition given: pass --housekeeping or --plan")


@_check("memory.hugepages")
def _hugepages(c: _Ctx) -> Outcome:
    backing = c.domain.memory_backing
    if backing is None or not backing.hugepages:
        return _bad("4 KiB pages", "4k pages", "hugepages")
    sizes = sorted({p.size_kib for p in backing.hugepages})
    return _ok(observed=[f"{s} KiB" if s else "host default" for s in sizes], expected="hugepages")


@_check("memory.locked")
def _locked(c: _Ctx) -> Outcome:
    locked = c.domain.memory_backing is not None and c.domain.memory_backing.locked
    return (
        _ok(observed="locked", expected="locked")
        if locked
        else _bad("no <locked/>", "not locked", "locked")
    )


@_check("memory.nosharepages")
def _nosharepages(c: _Ctx) -> Outcome:
    backing = c.domain.memory_backing
    if backing is not None and backing.nosharepages:
        return _ok(observed="nosharepages", expected="nosharepages")
    return _bad("no <nosharepages/>", "mergeable", "nosharepages")


@_check("memory.shared-for-vhost-user")
def _shared(c: _Ctx) -> Outcome:
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
def _numa_strict(c: _Ctx) -> Outcome:
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
def _numa_local(c: _Ctx) -> Outcome:
    topo = c.host.topology
    tune = c.domain.numatune
    if tune is None or (tune.memory_nodeset is None and not tune.memnodes):
        return _bad("memory is not bound to any node", "unbound", "the vCPUs' node")
    if topo is None:
        return Outcome(Status.UNKNOWN, "the host's NUMA layout was not given: pass --root")
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
def _pmu(c: _Ctx) -> Outcome:
    features = c.domain.features
    if features is not None and features.pmu is False:
        return _ok(observed="off", expected="off")
    return _bad("no <pmu state='off'/>", "on", "off")


@_check("balloon.none")
def _balloon(c: _Ctx) -> Outcome:
    model = c.domain.devices.memballoon
    if model == "none":
        return _ok(observed="none", expected="none")
    observed = model or "absent (libvirt adds virtio)"
    return _bad(f"<memballoon> {observed}", observed, "none")


@_check("accel.kvm")
def _kvm(c: _Ctx) -> Outcome:
    kind = c.domain.type
    return _ok(observed=kind) if kind == "kvm" else _bad(f"type={kind!r}", kind, "kvm")


@_check("cpu.passthrough")
def _passthrough(c: _Ctx) -> Outcome:
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
def _usb_graphics(c: _Ctx) -> Outcome:
    devices = c.domain.devices
    found: list[str] = []
    usb = [ctl for ctl in devices.controllers if ctl.type == "usb"]
    if not usb:
        found.append("no <controller type='usb' model='none'/> (libvirt adds one)")
    found += [f"usb controller {ctl.model}" for ctl in usb if ctl.model != "none"]
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


# -- driver -----------------------------------------------------------------------------


def load_rules(text: str | None = None) -> tuple[AuditRule, ...]:
    """The shipped rules (or ``text``); DataError when they do not match the checks."""
    if text is None:
        text = (resources.files("rtkvm") / "data" / "guest_audit.toml").read_text("utf-8")
    try:
        items = tomllib.loads(text).get("rule", [])
        if not isinstance(items, list):
            raise DataError("guest_audit.toml: 'rule' must be an array of tables ([[rule]])")
        rules = tuple(AuditRule.model_validate(item) for item in items)
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise DataError(f"guest_audit.toml: {exc}") from None
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise DataError(f"guest_audit.toml: duplicate rule ids in {ids}")
    missing, unknown = set(_CHECKS) - set(ids), set(ids) - set(_CHECKS)
    if missing or unknown:
        raise DataError(
            f"guest_audit.toml: rules without data {sorted(missing)}, "
            f"data without a check {sorted(unknown)}"
        )
    return rules


def rt_vcpus_of(domain: Domain) -> tuple[CpuSet, bool]:
    """The RT vCPUs (those with fifo/rr) and whether any were declared."""
    scheds = domain.cputune.vcpuscheds if domain.cputune is not None else ()
    rt = CpuSet().union(*(s.vcpus for s in scheds if s.scheduler in RT_SCHEDULERS))
    rt = rt & CpuSet(range(domain.vcpus))
    if rt:
        return rt, True
    return CpuSet(range(domain.vcpus)), False


def audit_domain(
    domain: Domain,
    host: AuditHost | None = None,
    *,
    rules: tuple[AuditRule, ...] | None = None,
    subject: str | None = None,
) -> Report:
    """Check ``domain`` against every rule; the report's exit code follows the doctor's."""
    host = host or AuditHost()
    rules = rules if rules is not None else load_rules()
    rt, declared = rt_vcpus_of(domain)
    pins = {p.vcpu: p.cpuset for p in domain.cputune.vcpupins} if domain.cputune else {}
    if domain.vcpu_cpuset is not None:
        for v in range(domain.vcpus):
            pins.setdefault(v, domain.vcpu_cpuset)
    ctx = _Ctx(domain, host, rt, declared, pins)
    findings = []
    for rule in rules:
        out = _CHECKS[rule.id](ctx)
        if out.status in (Status.SKIP, Status.UNKNOWN):
            message = out.detail
        else:
            base = rule.pass_ if out.status is Status.PASS else rule.fail
            message = f"{base}: {out.detail}" if out.detail else base
        findings.append(
            Finding(
                id=rule.id,
                severity=rule.severity,
                status=out.status,
                message=message,
                observed=out.observed,
                expected=out.expected,
                why=rule.why,
                fix=rule.fix if out.status is Status.FAIL else "",
            )
        )
    note = (
        f"RT vCPUs (from <vcpusched> fifo/rr): {rt}"
        if declared
        else f"no vCPU declares a real-time scheduler: all {domain.vcpus} vCPUs audited as RT"
    )
    return Report(
        subject=subject or f"domain {domain.name}",
        findings=tuple(findings),
        ok_verdict="rt-ready",
        bad_verdict="not rt-ready",
        notes=(note,),
    )
