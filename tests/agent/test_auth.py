"""Agents act only with their own enrolled token, only for their own host."""

from __future__ import annotations

import pytest

from rtkvm.agent.loop import Agent
from rtkvm.api.testing import Cloud, expect
from rtkvm.errors import CloudError
from rtkvm.wire.agent_client import AgentClient
from rtkvm.wire.guest import StateReport
from rtkvm.wire.user_client import CloudClient

from .conftest import MakeAgent, small_flavor
from .fakes import FakeHypervisor


def test_an_agent_cannot_see_or_report_for_another_host(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    one = make_agent("node1", FakeHypervisor())
    two = make_agent("node2", FakeHypervisor())
    one.register()
    two.register()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud, "rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    owner, other = (one, two) if vm["host"] == "node1" else (two, one)
    assert [i.id for i in owner.work()] == [vm["id"]]
    assert other.work() == []
    with pytest.raises(CloudError) as refused:
        other.control.report_state(vm["id"], StateReport(state="active"))
    assert refused.value.status == 404
    assert other.step().created == {}
    assert expect(alice.get(f"/v1/instances/{vm['id']}"), 200)["state"] == "building"


def test_an_unenrolled_token_cannot_register_or_receive_work(
    cloud: Cloud, make_agent: MakeAgent
) -> None:
    real = make_agent("node1", FakeHypervisor())
    forged = AgentClient(http=cloud.client("rtk_not-an-enrolled-token"))
    impostor = Agent(forged, real.inventory, real.executor)
    with pytest.raises(CloudError) as refused:
        impostor.run(once=True)
    assert refused.value.status == 401
    with pytest.raises(CloudError) as no_work:
        impostor.work()
    assert no_work.value.status == 401
    assert expect(cloud.admin.get("/v1/hosts/node1"), 200)["status"] == "enrolled"


@pytest.mark.parametrize("role", ["member", "admin"])
def test_a_user_token_cannot_act_as_an_agent(
    cloud: Cloud, make_agent: MakeAgent, role: str
) -> None:
    real = make_agent("node1", FakeHypervisor())
    cloud.project("p1")
    user = cloud.member("bob", "p1", role=role)
    as_agent = Agent(AgentClient(http=user), real.inventory, real.executor)
    for call in (as_agent.register, as_agent.heartbeat, as_agent.work):
        with pytest.raises(CloudError) as refused:
            call()
        assert refused.value.status == 403
        assert "agent token" in str(refused.value)
    assert expect(cloud.admin.get("/v1/hosts/node1"), 200)["status"] == "enrolled"


def test_a_removed_host_s_agent_stops_with_401(cloud: Cloud, make_agent: MakeAgent) -> None:
    agent = make_agent("node1", FakeHypervisor())
    agent.register()
    expect(cloud.admin.delete("/v1/hosts/node1"), 204)
    with pytest.raises(CloudError) as refused:
        agent.run(once=False, sleep=lambda _: None)
    assert refused.value.status == 401


def test_an_agent_token_cannot_use_user_routes(cloud: Cloud, make_agent: MakeAgent) -> None:
    agent = make_agent("node1", FakeHypervisor())
    with pytest.raises(CloudError) as refused:
        CloudClient(http=agent.control.http).servers()  # type: ignore[attr-defined]
    assert refused.value.status == 403
