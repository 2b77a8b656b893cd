"""Guest design: golden domains, libvirt schema validity, policy, refusals, warnings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.domain.audit import AuditHost, audit_domain
from rtkvm.domain.design import (
    GuestBoot,
    GuestDesign,
    HostQuirks,
    VhostUserNic,
    design_domain,
    design_guest,
)
from rtkvm.domain.placement import Placement
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.domain.xml import parse_domain
from rtkvm.errors import InputError, SpecError
from rtkvm.findings import Severity, Status
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import Topology
from rtkvm.testing.guests import make_plan, make_topology

ONE_NODE = make_topology(nodes=1, cores_per_node=8)
TWO_NODES = make_topology(nodes=2, cores_per_node=4)
NICS = (
    VhostUserNic("/var/run/rtkvm/vhu-rt2-0.sock", "52:54:00:00:02:00"),
    VhostUserNic("/var/run/rtkvm/vhu-rt2-1.sock", "52:54:00:00:02:01", queues=2),
)


def _spec(**fields: Any) -> RtGuestSpec:
    base: dict[str, Any] = {"vcpus": 4, "memory_mib": 1024, "realtime_mask": "^0"}
    return RtGuestSpec.model_validate({**base, **fields})


CASES: dict[str, tuple[RtGuestSpec, PartitionPlan, Topology, GuestBoot, HostQuirks, bool]] = {
    "rt_kvm_isolate.xml": (
        _spec(emulator_threads_policy="isolate", iothreads=1),
        make_plan("0", "1-7"),
        ONE_NODE,
        GuestBoot(
            name="rt1",
            uuid="00000000-0000-4000-8000-0000000000a1",
            disk="/var/lib/rtkvm/images/rt1.qcow2",
            disk_format="qcow2",
        ),
        HostQuirks(),
        False,
    ),
    "rt_tcg_vhostuser.xml": (
        _spec(vcpus=2),
        make_plan("0", "1-7"),
        ONE_NODE,
        GuestBoot(
            name="rt2",
            uuid="00000000-0000-4000-8000-0000000000a2",
            kernel="/var/lib/rtkvm/images/vmlinuz-rt",
            initrd="/var/lib/rtkvm/images/initrd-rt.cpio.gz",
            cmdline="console=ttyS0 isolcpus=1 nohz_full=1 rcu_nocbs=1",
            serial_log="/var/log/rtkvm/rt2.log",
            nics=NICS,
            accel="tcg",
        ),
        HostQuirks(locked_memory=False),
        True,
    ),
    "rt_kvm_two_cells.xml": (
        _spec(
            memory_mib=4096,
            page_size="1G",
            numa_nodes=2,
            realtime_mask=None,
            emulator_threads_policy="share",
        ),
        make_plan("0,4", "1-3,5-7"),
        TWO_NODES,
        GuestBoot(
            name="rt3",
            uuid="00000000-0000-4000-8000-0000000000a3",
            kernel="/boot/vmlinuz",
            nics=NICS[:1],
        ),
        HostQuirks(),
        False,
    ),
}


def _design(name: str) -> GuestDesign:
    spec, plan, topo, boot, quirks, allow = CASES[name]
    return design_guest(spec, plan, topo, boot, host=quirks, allow_unlocked_memory=allow)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_valid_round_trip_and_rt_ready(
    name: str, golden: Callable[[str, str], None], valid_domain: Callable[[str], None]
) -> None:
    design = _design(name)
    golden(name, design.xml)
    valid_domain(design.xml)
    assert parse_domain(design.xml) == design.domain
    _, plan, topo, *_ = CASES[name]
    report = audit_domain(design.domain, AuditHost.from_plan(plan, topo))
    failed_errors = [f.id for f in report.findings if f.blocking]
    assert report.ok, failed_errors
    assert report.verdict == "rt-ready"


def test_kvm_policy() -> None:
    domain = _design("rt_kvm_isolate.xml").domain
    assert domain.type == "kvm"
    assert domain.cputune is not None
    assert [(s.vcpus.format(), s.scheduler, s.priority) for s in domain.cputune.vcpuscheds] == [
        ("1", "fifo", 40),
        ("2", "fifo", 40),
        ("3", "fifo", 40),
    ]
    assert [p.cpuset.format() for p in domain.cputune.vcpupins] == ["1", "2", "3", "4"]
    assert domain.cputune.emulatorpin == CpuSet([5])  # the isolated extra pCPU
    assert [p.cpuset for p in domain.cputune.iothreadpins] == [CpuSet([5])]
    assert domain.cpu is not None and domain.cpu.mode == "host-passthrough"
    assert [(f.name, f.policy) for f in domain.cpu.features] == [("tsc-deadline", "require")]
    backing = domain.memory_backing
    assert backing is not None and backing.locked and backing.nosharepages
    assert [p.size_kib for p in backing.hugepages] == [2048]
    assert backing.access_mode is None  # no vhost-user NIC: memory stays private
    assert domain.features is not None and domain.features.pmu is False
    assert domain.devices.memballoon == "none"
    assert [(c.type, c.model) for c in domain.devices.controllers] == [("usb", "none")]
    assert domain.devices.other == ()  # no graphics, video, or anything else
    assert domain.qemu_override is None


def test_tcg_policy_and_warnings() -> None:
    design = _design("rt_tcg_vhostuser.xml")
    domain = design.domain
    assert domain.type == "qemu"
    assert domain.cpu is not None
    assert (domain.cpu.mode, domain.cpu.model, domain.cpu.features) == ("custom", "qemu64", ())
    assert domain.memory_backing is not None
    assert not domain.memory_backing.locked  # dropped, and said so
    assert (domain.memory_backing.source_type, domain.memory_backing.access_mode) == (
        "memfd",
        "shared",
    )
    assert [c.mem_access for c in domain.cpu.cells] == ["shared"]
    assert domain.qemu_override is not None
    assert [
        (d.alias, d.properties[0].name, d.properties[0].value) for d in domain.qemu_override.devices
    ] == [
        ("net0", "vectors", "0"),
        ("net1", "vectors", "0"),
    ]
    assert [i.queues for i in domain.devices.interfaces] == [None, 2]
    assert domain.devices.serials[0].path == "/var/log/rtkvm/rt2.log"
    assert domain.cputune is not None and domain.cputune.emulatorpin == CpuSet([1])
    assert any("NOT locked" in w for w in design.warnings)
    assert any("accel=tcg" in w for w in design.warnings)
    assert any("vectors=0" in w for w in design.warnings)


def test_two_cells_bound_to_their_nodes() -> None:
    domain = _design("rt_kvm_two_cells.xml").domain
    assert domain.numatune is not None
    assert domain.numatune.memory_nodeset == CpuSet([0, 1])
    assert [(m.cellid, m.nodeset.format()) for m in domain.numatune.memnodes] == [
        (0, "0"),
        (1, "1"),
    ]
    assert domain.cpu is not None
    assert [(c.cpus.format(), c.memory_kib) for c in domain.cpu.cells] == [
        ("0-1", 2 << 20),
        ("2-3", 2 << 20),
    ]
    assert domain.cputune is not None
    assert domain.cputune.emulatorpin == CpuSet([0])  # share: housekeeping on cell 0's node


def test_msix_quirk_can_be_forced_under_kvm() -> None:
    spec, plan, topo, boot, _, _ = CASES["rt_kvm_two_cells.xml"]
    plain = design_guest(spec, plan, topo, boot)
    forced = design_guest(spec, plan, topo, boot, host=HostQuirks(vhost_user_msix_broken=True))
    assert plain.domain.qemu_override is None
    assert forced.domain.qemu_override is not None


def _placement() -> Placement:
    return Placement(((0, 1), (1, 2)), CpuSet([1]), (0,))


BOOT = GuestBoot(name="g", kernel="/k")


@pytest.mark.parametrize(
    ("spec_fields", "boot", "quirks", "message"),
    [
        (
            {"shared_memory": False},
            GuestBoot(name="g", kernel="/k", nics=NICS[:1]),
            HostQuirks(),
            "need guest memory shared",
        ),
        ({}, BOOT, HostQuirks(locked_memory=False), "cannot lock guest memory"),
        ({}, GuestBoot(name="g"), HostQuirks(), "either a kernel"),
        ({}, GuestBoot(name="g", kernel="/k", disk="/d"), HostQuirks(), "either a kernel"),
        ({}, GuestBoot(name="g", disk="/d", cmdline="x"), HostQuirks(), "needs a kernel"),
        ({}, GuestBoot(name="bad name", kernel="/k"), HostQuirks(), "guest name 'bad name'"),
        (
            {},
            GuestBoot(name="g", kernel="/k", nics=(VhostUserNic("rel.sock"),)),
            HostQuirks(),
            "must be absolute",
        ),
        (
            {},
            GuestBoot(name="g", kernel="/k", nics=(VhostUserNic("/s", "52:54:00:00:00"),)),
            HostQuirks(),
            "is not like",
        ),
        ({"vcpus": 4}, BOOT, HostQuirks(), "place it again"),
    ],
)
def test_refusals(
    spec_fields: dict[str, Any], boot: GuestBoot, quirks: HostQuirks, message: str
) -> None:
    spec = _spec(**{"vcpus": 2, **spec_fields})
    with pytest.raises(InputError) as info:
        design_domain(spec, _placement(), boot, quirks)
    assert message in str(info.value)


def test_locked_memory_refusal_says_how_to_proceed() -> None:
    with pytest.raises(SpecError) as info:
        design_domain(_spec(vcpus=2), _placement(), BOOT, HostQuirks(locked_memory=False))
    text = str(info.value)
    assert "hw:locked_memory=false" in text and "--allow-unlocked-memory" in text


def test_unlocked_flavor_needs_no_permission_and_gets_no_warning() -> None:
    design = design_domain(
        _spec(vcpus=2, locked_memory=False), _placement(), BOOT, HostQuirks(locked_memory=False)
    )
    assert design.warnings == ()
    assert design.domain.memory_backing is not None and not design.domain.memory_backing.locked


def test_rr_and_priority_reach_the_xml() -> None:
    design = design_domain(_spec(vcpus=2, sched_policy="rr", priority=70), _placement(), BOOT)
    assert '<vcpusched vcpus="1" scheduler="rr" priority="70"/>' in design.xml


def test_audit_of_designs_warns_only_where_expected() -> None:
    design = _design("rt_tcg_vhostuser.xml")
    report = audit_domain(design.domain, AuditHost(housekeeping=CpuSet([0])))
    failed = {f.id for f in report.findings if f.status is Status.FAIL}
    assert failed == {"memory.locked", "accel.kvm"}
    assert report.ok


def test_small_pages_design_is_not_rt_ready() -> None:
    design = design_domain(_spec(vcpus=2, page_size="4k"), _placement(), BOOT)
    assert design.domain.memory_backing is not None
    assert design.domain.memory_backing.hugepages == ()
    report = audit_domain(design.domain)
    hugepages = next(f for f in report.findings if f.id == "memory.hugepages")
    assert (hugepages.severity, hugepages.status) == (Severity.ERROR, Status.FAIL)
    assert not report.ok


@pytest.mark.parametrize(
    ("priority", "warning"),
    [
        (40, None),
        (5, None),
        (49, None),
        (1, "at or below the host's per-CPU service threads"),
        (4, "at or below the host's per-CPU service threads"),
        (50, "at or above threaded IRQ handlers"),
        (99, "at or above threaded IRQ handlers"),
    ],
)
def test_priorities_outside_the_rt_band_are_allowed_with_a_warning(
    priority: int, warning: str | None
) -> None:
    spec, plan, topo, boot, quirks, allow = CASES["rt_kvm_isolate.xml"]
    spec = spec.model_copy(update={"priority": priority})
    design = design_guest(spec, plan, topo, boot, host=quirks, allow_unlocked_memory=allow)
    assert design.domain.cputune is not None
    assert {s.priority for s in design.domain.cputune.vcpuscheds} == {priority}
    band = [w for w in design.warnings if "RT vCPU priority" in w]
    if warning is None:
        assert band == []
    else:
        assert len(band) == 1 and warning in band[0]


def test_mixed_guest_pins_floating_vcpus_to_the_housekeeping_set() -> None:
    spec, plan, topo, boot, quirks, allow = CASES["rt_tcg_vhostuser.xml"]
    mixed = spec.model_copy(update={"cpu_policy": "mixed"})
    design = design_guest(mixed, plan, topo, boot, host=quirks, allow_unlocked_memory=allow)
    tune = design.domain.cputune
    assert tune is not None
    floating = {
        p.vcpu: p.cpuset for p in tune.vcpupins if p.vcpu in design.placement.floating_vcpus
    }
    assert floating and set(floating.values()) == {design.placement.floating_cpus}
    assert design.placement.floating_cpus <= plan.housekeeping
    assert {s.vcpus.min() for s in tune.vcpuscheds} == set(mixed.rt_vcpus)
    report = audit_domain(design.domain, AuditHost.from_plan(plan, topo))
    assert report.ok, [f.id for f in report.findings if f.blocking]
