"""A Nova guest's flavor priority applied, verified and audited, on fake /proc trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.domain.audit import AuditHost
from rtkvm.guest.verify import read_threads
from rtkvm.hostfs import HostFS
from rtkvm.openstack.enforce import GuestVerdict, enforce
from rtkvm.openstack.novaguest import parse_nova_guest
from rtkvm.testing.qemuproc import Thread, write_threads
from rtkvm.tune.simkernel import SimulatedProcessControl

SAMPLE = (Path(__file__).parent / "samples" / "nova-rt-mixed-live.xml").read_text()
"""What Nova 34 defined for flavor rt.hp (2 vCPUs, mixed, mask ^0, emulator share, 2 MiB
pages, rtkvm priority 30) on a host with cpu_dedicated_set=1, cpu_shared_set=0 and
realtime_scheduler_priority=40, under TCG."""
HOST = AuditHost(housekeeping=CpuSet([0]), rt_cpus=CpuSet([1]))
QUIRKS = {"no_cap_sys_resource", "kvm_unusable"}
PID = 500
AS_NOVA_LEFT_IT: list[Thread] = [
    (500, "qemu-system-x86", "other", 0, "0"),
    (501, "call_rcu", "other", 0, "0"),
    (502, "IO iothread1", "other", 0, "0"),
    (503, "CPU 0/TCG", "other", 0, "0"),
    (504, "CPU 1/TCG", "fifo", 40, "1"),
]


def _run(
    tmp_path: Path,
    xml: str = SAMPLE,
    threads: list[Thread] = AS_NOVA_LEFT_IT,
    quirks: set[str] = QUIRKS,
    refuse: tuple[int, ...] = (),
) -> tuple[GuestVerdict, HostFS]:
    write_threads(tmp_path, PID, threads)
    fs = HostFS(tmp_path, writable=True)
    guest = parse_nova_guest(xml)
    assert guest is not None
    control = SimulatedProcessControl(fs, refuse=refuse)
    return enforce(guest, xml, PID, fs=fs, control=control, host=HOST, quirks=quirks), fs


def test_the_nova_metadata_names_the_server_and_its_flavor() -> None:
    guest = parse_nova_guest(SAMPLE)
    assert guest is not None
    assert (guest.name, guest.flavor, guest.vcpus) == ("rt1", "rt.hp", 2)
    assert guest.extra_specs["rtkvm:cpu_realtime_priority"] == "30"
    assert guest.server_id and guest.domain.startswith("instance-")
    assert parse_nova_guest("<domain><name>x</name></domain>") is None


def test_the_flavor_s_priority_replaces_nova_s_host_wide_one(tmp_path: Path) -> None:
    verdict, fs = _run(tmp_path)
    assert verdict.verdict == "verified", verdict.reasons
    assert verdict.applied == ("vCPU 1 (tid 504): fifo/40 -> fifo/30",)
    assert (verdict.policy, verdict.priority, verdict.rt_vcpus) == ("fifo", 30, "1")
    rt = next(t for t in read_threads(fs, PID) if t.vcpu == 1)
    assert (rt.policy, rt.rt_priority) == ("fifo", 30)
    # the host's known waivers, and nothing else, are what the audit found wrong
    assert verdict.waived == {"memory.locked": "no_cap_sys_resource", "accel.kvm": "kvm_unusable"}
    assert verdict.summary.startswith("verified: fifo/30 on vCPU 1; waived by host: ")
    again, _ = _run_again(fs)
    assert again.applied == () and again.verdict == "verified"


def _run_again(fs: HostFS) -> tuple[GuestVerdict, HostFS]:
    guest = parse_nova_guest(SAMPLE)
    assert guest is not None
    control = SimulatedProcessControl(fs)
    return enforce(guest, SAMPLE, PID, fs=fs, control=control, host=HOST, quirks=QUIRKS), fs


def test_without_the_host_s_quirks_the_same_failures_degrade_the_guest(tmp_path: Path) -> None:
    verdict, _ = _run(tmp_path, quirks=set())
    assert verdict.verdict == "degraded"
    assert [r.split(":")[0] for r in verdict.reasons] == ["audit memory.locked", "audit accel.kvm"]


def test_a_thread_the_kernel_refuses_is_a_reason(tmp_path: Path) -> None:
    verdict, _ = _run(tmp_path, refuse=(504,))
    assert verdict.verdict == "degraded" and verdict.applied == ()
    assert verdict.reasons[0].startswith("vCPU 1 (tid 504) could not be set")
    assert any(r.startswith("guest.vcpu1.sched") for r in verdict.reasons)


def test_an_emulator_thread_on_the_rt_cpu_is_a_reason(tmp_path: Path) -> None:
    threads = [*AS_NOVA_LEFT_IT[:1], (501, "call_rcu", "other", 0, "0-1"), *AS_NOVA_LEFT_IT[2:]]
    verdict, _ = _run(tmp_path, threads=threads)
    assert verdict.verdict == "degraded"
    assert any(r.startswith("guest.emulator.affinity") for r in verdict.reasons)


@pytest.mark.parametrize(
    ("priority", "reason"),
    [("abc", "expected an integer"), ("60", "not applied"), ("3", "not applied")],
)
def test_a_priority_rtkvm_cannot_apply_is_a_reason_and_nothing_changes(
    tmp_path: Path, priority: str, reason: str
) -> None:
    xml = SAMPLE.replace(
        '<nova:extraSpec name="rtkvm:cpu_realtime_priority">30<',
        f'<nova:extraSpec name="rtkvm:cpu_realtime_priority">{priority}<',
    )
    verdict, fs = _run(tmp_path, xml=xml)
    assert verdict.verdict == "degraded" and reason in verdict.reasons[0]
    rt = next(t for t in read_threads(fs, PID) if t.vcpu == 1)
    assert (rt.policy, rt.rt_priority) == ("fifo", 40)


def test_a_flavor_that_is_not_real_time_is_left_alone(tmp_path: Path) -> None:
    xml = SAMPLE.replace(
        '<nova:extraSpec name="hw:cpu_realtime">yes<', '<nova:extraSpec name="hw:cpu_realtime">no<'
    ).replace('<nova:extraSpec name="hw:cpu_realtime_mask">^0</nova:extraSpec>', "")
    verdict, _ = _run(tmp_path, xml=xml)
    assert verdict.verdict == "not-rt" and verdict.applied == ()
