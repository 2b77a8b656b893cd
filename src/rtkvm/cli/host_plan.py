"""``rtkvm host plan``: propose a CPU partition for this host and print it.

Reads the topology from --root, asks the planner, and prints the plan: a
table per NUMA node, the kernel arguments with their reasons and the Nova
settings, or one JSON object. It must not decide anything about the plan
(see rtkvm.host.planner) nor apply it (the tuning engine does).
"""

from __future__ import annotations

import textwrap
from typing import Any

import click

from rtkvm.cli.common import format_option, open_host, root_option
from rtkvm.cpuset import CpuSet
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.plan_args import default_kernel_args, explain_kernel_args
from rtkvm.host.planner import (
    SMT_POLICIES,
    NodeRoles,
    PlanRequest,
    SmtPolicy,
    plan_partition,
    roles_by_node,
)
from rtkvm.host.topology import Topology, read_topology
from rtkvm.serialize import dumps, to_jsonable


@click.command("plan")
@root_option
@format_option
@click.option(
    "--rt-cores",
    type=click.IntRange(min=0),
    required=True,
    help="Physical cores for RT vCPUs.",
)
@click.option(
    "--dataplane-cores",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Physical cores for the RT switch's polling (PMD) threads.",
)
@click.option(
    "--dataplane-near",
    metavar="IFACE",
    default=None,
    help="Put the data plane on this NIC's NUMA node.",
)
@click.option(
    "--smt",
    type=click.Choice(SMT_POLICIES),
    default="use-siblings",
    show_default=True,
    help="use-siblings: both threads of a core serve its role; "
    "idle-sibling: one thread serves, the other stays isolated and idle.",
)
@click.option(
    "--housekeeping-cores",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Reserve at least this many housekeeping cores (minimum: one per NUMA node).",
)
@click.option(
    "--spread",
    is_flag=True,
    help="Deal RT cores evenly over the NUMA nodes instead of packing them on few nodes.",
)
def plan(
    root: str,
    fmt: str,
    rt_cores: int,
    dataplane_cores: int,
    dataplane_near: str | None,
    smt: SmtPolicy,
    housekeeping_cores: int,
    spread: bool,
) -> None:
    """Propose housekeeping / RT vCPU / dataplane CPU sets made of whole cores."""
    topology = read_topology(open_host(root))
    request = PlanRequest(
        rt_cores=rt_cores,
        dataplane_cores=dataplane_cores,
        dataplane_near=dataplane_near,
        smt=smt,
        housekeeping_cores=housekeeping_cores,
        spread=spread,
    )
    result = plan_partition(topology, request)
    if fmt == "json":
        click.echo(dumps(plan_document(root, topology, request, result)))
    else:
        click.echo(render_plan(root, topology, result))


def plan_document(
    root: str, topology: Topology, request: PlanRequest, plan: PartitionPlan
) -> dict[str, Any]:
    """The JSON form: the plan's fields first, then the request, reasons and per-node view."""
    document: dict[str, Any] = to_jsonable(plan)
    document["isolated"] = plan.isolated.format()
    document["kernel_args"] = [{"arg": arg, "why": why} for arg, why in _explained(plan)]
    document["request"] = to_jsonable(request)
    document["root"] = root
    document["nodes"] = to_jsonable(roles_by_node(topology, plan))
    return document


def render_plan(root: str, topology: Topology, plan: PartitionPlan) -> str:
    """The table for people: roles per node, kernel arguments with reasons, Nova settings."""
    smt = "SMT on" if topology.smt_active else "no SMT"
    lines = [
        f"CPU partition for {root}: {len(topology.online)} CPUs, {len(topology.cores)} cores, "
        f"{len(roles_by_node(topology, plan))} NUMA node(s), {smt}; SMT policy {plan.smt_policy}",
        "",
    ]
    rows = [("NODE", "CORES", "HOUSEKEEPING", "RT VCPU", "DATAPLANE", "IDLE SIBLINGS")]
    for roles in roles_by_node(topology, plan):
        rows.append(_node_row(roles))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines.extend(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
    lines.append("")
    lines.append(f"housekeeping   {_or_dash(plan.housekeeping)}")
    lines.append(f"rt_vcpu        {_or_dash(plan.rt_vcpu)}")
    lines.append(f"dataplane      {_or_dash(plan.dataplane)}")
    if plan.idle_siblings:
        lines.append(f"idle_siblings  {plan.idle_siblings}")
    lines.append("")
    explained = _explained(plan)
    if explained:
        lines.append("Kernel arguments (add to the kernel command line, then reboot):")
        for arg, why in explained:
            lines.append(f"  {arg}")
            lines.extend(
                textwrap.wrap(why, width=96, initial_indent="      ", subsequent_indent="      ")
            )
        lines.append("")
        lines.append("  all together:")
        lines.append("  " + " ".join(plan.kernel_cmdline))
    else:
        lines.append("Kernel arguments: none (the plan isolates no CPU)")
    lines.append("")
    lines.append("OpenStack Nova (nova.conf [compute]):")
    for key, value in plan.nova.items():
        lines.append(f"  {key} = {value}")
    return "\n".join(lines)


def _node_row(roles: NodeRoles) -> tuple[str, str, str, str, str, str]:
    return (
        str(roles.node),
        str(roles.cores),
        _cell(roles.housekeeping, roles.housekeeping_cores),
        _cell(roles.rt_vcpu, roles.rt_vcpu_cores),
        _cell(roles.dataplane, roles.dataplane_cores),
        _or_dash(roles.idle_siblings),
    )


def _cell(cpus: CpuSet, cores: int) -> str:
    if not cpus:
        return "-"
    return f"{cpus} ({cores} core{'' if cores == 1 else 's'})"


def _or_dash(cpus: CpuSet) -> str:
    return cpus.format() or "-"


def _explained(plan: PartitionPlan) -> tuple[tuple[str, str], ...]:
    return explain_kernel_args(
        default_kernel_args(), isolated=plan.isolated, housekeeping=plan.housekeeping
    )
