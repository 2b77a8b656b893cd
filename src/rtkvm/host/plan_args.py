"""Kernel arguments of a partition plan: the shipped table and its rendering.

The arguments and the reason for each live as data in
``rtkvm/data/plan_kernel_args.toml`` (template + why). This module loads that
table into frozen values, checks that every template uses only the known
placeholders ({isolated}, {housekeeping}), and renders it for a pair of CPU
sets. It must not choose CPUs (the planner does) nor read the host: the only
file it opens is the shipped table, and callers may pass their own table.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Sequence
from dataclasses import dataclass

from rtkvm.cpuset import CpuSet
from rtkvm.errors import DataError
from rtkvm.shipped import parse_toml, shipped_text

PLACEHOLDERS = frozenset({"isolated", "housekeeping"})
TABLE = "plan_kernel_args.toml"


@dataclass(frozen=True)
class KernelArg:
    """One kernel argument template and why a real-time host wants it."""

    template: str
    why: str

    def render(self, *, isolated: CpuSet, housekeeping: CpuSet) -> str:
        return self.template.format(isolated=isolated.format(), housekeeping=housekeeping.format())


def parse_kernel_args(text: str, *, source: str = TABLE) -> tuple[KernelArg, ...]:
    """Parse a TOML table of ``[[arg]]`` entries; raises DataError naming the problem."""
    data = parse_toml(text, source)
    entries = data.get("arg")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{source}: expected a non-empty list of [[arg]] tables")
    args: list[KernelArg] = []
    for index, entry in enumerate(entries):
        where = f"{source}: arg #{index + 1}"
        if not isinstance(entry, dict) or set(entry) != {"template", "why"}:
            raise DataError(f"{where}: needs exactly the keys 'template' and 'why'")
        template, why = entry["template"], entry["why"]
        if not isinstance(template, str) or not template or " " in template:
            raise DataError(f"{where}: template must be one non-empty argument without spaces")
        if not isinstance(why, str) or not why.strip():
            raise DataError(f"{where} ({template}): 'why' must say why the argument is there")
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        except ValueError as exc:
            raise DataError(f"{where} ({template}): bad template ({exc})") from None
        unknown = fields - PLACEHOLDERS
        if unknown:
            raise DataError(
                f"{where} ({template}): unknown placeholders {sorted(unknown)}; "
                f"use {sorted(PLACEHOLDERS)}"
            )
        args.append(KernelArg(template, " ".join(why.split())))
    return tuple(args)


@functools.cache
def default_kernel_args() -> tuple[KernelArg, ...]:
    """The shipped table (read once per process)."""
    return parse_kernel_args(shipped_text(TABLE))


def render_kernel_args(
    args: Sequence[KernelArg], *, isolated: CpuSet, housekeeping: CpuSet
) -> tuple[str, ...]:
    """The command-line arguments for these CPU sets; none when nothing is isolated.

    With no isolated CPU every argument would either be empty (``nohz_full=``
    is an error on some kernels) or pointless, so an all-housekeeping plan
    changes nothing on the command line.
    """
    explained = explain_kernel_args(args, isolated=isolated, housekeeping=housekeeping)
    return tuple(arg for arg, _ in explained)


def explain_kernel_args(
    args: Sequence[KernelArg], *, isolated: CpuSet, housekeeping: CpuSet
) -> tuple[tuple[str, str], ...]:
    """Pairs of (rendered argument, why), in table order; none when nothing is isolated."""
    if not isolated:
        return ()
    return tuple(
        (arg.render(isolated=isolated, housekeeping=housekeeping), arg.why) for arg in args
    )
