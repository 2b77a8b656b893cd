"""A shared (non-RT) guest's live domain is judged by whether it keeps off the RT CPUs."""

from __future__ import annotations

from rtkvm.cpuset import CpuSet
from rtkvm.domain.design import GuestBoot, HostQuirks, design_domain
from rtkvm.domain.placement import place
from rtkvm.domain.spec import from_extra_specs
from rtkvm.domain.xml import parse_domain
from rtkvm.guest.rtcheck import shared_isolation
from rtkvm.testing.guests import make_plan, make_topology

HOUSEKEEPING = CpuSet.parse("0-1")


def _designed() -> str:
    spec = from_extra_specs(
        {"hw:cpu_policy": "shared", "rtkvm:iothreads": "1"}, vcpus=2, memory_mib=512
    ).spec
    plan = make_plan("0-1", "2-7")
    placement = place(spec, plan, make_topology(nodes=1, cores_per_node=8), CpuSet.parse("2-7"))
    boot = GuestBoot(name="plain", kernel="/k", initrd="/i", cmdline="console=ttyS0")
    return design_domain(spec, placement, boot, HostQuirks()).xml


def test_rtkvm_s_design_keeps_a_shared_guest_on_housekeeping() -> None:
    xml = _designed()
    assert "vcpusched" not in xml
    assert shared_isolation(parse_domain(xml), HOUSEKEEPING) == []


def test_a_pin_on_an_rt_cpu_or_an_rt_scheduler_is_named() -> None:
    xml = _designed().replace(
        '<vcpupin vcpu="1" cpuset="0-1"/>', '<vcpupin vcpu="1" cpuset="0-2"/>'
    )
    xml = xml.replace(
        "</cputune>", '<vcpusched vcpus="0" scheduler="fifo" priority="40"/></cputune>'
    )
    reasons = shared_isolation(parse_domain(xml), HOUSEKEEPING)
    assert any("vCPU 1 may run on CPUs 2" in r for r in reasons), reasons
    assert any("real-time scheduler" in r for r in reasons), reasons
    assert shared_isolation(parse_domain(xml), None) != []  # no partition: not verified
