"""The OpenStack-mode agent keeps its host and its Nova guests in rtkvm's API.

Each round it registers the host as engine ``openstack`` when the API does
not know it yet or the host changed, sends a heartbeat otherwise, registers
again when the API lost it, and reports the round's verdicts as the host's
set with the node's waiver. A round with Placement or libvirt out of reach
does not report a guest set it could not see. Placement and libvirt are
replaced here (the end-to-end test has the real ones); the API is the real
app, in process.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rtkvm.api.testing import Cloud, FakeClock, expect
from rtkvm.cpuset import CpuSet
from rtkvm.errors import OpenStackError
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS
from rtkvm.openstack.enforce import GuestVerdict
from rtkvm.openstack.nodeagent import OpenStackNodeAgent, Round
from rtkvm.tune.simkernel import SimulatedProcessControl
from rtkvm.wire.agent_client import AgentClient
from rtkvm.wire.node import HostReport

from .conftest import WIRING

VERIFIED = GuestVerdict(
    "6a0c3f5e-8d1b-4c52-9a51-0c1f3b2d9e01", "instance-00000001", "rt1", "rt.p40", "verified",
    policy="fifo", priority=40, rt_vcpus="1", waived={"accel.kvm": "kvm_unusable"},
)  # fmt: skip


class WithoutNova(OpenStackNodeAgent):
    """The agent with Placement and libvirt replaced: what the round found is given."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.found: list[GuestVerdict] = []
        self.libvirt_down = False
        self.published: list[HostReport] = []

    def _publish(self, done: Round, report: HostReport) -> None:
        self.published.append(report)

    def _guests(self, done: Round) -> None:
        if self.libvirt_down:
            raise OpenStackError("libvirt: cannot connect")
        done.verdicts.extend(self.found)


def _agent(cloud: Cloud, fs: HostFS, plan: PartitionPlan, state: Path) -> WithoutNova:
    token = cloud.api.enroll_host("c1").agent_token
    return WithoutNova(
        None, plan, fs=fs, control=SimulatedProcessControl(fs), quirks=set(), state_dir=state,
        wiring=WIRING, provider="c1", ledger=AgentClient(http=cloud.client(token)),
    )  # fmt: skip


def test_rounds_register_then_beat_and_report_the_guest_set(
    cloud: Cloud, clock: FakeClock, fs: HostFS, plan: PartitionPlan, tmp_path: Path
) -> None:
    agent = _agent(cloud, fs, plan, tmp_path)
    agent.found = [VERIFIED]
    done = agent.round()
    assert done.errors == []
    host = cloud.api.host("c1")
    assert (host.engine, host.status, host.doctor_verdict, host.physnets) == (
        "openstack", "up", "ready", ["blue"],
    )  # fmt: skip
    [seen] = cloud.api.guest_verdicts(host="c1")
    assert (seen.name, seen.verdict, seen.policy, seen.priority) == ("rt1", "verified", "fifo", 40)
    assert seen.waived == {"accel.kvm": "kvm_unusable"} and seen.summary == VERIFIED.summary

    clock.advance(30)
    (tmp_path / "rt-waiver").write_text("lab bench\n")
    degraded = replace(VERIFIED, verdict="degraded", reasons=("vCPU 1 is other/0",))
    agent.found = [degraded]
    assert agent.round().errors == []
    host = cloud.api.host("c1")
    assert host.heartbeat_at == clock.now and host.rt_waiver == "lab bench"
    [seen] = cloud.api.guest_verdicts(host="c1")
    assert (seen.verdict, seen.reasons, seen.changed_at) == (
        "degraded", ["vCPU 1 is other/0"], clock.now,
    )  # fmt: skip

    agent.found = []  # the guest left the host
    assert agent.round().errors == []
    assert cloud.api.guest_verdicts(host="c1") == []


def test_libvirt_out_of_reach_keeps_the_last_set(
    cloud: Cloud, fs: HostFS, plan: PartitionPlan, tmp_path: Path
) -> None:
    agent = _agent(cloud, fs, plan, tmp_path)
    agent.found = [VERIFIED]
    agent.round()
    agent.libvirt_down = True
    done = agent.round()
    assert done.errors == ["guests: libvirt: cannot connect"]
    assert [g.name for g in cloud.api.guest_verdicts()] == ["rt1"]  # not emptied


def test_a_changed_host_registers_again_and_a_lost_registration_is_redone(
    cloud: Cloud, fs: HostFS, plan: PartitionPlan, tmp_path: Path
) -> None:
    agent = _agent(cloud, fs, plan, tmp_path)
    agent.round()
    agent.plan = plan.model_copy(update={"rt_vcpu": plan.rt_vcpu - CpuSet([max(plan.rt_vcpu)])})
    assert agent.round().errors == []
    rt = {n.node: n.rt_pcpus for n in cloud.api.host("c1").nodes}
    assert str(max(plan.rt_vcpu)) not in ",".join(rt.values()).split(",")

    expect(cloud.admin.delete("/v1/hosts/c1"), 204)  # the admin removed it: the token dies
    done = agent.round()
    assert [e for e in done.errors if "HTTP 401" in e] == done.errors != [], done.errors
