"""Tuning profiles: TOML data shipped in rtkvm/data/profiles, loaded into frozen models.

A profile lists settings by kind (sysctl, sysfs, IRQs, irqbalance, cpusets,
thread priorities, power, kernel command line, module options, guest
hugepages); every
setting carries a ``why``. A profile may ``include`` another one: the child
adds settings and overrides the parent's setting with the same key. Values
may name site variables (``${housekeeping}``) that :func:`site_variables`
computes from a partition plan, and user choices (``${rt_throttling}``)
whose options are listed in the data.

This module must not read the host or decide anything: it loads, merges and
substitutes. The mechanism that applies a setting lives in tune/plugins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from rtkvm.errors import DataError, InputError
from rtkvm.host.partition import PartitionPlan
from rtkvm.shipped import has_shipped, parse_toml, shipped_names, shipped_text

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
PROFILE_DIR = "profiles"
DEFAULT_PROFILE = "realtime-virtual-host"
"""The profile of a node that runs RT guests (``realtime`` tunes a bare-metal RT host)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Choice(_Model):
    """A user choice (e.g. RT throttling off or a large runtime): options map to values."""

    default: str
    options: dict[str, str]
    why: str

    @model_validator(mode="after")
    def _default_listed(self) -> Choice:
        if self.default not in self.options:
            raise ValueError(f"default {self.default!r} is not one of {sorted(self.options)}")
        return self


class Sysctl(_Model):
    key: str
    value: str
    why: str


class Sysfs(_Model):
    path: str
    """A sysfs path; ``*`` matches one path component (machinecheck*)."""
    value: str
    compare: Literal["exact", "selected", "mask", "cpulist"] = "exact"
    """How the live file is read back: as written, the [selected] word, a hex mask, a list."""
    why: str


class Irqs(_Model):
    affinity: str
    why: str


class Irqbalance(_Model):
    banned: str
    why: str


class Cpuset(_Model):
    name: str
    cpus: str
    holds_tasks: bool = False
    """True for the group all movable tasks are moved into (housekeeping)."""
    isolated: bool = False
    """cgroup v2: make it an isolated partition; v1: no load balancing in it."""
    why: str


class Thread(_Model):
    match: str
    """Shell pattern on the thread name (/proc/PID/task/TID/comm), e.g. ``ksoftirqd/*``."""
    policy: Literal["fifo", "rr"]
    priority: int
    role: Literal["kthread", "rt_work"]
    """kthread: a per-CPU kernel thread that serves the CPU's RT work (must preempt it);
    rt_work: RT work itself, such as a data-plane polling thread (in the vCPU band)."""
    why: str


class Affinity(_Model):
    match: str
    """Shell pattern on the thread name, e.g. ``rcuo*``."""
    cpus: str
    why: str


class Priorities(_Model):
    """The host-wide SCHED_FIFO scale (rtkvm.priorities), as the profile states it."""

    kthread_max: int
    """Per-CPU service threads (ksoftirqd, ktimers, rcuc) run at 2..kthread_max."""
    rt_min: int
    rt_max: int
    """RT work (vCPUs, polling threads) runs at rt_min..rt_max."""
    vcpu_default: int
    why: str


class Power(_Model):
    cpus: str
    governor: str
    max_idle_latency_us: int
    """Idle states with a higher exit latency are disabled on ``cpus``."""
    why: str


class CmdlineArg(_Model):
    arg: str
    why: str


class ModuleOption(_Model):
    module: str
    option: str
    value: str
    why: str


class GuestHugepages(_Model):
    """Hugepages reserved for guest memory on each NUMA node of some CPUs.

    The page count is the operator's (``--guest-hugepages N``): how much
    memory guests get is a site decision, so the profile states only where
    and how large the pages are, and how much of a node may go to them.
    """

    size_kb: int
    nodes_of: str
    """CPUs whose NUMA nodes get the pages (``${rt_vcpu}``: guests' memory follows their pCPUs)."""
    max_percent: int = 90
    """A count whose memory exceeds this share of a node's MemTotal is refused (a typo)."""
    why: str

    @model_validator(mode="after")
    def _sane(self) -> GuestHugepages:
        if self.size_kb <= 0 or not 0 < self.max_percent < 100:
            raise ValueError("size_kb must be positive and max_percent between 1 and 99")
        return self


class Profile(_Model):
    name: str
    summary: str
    include: str | None = None
    choices: dict[str, Choice] = {}
    sysctl: tuple[Sysctl, ...] = ()
    sysfs: tuple[Sysfs, ...] = ()
    irqs: Irqs | None = None
    irqbalance: Irqbalance | None = None
    cpuset: tuple[Cpuset, ...] = ()
    thread: tuple[Thread, ...] = ()
    affinity: tuple[Affinity, ...] = ()
    priorities: Priorities | None = None
    power: Power | None = None
    cmdline: tuple[CmdlineArg, ...] = ()
    modprobe: tuple[ModuleOption, ...] = ()
    guest_hugepages: GuestHugepages | None = None

    @model_validator(mode="after")
    def _one_priority_scale(self) -> Profile:
        p = self.priorities
        if p is None:
            return self
        if not 1 < p.kthread_max < p.rt_min <= p.vcpu_default <= p.rt_max < 50:
            raise ValueError(
                f"priorities must satisfy 1 < kthread_max ({p.kthread_max}) < rt_min "
                f"({p.rt_min}) <= vcpu_default ({p.vcpu_default}) <= rt_max ({p.rt_max}) < 50 "
                "(threaded IRQ handlers)"
            )
        for thread in self.thread:
            low, high = (2, p.kthread_max) if thread.role == "kthread" else (p.rt_min, p.rt_max)
            if not low <= thread.priority <= high:
                raise ValueError(
                    f"thread {thread.match!r} ({thread.role}) priority {thread.priority} must be "
                    f"between {low} and {high}: per-CPU kernel threads below every vCPU, RT "
                    "work in the RT band below threaded IRQ handlers"
                )
        return self


def _key(kind: str, item: Any) -> str:
    if kind == "sysctl":
        return str(item["key"])
    if kind == "sysfs":
        return str(item["path"])
    if kind == "cpuset":
        return str(item["name"])
    if kind in ("thread", "affinity"):
        return str(item["match"])
    if kind == "cmdline":
        return str(item["arg"]).split("=", 1)[0].replace("-", "_")
    if kind == "modprobe":
        return f"{item['module']}.{item['option']}"
    raise AssertionError(kind)


_LISTS = ("sysctl", "sysfs", "cpuset", "thread", "affinity", "cmdline", "modprobe")
_TABLES = ("irqs", "irqbalance", "priorities", "power", "guest_hugepages")


def merge(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """The child's raw data over the parent's: same-key list items and whole tables replaced."""
    merged: dict[str, Any] = {**parent, **{k: v for k, v in child.items() if k not in _LISTS}}
    merged["choices"] = {**parent.get("choices", {}), **child.get("choices", {})}
    for kind in _LISTS:
        items = {_key(kind, it): it for it in parent.get(kind, [])}
        for it in child.get(kind, []):
            items[_key(kind, it)] = it
        merged[kind] = list(items.values())
    for kind in _TABLES:
        if kind in child:
            merged[kind] = child[kind]
    merged["include"] = parent.get("include") if "include" not in child else child["include"]
    return merged


def available_profiles() -> list[str]:
    """Names of the profiles shipped with rtkvm."""
    return shipped_names(PROFILE_DIR)


def _raw(name: str) -> dict[str, Any]:
    if not has_shipped(f"{PROFILE_DIR}/{name}.toml"):
        raise InputError(
            f"unknown tuning profile {name!r}; choose one of: {', '.join(available_profiles())}"
        )
    return parse_toml(shipped_text(f"{PROFILE_DIR}/{name}.toml"), f"profile {name}.toml")


def load_profile(name: str) -> Profile:
    """Load a shipped profile with everything it includes merged in."""
    chain: list[dict[str, Any]] = []
    seen: list[str] = []
    current: str | None = name
    while current is not None:
        if current in seen:
            raise DataError(f"profile include loop: {' -> '.join([*seen, current])}")
        seen.append(current)
        raw = _raw(current)
        chain.append(raw)
        current = raw.get("include")
    data: dict[str, Any] = {}
    for raw in reversed(chain):
        data = merge(data, raw)
    data["name"] = chain[0].get("name", name)
    data["include"] = chain[0].get("include")
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise DataError(f"profile {name!r} is invalid: {exc}") from None


def site_variables(
    plan: PartitionPlan, profile: Profile, choices: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables a profile's values may use, computed from the plan and the choices.

    CPU roles in list syntax (``housekeeping``, ``rt_vcpu``, ``dataplane``,
    ``isolated`` = everything but housekeeping) and as hex masks (``*_mask``),
    plus one variable per profile choice (the chosen option's value).
    """
    roles = {
        "housekeeping": plan.housekeeping,
        "rt_vcpu": plan.rt_vcpu,
        "dataplane": plan.dataplane,
        "isolated": plan.isolated,
    }
    variables: dict[str, str] = {}
    for role, cpus in roles.items():
        variables[role] = cpus.format()
        variables[f"{role}_mask"] = cpus.format_mask()
    picked = dict(choices or {})
    unknown = sorted(set(picked) - set(profile.choices))
    if unknown:
        raise InputError(
            f"profile {profile.name!r} has no choice {', '.join(unknown)}; "
            f"its choices are: {', '.join(sorted(profile.choices)) or 'none'}"
        )
    for name, choice in profile.choices.items():
        option = picked.get(name, choice.default)
        if option not in choice.options:
            raise InputError(
                f"{name}={option!r} is not an option; choose one of: "
                f"{', '.join(sorted(choice.options))}"
            )
        variables[name] = choice.options[option]
    return variables


def substitute(text: str, variables: Mapping[str, str], *, where: str) -> str:
    """Replace ``${name}`` in a profile value; an unknown name is a DataError naming ``where``."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise DataError(
                f"{where}: unknown variable ${{{name}}}; known: {', '.join(sorted(variables))}"
            )
        return variables[name]

    return _VAR.sub(repl, text)
