"""Parse the kernel command line (/proc/cmdline) into a typed KernelCmdline.

Splits the text the way the kernel's ``next_arg`` does (double quotes group
words, ``"`` around a value is dropped), stops at ``--`` (the rest goes to
init, not to the kernel), treats ``-`` and ``_`` in argument names as equal
(as the kernel does) and lets the last occurrence of an argument win. The
isolation lists (isolcpus with its flags, nohz_full, rcu_nocbs, irqaffinity)
and the hugepage arguments are parsed into values; a list that does not
parse becomes Unknown naming the argument, never a guess.

This module is pure: it takes text and must not read any file or judge
whether the arguments are good for real time (that is the doctor's job).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from rtkvm.cpuset import CpuSet
from rtkvm.errors import CpuListError
from rtkvm.hostfs import Unknown

CMDLINE_PATH = "/proc/cmdline"

ISOLCPUS_FLAGS = ("nohz", "domain", "managed_irq")
"""Flags the kernel accepts before the CPU list in ``isolcpus=``."""

_MEMSIZE = re.compile(r"^(\d+)([KkMmGgTtPp]?)\Z")
_SUFFIX_KB = {"": 1 / 1024, "k": 1, "m": 1024, "g": 1024**2, "t": 1024**3, "p": 1024**4}
_LAST_CPU = re.compile(r"(?<![0-9A-Za-z])N(?![0-9A-Za-z])")


@dataclass(frozen=True)
class HugepageRequest:
    """One ``hugepages=`` argument and the page size it applies to."""

    size_kb: int | None
    """Page size from the preceding ``hugepagesz=``; None = the default size."""
    pages: int
    """Total pages requested (summed over nodes for the per-node form)."""
    per_node: Mapping[int, int] = field(default_factory=dict)
    """For ``hugepages=0:4,1:4``: pages per NUMA node; empty for the plain form."""


@dataclass(frozen=True)
class KernelCmdline:
    """The kernel's arguments, with the ones rtkvm cares about parsed."""

    raw: str
    args: Mapping[str, str | None]
    """Every kernel argument (last occurrence wins); None for a bare flag."""
    ordered: tuple[tuple[str, str | None], ...]
    """Every kernel argument in order, repeats included."""
    init_args: tuple[str, ...]
    """Words after ``--``: passed to init, ignored by the kernel."""
    isolcpus: CpuSet | Unknown
    isolcpus_flags: tuple[str, ...]
    nohz_full: CpuSet | Unknown
    rcu_nocbs: CpuSet | Unknown
    irqaffinity: CpuSet | Unknown
    default_hugepagesz_kb: int | Unknown | None
    hugepages: tuple[HugepageRequest, ...] | Unknown

    def get(self, name: str) -> str | None:
        """The value of an argument (None for a bare flag or when absent)."""
        return self.args.get(_norm(name))

    def has(self, name: str) -> bool:
        return _norm(name) in self.args


def split_args(text: str) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Split a command line into (kernel args, init args) as the kernel does.

    A word is ``name`` or ``name=value``; double quotes may surround the whole
    word or the value and keep spaces inside it. An unterminated quote keeps
    the rest of the line as one word, as the kernel does.
    """
    kernel: list[tuple[str, str | None]] = []
    init: list[str] = []
    rest = text.strip()
    to_init = False
    while rest:
        word, rest = _next_word(rest)
        if to_init:
            init.append(word[0] if word[1] is None else f"{word[0]}={word[1]}")
            continue
        if word == ("--", None):
            to_init = True
            continue
        kernel.append((_norm(word[0]), word[1]))
    return kernel, init


def _next_word(text: str) -> tuple[tuple[str, str | None], str]:
    in_quote = False
    equals = -1
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace() and not in_quote:
            break
        if equals < 0 and char == "=":
            equals = i
        if char == '"':
            in_quote = not in_quote
        i += 1
    word, rest = text[:i], text[i:].lstrip()
    if word.startswith('"'):
        word = word[1:]
        equals -= 1
        if word.endswith('"'):
            word = word[:-1]
    if equals < 0:
        return (word, None), rest
    name, value = word[:equals], word[equals + 1 :]
    if value.startswith('"'):
        value = value[1:]
        if value.endswith('"'):
            value = value[:-1]
    return (name, value), rest


def _norm(name: str) -> str:
    return name.replace("-", "_")


def parse_cpu_arg(name: str, value: str | None, *, last_cpu: int | None = None) -> CpuSet | Unknown:
    """A CPU-list argument's value; empty when absent, Unknown when it does not parse.

    ``N`` (the kernel's alias for the last CPU) is resolved with ``last_cpu``
    when given; without it the value is Unknown.
    """
    if value is None:
        return CpuSet()
    text = value
    if _LAST_CPU.search(text):
        if last_cpu is None:
            return Unknown(
                CMDLINE_PATH, f"{name}={value} uses N (last CPU) and the CPU count is unknown"
            )
        text = _LAST_CPU.sub(str(last_cpu), text)
    try:
        return CpuSet.parse(text)
    except CpuListError as exc:
        return Unknown(CMDLINE_PATH, f"{name}={value} does not parse: {exc}")


def parse_isolcpus(
    value: str | None, *, last_cpu: int | None = None
) -> tuple[CpuSet | Unknown, tuple[str, ...]]:
    """``isolcpus=[flag,...,]cpulist`` -> (CPUs, flags); (empty, ()) when absent.

    Flags are the leading words that start with a letter; an unknown flag makes
    the CPUs Unknown (the kernel ignores it and warns, so what it isolates is
    not what the user meant).
    """
    if value is None:
        return CpuSet(), ()
    parts = value.split(",")
    flags: list[str] = []
    while parts and parts[0][:1].isalpha() and parts[0] != "N":
        flags.append(parts.pop(0))
    unknown = [f for f in flags if f not in ISOLCPUS_FLAGS]
    if unknown:
        return (
            Unknown(
                CMDLINE_PATH,
                f"isolcpus has unknown flag(s) {', '.join(unknown)}; "
                f"valid flags are {', '.join(ISOLCPUS_FLAGS)}",
            ),
            tuple(flags),
        )
    return parse_cpu_arg("isolcpus", ",".join(parts), last_cpu=last_cpu), tuple(flags)


def parse_memsize_kb(text: str) -> int | None:
    """A kernel memory size (``2M``, ``1G``, ``2097152``) in kB; None if malformed."""
    match = _MEMSIZE.match(text.strip())
    if not match:
        return None
    value = int(match.group(1)) * _SUFFIX_KB[match.group(2).lower()]
    return int(value) if value >= 1 and value == int(value) else None


def parse_hugepage_args(
    ordered: tuple[tuple[str, str | None], ...],
) -> tuple[int | Unknown | None, tuple[HugepageRequest, ...] | Unknown]:
    """(default_hugepagesz in kB or None, hugepages= requests in order)."""
    default: int | Unknown | None = None
    requests: list[HugepageRequest] = []
    size: int | None = None
    for name, value in ordered:
        if name == "default_hugepagesz":
            parsed = parse_memsize_kb(value or "")
            default = parsed if parsed else Unknown(CMDLINE_PATH, f"bad size {name}={value}")
        elif name == "hugepagesz":
            size = parse_memsize_kb(value or "")
            if size is None:
                return default, Unknown(CMDLINE_PATH, f"bad page size hugepagesz={value}")
        elif name == "hugepages":
            request = _parse_hugepages(value, size)
            if request is None:
                return default, Unknown(
                    CMDLINE_PATH,
                    f"bad hugepages={value}: expected a count or node:count,node:count",
                )
            requests.append(request)
    return default, tuple(requests)


def _parse_hugepages(value: str | None, size_kb: int | None) -> HugepageRequest | None:
    if value is None:
        return None
    if ":" not in value:
        return HugepageRequest(size_kb, int(value)) if value.isdigit() else None
    per_node: dict[int, int] = {}
    for item in value.split(","):
        node, _, count = item.partition(":")
        if not (node.isdigit() and count.isdigit()):
            return None
        per_node[int(node)] = int(count)
    return HugepageRequest(size_kb, sum(per_node.values()), per_node)


def parse_cmdline(text: str, *, last_cpu: int | None = None) -> KernelCmdline:
    """Parse /proc/cmdline text; ``last_cpu`` resolves ``N`` in CPU lists."""
    ordered, init = split_args(text)
    args: dict[str, str | None] = {}
    for name, value in ordered:
        args[name] = value
    isolcpus, flags = parse_isolcpus(args.get("isolcpus"), last_cpu=last_cpu)
    default_size, hugepages = parse_hugepage_args(tuple(ordered))
    return KernelCmdline(
        raw=text.strip(),
        args=args,
        ordered=tuple(ordered),
        init_args=tuple(init),
        isolcpus=isolcpus,
        isolcpus_flags=flags,
        nohz_full=parse_cpu_arg("nohz_full", args.get("nohz_full"), last_cpu=last_cpu),
        rcu_nocbs=parse_cpu_arg("rcu_nocbs", args.get("rcu_nocbs"), last_cpu=last_cpu),
        irqaffinity=parse_cpu_arg("irqaffinity", args.get("irqaffinity"), last_cpu=last_cpu),
        default_hugepagesz_kb=default_size,
        hugepages=hugepages,
    )
