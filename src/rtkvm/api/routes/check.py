"""The control plane's invariants, checked on demand by an admin (``rtkvm cloud check``).

Reads the database in one transaction and answers every broken invariant
(:mod:`rtkvm.scheduler.invariants`). Must not change anything.
"""

from __future__ import annotations

from fastapi import APIRouter

from rtkvm.api.deps import AdminDep, ServicesDep
from rtkvm.scheduler.invariants import violations
from rtkvm.wire import schemas

router = APIRouter(prefix="/v1/check", tags=["check"])


@router.get("")
def check(services: ServicesDep, _: AdminDep) -> schemas.CheckOut:
    """No pCPU claimed twice, counters equal to what instances hold, quotas kept, usage
    records open exactly while resources are held."""
    with services.db.read() as s:
        found = violations(s)
    return schemas.CheckOut(ok=not found, violations=found, checked_at=services.clock())
