"""CPU power management: cpufreq governors and cpuidle states per CPU.

Reads /sys/devices/system/cpu/cpuN/cpufreq/{scaling_governor,scaling_driver},
/sys/devices/system/cpu/cpuidle/{current_driver,current_governor} and
cpuN/cpuidle/stateK/{name,latency,disable}. A host without cpufreq (common
in VMs) is reported as such, not as a governor; a missing file is Unknown.
This module must not change governors or idle states, nor judge them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rtkvm.cpuset import CpuSet
from rtkvm.hostfs import HostFS, Unknown

CPU_DIR = "/sys/devices/system/cpu"
CPUIDLE_DIR = f"{CPU_DIR}/cpuidle"

_STATE_DIR = re.compile(r"^state(\d+)$")


@dataclass(frozen=True)
class IdleState:
    """One cpuidle state of a CPU (C-state)."""

    name: str
    latency_us: int
    """Exit latency in microseconds."""
    disabled: bool


@dataclass(frozen=True)
class PowerReport:
    cpufreq: bool
    """Whether any online CPU has a cpufreq policy."""
    cpufreq_driver: str | Unknown | None
    """scaling_driver of the first CPU with cpufreq; None without cpufreq."""
    governors: Mapping[int, str | Unknown]
    idle_driver: str | Unknown
    idle_governor: str | Unknown
    idle_states: Mapping[int, list[IdleState]] | Unknown
    """States per CPU that exposes them (CPUs without a cpuidle dir are absent);
    Unknown when some CPU's states could not be read."""


# -- pure parsers ---------------------------------------------------------------------


def parse_idle_state(name: str, latency: str, disable: str, where: str) -> IdleState:
    """An IdleState from the three sysfs files' text; raises ValueError naming ``where``."""
    try:
        latency_us = int(latency.strip())
        disabled = int(disable.strip()) != 0
    except ValueError:
        raise ValueError(
            f"{where}: latency {latency.strip()!r} / disable {disable.strip()!r} are not integers"
        ) from None
    return IdleState(name.strip(), latency_us, disabled)


# -- readers --------------------------------------------------------------------------


def read_governors(fs: HostFS, cpus: CpuSet) -> tuple[bool, dict[int, str | Unknown]]:
    """(cpufreq present, governor per CPU); ({}, False) when no CPU has cpufreq."""
    with_policy = [cpu for cpu in cpus if fs.is_dir(f"{CPU_DIR}/cpu{cpu}/cpufreq")]
    if not with_policy:
        return False, {}
    governors: dict[int, str | Unknown] = {}
    for cpu in cpus:
        governors[cpu] = fs.read_line(f"{CPU_DIR}/cpu{cpu}/cpufreq/scaling_governor")
    return True, governors


def read_idle_states(fs: HostFS, cpu: int) -> list[IdleState] | Unknown | None:
    """The idle states of one CPU; None when it has no cpuidle directory."""
    base = f"{CPU_DIR}/cpu{cpu}/cpuidle"
    if not fs.is_dir(base):
        return None
    names = fs.listdir_maybe(base)
    if isinstance(names, Unknown):
        return names
    indexed = sorted(
        (int(m.group(1)), m.group(0)) for m in map(_STATE_DIR.match, names) if m is not None
    )
    states: list[IdleState] = []
    for _, state in indexed:
        parts = [fs.read_maybe(f"{base}/{state}/{leaf}") for leaf in ("name", "latency", "disable")]
        name, latency, disable = parts
        for part in parts:
            if isinstance(part, Unknown):
                return part
        assert isinstance(name, str) and isinstance(latency, str) and isinstance(disable, str)
        try:
            states.append(parse_idle_state(name, latency, disable, f"{base}/{state}"))
        except ValueError as exc:
            return Unknown(f"{base}/{state}", str(exc))
    return states


def read_power(fs: HostFS, cpus: CpuSet) -> PowerReport:
    """Power settings of the given (online) CPUs."""
    cpufreq, governors = read_governors(fs, cpus)
    driver: str | Unknown | None = None
    if cpufreq:
        first = next(cpu for cpu in cpus if fs.is_dir(f"{CPU_DIR}/cpu{cpu}/cpufreq"))
        driver = fs.read_line(f"{CPU_DIR}/cpu{first}/cpufreq/scaling_driver")
    per_cpu: dict[int, list[IdleState]] = {}
    idle: dict[int, list[IdleState]] | Unknown = per_cpu
    for cpu in cpus:
        states = read_idle_states(fs, cpu)
        if isinstance(states, Unknown):
            idle = states
            break
        if states is not None:
            per_cpu[cpu] = states
    return PowerReport(
        cpufreq=cpufreq,
        cpufreq_driver=driver,
        governors=governors,
        idle_driver=fs.read_line(f"{CPUIDLE_DIR}/current_driver"),
        idle_governor=fs.read_line(f"{CPUIDLE_DIR}/current_governor"),
        idle_states=idle,
    )
