"""nova-compute's RT settings from the partition plan, as a drop-in file rtkvm owns.

:func:`nova_settings` fills the options of ``[nova.*]`` in
``rtkvm/data/openstack.toml`` from the plan (``cpu_dedicated_set`` = the RT vCPU
CPUs, ``cpu_shared_set`` = housekeeping; the data plane's CPUs are in neither),
the host-wide vCPU priority and the hypervisor type. :func:`render` writes them
as an oslo.config INI file with the reason of each option beside it;
:func:`changes` compares them with what a drop-in file already says. nova.conf
itself is never edited: nova-compute reads the drop-in with ``--config-dir``.
This module is pure: the CLI reads and writes the file.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from typing import Literal

from rtkvm.errors import InputError
from rtkvm.host.partition import PartitionPlan
from rtkvm.priorities import band_problem
from rtkvm.shipped import parse_toml, shipped_text

DROP_IN = "/etc/nova/nova.conf.d/50-rtkvm.conf"
"""Where rtkvm's settings go by default: nova-compute started with
``--config-dir /etc/nova/nova.conf.d`` reads it after nova.conf."""


@dataclass(frozen=True)
class Setting:
    section: str
    option: str
    value: str
    why: str


@dataclass(frozen=True)
class Change:
    section: str
    option: str
    before: str | None
    after: str | None

    def __str__(self) -> str:
        where = f"[{self.section}] {self.option}"
        if self.before is None:
            return f"{where} = {self.after} (new)"
        if self.after is None:
            return f"{where} = {self.before} (removed)"
        return f"{where}: {self.before} -> {self.after}"


def nova_settings(
    plan: PartitionPlan, *, priority: int, virt_type: Literal["kvm", "qemu"]
) -> list[Setting]:
    """The options rtkvm sets for nova-compute on a host with this plan."""
    if not plan.rt_vcpu:
        raise InputError("the plan has no RT vCPU CPUs: Nova would have no cpu_dedicated_set")
    problem = band_problem(priority)
    if problem is not None:
        raise InputError(f"--priority {priority}: {problem}")
    table = dict(parse_toml(shipped_text("openstack.toml"), "rtkvm/data/openstack.toml")["nova"])
    cpu_modes = table.pop("cpu_mode")
    values = {
        "rt_vcpu": str(plan.rt_vcpu),
        "housekeeping": str(plan.housekeeping),
        "priority": str(priority),
        "virt_type": virt_type,
        "cpu_mode": str(cpu_modes[virt_type]),
    }
    out = []
    for section, options in table.items():
        for option, (value, why) in options.items():
            out.append(Setting(section, option, str(value).format(**values), str(why)))
    return out


def render(settings: list[Setting], source: str) -> str:
    """The drop-in file: a header saying whose it is, then each section's options."""
    lines = [
        "# Written by rtkvm (rtkvm openstack nova-conf) from " + source + ".",
        "# rtkvm owns this file and rewrites it; nova.conf is not edited.",
        "# Remove it with `rtkvm openstack nova-conf --remove`.",
    ]
    for section in dict.fromkeys(s.section for s in settings):
        lines += ["", f"[{section}]"]
        for s in settings:
            if s.section == section:
                lines += [f"# {s.why}", f"{s.option} = {s.value}"]
    return "\n".join(lines) + "\n"


def parse(text: str) -> dict[tuple[str, str], str]:
    """(section, option) -> value of an INI text (a drop-in file rtkvm wrote, or not)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise InputError(f"the existing drop-in file does not parse as INI: {exc}") from None
    return {(sec, opt): parser[sec][opt] for sec in parser.sections() for opt in parser[sec]}


def changes(existing: str | None, settings: list[Setting]) -> list[Change]:
    """What writing ``settings`` changes in a drop-in file that says ``existing``."""
    before = parse(existing) if existing else {}
    after = {(s.section, s.option): s.value for s in settings}
    out = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            out.append(Change(key[0], key[1], before.get(key), after.get(key)))
    return out
