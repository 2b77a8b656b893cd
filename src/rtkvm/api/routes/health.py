"""Liveness, readiness and metrics: ``/healthz``, ``/readyz``, ``/metrics``.

``/healthz`` answers while the process serves (no database, no token), for
a supervisor's liveness probe. ``/readyz`` answers 200 when the database
answers and its schema is at the code's Alembic head, else 503 with what is
wrong, for a load balancer (no token). ``/metrics`` is Prometheus' text
format (:mod:`rtkvm.api.metrics`), for admins only (a scrape config with the
admin token as bearer token): it names hosts and servers. Must not write.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from rtkvm.api.deps import AdminDep, ServicesDep
from rtkvm.api.errors import ApiError

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep) -> dict[str, str]:
    try:
        with services.db.read() as s:
            s.execute(text("SELECT 1"))
        current, head = services.db.revisions()
    except SQLAlchemyError as exc:
        raise ApiError(503, f"the database does not answer: {type(exc).__name__}") from None
    if current != head:
        raise ApiError(
            503,
            f"the database schema is at {current}, the code needs {head}: "
            "restart the API with migrations on (the default) or run them",
        )
    return {"status": "ready", "schema": head or ""}


@router.get("/metrics")
def metrics(services: ServicesDep, _: AdminDep) -> Response:
    return Response(services.metrics.text(), media_type=CONTENT_TYPE_LATEST)
