"""The RT guest spec: masks, Nova extra specs, flavor files, and the refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.domain.spec import (
    VCPU_PRIORITY_DEFAULT,
    VCPU_PRIORITY_MAX,
    VCPU_PRIORITY_MIN,
    RtGuestSpec,
    from_extra_specs,
    load_flavor,
    parse_extra_spec_args,
    resolve_mask,
)
from rtkvm.errors import InputError, SpecError

RT = {"hw:cpu_policy": "dedicated", "hw:cpu_realtime": "yes"}


@pytest.mark.parametrize(
    ("mask", "vcpus", "rt"),
    [
        (None, 4, "0-3"),
        ("^0", 4, "1-3"),
        ("^0-1", 4, "2-3"),  # Nova's example: all but 0 and 1
        ("^0,^3", 4, "1-2"),
        ("2-3", 4, "2-3"),  # without ^: an include list
        ("0-3,^1", 4, "0,2-3"),  # KubeVirt's form
        ("1", 2, "1"),
        (" ^0 ", 8, "1-7"),
    ],
)
def test_mask(mask: str | None, vcpus: int, rt: str) -> None:
    assert resolve_mask(mask, vcpus) == CpuSet.parse(rt)


@pytest.mark.parametrize(
    ("mask", "vcpus", "message"),
    [
        ("^0-3", 4, "leaves no real-time vCPU"),
        ("0-5", 4, "names vCPU(s) 4-5, but the flavor has 4 vCPUs (0-3)"),
        ("^4", 4, "names vCPU(s) 4"),
        ("", 4, "is empty"),
        ("a-b", 4, "does not parse"),
        ("3-1", 4, "does not parse"),
    ],
)
def test_bad_mask(mask: str, vcpus: int, message: str) -> None:
    with pytest.raises(SpecError, match="hw:cpu_realtime_mask") as info:
        resolve_mask(mask, vcpus)
    assert message in str(info.value)


def test_defaults_and_derived_fields() -> None:
    spec = RtGuestSpec(vcpus=4, memory_mib=2048, realtime_mask="^0")
    assert spec.priority == VCPU_PRIORITY_DEFAULT == 40
    assert spec.sched_policy == "fifo"
    assert spec.rt_vcpus == CpuSet.parse("1-3")
    assert spec.housekeeping_vcpus == CpuSet([0])
    assert (spec.page_size, spec.page_size_kib, spec.memory_kib) == ("2M", 2048, 2 << 20)
    assert spec.locked_memory and spec.nosharepages and not spec.pmu
    assert [(c.vcpus.format(), c.memory_kib) for c in spec.cells()] == [("0-3", 2 << 20)]


def test_priority_relationship_with_the_host_scale() -> None:
    """Default vCPUs sit above the per-CPU service threads and below IRQ threads."""
    from rtkvm import priorities

    assert priorities.KTHREAD_MAX < VCPU_PRIORITY_DEFAULT < priorities.IRQ_THREAD
    assert priorities.in_rt_band(VCPU_PRIORITY_DEFAULT)
    assert (VCPU_PRIORITY_MIN, VCPU_PRIORITY_MAX) == (1, 99)


def test_two_cells_split_evenly() -> None:
    spec = RtGuestSpec(vcpus=4, memory_mib=4096, realtime_mask="^0,^2", numa_nodes=2)
    cells = spec.cells()
    assert [c.vcpus.format() for c in cells] == ["0-1", "2-3"]
    assert [c.memory_kib for c in cells] == [2 << 20, 2 << 20]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cpu_policy": "shared"}, "Cannot set realtime policy in a non dedicated cpu pinning"),
        ({"cpu_policy": "shared"}, "or mixed (the RT vCPUs on their own pCPUs"),
        (
            {"realtime_mask": None},
            "Use of realtime CPUs requires either one or more non-realtime CPU(s) or "
            "offloaded emulator threads",
        ),
        ({"realtime_mask": "0-3"}, "all 4 vCPUs are real-time"),
        ({"priority": 0}, "out of range 1..99"),
        ({"priority": 100}, "out of range 1..99"),
        ({"realtime": False}, "is set but the flavor is not real-time"),
        ({"memory_mib": 1000, "page_size": "1G"}, "use a multiple of 1024 MiB"),
        ({"memory_mib": 1025}, "use a multiple of 2 MiB"),
        ({"memory_mib": 32}, "too small"),
        ({"vcpus": 0}, "give 1 to 4096"),
        ({"vcpus": 5000}, "give 1 to 4096"),
        ({"memory_mib": 2**70}, "16 TiB"),
        ({"iothreads": 10**9}, "give 0 to 64"),
        ({"numa_nodes": 3}, "divide the 4 vCPUs"),
        ({"iothreads": -1}, "give 0 to 64"),
    ],
)
def test_refusals(fields: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"vcpus": 4, "memory_mib": 1024, "realtime_mask": "^0"}
    with pytest.raises(SpecError) as info:
        RtGuestSpec.model_validate({**base, **fields})
    assert message in str(info.value)
    assert isinstance(info.value, InputError)


def test_every_vcpu_rt_is_fine_with_an_emulator_policy() -> None:
    for policy in ("isolate", "share"):
        spec = RtGuestSpec(vcpus=2, memory_mib=1024, emulator_threads_policy=policy)
        assert spec.rt_vcpus == CpuSet.parse("0-1")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({**RT, "hw:cpu_realtime_mask": "^0-1"}, {"rt": "2-3", "page_size": "2M"}),
        (
            {**RT, "hw:emulator_threads_policy": "isolate"},
            {"rt": "0-3", "emulator_threads_policy": "isolate"},
        ),
        ({**RT, "hw:cpu_realtime_mask": "^0", "hw:mem_page_size": "1GB"}, {"page_size": "1G"}),
        ({**RT, "hw:cpu_realtime_mask": "^0", "hw:mem_page_size": "large"}, {"page_size": "2M"}),
        ({**RT, "hw:cpu_realtime_mask": "^0", "hw:mem_page_size": "2048"}, {"page_size": "2M"}),
        ({**RT, "hw:cpu_realtime_mask": "^0", "hw:mem_page_size": "small"}, {"page_size": "4k"}),
        ({**RT, "hw:cpu_realtime_mask": "^0", "hw:pmu": "true"}, {"pmu": True}),
        (
            {**RT, "hw:cpu_realtime_mask": "^0", "hw:locked_memory": "False"},
            {"locked_memory": False},
        ),
        (
            {**RT, "hw:cpu_realtime_mask": "^0", "rtkvm:cpu_realtime_policy": "RR"},
            {"sched_policy": "rr"},
        ),
        (
            {**RT, "hw:cpu_realtime_mask": "^0", "rtkvm:cpu_realtime_priority": "70"},
            {"priority": 70},
        ),
        ({**RT, "hw:cpu_realtime_mask": "^0", "rtkvm:iothreads": "1"}, {"iothreads": 1}),
        ({"hw:cpu_policy": "dedicated"}, {"rt": "", "realtime": False, "page_size": "4k"}),
    ],
)
def test_extra_specs(extra: dict[str, str], expected: dict[str, Any]) -> None:
    spec = from_extra_specs(extra, vcpus=4, memory_mib=2048).spec
    for key, value in expected.items():
        actual = spec.rt_vcpus.format() if key == "rt" else getattr(spec, key)
        assert actual == value, key


def test_extra_specs_report_what_they_ignore() -> None:
    extra = {**RT, "hw:cpu_realtime_mask": "^0", "quota:cpu_shares": "1024", "hw:watchdog": "x"}
    parsed = from_extra_specs(extra, vcpus=2, memory_mib=1024)
    assert parsed.ignored == ("hw:watchdog", "quota:cpu_shares")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"hw:cpu_realtime": "yes"}, "Cannot set realtime policy in a non dedicated"),
        ({**RT, "hw:cpu_realtime": "perhaps"}, "expected a boolean"),
        ({**RT, "hw:cpu_realtime_mask": "^0", "hw:mem_page_size": "3MB"}, "expected small"),
        ({**RT, "hw:emulator_threads_policy": "dedicate"}, "expected one of share, isolate"),
        ({**RT, "hw:cpu_realtime_mask": "^0", "rtkvm:priority": "5"}, "unknown extra spec"),
        ({**RT, "hw:cpu_realtime_mask": "^0", "rtkvm:cpu_realtime_priority": "x"}, "integer"),
        ({"hw:cpu_policy": "dedicated", "hw:cpu_realtime_mask": "^0"}, "hw:cpu_realtime=yes"),
        ({**RT, "hw:cpu_realtime_mask": "0-7"}, "names vCPU(s) 4-7"),
    ],
)
def test_extra_spec_refusals(extra: dict[str, str], message: str) -> None:
    with pytest.raises(SpecError) as info:
        from_extra_specs(extra, vcpus=4, memory_mib=2048)
    assert message in str(info.value)


def test_extra_spec_arguments() -> None:
    assert parse_extra_spec_args(["hw:cpu_realtime=yes", " a = b=c "]) == {
        "hw:cpu_realtime": "yes",
        "a": "b=c",
    }
    with pytest.raises(SpecError, match="KEY=VALUE"):
        parse_extra_spec_args(["hw:cpu_realtime"])


def test_nova_flavor_file_forms() -> None:
    nova = {
        "name": "rt.small",
        "vcpus": 2,
        "ram": 1024,
        "extra_specs": {**RT, "hw:cpu_realtime_mask": "^0"},
    }
    for text in (json.dumps(nova), json.dumps({"flavor": nova})):
        parsed = load_flavor(text)
        assert parsed.spec.name == "rt.small"
        assert parsed.spec.rt_vcpus == CpuSet([1])


def test_rtkvm_flavor_file_round_trip() -> None:
    spec = RtGuestSpec(vcpus=2, memory_mib=1024, realtime_mask="^0", priority=60, page_size="4k")
    assert load_flavor(spec.model_dump_json()).spec == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"vcpus": 2, "extra_specs": {}}', "needs ram"),
        ('{"vcpus": "two", "ram": 1, "extra_specs": {}}', "must be integers"),
        ('{"vcpus": 2, "memory_mib": 1024, "colour": "red"}', "colour"),
        ('{"vcpus": 2}', "memory_mib"),
    ],
)
def test_bad_flavor_files(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=r"f\.json") as info:
        load_flavor(text, source="f.json")
    assert message in str(info.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"vcpus": 2, "memory_mib": 256, "cpu_policy": "mixed", "realtime_mask": "^0",
         "emulator_threads_policy": "share", "page_size": "4k", "priority": 40},
        {"vcpus": 4, "memory_mib": 1024, "cpu_policy": "dedicated", "realtime_mask": "^0-1",
         "sched_policy": "rr", "priority": 12, "page_size": "1G", "pmu": True, "iothreads": 1},
        {"vcpus": 2, "memory_mib": 512, "cpu_policy": "dedicated",
         "emulator_threads_policy": "isolate", "locked_memory": False, "numa_nodes": 2},
        {"vcpus": 1, "memory_mib": 128, "cpu_policy": "shared", "realtime": False},
    ],
)  # fmt: skip
def test_a_spec_written_as_nova_extra_specs_reads_back_the_same(fields: dict[str, object]) -> None:
    from rtkvm.domain.spec import RtGuestSpec, from_extra_specs, to_extra_specs

    spec = RtGuestSpec.model_validate({"name": "f", **fields})
    specs = to_extra_specs(spec)
    assert all(k.startswith(("hw:", "rtkvm:")) for k in specs)
    back = from_extra_specs(specs, vcpus=spec.vcpus, memory_mib=spec.memory_mib, name="f")
    assert back.spec == spec and back.ignored == ()
