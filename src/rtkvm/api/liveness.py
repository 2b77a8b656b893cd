"""A host's liveness from its registration and its agent's last heartbeat.

One rule, used by the views, the routes and the metrics: enrolled until the
agent registers, up while its heartbeats are younger than the agent timeout,
down after. It must not query the database nor change a host.
"""

from __future__ import annotations

from rtkvm.db.models import Host


def host_status(host: Host, now: float, timeout: float) -> str:
    if host.registered_at is None:
        return "enrolled"
    if host.heartbeat_at is not None and now - host.heartbeat_at <= timeout:
        return "up"
    return "down"
