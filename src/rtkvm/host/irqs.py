"""Interrupts: which IRQs exist, where they may run and where they do run.

Reads /proc/interrupts (names), /proc/irq/N/smp_affinity and
effective_affinity (hex masks), /proc/irq/default_smp_affinity, whether an
irqbalance process runs (/proc/PID/comm) and irqbalance's banned CPUs from
/etc/default/irqbalance or /etc/sysconfig/irqbalance. Parsers are pure
functions on text; readers go through HostFS and turn a missing file into
Unknown. This module must not move IRQs or judge their placement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtkvm.cpuset import CpuSet
from rtkvm.errors import CpuListError
from rtkvm.hostfs import HostFS, Unknown

INTERRUPTS_PATH = "/proc/interrupts"
IRQ_DIR = "/proc/irq"
DEFAULT_AFFINITY_PATH = "/proc/irq/default_smp_affinity"
IRQBALANCE_CONFIGS = ("/etc/default/irqbalance", "/etc/sysconfig/irqbalance")

_HWIRQ_TYPE = re.compile(r"^\d+-\w+$")
_GIC_TYPES = frozenset({"Level", "Edge"})
_SHELL_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


@dataclass(frozen=True)
class Irq:
    """One interrupt line and its CPU affinity."""

    irq: int
    name: str
    """Actions (device names) from /proc/interrupts; "" when none are listed."""
    affinity: CpuSet | Unknown
    """CPUs the IRQ may be delivered to (smp_affinity)."""
    effective: CpuSet | Unknown
    """CPUs it is actually delivered to; Unknown when the kernel does not say."""


@dataclass(frozen=True)
class IrqReport:
    irqs: tuple[Irq, ...] | Unknown
    default_affinity: CpuSet | Unknown
    irqbalance_running: bool | Unknown
    irqbalance_banned: CpuSet | Unknown
    irqbalance_config: str | None
    """The config file the ban was read from; None when there is none."""


# -- pure parsers ---------------------------------------------------------------------


def parse_interrupt_names(text: str) -> dict[int, str]:
    """Map numeric IRQs in /proc/interrupts to their action names ("" if none).

    Rows for per-CPU counters (NMI, LOC, ...) are skipped. The actions are the
    words after the ``hwirq-type`` column (x86: ``5-edge``) or the ``Level`` /
    ``Edge`` column (ARM GIC).
    """
    lines = text.splitlines()
    if not lines:
        raise ValueError("empty /proc/interrupts")
    ncpus = len(lines[0].split())
    names: dict[int, str] = {}
    for line in lines[1:]:
        label, sep, rest = line.partition(":")
        label = label.strip()
        if not sep or not label.isdigit():
            continue
        words = rest.split()
        counts, limit = 0, min(ncpus, len(words))
        while counts < limit and words[counts].isdigit():
            counts += 1
        tail = words[counts:]
        start = None
        for index, word in enumerate(tail):
            if _HWIRQ_TYPE.match(word) or word in _GIC_TYPES:
                start = index + 1
                break
        names[int(label)] = " ".join(tail[start:]) if start is not None else ""
    return names


def parse_irq_mask(text: str) -> CpuSet:
    """An /proc/irq mask file (``3``, ``00000000,000000ff``); raises CpuListError."""
    return CpuSet.parse_mask(text)


def parse_shell_vars(text: str) -> dict[str, str]:
    """KEY=VALUE lines of a shell-style config (quotes removed, comments ignored)."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        match = _SHELL_ASSIGN.match(line)
        if not match:
            continue
        value = match.group(2).strip()
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            value = value[1:end] if end > 0 else value[1:]
        else:
            value = value.split("#", 1)[0].strip()
        result[match.group(1)] = value
    return result


def parse_irqbalance_banned(text: str, source: str) -> CpuSet | Unknown:
    """The banned CPUs of an irqbalance config; empty when it bans nothing.

    IRQBALANCE_BANNED_CPULIST (a CPU list) wins over the older
    IRQBALANCE_BANNED_CPUS (a hex mask), as in irqbalance itself.
    """
    env = parse_shell_vars(text)
    try:
        if env.get("IRQBALANCE_BANNED_CPULIST"):
            return CpuSet.parse(env["IRQBALANCE_BANNED_CPULIST"])
        if env.get("IRQBALANCE_BANNED_CPUS"):
            return CpuSet.parse_mask(env["IRQBALANCE_BANNED_CPUS"])
    except CpuListError as exc:
        return Unknown(source, f"banned CPUs do not parse: {exc}")
    return CpuSet()


# -- readers --------------------------------------------------------------------------


def read_irqs(fs: HostFS) -> tuple[Irq, ...] | Unknown:
    """Every IRQ in /proc/interrupts or /proc/irq, with its affinity."""
    text = fs.read_maybe(INTERRUPTS_PATH)
    if isinstance(text, Unknown):
        return text
    try:
        names = parse_interrupt_names(text)
    except ValueError as exc:
        return Unknown(INTERRUPTS_PATH, str(exc))
    listed = fs.listdir_maybe(IRQ_DIR)
    numbers = set(names)
    if isinstance(listed, list):
        numbers.update(int(n) for n in listed if n.isdigit())
    return tuple(
        Irq(
            irq=n,
            name=names.get(n, ""),
            affinity=_read_mask(fs, f"{IRQ_DIR}/{n}/smp_affinity"),
            effective=_read_mask(fs, f"{IRQ_DIR}/{n}/effective_affinity"),
        )
        for n in sorted(numbers)
    )


def _read_mask(fs: HostFS, path: str) -> CpuSet | Unknown:
    text = fs.read_line(path)
    if isinstance(text, Unknown):
        return text
    try:
        return parse_irq_mask(text)
    except CpuListError as exc:
        return Unknown(path, str(exc))


def read_irqbalance_running(fs: HostFS) -> bool | Unknown:
    """True when some /proc/PID/comm is ``irqbalance``."""
    pids = fs.listdir_maybe("/proc")
    if isinstance(pids, Unknown):
        return pids
    for pid in pids:
        if pid.isdigit():
            comm = fs.read_line(f"/proc/{pid}/comm")
            if comm == "irqbalance":
                return True
    return False


def read_irqbalance_banned(fs: HostFS) -> tuple[CpuSet | Unknown, str | None]:
    """(banned CPUs, config path); Unknown when no config file exists."""
    for path in IRQBALANCE_CONFIGS:
        text = fs.read_maybe(path)
        if isinstance(text, str):
            return parse_irqbalance_banned(text, path), path
    return Unknown(" or ".join(IRQBALANCE_CONFIGS), "no irqbalance config file"), None


def read_irq_report(fs: HostFS) -> IrqReport:
    banned, config = read_irqbalance_banned(fs)
    return IrqReport(
        irqs=read_irqs(fs),
        default_affinity=_read_mask(fs, DEFAULT_AFFINITY_PATH),
        irqbalance_running=read_irqbalance_running(fs),
        irqbalance_banned=banned,
        irqbalance_config=config,
    )
