"""The last proof of each server: its newest finished cyclictest, its worst case, its date.

:func:`last_cyclictests` reads, in one statement, the newest finished
cyclictest of every live instance (or of the ones given) with its host, when
it finished, its worst latency over the guest's threads and whether it ran
under emulation. The metrics, the dashboard and the server views show it.
This module must not write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rtkvm.db.models import Host, Instance, Measurement
from rtkvm.wire.lifecycle import LIVE_STATES


@dataclass(frozen=True)
class Proof:
    instance_id: str
    name: str
    host: str
    finished_at: float
    worst_us: float
    emulated: bool
    measurement_id: str


def worst_of(result: Any) -> tuple[float | None, bool]:
    """The worst latency (µs) over a cyclictest result's threads (its stored JSON text, or
    the decoded document), and whether it is emulated; None when it has no such figure."""
    try:
        doc = json.loads(result or "null") if isinstance(result, str | None) else result
        worst = max(float(t["max_us"]) for t in doc["latency"]["threads"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, True
    return worst, doc.get("accel") != "kvm"


def last_cyclictests(session: Session, ids: Sequence[str] | None = None) -> list[Proof]:
    last = select(Measurement.instance_id, func.max(Measurement.finished_at).label("at")).where(
        Measurement.kind == "cyclictest", Measurement.state == "done"
    )
    if ids is not None:
        last = last.where(Measurement.instance_id.in_(list(ids)))
    newest = last.group_by(Measurement.instance_id).subquery()
    rows = session.execute(
        select(
            Instance.id,
            Instance.name,
            Host.name,
            Measurement.finished_at,
            Measurement.result,
            Measurement.id,
        )
        .join(newest, newest.c.instance_id == Instance.id)
        .join(
            Measurement,
            (Measurement.instance_id == Instance.id) & (Measurement.finished_at == newest.c.at),
        )
        .join(Host, Host.id == Measurement.host_id)
        .where(Instance.state.in_(LIVE_STATES))
        .order_by(Host.name, Instance.name)
    )
    out = []
    for inst_id, name, host, at, result, mid in rows:
        worst, emulated = worst_of(result)
        if worst is not None and at is not None:
            out.append(Proof(inst_id, name, host, at, worst, emulated, mid))
    return out
