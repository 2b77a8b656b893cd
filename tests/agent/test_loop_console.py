"""A server's console log, end to end through the agent: a user asks, the agent sends it
at its next step, the user reads it.

The agent is rtkvm's own, stepping against the real API with libvirt's test driver;
the serial log is a file where the guest's would be. What the guest wrote reaches the
user as printable text only: its terminal escapes do not.
"""

from __future__ import annotations

from pathlib import Path

from rtkvm.agent.names import domain_name
from rtkvm.api.testing import Cloud, expect
from rtkvm.guest.hypervisor import LibvirtHypervisor

from .conftest import MakeAgent, small_flavor

GUEST_SAID = "SeaBIOS\x1bc\x1b[2JLinux version 6.1.0-rt\r\nRTKVM-READY realtime=1\x07\r\n"


def test_a_user_asks_the_agent_sends_the_user_reads(
    cloud: Cloud, make_agent: MakeAgent, libvirt_test: LibvirtHypervisor, tmp_path: Path
) -> None:
    agent = make_agent("node1", libvirt_test)
    agent.register()
    cloud.project("p1")
    alice = cloud.member("alice", "p1")
    small_flavor(cloud, "rt2", 2)
    vm = expect(alice.post("/v1/instances", json={"name": "vm", "flavor": "rt2"}), 201)
    agent.step()  # built and active
    path = f"/v1/instances/{vm['id']}/console-log"
    before = expect(alice.get(path), 200)
    assert (before["requested_at"], before["text"]) == (None, "")

    (tmp_path / f"{domain_name(vm['id'])}.serial.log").write_bytes(GUEST_SAID.encode())
    asked = expect(alice.post(path), 202)
    assert asked["requested_at"] is not None and asked["taken_at"] is None
    result = agent.step()
    assert result.consoles == [vm["id"]]
    log = expect(alice.get(path), 200)
    assert log["taken_at"] >= log["requested_at"]
    assert log["text"] == "SeaBIOSLinux version 6.1.0-rt\nRTKVM-READY realtime=1\n"
    assert not log["truncated"]
    assert agent.step().consoles == []  # sent once per request

    # another project's member does not learn the server exists
    cloud.project("p2")
    bob = cloud.member("bob", "p2")
    assert bob.get(path).status_code == 404 and bob.post(path).status_code == 404
