"""Guest hugepages: N pages reserved on each NUMA node of the RT vCPUs (--guest-hugepages N).

Per node, /sys/devices/system/node/nodeK/hugepages/hugepages-<size>kB/
nr_hugepages is raised to N through the journaled writer, then read back:
the kernel grants fewer pages when memory is fragmented, which apply
reports as a shortfall and verify as drift. A node with at least N pages is
in effect (the data plane adds its own pages on top while it runs, see
rtkvm.dataplane.hugepages), so apply never lowers a count. A count whose
memory exceeds the profile's share of a node's MemTotal is refused before
anything is written. Rollback restores the journaled value.

This module must not choose the count (the operator does), create sysfs
files, or touch pages of other page sizes or of nodes without RT vCPUs.
"""

from __future__ import annotations

import re
from dataclasses import replace

from rtkvm.cpuset import CpuSet
from rtkvm.errors import CpuListError, InputError
from rtkvm.hostfs import Unknown
from rtkvm.tune.model import Change, Check, Shortfall, Status
from rtkvm.tune.plugins.base import Context, Plugin, check_from_change
from rtkvm.tune.profile import GuestHugepages
from rtkvm.tune.writer import Writer

NODE_DIR = "/sys/devices/system/node"
SETTING = "hugepages:guest"
_NODE = re.compile(r"^node(\d+)$")
_MEMTOTAL = re.compile(r"MemTotal:\s+(\d+)\s+kB")
_POOL = re.compile(r"/node(\d+)/hugepages/hugepages-(\d+)kB/")


def pool_file(node: int, size_kb: int) -> str:
    return f"{NODE_DIR}/node{node}/hugepages/hugepages-{size_kb}kB/nr_hugepages"


def nodes_of(ctx: Context, cpus: CpuSet) -> list[int]:
    """NUMA nodes (sorted) whose cpulist shares a CPU with ``cpus``."""
    names = ctx.fs.listdir_maybe(NODE_DIR)
    if isinstance(names, Unknown):
        return []
    found: list[int] = []
    for name in names:
        match = _NODE.match(name)
        if not match:
            continue
        text = ctx.fs.read_line(f"{NODE_DIR}/{name}/cpulist")
        try:
            node_cpus = CpuSet.parse(text) if isinstance(text, str) else CpuSet()
        except CpuListError:
            continue
        if node_cpus & cpus:
            found.append(int(match.group(1)))
    return sorted(found)


def mem_total_kb(ctx: Context, node: int) -> int | None:
    text = ctx.fs.read_maybe(f"{NODE_DIR}/node{node}/meminfo")
    match = _MEMTOTAL.search(text) if isinstance(text, str) else None
    return int(match.group(1)) if match else None


def _count(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


def _check_fits(ctx: Context, spec: GuestHugepages, pages: int, nodes: list[int]) -> None:
    """Refuse a count whose memory exceeds ``max_percent`` of a node's MemTotal."""
    for node in nodes:
        total = mem_total_kb(ctx, node)
        if total is None:
            continue  # no meminfo: nothing to check against; the kernel grants what it can
        fit = total * spec.max_percent // 100 // spec.size_kb
        if pages > fit:
            raise InputError(
                f"--guest-hugepages {pages}: {pages} x {spec.size_kb // 1024} MiB = "
                f"{pages * spec.size_kb // 1024} MiB on NUMA node {node}, more than "
                f"{spec.max_percent}% of its {total // 1024} MiB; at most {fit} fit there "
                "(the rest is the host's)"
            )


class HugepagesPlugin(Plugin):
    name = "hugepages"

    def plan(self, ctx: Context) -> list[Change]:
        spec = ctx.profile.guest_hugepages
        pages = ctx.guest_hugepages
        if spec is None:
            if pages is not None:
                raise InputError(
                    f"profile {ctx.profile.name!r} does not reserve guest hugepages; drop "
                    "--guest-hugepages or use --profile realtime-virtual-host"
                )
            return []
        if pages is None:
            reason = (
                "not requested: nothing changed (give --guest-hugepages N to reserve N "
                f"{spec.size_kb} kB pages on each NUMA node of the RT vCPUs)"
            )
            return [
                Change(
                    SETTING, "guest memory", "file", None, "", spec.why, False, unsupported=reason
                )
            ]
        nodes = nodes_of(ctx, ctx.cpus(spec.nodes_of, SETTING))
        if not nodes:
            reason = (
                f"no NUMA node in {NODE_DIR} has the CPUs {ctx.value(spec.nodes_of, SETTING)}: "
                f"reserve by hand (echo {pages} > /proc/sys/vm/nr_hugepages)"
            )
            return [
                Change(
                    SETTING, NODE_DIR, "file", None, str(pages), spec.why, False, unsupported=reason
                )
            ]
        _check_fits(ctx, spec, pages, nodes)
        changes: list[Change] = []
        for node in nodes:
            path = pool_file(node, spec.size_kb)
            live = ctx.fs.read_maybe(path)
            if isinstance(live, Unknown):
                reason = f"{path} {live.reason}: this kernel has no {spec.size_kb} kB hugepages"
                changes.append(
                    Change(
                        SETTING, path, "file", None, str(pages), spec.why, False, unsupported=reason
                    )
                )
                continue
            have = _count(live)
            in_effect = have is not None and have >= pages
            changes.append(Change(SETTING, path, "file", live, str(pages), spec.why, in_effect))
        return changes

    def apply(self, ctx: Context, change: Change, writer: Writer) -> str | Shortfall | None:
        writer.apply(change)
        wanted = int(change.after)
        live = ctx.fs.read_maybe(change.target)
        got = _count(live) if isinstance(live, str) else None
        if got is not None and got >= wanted:
            return None
        match = _POOL.search(change.target)
        node, size_kb = (match.group(1), int(match.group(2))) if match else ("?", 2048)
        return Shortfall(
            f"{change.setting}: got {'?' if got is None else got} of {wanted} hugepages on "
            f"NUMA node {node} (its memory is too fragmented or too small): reserve them at boot "
            f"with the kernel command line hugepagesz={_boot_size(size_kb)} hugepages=... "
            "(per node: hugepages=<node>:<count>,...), or free memory and apply again"
        )

    def verify(self, ctx: Context) -> list[Check]:
        checks: list[Check] = []
        for change in self.plan(ctx):
            check = check_from_change(change, ctx)
            if change.unsupported is None:
                note = (
                    ""
                    if check.status is Status.OK
                    else (
                        f"fewer than {change.after} hugepages reserved: apply again, or reserve "
                        "them at boot on the kernel command line (hugepages=<node>:<count>,...)"
                    )
                )
                check = replace(check, expected=f">= {change.after}", note=note)
            checks.append(check)
        return checks


def _boot_size(size_kb: int) -> str:
    """2048 -> ``2M``, 1048576 -> ``1G`` (the kernel's hugepagesz= spelling)."""
    return f"{size_kb // 1048576}G" if size_kb % 1048576 == 0 else f"{size_kb // 1024}M"
