"""Power: idle state parser and cpufreq/cpuidle readers on fake roots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.host.power import IdleState, parse_idle_state, read_power
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.testing.kernel_files import INTEL_IDLE_STATES, tuned, untuned

CPUS = CpuSet(range(4))


@pytest.mark.parametrize(
    ("name", "latency", "disable", "expected"),
    [
        ("POLL\n", "0\n", "0\n", IdleState("POLL", 0, False)),
        ("C6\n", "133\n", "1\n", IdleState("C6", 133, True)),
        ("C1E", "10", "0", IdleState("C1E", 10, False)),
    ],
)
def test_parse_idle_state_valid(name: str, latency: str, disable: str, expected: IdleState) -> None:
    assert parse_idle_state(name, latency, disable, "/s") == expected


@pytest.mark.parametrize(("latency", "disable"), [("x", "0"), ("1", "yes"), ("", "0")])
def test_parse_idle_state_invalid(latency: str, disable: str) -> None:
    with pytest.raises(ValueError, match="/s/state0"):
        parse_idle_state("C1", latency, disable, "/s/state0")


def test_untuned_power(tmp_path: Path) -> None:
    untuned(CPUS).write(tmp_path)
    p = read_power(HostFS(tmp_path), CPUS)
    assert p.cpufreq is True and p.cpufreq_driver == "intel_pstate"
    assert p.governors == dict.fromkeys(CPUS, "powersave")
    assert p.idle_driver == "intel_idle" and p.idle_governor == "menu"
    assert p.idle_states == {cpu: list(INTEL_IDLE_STATES) for cpu in CPUS}


def test_tuned_power_disables_deep_states(tmp_path: Path) -> None:
    tuned(CPUS, CpuSet([0])).write(tmp_path)
    p = read_power(HostFS(tmp_path), CPUS)
    assert p.governors == dict.fromkeys(CPUS, "performance")
    assert isinstance(p.idle_states, dict)
    assert [s.disabled for s in p.idle_states[3]] == [False, False, True, True]


def test_vm_without_cpufreq_or_idle_states(tmp_path: Path) -> None:
    replace(untuned(CPUS), governor=None, idle_driver="none", idle_states=()).write(tmp_path)
    p = read_power(HostFS(tmp_path), CPUS)
    assert p.cpufreq is False and p.governors == {} and p.cpufreq_driver is None
    assert p.idle_driver == "none"
    assert p.idle_states == {}


def test_missing_governor_on_one_cpu_is_unknown(tmp_path: Path) -> None:
    untuned(CPUS).write(tmp_path)
    (tmp_path / "sys/devices/system/cpu/cpu2/cpufreq/scaling_governor").unlink()
    p = read_power(HostFS(tmp_path), CPUS)
    assert p.governors[1] == "powersave"
    gov = p.governors[2]
    assert isinstance(gov, Unknown) and gov.reason == "does not exist"


def test_broken_idle_state_makes_idle_states_unknown(tmp_path: Path) -> None:
    untuned(CPUS).write(tmp_path)
    (tmp_path / "sys/devices/system/cpu/cpu1/cpuidle/state2/latency").write_text("n/a\n")
    p = read_power(HostFS(tmp_path), CPUS)
    assert isinstance(p.idle_states, Unknown)
    assert p.idle_states.source.endswith("cpu1/cpuidle/state2")


def test_empty_root_power_is_unknown(tmp_path: Path) -> None:
    p = read_power(HostFS(tmp_path), CPUS)
    assert p.cpufreq is False
    assert isinstance(p.idle_driver, Unknown) and isinstance(p.idle_governor, Unknown)
