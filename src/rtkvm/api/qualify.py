"""Host qualification: what a host offers when it begins, and the verdict from its measurements.

A qualification is the API's own proof that a host's free RT pCPUs and wired
networks meet real time, drawn from measurements the API itself queued for
it (never from figures a client sends). :func:`offer` reads what the host
offers when a qualification begins: the RT pCPUs no guest holds, the
networks wired to it, and the digest (:func:`basis`) of its plan and wiring.
:func:`judge` turns the qualification's finished measurements into a
:class:`~rtkvm.wire.qualify.QualificationProof`: the worst latency of the
cyclictest thread that ran on each free pCPU (the probe runs thread *i* on
its *i*-th RT vCPU, pinned where the placement says), and the round trip on
each network. A qualification counts for a host while the host's basis is
the one it was measured with (:func:`still_holds`). This module must not
commit, and must not run or queue anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rtkvm.cpuset import CpuSet
from rtkvm.db.models import (
    CpuClaim,
    Host,
    HostDetail,
    HostNode,
    Instance,
    Measurement,
    Network,
    Qualification,
)
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.errors import MeasureError
from rtkvm.measure.cyclictest import result_from_dict
from rtkvm.net.rtt import report_from_dict
from rtkvm.wire.placement import PlacementDoc
from rtkvm.wire.qualify import (
    HostQualification,
    NetworkProof,
    PcpuProof,
    QualificationOut,
    QualificationProof,
)

RUNNING_FOR_AT_MOST_S = 6 * 3600.0
"""A qualification still running after this long lost its client: the next one abandons it."""


def basis(plan_json: str, physnets_json: str, pcpu_share: int) -> str:
    """Digest of what a qualification measured: the partition plan, the wired physical
    networks and how many guests share an RT pCPU. Another plan or wiring needs a new one."""
    doc = json.dumps(
        {
            "plan": json.loads(plan_json or "{}"),
            "physnets": sorted(json.loads(physnets_json or "[]")),
            "pcpu_share": pcpu_share,
        },
        sort_keys=True,
    )
    return hashlib.sha256(doc.encode()).hexdigest()


def host_basis(session: Session, host: Host) -> str:
    detail = session.get(HostDetail, host.id)
    return basis(detail.plan if detail else "{}", host.physnets, host.pcpu_share)


@dataclass(frozen=True)
class Offer:
    """What a host offers a qualification as it begins."""

    free: CpuSet
    held: CpuSet
    networks: tuple[str, ...]
    basis: str


def offer(session: Session, host: Host) -> Offer:
    rt = CpuSet()
    for row in session.scalars(select(HostNode.rt_pcpus).where(HostNode.host_id == host.id)):
        rt |= CpuSet.parse(row)
    held = CpuSet(session.scalars(select(CpuClaim.pcpu).where(CpuClaim.host_id == host.id)))
    wired = json.loads(host.physnets)
    names = sorted(session.scalars(select(Network.name).where(Network.physnet.in_(wired))))
    return Offer(rt - held, rt & held, tuple(names), host_basis(session, host))


def still_holds(session: Session, host: Host) -> bool:
    """The host's recorded qualification still measures the host as it is."""
    if host.qualification_id is None:
        return False
    q = session.get(Qualification, host.qualification_id)
    return q is not None and q.state == "passed" and q.basis == host_basis(session, host)


def forget_if_changed(session: Session, host: Host) -> bool:
    """Drop the host's qualification when its plan or wiring changed; True when dropped."""
    if host.qualification_id is None or still_holds(session, host):
        return False
    host.qualified_at = None
    host.qualification_id = None
    return True


def _pcpus_of_threads(inst: Instance) -> list[int | None]:
    """The pCPU each cyclictest thread of a probe server ran on (thread i on its i-th RT
    vCPU), None where that vCPU has no pCPU of its own."""
    spec = RtGuestSpec.model_validate_json(inst.spec)
    pins = dict(PlacementDoc.parse(inst.placement).vcpu_pins)
    return [pins.get(v) for v in sorted(spec.rt_vcpus)]


def judge(
    q: Qualification,
    measurements: Sequence[Measurement],
    instances: dict[str, Instance],
    network_names: dict[int, str],
) -> QualificationProof:
    """The proof from the qualification's finished measurements: ``instances`` by id holds
    each one's servers, ``network_names`` by id the networks its round trips ran on."""
    free = CpuSet.parse(q.free_pcpus)
    networks: list[str] = json.loads(q.networks)
    pcpus = {p: PcpuProof(pcpu=p, worst_us=None) for p in sorted(free)}
    nets = {n: NetworkProof(network=n) for n in networks}
    reasons: list[str] = []
    emulated = False
    for m in sorted(measurements, key=lambda m: (m.created_at, m.id)):
        inst = instances[m.instance_id]
        if m.state != "done":
            reasons.append(f"{m.kind} {m.id} on {inst.name} did not finish: {m.fault or m.state}")
            continue
        doc = json.loads(m.result or "null")
        try:
            if m.kind == "cyclictest":
                emulated |= doc.get("accel") != "kvm"
                latency = result_from_dict(doc["latency"], source=f"measurement {m.id}")
                for thread, pcpu in zip(latency.threads, _pcpus_of_threads(inst), strict=False):
                    if pcpu is None or pcpu not in pcpus:
                        continue
                    seen = pcpus[pcpu]
                    if seen.worst_us is None or thread.max_us > seen.worst_us:
                        pcpus[pcpu] = PcpuProof(
                            pcpu=pcpu,
                            worst_us=float(thread.max_us),
                            samples=thread.samples,
                            measurement=m.id,
                            server=inst.name,
                        )
            else:
                net = network_names.get(m.network_id) if m.network_id is not None else None
                if net is None or net not in nets:
                    continue
                report = report_from_dict(doc, source=f"measurement {m.id}")
                nets[net] = NetworkProof(
                    network=net,
                    samples=report.samples,
                    p99_us=report.percentiles.get(99.0),
                    p99_99_us=report.percentiles.get(99.99),
                    max_us=report.max_us,
                    measurement=m.id,
                )
        except (MeasureError, KeyError, TypeError, AttributeError) as exc:
            reasons.append(f"{m.kind} {m.id} on {inst.name}: its result cannot be read: {exc}")
    unmeasured = CpuSet(p for p, proof in pcpus.items() if proof.worst_us is None)
    if unmeasured:
        reasons.append(f"free RT pCPUs {unmeasured.format()} were not measured by cyclictest")
    missing = [n for n, proof in nets.items() if proof.max_us is None]
    if missing:
        reasons.append(f"network(s) {', '.join(missing)} got no round trip")
    worsts = [p.worst_us for p in pcpus.values() if p.worst_us is not None]
    worst = max(worsts) if worsts else None
    if q.max_latency_us is not None and worst is not None and worst > q.max_latency_us:
        limit = q.max_latency_us
        over = [
            f"{p.pcpu} ({p.worst_us:g} µs)"
            for p in pcpus.values()
            if p.worst_us is not None and p.worst_us > limit
        ]
        reasons.append(f"pCPU(s) {', '.join(over)} exceed the limit of {limit:g} µs")
    return QualificationProof(
        pcpus=list(pcpus.values()),
        networks=list(nets.values()),
        worst_us=worst,
        emulated=emulated,
        reasons=reasons,
    )


def qualification_out(
    session: Session, q: Qualification, host: Host | None = None
) -> QualificationOut:
    host = host if host is not None else session.get(Host, q.host_id)
    ids = list(
        session.scalars(
            select(Measurement.id)
            .where(Measurement.qualification_id == q.id)
            .order_by(Measurement.created_at, Measurement.id)
        )
    )
    return QualificationOut(
        id=q.id,
        host=host.name if host else "",
        state=q.state,  # type: ignore[arg-type]
        started_at=q.started_at,
        finished_at=q.finished_at,
        free_pcpus=q.free_pcpus,
        held_pcpus=q.held_pcpus,
        networks=json.loads(q.networks),
        max_latency_us=q.max_latency_us,
        rt_waiver=q.rt_waiver,
        current=host is not None and host.qualification_id == q.id,
        measurements=ids,
        proof=QualificationProof.model_validate_json(q.result) if q.result else None,
        fault=q.fault,
    )


def last_of_hosts(session: Session, hosts: Iterable[Host]) -> dict[int, HostQualification]:
    """Each host's qualification as hosts are listed: the one that holds, else its newest
    (two queries)."""
    by_id = {h.id: h for h in hosts}
    if not by_id:
        return {}
    current = [h.qualification_id for h in by_id.values() if h.qualification_id is not None]
    newest = (
        select(Qualification.host_id, func.max(Qualification.started_at).label("at"))
        .where(Qualification.host_id.in_(list(by_id)))
        .group_by(Qualification.host_id)
        .subquery()
    )
    rows = list(
        session.scalars(
            select(Qualification).join(
                newest,
                (Qualification.host_id == newest.c.host_id)
                & (Qualification.started_at == newest.c.at),
            )
        )
    )
    if current:
        rows += session.scalars(select(Qualification).where(Qualification.id.in_(current)))
    out: dict[int, HostQualification] = {}
    for q in rows:  # the current one last: it wins
        proof = QualificationProof.model_validate_json(q.result) if q.result else None
        out[q.host_id] = HostQualification(
            id=q.id,
            state=q.state,  # type: ignore[arg-type]
            finished_at=q.finished_at,
            worst_us=proof.worst_us if proof else None,
            emulated=proof.emulated if proof else False,
            current=by_id[q.host_id].qualification_id == q.id,
        )
    return out
