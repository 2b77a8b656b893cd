"""Test helpers for the control plane, shipped like structlog.testing.

:class:`FakeClock` is a settable clock for ``create_app(clock=...)``.
:class:`Cloud` drives a running app through its real HTTP stack (an
in-process transport, no sockets): it makes projects, users with tokens,
enrolls and registers simulated hosts (their agents act through their own
tokens), and creates flavors and networks. It asserts nothing itself
beyond raising on unexpected status codes.
"""

from __future__ import annotations

import warnings
from typing import Any

import httpx
from fastapi import FastAPI

with warnings.catch_warnings():  # starlette nags about httpx; TestClient is still httpx-based
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from rtkvm.scheduler.fakehosts import fake_host
from rtkvm.wire.agent_client import AgentClient
from rtkvm.wire.node import HostReport
from rtkvm.wire.user_client import CloudClient

ADMIN_TOKEN = "rtk_test-admin-token-0123456789abcdefghijklmnop"


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def expect(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise AssertionError(
            f"{response.request.method} {response.request.url}: expected {status}, "
            f"got {response.status_code}: {response.text}"
        )
    return response.json() if response.content else None


def host_report(
    *,
    physnets: tuple[str, ...] = (),
    verdict: str = "ready",
    dataplane: str = "ready",
    engine: str = "rtkvm",
    console_address: str | None = None,
    disk_gb: int | None = 1000,
    **shape: Any,
) -> HostReport:
    """What the agent of a simulated host (:func:`fake_host` of ``shape``) registers."""
    fake = fake_host(**shape)
    report = {
        "topology": fake.topology.model_dump(),
        "plan": fake.plan.model_dump(mode="json"),
        "doctor": {
            "verdict": verdict,
            "failed": [] if verdict == "ready" else ["sched.rt_throttling"],
        },
        "dataplane_state": dataplane,
        "physnets": list(physnets),
        "engine": engine,
        "console_address": console_address,
        "disk_gb": disk_gb,
    }
    return HostReport.model_validate(report)


class Cloud:
    """Clients for an app: ``admin``, and more made on demand."""

    def __init__(self, app: FastAPI, admin_token: str = ADMIN_TOKEN) -> None:
        self.app = app
        self._open: list[TestClient] = []
        self.admin = self.client(admin_token)
        self.api = CloudClient(http=self.admin)
        """The typed client over ``admin``'s transport."""

    def client(self, token: str | None) -> TestClient:
        """A client with this bearer token (kept open: one event loop thread per client)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = TestClient(self.app, base_url="http://rtkvm.test", headers=headers)
        client.__enter__()
        self._open.append(client)
        return client

    def close(self) -> None:
        while self._open:
            self._open.pop().__exit__(None, None, None)

    def project(self, name: str, **quota: int | None) -> dict[str, Any]:
        return self.api.create_project(name, **quota).model_dump(mode="json")

    def member(self, name: str, project: str, role: str = "member") -> TestClient:
        self.api.create_user(name, project, role)
        return self.client(self.api.create_token(name).secret)

    def host(self, name: str, **report: Any) -> TestClient:
        """Enroll and register a simulated host (``report``: :func:`host_report`'s keywords);
        returns its agent's client."""
        agent = self.client(self.api.enroll_host(name).agent_token)
        AgentClient(http=agent).register(host_report(**report))
        return agent

    def flavor(self, name: str, vcpus: int, ram: int = 1024, **extra: str) -> dict[str, Any]:
        specs = {
            "hw:cpu_policy": "dedicated",
            "hw:cpu_realtime": "yes",
            "hw:cpu_realtime_mask": "^0",
        }
        specs.update({k.replace("__", ":"): v for k, v in extra.items()})
        body = {"name": name, "vcpus": vcpus, "ram": ram, "extra_specs": specs}
        return self.api.create_flavor(body).model_dump(mode="json")

    def network(self, name: str, physnet: str, **fields: Any) -> dict[str, Any]:
        body = {"name": name, "physnet": physnet, **fields}
        return self.api.create_network(body).model_dump(mode="json")
