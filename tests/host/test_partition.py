"""PartitionPlan: validation of roles and the JSON round trip."""

from __future__ import annotations

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.errors import InputError
from rtkvm.host.partition import PartitionPlan


def test_round_trip_and_derived_sets() -> None:
    plan = PartitionPlan(
        housekeeping=CpuSet.parse("0-1"),
        rt_vcpu=CpuSet.parse("2-5"),
        dataplane=CpuSet.parse("6"),
        idle_siblings=CpuSet.parse("7"),
        kernel_cmdline=["isolcpus=managed_irq,domain,2-7"],
        nova={"cpu_dedicated_set": "2-5"},
    )
    assert plan.isolated == CpuSet.parse("2-7")
    assert plan.all_cpus == CpuSet.parse("0-7")
    again = PartitionPlan.from_json(plan.to_json())
    assert again == plan
    assert again.kernel_cmdline == ("isolcpus=managed_irq,domain,2-7",)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"housekeeping": "0-1", "rt_vcpu": "1-3", "dataplane": ""},
            "both housekeeping and rt_vcpu",
        ),
        ({"housekeeping": "", "rt_vcpu": "1-3", "dataplane": ""}, "housekeeping is empty"),
        ({"housekeeping": "0", "rt_vcpu": "1", "dataplane": "1"}, "both rt_vcpu and dataplane"),
        ({"housekeeping": "0", "rt_vcpu": "x", "dataplane": ""}, "bad item 'x'"),
        ({"housekeeping": "0", "rt_vcpu": "1", "dataplane": "", "typo": 1}, "typo"),
    ],
)
def test_bad_plans_are_refused_with_the_reason(fields: dict[str, object], message: str) -> None:
    import json

    with pytest.raises(InputError, match=message):
        PartitionPlan.from_json(json.dumps(fields), source="plan.json")


def test_not_json() -> None:
    with pytest.raises(InputError, match=r"plan\.json: not valid JSON"):
        PartitionPlan.from_json("{", source="plan.json")


def test_accepts_the_planners_document_and_checks_isolated() -> None:
    import json

    document = {
        "housekeeping": "0",
        "rt_vcpu": "1-2",
        "dataplane": "3",
        "isolated": "1-3",
        "kernel_args": [{"arg": "nohz_full=1-3", "why": "..."}],
        "request": {"rt_cores": 2},
        "root": "/",
        "nodes": [],
    }
    plan = PartitionPlan.from_json(json.dumps(document))
    assert plan.isolated == CpuSet.parse("1-3")
    document["isolated"] = "1-2"
    with pytest.raises(InputError, match="'isolated' says 1-2 but the roles give 1-3"):
        PartitionPlan.from_json(json.dumps(document))


def test_load_names_a_missing_file(tmp_path: object) -> None:
    with pytest.raises(InputError, match="cannot read the plan"):
        PartitionPlan.load(f"{tmp_path}/nope.json")
