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


@pytest.mark.parametrize(
    ("role", "priority", "ok"),
    [
        ("kthread", 2, True),
        ("kthread", 4, True),
        ("kthread", 1, False),
        ("kthread", 5, False),
        ("kthread", 90, False),
        ("rt_work", 5, True),
        ("rt_work", 40, True),
        ("rt_work", 49, True),
        ("rt_work", 4, False),
        ("rt_work", 50, False),
        ("rt_work", 0, False),
    ],
)
def test_one_priority_scale_is_enforced(role: str, priority: int, ok: bool) -> None:
    data = {
        "name": "x",
        "summary": "x",
        "priorities": {
            "kthread_max": 4,
            "rt_min": 5,
            "rt_max": 49,
            "vcpu_default": 40,
            "why": "w",
        },
        "thread": [
            {"match": "t*", "policy": "fifo", "priority": priority, "role": role, "why": "w"}
        ],
    }
    if ok:
        Profile.model_validate(data)
    else:
        with pytest.raises(ValueError, match="per-CPU kernel threads below every vCPU"):
            Profile.model_validate(data)


@pytest.mark.parametrize(
    "scale",
    [
        {"kthread_max": 1, "rt_min": 5, "rt_max": 49, "vcpu_default": 40},
        {"kthread_max": 5, "rt_min": 5, "rt_max": 49, "vcpu_default": 40},
        {"kthread_max": 4, "rt_min": 5, "rt_max": 50, "vcpu_default": 40},
        {"kthread_max": 4, "rt_min": 5, "rt_max": 49, "vcpu_default": 3},
    ],
)
def test_incoherent_scales_are_refused(scale: dict[str, int]) -> None:
    data = {"name": "x", "summary": "x", "priorities": {**scale, "why": "w"}}
    with pytest.raises(ValueError, match="priorities must satisfy"):
        Profile.model_validate(data)


def test_priorities_are_the_host_scale() -> None:
    """The profile states rtkvm.priorities: service threads below every vCPU."""
    from rtkvm import priorities

    rvh = load_profile("realtime-virtual-host")
    assert rvh.priorities is not None
    assert rvh.priorities.vcpu_default == priorities.VCPU_DEFAULT
    assert (rvh.priorities.rt_min, rvh.priorities.rt_max) == (
        priorities.RT_BAND_MIN,
        priorities.RT_BAND_MAX,
    )
    assert rvh.priorities.kthread_max == priorities.KTHREAD_MAX
    kthreads = {t.match.rstrip("/*"): t.priority for t in rvh.thread if t.role == "kthread"}
    assert kthreads == priorities.KTHREAD_PRIORITIES
    assert not [t for t in rvh.thread if t.match.startswith("pmd")]  # the data plane's
