"""``create_app(settings)``: the control plane's FastAPI application.

Opens the database, runs ``alembic upgrade head``, creates the first admin
when ``settings.bootstrap_admin_token`` is set, and mounts one router per
resource. Everything the routes need is in ``app.state.services``; there
are no module-level globals. OpenAPI is served at /openapi.json and /docs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import FastAPI

from rtkvm import __version__
from rtkvm.api import errors
from rtkvm.api.dashboard import pages as dashboard
from rtkvm.api.deps import Services
from rtkvm.api.guard import BodyGuard
from rtkvm.api.metrics import Metrics
from rtkvm.api.routes import (
    agent,
    agent_guests,
    agent_measurements,
    check,
    consoles,
    flavors,
    guests,
    health,
    hosts,
    images,
    instance_actions,
    instances,
    interactive_console,
    keypairs,
    measurements,
    networks,
    projects,
    qualifications,
    tokens,
    usage,
    users,
)
from rtkvm.api.security import ensure_admin
from rtkvm.api.sweeps import Sweeps
from rtkvm.api.throttle import AuthThrottle
from rtkvm.db.engine import Database
from rtkvm.scheduler.claim import fail_stale_scheduling
from rtkvm.settings import Settings

ROUTERS = (
    projects,
    users,
    tokens,
    hosts,
    agent,
    flavors,
    networks,
    images,
    keypairs,
    instances,
    instance_actions,
    consoles,
    interactive_console,
    usage,
    measurements,
    qualifications,
    agent_measurements,
    agent_guests,
    guests,
    check,
    health,
    dashboard,
)


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> FastAPI:
    """Build the app on ``settings.database_url`` (migrated to head on start)."""
    db = Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    if settings.migrate_on_start:
        db.migrate()
    if settings.bootstrap_admin_token:
        with db.write() as session:
            db.serialize(session)  # two processes starting together make one admin
            ensure_admin(
                session,
                settings.bootstrap_admin_token,
                clock(),
                settings.bootstrap_token_lifetime_s,
            )
    with db.write() as session:  # creates a crashed process left half-way
        fail_stale_scheduling(session, clock(), settings.scheduling_stale_s)
    app = FastAPI(
        title="rtkvm control plane",
        version=__version__,
        description="Real-time KVM cloud: projects, hosts, RT flavors, unmanaged networks, "
        "instances pinned to dedicated pCPUs.",
    )
    app.state.services = Services(
        settings=settings,
        db=db,
        clock=clock,
        throttle=AuthThrottle(clock, limit=settings.auth_failures_per_minute),
        sweeps=Sweeps(settings, clock),
        metrics=Metrics(db, clock, settings.agent_timeout_s),
    )
    errors.install(app)
    dashboard.install(app)
    app.add_middleware(BodyGuard)  # a token first, then a bounded, well-formed body
    for module in ROUTERS:
        app.include_router(module.router, responses=errors.RESPONSES)

    @app.get("/v1", tags=["meta"])
    def root() -> dict[str, str]:
        return {"name": "rtkvm", "version": __version__}

    return app
