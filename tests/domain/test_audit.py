"""Guest audit: rules data, realistic Nova and KubeVirt domains, one failure per rule."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.domain.audit import AuditHost, audit_domain, load_rules, rt_vcpus_of
from rtkvm.domain.design import GuestBoot, VhostUserNic, design_guest
from rtkvm.domain.spec import RtGuestSpec
from rtkvm.domain.xml import (
    CpuTune,
    Domain,
    MemoryBacking,
    NumaTune,
    VcpuPin,
    VcpuSched,
    parse_domain,
)
from rtkvm.domain.xml_devices import Features
from rtkvm.errors import DataError
from rtkvm.findings import Report, Severity, Status
from rtkvm.testing.guests import make_plan, make_topology

HOST = make_topology(nodes=2, cores_per_node=8)  # node 0: 0-7, node 1: 8-15
PLAN = make_plan("0,8", "1-7,9-15")
AUDIT_HOST = AuditHost.from_plan(PLAN, HOST)


def _status(report: Report) -> dict[str, Status]:
    return {f.id: f.status for f in report.findings}


def _failed(report: Report) -> set[str]:
    return {f.id for f in report.findings if f.status is Status.FAIL}


def _good() -> Domain:
    spec = RtGuestSpec(
        vcpus=4, memory_mib=1024, realtime_mask="^0", emulator_threads_policy="isolate", iothreads=1
    )
    boot = GuestBoot(name="good", kernel="/k", nics=(VhostUserNic("/run/v0.sock"),))
    return design_guest(spec, PLAN, HOST, boot).domain


def test_shipped_rules_match_the_checks() -> None:
    rules = load_rules()
    assert len(rules) == len({r.id for r in rules}) >= 18
    assert all(r.why and r.fix and r.pass_ and r.fail for r in rules)
    ids = {r.id for r in rules}
    for required in ("vcpu.pinned", "vcpu.exclusive", "emulator.apart", "memory.hugepages"):
        assert required in ids


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[rule]]\nid='vcpu.pinned'\n", "guest_audit.toml"),
        ("rule = 1", "guest_audit.toml"),
        ("x = [", "guest_audit.toml"),
    ],
)
def test_bad_rules_data_is_refused(text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_rules(text)


def test_rules_without_a_check_or_checks_without_a_rule_are_refused() -> None:
    shipped = (Path(__file__).parents[2] / "src/rtkvm/data/guest_audit.toml").read_text()
    made_up = 'id = "made.up"\nseverity = "info"\npass = "a"\nfail = "b"\nwhy = "c"\nfix = "d"'
    extra = f"{shipped}\n[[rule]]\n{made_up}\n"
    with pytest.raises(DataError, match="data without a check"):
        load_rules(extra)
    head = shipped.split('[[rule]]\nid = "vcpu.priority"')[0]
    with pytest.raises(DataError, match="rules without data"):
        load_rules(head)


def test_rtkvm_design_is_rt_ready_with_no_failures() -> None:
    report = audit_domain(_good(), AUDIT_HOST)
    assert report.verdict == "rt-ready" and report.exit_code() == 0
    assert _failed(report) == set()
    skipped = {f.id for f in report.findings if f.status is Status.SKIP}
    assert skipped == {"vcpu.quiet-sibling"}  # every rule applies, but this host has no SMT


def test_nova_domain(samples: Path) -> None:
    """Nova's RT guest: correct pinning, but priority 1, PMU on, a balloon, VNC."""
    domain = parse_domain((samples / "nova_rt.xml").read_text())
    report = audit_domain(domain, AuditHost.from_plan(make_plan("0-3", "4-7"), make_topology(1, 8)))
    assert _failed(report) == {
        "vcpu.priority",
        "pmu.off",
        "balloon.none",
        "cpu.passthrough",
        "devices.no-usb-graphics",
    }
    assert report.ok and report.verdict == "rt-ready"  # only warnings and infos failed
    priority = next(f for f in report.findings if f.id == "vcpu.priority")
    assert priority.observed == {"2": 1, "3": 1}
    assert priority.fix.startswith("Set priority='40'")
    assert "RT vCPUs (from <vcpusched> fifo/rr): 2-3" in report.notes


def test_kubevirt_domain(samples: Path) -> None:
    """KubeVirt sets the RT scheduler at run time: the definition does not carry it."""
    domain = parse_domain((samples / "kubevirt_rt.xml").read_text())
    report = audit_domain(domain, AuditHost(housekeeping=CpuSet.parse("0-1")))
    status = _status(report)
    assert status["vcpu.rt-scheduler"] is Status.FAIL
    assert status["vcpu.priority"] is Status.SKIP
    assert status["vcpu.pinned"] is status["emulator.apart"] is Status.PASS
    assert status["iothreads.apart"] is status["vcpu.isolated"] is Status.PASS
    assert status["pmu.off"] is status["cpu.passthrough"] is Status.PASS
    assert status["numa.local"] is Status.SKIP  # no topology given: not checked
    assert {"memory.locked", "memory.nosharepages", "balloon.none"} <= _failed(report)
    assert not report.ok and report.exit_code() == 1
    assert "KubeVirt" in next(f.message for f in report.findings if f.id == "vcpu.rt-scheduler")
    assert any("all 4 vCPUs audited as RT" in n for n in report.notes)


def test_libvirt_dumped_design_is_still_rt_ready(samples: Path) -> None:
    domain = parse_domain((samples / "libvirt_dumped_tcg.xml").read_text())
    report = audit_domain(domain, AuditHost(housekeeping=CpuSet.parse("0,8,16,24")))
    assert report.ok
    assert _failed(report) == {"memory.locked", "accel.kvm"}


Mutation = Callable[[Domain], Domain]


def _tune(domain: Domain, **changes: object) -> Domain:
    assert domain.cputune is not None
    return dataclasses.replace(domain, cputune=dataclasses.replace(domain.cputune, **changes))


def _pins(domain: Domain, *cpus: str) -> Domain:
    return _tune(domain, vcpupins=tuple(VcpuPin(i, CpuSet.parse(c)) for i, c in enumerate(cpus)))


def tune(**changes: object) -> Mutation:
    return lambda d: _tune(d, **changes)


def pins(*cpus: str) -> Mutation:
    return lambda d: _pins(d, *cpus)


def sched(vcpus: str, scheduler: str, priority: int | None = None) -> Mutation:
    return tune(vcpuscheds=(VcpuSched(CpuSet.parse(vcpus), scheduler, priority),))


def top(**changes: object) -> Mutation:
    return lambda d: dataclasses.replace(d, **changes)


def backing(**changes: object) -> Mutation:
    def apply(d: Domain) -> Domain:
        assert d.memory_backing is not None
        return dataclasses.replace(
            d, memory_backing=dataclasses.replace(d.memory_backing, **changes)
        )

    return apply


def devices(**changes: object) -> Mutation:
    return lambda d: dataclasses.replace(d, devices=dataclasses.replace(d.devices, **changes))


def cpu(**changes: object) -> Mutation:
    def apply(d: Domain) -> Domain:
        assert d.cpu is not None
        return dataclasses.replace(d, cpu=dataclasses.replace(d.cpu, **changes))

    return apply


def private_memory(d: Domain) -> Domain:
    assert d.cpu is not None
    cells = tuple(dataclasses.replace(c, mem_access=None) for c in d.cpu.cells)
    return cpu(cells=cells)(backing(access_mode=None)(d))


def default_usb(d: Domain) -> Domain:
    return devices(controllers=())(d)


E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
MUTATIONS = [
    pytest.param(tune(vcpuscheds=()), "vcpu.rt-scheduler", E, id="no vcpusched"),
    pytest.param(sched("1", "batch"), "vcpu.rt-scheduler", E, id="batch scheduler"),
    pytest.param(sched("1-3", "fifo", 1), "vcpu.priority", W, id="priority 1"),
    pytest.param(sched("1-3", "rr", 95), "vcpu.priority", W, id="priority 95"),
    pytest.param(pins("1", "2-3", "3", "4"), "vcpu.pinned", E, id="RT vCPU on two pCPUs"),
    pytest.param(pins("1", "2", "3"), "vcpu.pinned", E, id="RT vCPU unpinned"),
    pytest.param(pins("2", "2", "3", "4"), "vcpu.exclusive", E, id="two vCPUs on one pCPU"),
    pytest.param(tune(emulatorpin=CpuSet.parse("4-5")), "emulator.apart", E, id="emulator on RT"),
    pytest.param(tune(emulatorpin=None), "emulator.apart", E, id="no emulatorpin"),
    pytest.param(tune(iothreadpins=()), "iothreads.apart", E, id="iothread unpinned"),
    pytest.param(pins("1", "0", "3", "4"), "vcpu.isolated", E, id="vCPU on housekeeping"),
    pytest.param(pins("1", "2", "3", "9"), "numa.local", E, id="vCPU on the other node"),
    pytest.param(backing(hugepages=()), "memory.hugepages", E, id="4k pages"),
    pytest.param(backing(locked=False), "memory.locked", W, id="not locked"),
    pytest.param(backing(nosharepages=False), "memory.nosharepages", W, id="mergeable"),
    pytest.param(private_memory, "memory.shared-for-vhost-user", E, id="private memory"),
    pytest.param(top(numatune=NumaTune("preferred", CpuSet([0]))), "numa.strict", W, id="pref"),
    pytest.param(top(numatune=None), "numa.local", E, id="no numatune"),
    pytest.param(top(features=Features(pmu=None)), "pmu.off", W, id="pmu default"),
    pytest.param(devices(memballoon="virtio"), "balloon.none", W, id="virtio balloon"),
    pytest.param(devices(memballoon=None), "balloon.none", W, id="no balloon element"),
    pytest.param(top(type="qemu"), "accel.kvm", W, id="tcg"),
    pytest.param(
        cpu(mode="custom", model="Skylake", features=()), "cpu.passthrough", INFO, id="model"
    ),
    pytest.param(
        devices(other=('<graphics type="vnc"/>',)), "devices.no-usb-graphics", INFO, id="vnc"
    ),
    pytest.param(default_usb, "devices.no-usb-graphics", INFO, id="default usb"),
]


@pytest.mark.parametrize(("mutate", "rule", "severity"), MUTATIONS)
def test_each_rule_catches_its_fault(mutate: Mutation, rule: str, severity: Severity) -> None:
    report = audit_domain(mutate(_good()), AUDIT_HOST)
    finding = next(f for f in report.findings if f.id == rule)
    assert finding.status is Status.FAIL, finding
    assert finding.severity is severity
    assert finding.fix and finding.message
    if severity is Severity.ERROR:
        assert not report.ok and report.exit_code() == 1


def test_unpinned_housekeeping_vcpu_may_share_an_rt_pcpu() -> None:
    domain = _tune(_good(), vcpupins=tuple(VcpuPin(i, CpuSet([i + 1])) for i in (1, 2, 3)))
    report = audit_domain(domain, AUDIT_HOST)
    finding = next(f for f in report.findings if f.id == "vcpu.exclusive")
    assert finding.status is Status.FAIL
    assert "vCPU 0 is unpinned" in finding.message


def test_vcpu_cpuset_pins_everything_it_covers() -> None:
    domain = dataclasses.replace(_tune(_good(), vcpupins=()), vcpu_cpuset=CpuSet.parse("1-4"))
    status = _status(audit_domain(domain, AUDIT_HOST))
    assert status["vcpu.pinned"] is Status.FAIL  # each vCPU may use 4 pCPUs


def test_partition_not_checked_without_host_and_housekeeping_form() -> None:
    unchecked = next(f for f in audit_domain(_good()).findings if f.id == "vcpu.isolated")
    assert unchecked.status is Status.SKIP and "pass --housekeeping or --plan" in unchecked.message
    with_hk = audit_domain(_good(), AuditHost(housekeeping=CpuSet.parse("0,8")))
    assert _status(with_hk)["vcpu.isolated"] is Status.PASS
    bad = audit_domain(_good(), AuditHost(housekeeping=CpuSet.parse("0-3")))
    finding = next(f for f in bad.findings if f.id == "vcpu.isolated")
    assert finding.status is Status.FAIL and "housekeeping CPUs" in finding.message


def test_rt_vcpus_come_from_vcpusched() -> None:
    assert rt_vcpus_of(_good()) == (CpuSet.parse("1-3"), True)
    plain = Domain(name="p", memory_kib=1024, vcpus=2, cputune=CpuTune())
    assert rt_vcpus_of(plain) == (CpuSet.parse("0-1"), False)


def test_json_has_the_doctors_shape() -> None:
    document = json.loads(audit_domain(_pins(_good(), "1", "2", "2", "4"), AUDIT_HOST).to_json())
    assert document["verdict"] == "not rt-ready"
    assert document["counts"]["errors_failed"] >= 1
    finding = next(f for f in document["findings"] if f["id"] == "vcpu.exclusive")
    assert (finding["severity"], finding["status"]) == ("error", "fail")
    assert "vCPU 1 and vCPU 2 on pCPU 2" in finding["message"]
    assert set(finding) >= {
        "id",
        "severity",
        "status",
        "message",
        "observed",
        "expected",
        "why",
        "fix",
    }


def test_memory_backing_default_is_not_enough() -> None:
    domain = dataclasses.replace(_good(), memory_backing=MemoryBacking())
    assert {"memory.hugepages", "memory.locked", "memory.nosharepages"} <= _failed(
        audit_domain(domain, AUDIT_HOST)
    )


def test_hyperthread_siblings() -> None:
    smt = make_topology(nodes=1, cores_per_node=4, smt=2)  # siblings k and k+4
    spec = RtGuestSpec(vcpus=2, memory_mib=1024, emulator_threads_policy="share")
    boot = GuestBoot(name="ht", kernel="/k")
    shared_core = design_guest(spec, make_plan("0", "1-3,5-7", "4"), smt, boot).domain
    report = audit_domain(shared_core, AuditHost.from_plan(make_plan("0", "1-3,5-7", "4"), smt))
    assert _status(report)["vcpu.quiet-sibling"] is Status.PASS  # vCPUs on 1 and 5: one core
    noisy = _pins(shared_core, "1", "4")  # vCPU 1 on CPU 4, sibling of housekeeping CPU 0
    report = audit_domain(noisy, AuditHost(housekeeping=CpuSet([0]), topology=smt))
    finding = next(f for f in report.findings if f.id == "vcpu.quiet-sibling")
    assert (finding.status, finding.severity) == (Status.FAIL, Severity.WARNING)
    assert "pCPU 4 with housekeeping CPU 0" in finding.message
    assert _status(audit_domain(_good(), AUDIT_HOST))["vcpu.quiet-sibling"] is Status.SKIP
    assert _status(audit_domain(_good()))["vcpu.quiet-sibling"] is Status.SKIP


def test_a_live_domain_s_usb_controller_with_its_alias_is_seen() -> None:
    """libvirt's live XML gives every controller an <alias>: Nova's model='none' counts."""
    live = '<controller type="usb" index="0" model="none"><alias name="usb"/></controller>'
    report = audit_domain(devices(controllers=(), other=(live,))(_good()), AUDIT_HOST)
    assert _status(report)["devices.no-usb-graphics"] is Status.PASS
    busy = live.replace('"none"', '"piix3-uhci"')
    report = audit_domain(devices(controllers=(), other=(busy,))(_good()), AUDIT_HOST)
    assert _status(report)["devices.no-usb-graphics"] is Status.FAIL
