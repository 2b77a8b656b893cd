"""Profiles: shipped TOML, inheritance, whys, site variables and choices, bad data."""

from __future__ import annotations

import pytest

from rtkvm.errors import DataError, InputError
from rtkvm.host.partition import PartitionPlan
from rtkvm.tune.profile import (
    Profile,
    available_profiles,
    load_profile,
    merge,
    site_variables,
    substitute,
)

PLAN = PartitionPlan(housekeeping="0-1", rt_vcpu="2-5", dataplane="6-7")


def test_shipped_profiles_load_and_inherit() -> None:
    assert {"realtime", "realtime-virtual-host"} <= set(available_profiles())
    base = load_profile("realtime")
    rvh = load_profile("realtime-virtual-host")
    assert rvh.include == "realtime"
    assert {s.key for s in base.sysctl} <= {s.key for s in rvh.sysctl}
    assert "/sys/kernel/mm/ksm/run" in {s.path for s in rvh.sysfs}
    assert "/sys/kernel/mm/ksm/run" not in {s.path for s in base.sysfs}
    assert [m.option for m in rvh.modprobe] == [
        "kvmclock_periodic_sync",
        "nx_huge_pages",
        "ple_gap",
    ]
    assert rvh.irqs == base.irqs and rvh.priorities == base.priorities


@pytest.mark.parametrize("name", ["realtime", "realtime-virtual-host"])
def test_every_setting_says_why(name: str) -> None:
    profile = load_profile(name)
    items: list[object] = [
        *profile.sysctl,
        *profile.sysfs,
        *profile.cpuset,
        *profile.thread,
        *profile.modprobe,
        *profile.cmdline,
        *profile.choices.values(),
    ]
    items += [x for x in (profile.irqs, profile.irqbalance, profile.power, profile.priorities) if x]
    assert len(items) > 15
    for item in items:
        assert len(item.why.split()) >= 5, item  # type: ignore[attr-defined]


def test_merge_overrides_same_key_and_appends_new() -> None:
    parent = {"name": "p", "sysctl": [{"key": "a", "value": "1", "why": "x"}]}
    child = {
        "name": "c",
        "sysctl": [{"key": "a", "value": "2", "why": "y"}, {"key": "b", "value": "3", "why": "z"}],
    }
    merged = merge(parent, child)
    assert [(s["key"], s["value"]) for s in merged["sysctl"]] == [("a", "2"), ("b", "3")]


def test_site_variables_from_plan_and_choices() -> None:
    profile = load_profile("realtime")
    variables = site_variables(PLAN, profile)
    assert variables["housekeeping"] == "0-1"
    assert variables["isolated"] == "2-7"
    assert variables["housekeeping_mask"] == "3"
    assert variables["isolated_mask"] == "fc"
    assert variables["rt_throttling"] == "-1"
    assert site_variables(PLAN, profile, {"rt_throttling": "large"})["rt_throttling"] == "999000"


def test_bad_choices_say_what_to_pick() -> None:
    profile = load_profile("realtime")
    with pytest.raises(InputError, match="choose one of: large, off"):
        site_variables(PLAN, profile, {"rt_throttling": "sometimes"})
    with pytest.raises(InputError, match="has no choice turbo"):
        site_variables(PLAN, profile, {"turbo": "on"})


def test_unknown_variable_and_profile() -> None:
    with pytest.raises(DataError, match=r"sysctl:x: unknown variable \$\{nope\}"):
        substitute("${nope}", {"a": "1"}, where="sysctl:x")
    with pytest.raises(InputError, match=r"unknown tuning profile 'fast'.*realtime"):
        load_profile("fast")


def test_thread_levels_must_stay_below_the_vcpu_priority() -> None:
    data = {
        "name": "x",
        "summary": "x",
        "priorities": {"vcpu": 50, "why": "w"},
        "thread": [{"match": "ksoftirqd/*", "policy": "fifo", "priority": 50, "why": "w"}],
    }
    with pytest.raises(ValueError, match="must be between 1 and 49"):
        Profile.model_validate(data)
    rvh = load_profile("realtime-virtual-host")
    assert rvh.priorities is not None
    assert all(1 <= t.priority < rvh.priorities.vcpu for t in rvh.thread)
