"""Two real API processes on one fresh PostgreSQL database, and helpers to race them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from rtkvm.db.pgtest import PostgresServer
from rtkvm.scheduler.fakehosts import fake_host
from rtkvm.testing import apiproc
from rtkvm.testing.apiproc import free_port, wait_up
from rtkvm.wire.agent_client import AgentClient
from rtkvm.wire.node import HostReport
from rtkvm.wire.user_client import CloudClient

ADMIN = "rtk_race-admin-token-0123456789abcdefghijklmnopqrs"


def start_api(url: str, port: int, log: Path, store: Path | None = None) -> subprocess.Popen[bytes]:
    env = {"RTKVM_IMAGE_STORE": str(store)} if store is not None else None
    return apiproc.start_api(url, port, log, admin_token=ADMIN, env=env)


@dataclass
class Twins:
    """One database, two API processes: ``a`` and ``b`` are their base URLs."""

    url: str
    a: str
    b: str

    def admin(self, base: str) -> CloudClient:
        return CloudClient(base, ADMIN, timeout=30)

    def http(self, base: str, token: str) -> httpx.Client:
        return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


@pytest.fixture(params=["postgresql", "sqlite"])
def twins(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Twins]:
    """Two API processes on one new database: PostgreSQL (where the races were found) and
    SQLite (one file, WAL: its writers queue on the file lock)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/rtkvm.db"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.new_database()
    procs = []
    bases = []
    try:
        for name in ("a", "b"):
            port = free_port()
            log = tmp_path / f"api-{name}.log"
            proc = start_api(url, port, log, tmp_path / "image-store")  # one store, shared
            procs.append(proc)
            wait_up(port, proc, log)
            bases.append(f"http://127.0.0.1:{port}")
        yield Twins(url, bases[0], bases[1])
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=15)


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls together (threads released by one barrier); their results in order."""
    import threading

    gate = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        gate.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@dataclass
class Site:
    member: str
    agent: str
    host: str


def register_host(twins: Twins, name: str, *, disk_gb: int = 1000) -> str:
    """Enroll ``name`` and register it (2 NUMA nodes of 8 cores, RT-ready, wired to blue);
    its agent token."""
    agent = twins.admin(twins.a).enroll_host(name).agent_token
    fake = fake_host(nodes=2, cores_per_node=8)
    report = HostReport.model_validate(
        {
            "topology": fake.topology.model_dump(),
            "plan": fake.plan.model_dump(mode="json"),
            "doctor": {"verdict": "ready", "failed": []},
            "dataplane_state": "ready",
            "physnets": ["blue"],
            "disk_gb": disk_gb,
        }
    )
    AgentClient(twins.a, agent).register(report)
    return agent


def setup_site(twins: Twins, *, rt_quota: int | None = None, disk_gb: int = 1000) -> Site:
    admin = twins.admin(twins.a)
    admin.create_project("p1", quota_rt_cores=rt_quota)
    admin.create_user("alice", "p1", "member")
    member = admin.create_token("alice").secret
    agent = register_host(twins, "node1", disk_gb=disk_gb)
    specs = {"hw:cpu_policy": "dedicated", "hw:cpu_realtime": "yes", "hw:cpu_realtime_mask": "^0"}
    admin.create_flavor({"name": "rt2", "vcpus": 2, "ram": 512, "extra_specs": specs})
    return Site(member, agent, "node1")
