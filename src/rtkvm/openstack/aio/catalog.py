"""Keystone's catalog for the all-in-one: the service project, users, services and endpoints.

:func:`ensure_catalog` makes what is missing, through Keystone's v3 API as the
bootstrapped admin, and leaves what is there: the ``service`` project; a user
per service (nova, placement, glance, neutron) with the ``admin`` and
``service`` roles on it; each service's catalog entry and its public,
internal and admin endpoints. This module must not write configuration files
or start processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from rtkvm.errors import AllInOneError
from rtkvm.openstack.aio.layout import AioSettings

USERS = ("nova", "placement", "glance", "neutron")


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    type: str
    port_key: str
    path: str = ""


CATALOG = (
    CatalogEntry("placement", "placement", "placement"),
    CatalogEntry("glance", "image", "glance"),
    CatalogEntry("neutron", "network", "neutron"),
    CatalogEntry("nova", "compute", "nova", "/v2.1"),
)


def admin_token(settings: AioSettings, password: str, timeout: float = 30.0) -> str:
    """A project-scoped admin token (``admin`` in ``admin``)."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"id": "default"}, "password": password}
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    answer = httpx.post(f"{settings.auth_url}/auth/tokens", json=body, timeout=timeout)
    if answer.status_code != 201:
        raise AllInOneError(f"Keystone refused the admin: {answer.status_code} {answer.text[:300]}")
    return answer.headers["X-Subject-Token"]


class _Keystone:
    def __init__(self, settings: AioSettings, token: str) -> None:
        self.client = httpx.Client(
            base_url=settings.auth_url, headers={"X-Auth-Token": token}, timeout=30.0
        )

    def find(self, kind: str, **query: str) -> dict[str, Any] | None:
        answer = self.client.get(f"/{kind}", params=query)
        self._check(answer, f"list {kind}")
        found: list[dict[str, Any]] = answer.json()[kind]
        return found[0] if found else None

    def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        singular = kind[:-1]
        answer = self.client.post(f"/{kind}", json={singular: body})
        self._check(answer, f"create {singular} {body.get('name', '')}")
        made: dict[str, Any] = answer.json()[singular]
        return made

    def ensure(self, kind: str, body: dict[str, Any], **query: str) -> tuple[dict[str, Any], bool]:
        found = self.find(kind, **query)
        return (found, False) if found is not None else (self.create(kind, body), True)

    def grant(self, project: str, user: str, role: str) -> None:
        answer = self.client.put(f"/projects/{project}/users/{user}/roles/{role}")
        self._check(answer, "grant a role")

    @staticmethod
    def _check(answer: httpx.Response, what: str) -> None:
        if answer.status_code >= 300:
            raise AllInOneError(
                f"Keystone: could not {what}: {answer.status_code} {answer.text[:300]}"
            )


def ensure_catalog(settings: AioSettings, admin_password: str, service_password: str) -> list[str]:
    """Make the missing parts of the catalog; what was made, one line each."""
    ks = _Keystone(settings, admin_token(settings, admin_password))
    made: list[str] = []
    project, new = ks.ensure(
        "projects",
        {"name": "service", "domain_id": "default", "description": "OpenStack services"},
        name="service",
    )
    if new:
        made.append("project service")
    roles = {}
    for role in ("admin", "service"):
        role_doc, new = ks.ensure("roles", {"name": role}, name=role)
        roles[role] = role_doc["id"]
        if new:
            made.append(f"role {role}")
    for name in USERS:
        user, new = ks.ensure(
            "users",
            {"name": name, "domain_id": "default", "password": service_password},
            name=name,
        )
        if new:
            made.append(f"user {name}")
        for role_id in roles.values():
            ks.grant(project["id"], user["id"], role_id)
    for entry in CATALOG:
        service, new = ks.ensure(
            "services", {"name": entry.name, "type": entry.type}, type=entry.type
        )
        if new:
            made.append(f"service {entry.name} ({entry.type})")
        url = settings.url(entry.port_key) + entry.path
        for interface in ("public", "internal", "admin"):
            endpoint = ks.find("endpoints", service_id=service["id"], interface=interface)
            if endpoint is None:
                ks.create(
                    "endpoints",
                    {
                        "service_id": service["id"],
                        "interface": interface,
                        "url": url,
                        "region_id": settings.region,
                    },
                )
                made.append(f"endpoint {entry.name} {interface} {url}")
    return made
