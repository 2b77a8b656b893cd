"""Pinning: vCPUs on the plan's RT CPUs, emulator policy, NUMA, exhaustion errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtkvm.cpuset import CpuSet
from rtkvm.domain.placement import place
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.errors import InputError, PlanError
from rtkvm.testing.guests import make_plan, make_topology

ONE_NODE = make_topology(nodes=1, cores_per_node=8)
TWO_NODES = make_topology(nodes=2, cores_per_node=4)  # node 0: 0-3, node 1: 4-7
SMT = make_topology(nodes=1, cores_per_node=4, smt=2)  # siblings k and k+4


def _spec(**fields: Any) -> RtGuestSpec:
    base: dict[str, Any] = {"vcpus": 4, "memory_mib": 1024, "realtime_mask": "^0"}
    return RtGuestSpec.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("spec_fields", "plan_sets", "allocated", "pins", "emulator"),
    [
        # no emulator policy: the emulator runs on the non-RT vCPU's pCPU (as Nova does)
        ({}, ("0", "1-7"), "", "1,2,3,4", "1"),
        ({"realtime_mask": "^0-1"}, ("0", "1-7"), "", "1,2,3,4", "1-2"),
        # share: the host's housekeeping CPUs
        ({"emulator_threads_policy": "share"}, ("0-1", "2-7"), "", "2,3,4,5", "0-1"),
        # isolate: one more pCPU from the RT set, after the vCPUs
        ({"emulator_threads_policy": "isolate"}, ("0", "1-7"), "", "1,2,3,4", "5"),
        # already allocated pCPUs are skipped
        ({}, ("0", "1-7"), "1-3", "4,5,6,7", "4"),
        ({"vcpus": 2}, ("0", "1-7"), "1,3,5", "2,4", "2"),
    ],
)
def test_single_node_cases(
    spec_fields: dict[str, Any],
    plan_sets: tuple[str, str],
    allocated: str,
    pins: str,
    emulator: str,
) -> None:
    placement = place(
        _spec(**spec_fields), make_plan(*plan_sets), ONE_NODE, CpuSet.parse(allocated)
    )
    assert [p for _, p in placement.vcpu_pins] == [int(x) for x in pins.split(",")]
    assert [v for v, _ in placement.vcpu_pins] == list(range(len(placement.vcpu_pins)))
    assert placement.emulator_cpus == CpuSet.parse(emulator)
    assert placement.cell_nodes == (0,)
    assert placement.vcpu_pcpus.isdisjoint(CpuSet.parse(allocated))


def test_isolate_claims_the_extra_cpu() -> None:
    placement = place(_spec(emulator_threads_policy="isolate"), make_plan("0", "1-7"), ONE_NODE)
    assert placement.isolated_emulator_cpu == 5
    assert placement.claimed == CpuSet.parse("1-5")
    again = place(
        _spec(emulator_threads_policy="isolate", vcpus=1, realtime_mask=None),
        make_plan("0", "1-7"),
        ONE_NODE,
        placement.claimed,
    )
    assert again.claimed == CpuSet.parse("6-7")


def test_best_fit_node_keeps_the_bigger_node_free() -> None:
    plan = make_plan("0,4", "1-3,5-7")
    placement = place(_spec(vcpus=2), plan, TWO_NODES, CpuSet([1]))
    assert placement.cell_nodes == (0,)  # node 0 has 2 free, node 1 has 3: 2 fit best
    assert placement.vcpu_pcpus == CpuSet.parse("2-3")


def test_share_prefers_housekeeping_on_the_guests_node() -> None:
    plan = make_plan("0,4", "1-3,5-7")
    placement = place(
        _spec(vcpus=3, emulator_threads_policy="share", realtime_mask=None),
        plan,
        TWO_NODES,
        CpuSet.parse("1-3"),
    )
    assert placement.cell_nodes == (1,)
    assert placement.emulator_cpus == CpuSet([4])


def test_two_cells_go_to_two_nodes() -> None:
    spec = _spec(vcpus=4, memory_mib=2048, numa_nodes=2, realtime_mask="^0,^2")
    placement = place(spec, make_plan("0,4", "1-3,5-7"), TWO_NODES)
    assert placement.cell_nodes == (0, 1)
    assert placement.pcpus_of(CpuSet.parse("0-1")) == CpuSet.parse("1-2")
    assert placement.pcpus_of(CpuSet.parse("2-3")) == CpuSet.parse("5-6")
    assert placement.emulator_cpus == CpuSet.parse("1,5")  # the non-RT vCPUs 0 and 2


def test_smt_siblings_are_taken_together() -> None:
    placement = place(_spec(vcpus=4), make_plan("0,4", "1-3,5-7"), SMT)
    assert [p for _, p in placement.vcpu_pins] == [1, 5, 2, 6]


def test_no_fit_says_what_is_free() -> None:
    with pytest.raises(PlanError) as info:
        place(_spec(vcpus=4), make_plan("0,4", "1-3,5-7"), TWO_NODES, CpuSet([5]))
    text = str(info.value)
    assert "needs 4 RT pCPUs on one NUMA node" in text
    assert "node 0: 1-3 (3), node 1: 6-7 (2)" in text
    assert "already allocated: 5" in text


def test_no_fit_counts_the_isolated_emulator_cpu() -> None:
    with pytest.raises(PlanError, match=r"\+1 for hw:emulator_threads_policy=isolate"):
        place(_spec(vcpus=3, emulator_threads_policy="isolate"), make_plan("0", "1-3"), ONE_NODE)


def test_hugepages_shortfall_is_named() -> None:
    host = make_topology(nodes=1, cores_per_node=8, free_2m=100)
    with pytest.raises(PlanError, match="node 0 has 100 free 2M hugepages, cell 0 needs 512"):
        place(_spec(), make_plan("0", "1-7"), host)
    assert place(_spec(), make_plan("0", "1-7"), host, check_hugepages=False).cell_nodes == (0,)
    assert place(_spec(page_size="4k"), make_plan("0", "1-7"), host).cell_nodes == (0,)


def test_a_shared_guest_floats_on_housekeeping_and_claims_nothing() -> None:
    spec = _spec(realtime=False, realtime_mask=None, cpu_policy="shared", page_size="4k")
    taken = CpuSet.parse("1-7")  # every RT pCPU is in use: a shared guest still fits
    p = place(spec, make_plan("0", "1-7"), ONE_NODE, taken)
    assert p.vcpu_pins == () and p.claimed == CpuSet()
    assert p.floating_vcpus == spec.all_vcpus
    assert p.floating_cpus == CpuSet([0]) == p.emulator_cpus


def test_refusals() -> None:
    with pytest.raises(InputError, match="does not have online"):
        place(_spec(), make_plan("0", "1-15"), ONE_NODE)


@settings(max_examples=60, deadline=None)
@given(
    vcpus=st.integers(1, 6),
    allocated=st.frozensets(st.integers(1, 15), max_size=10),
    policy=st.sampled_from([None, "share", "isolate"]),
)
def test_placement_invariants(vcpus: int, allocated: frozenset[int], policy: str | None) -> None:
    """Whatever fits: one vCPU per free RT pCPU, NUMA-local, emulator never on an RT vCPU."""
    host = make_topology(nodes=2, cores_per_node=8)
    plan = make_plan("0,8", "1-7,9-15")
    if vcpus == 1 and policy is None:
        policy = "share"  # one RT vCPU alone needs an emulator policy
    mask = "^0" if policy is None else None
    spec = _spec(vcpus=vcpus, realtime_mask=mask, emulator_threads_policy=policy)
    try:
        placement = place(spec, plan, host, CpuSet(allocated))
    except PlanError as exc:
        assert "free RT pCPUs" in str(exc)
        return
    pcpus = placement.vcpu_pcpus
    assert len(pcpus) == vcpus
    assert pcpus <= plan.rt_vcpu - CpuSet(allocated)
    assert all(host.node_of_cpu(p) == placement.cell_nodes[0] for p in pcpus)
    assert placement.emulator_cpus.isdisjoint(placement.pcpus_of(spec.rt_vcpus))
    assert placement.claimed.isdisjoint(CpuSet(allocated))


def test_mixed_guest_needs_rt_pcpus_only_for_its_rt_vcpus() -> None:
    """The 2-CPU host: housekeeping 0, RT 1; vCPU 0 floats on 0 with the emulator."""
    two_cpus = make_topology(nodes=1, cores_per_node=2)
    spec = _spec(vcpus=2, realtime_mask="^0", cpu_policy="mixed")
    placement = place(spec, make_plan("0", "1"), two_cpus)
    assert placement.vcpu_pins == ((1, 1),)
    assert placement.floating_vcpus == CpuSet([0])
    assert placement.floating_cpus == CpuSet([0])
    assert placement.emulator_cpus == CpuSet([0])
    assert placement.claimed == CpuSet([1])  # nothing floating is claimed
    with pytest.raises(PlanError, match="needs 2 RT pCPUs"):
        place(_spec(vcpus=2, realtime_mask="^0"), make_plan("0", "1"), two_cpus)


def test_mixed_guest_floats_on_its_nodes_housekeeping() -> None:
    spec = _spec(vcpus=3, realtime_mask="^0", cpu_policy="mixed", emulator_threads_policy="isolate")
    placement = place(spec, make_plan("0,4", "1-3,5-7"), TWO_NODES, CpuSet.parse("1-3"))
    assert placement.cell_nodes == (1,)
    assert [v for v, _ in placement.vcpu_pins] == [1, 2]
    assert placement.vcpu_pcpus <= CpuSet.parse("5-7")
    assert placement.floating_cpus == CpuSet([4])  # node 1's housekeeping, not CPU 0
    assert placement.isolated_emulator_cpu is not None
    assert placement.claimed == placement.vcpu_pcpus | CpuSet([placement.isolated_emulator_cpu])
