"""Fixtures: the real API in-process (sqlite), a tuned 2-node host tree, agents on it.

An agent here is the real :class:`rtkvm.agent.loop.Agent` with its own enrolled
token, its inventory read from ``tests/fixtures/hosts/tuned-2node`` and an
executor on libvirt's ``test:///default`` driver (or a fake hypervisor) and
a fake switch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import libvirt
import pytest
from fastapi import FastAPI

from rtkvm.agent.executor import BootConfig, Executor, HostView
from rtkvm.agent.images import BaseImages
from rtkvm.agent.inventory import collect
from rtkvm.agent.loop import Agent
from rtkvm.api.app import create_app
from rtkvm.api.testing import ADMIN_TOKEN, Cloud, FakeClock, expect
from rtkvm.cpuset import CpuSet
from rtkvm.dataplane.backend import DataPlane
from rtkvm.domain.design import HostQuirks
from rtkvm.guest.create import Image
from rtkvm.guest.hypervisor import Hypervisor, LibvirtHypervisor
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS
from rtkvm.net.model import HostWiring, Uplink
from rtkvm.settings import Settings
from rtkvm.wire.agent_client import AgentClient

from .fakes import FakeSwitch

TEST_URI = "test:///default"
HOST_ROOT = Path(__file__).parents[1] / "fixtures" / "hosts" / "tuned-2node"
WIRING = HostWiring((Uplink("blue", "ens1f0"), Uplink("red", "ens9")))  # ens9 is not there


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[FastAPI]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/rtkvm.db",
        bootstrap_admin_token=ADMIN_TOKEN,
        image_store_dir=str(tmp_path / "image-store"),
    )
    application = create_app(settings, clock=clock)
    yield application
    application.state.services.db.dispose()


@pytest.fixture
def cloud(app: FastAPI) -> Iterator[Cloud]:
    helper = Cloud(app)
    yield helper
    helper.close()


@pytest.fixture
def plan() -> PartitionPlan:
    return PartitionPlan(
        housekeeping=CpuSet.parse("0-1"), rt_vcpu=CpuSet.parse("2-7"), dataplane=CpuSet()
    )


@pytest.fixture
def fs() -> HostFS:
    return HostFS(HOST_ROOT)


@pytest.fixture
def libvirt_test() -> Iterator[LibvirtHypervisor]:
    """The test driver; rtkvm domains a test leaves behind are removed afterwards.

    The driver keeps its state only while a connection is open, so one stays open
    for the test (the agent itself connects once per call, as on a real node).
    """
    conn = libvirt.open(TEST_URI)
    hv = LibvirtHypervisor(TEST_URI)
    before = {d.name for d in hv.domains()}
    yield hv
    try:
        for dom in conn.listAllDomains(0):
            if dom.name() not in before and dom.name().startswith("rtkvm-"):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
    finally:
        conn.close()


@pytest.fixture
def switch() -> FakeSwitch:
    return FakeSwitch(("blue",))


def boot_config(tmp_path: Path) -> BootConfig:
    return BootConfig(
        image=Image(tmp_path / "vmlinuz", tmp_path / "initramfs.cpio.gz"),
        accel="tcg",
        guest_dir=tmp_path,
        quirks=HostQuirks(locked_memory=False),
        allow_unlocked_memory=True,
    )


MakeAgent = Callable[..., Agent]


@pytest.fixture
def make_agent(cloud: Cloud, fs: HostFS, plan: PartitionPlan, tmp_path: Path) -> MakeAgent:
    """Enroll host ``name`` and build its agent (not yet registered)."""

    def make(name: str, hypervisor: Hypervisor, switch: DataPlane | None = None) -> Agent:
        token = expect(cloud.admin.post("/v1/hosts", json={"name": name}), 201)["agent_token"]
        client = AgentClient(http=cloud.client(token))
        boot = replace(
            boot_config(tmp_path), images=BaseImages(tmp_path / "base", client.fetch_image)
        )
        executor = Executor(hypervisor, switch, HostView(plan, read_topology(fs)), boot)
        return Agent(
            client,
            lambda: collect(fs, plan, wiring=WIRING, switch=switch, guest_dir=tmp_path),
            executor,
            ports=switch.ports if switch is not None else set,
        )

    return make


def small_flavor(cloud: Cloud, name: str = "rt2", vcpus: int = 2, **extra: str) -> dict[str, Any]:
    """An RT flavor on small pages (the fixture host has no free 2M hugepages)."""
    return cloud.flavor(name, vcpus, 512, hw__mem_page_size="small", **extra)
