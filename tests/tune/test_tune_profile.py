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
        ("kthread", 90, True),
        ("kthread", 50, False),
        ("kthread", 99, False),
        ("rt_work", 50, True),
        ("rt_work", 90, False),
        ("rt_work", 0, False),
    ],
)
def test_one_priority_scale_is_enforced(role: str, priority: int, ok: bool) -> None:
    data = {
        "name": "x",
        "summary": "x",
        "priorities": {"vcpu_default": 50, "vcpu_max": 89, "kthread": 90, "why": "w"},
        "thread": [
            {"match": "t*", "policy": "fifo", "priority": priority, "role": role, "why": "w"}
        ],
    }
    if ok:
        Profile.model_validate(data)
    else:
        with pytest.raises(ValueError, match="kernel threads above every vCPU"):
            Profile.model_validate(data)


def test_priorities_are_the_guest_layers() -> None:
    """Host kernel threads preempt every vCPU the guest layer may create; PMDs share its band."""
    from rtkvm.domain.spec import (
        HOST_PERCPU_KTHREAD_PRIORITY,
        VCPU_PRIORITY_DEFAULT,
        VCPU_PRIORITY_MAX,
    )

    rvh = load_profile("realtime-virtual-host")
    assert rvh.priorities is not None
    assert rvh.priorities.vcpu_default == VCPU_PRIORITY_DEFAULT
    assert rvh.priorities.vcpu_max == VCPU_PRIORITY_MAX
    assert rvh.priorities.kthread == HOST_PERCPU_KTHREAD_PRIORITY
    kthreads = {t.match: t.priority for t in rvh.thread if t.role == "kthread"}
    assert kthreads == dict.fromkeys(("ktimers/*", "ksoftirqd/*", "rcuc/*"), 90)
    assert all(t.priority <= VCPU_PRIORITY_MAX for t in rvh.thread if t.role == "rt_work")
