"""Pure scheduler filters and weighers over host snapshots, and why nothing fits.

Filters run in a fixed order; a host is a candidate when it passes all.
A host is RT-ready when its doctor says so, or when an admin recorded an RT
waiver for it (a lab host); the waiver overrides nothing else. A guest that
claims no RT pCPU (``hw:cpu_policy=shared``) needs no RT-ready host. For an empty
result, :func:`explain` groups the hosts by the first filter they fail and
says so per class, e.g. "3 hosts wired to blue, none with 4 free RT pCPUs
on one NUMA node". Weighers rank candidates: ``pack`` fills the busiest
host first (whole hosts stay free for big guests), ``spread`` the least
busy; RT-ready hosts always come before waived ones.

Everything here is a function of its arguments: no clock, no database,
no randomness (the caller passes ``now``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rtkvm.scheduler.snapshot import READY, HostSnapshot, NodeSnapshot, Request
from rtkvm.wire.node import RTKVM_ENGINE


@dataclass(frozen=True)
class Context:
    now: float
    agent_timeout_s: float


def targeted(host: HostSnapshot, req: Request, ctx: Context) -> bool:
    """The host an admin chose, when one did."""
    return req.target_host is None or host.name == req.target_host


def rtkvm_engine(host: HostSnapshot, req: Request, ctx: Context) -> bool:
    """rtkvm builds this host's guests (Nova builds an OpenStack-mode host's)."""
    return host.engine == RTKVM_ENGINE


def registered(host: HostSnapshot, req: Request, ctx: Context) -> bool:
    return bool(host.nodes)


def agent_alive(host: HostSnapshot, req: Request, ctx: Context) -> bool:
    return host.heartbeat_at is not None and ctx.now - host.heartbeat_at <= ctx.agent_timeout_s


def rt_ready(host: HostSnapshot, req: Request, ctx: Context) -> bool:
    """The doctor's verdict is 'ready', or an admin waived it for this (lab) host; a guest
    that claims no RT pCPU (a shared one) does not ask."""
    return not req.needs_rt or host.doctor_verdict == READY or host.rt_waiver is not None


def qualified(host: HostSnapshot, req: Request, ctx: Context) -> bool:
    """The cloud requires qualified hosts for RT guests: this one passed a qualification
    recently enough, for its plan and wiring as they are."""
    if not req.needs_qualified:
        return True
    assert req.qualified_since is not None
    return host.qualified_at is not None and host.qualified_at >= req.qualified_since


def dataplane_ready(host: HostSnapshot, req: Request, ctx: Context) -> bool:
    return not req.networks or host.dataplane_state == READY


def networks_wired(host: HostSnapshot, req: Request, ctx: Context) -> bool:
    return req.physnets <= host.physnets


def disk_fit(host: HostSnapshot, req: Request, ctx: Context) -> bool:
    """The host has room for the server's disk (a host that never reported its disk space
    takes no server with a disk)."""
    return req.disk_gb == 0 or (host.disk_free_gb is not None and host.disk_free_gb >= req.disk_gb)


def cpus_fit(host: HostSnapshot, req: Request, ctx: Context) -> bool:
    """Each guest cell finds its own node with enough free RT pCPUs (memory aside)."""
    return fit_nodes(host.nodes, req, memory=False) is not None


def memory_fit(host: HostSnapshot, req: Request, ctx: Context) -> bool:
    """Each guest cell finds its own node with enough free RT pCPUs and memory: hugepages
    of its size, or RAM beside the pools for a guest with 4k pages."""
    return fit_nodes(host.nodes, req, memory=True) is not None


def _memory_fits(node: NodeSnapshot, req: Request) -> bool:
    if req.pages_per_cell and node.pages_free(req.page_kib) < req.pages_per_cell:
        return False
    return node.mem_free >= req.mib_per_cell


def fit_nodes(
    nodes: Sequence[NodeSnapshot], req: Request, *, memory: bool = True
) -> tuple[int, ...] | None:
    """Host node per guest cell (best fit: fewest free pCPUs that suffice), or None."""
    used: set[int] = set()
    chosen: list[int] = []
    for need in req.cell_pcpus:
        best: NodeSnapshot | None = None
        for node in nodes:
            if node.node in used or node.rt_free < need:
                continue
            if memory and not _memory_fits(node, req):
                continue
            if best is None or node.rt_free < best.rt_free:
                best = node
        if best is None:
            return None
        used.add(best.node)
        chosen.append(best.node)
    return tuple(chosen)


Filter = Callable[[HostSnapshot, Request, Context], bool]

FILTERS: tuple[tuple[str, Filter], ...] = (
    ("targeted", targeted),
    ("rtkvm_engine", rtkvm_engine),
    ("registered", registered),
    ("agent_alive", agent_alive),
    ("rt_ready", rt_ready),
    ("qualified", qualified),
    ("dataplane_ready", dataplane_ready),
    ("networks_wired", networks_wired),
    ("cpus_fit", cpus_fit),
    ("memory_fit", memory_fit),
    ("disk_fit", disk_fit),
)


def first_failure(host: HostSnapshot, req: Request, ctx: Context) -> str | None:
    for name, check in FILTERS:
        if not check(host, req, ctx):
            return name
    return None


def candidates(hosts: Sequence[HostSnapshot], req: Request, ctx: Context) -> list[HostSnapshot]:
    return [h for h in hosts if first_failure(h, req, ctx) is None]


# -- weighers ----------------------------------------------------------------------


def pack(host: HostSnapshot, req: Request) -> float:
    """Higher for hosts with fewer free RT pCPUs (fill them first)."""
    return -float(host.rt_free)


def spread(host: HostSnapshot, req: Request) -> float:
    """Higher for hosts with more free RT pCPUs (balance the load)."""
    return float(host.rt_free)


WEIGHERS: dict[str, Callable[[HostSnapshot, Request], float]] = {"pack": pack, "spread": spread}


def rank(hosts: Sequence[HostSnapshot], req: Request, weigher: str) -> list[HostSnapshot]:
    """Candidates best first: RT-ready hosts before waived ones, then by weight; ties
    broken by name so the order is reproducible."""
    weigh = WEIGHERS[weigher]
    return sorted(hosts, key=lambda h: (req.needs_rt and h.waived, -weigh(h, req), h.name))


# -- explanation -------------------------------------------------------------------


def _plural(n: int) -> str:
    return f"{n} host" if n == 1 else f"{n} hosts"


def describe(req: Request) -> str:
    disk = f", a {req.disk_gb} GiB disk" if req.disk_gb else ""
    if not req.needs_rt:
        return (
            "no RT pCPU: its vCPUs share the host's housekeeping CPUs"
            + _memory_phrase(req, "on a node")
            + disk
        )
    cells = " + ".join(str(n) for n in req.cell_pcpus)
    where = "one NUMA node" if len(req.cell_pcpus) == 1 else "distinct NUMA nodes"
    text = f"{cells} RT pCPUs on {where}"
    return text + _memory_phrase(req, "each") + disk


def _memory_phrase(req: Request, where: str) -> str:
    if req.pages_per_cell:
        return f" with {req.pages_per_cell} free {req.page_label} hugepages {where}"
    if req.mib_per_cell:
        return f" with {req.mib_per_cell} MiB of RAM free for 4k pages {where}"
    return ""


def explain(hosts: Sequence[HostSnapshot], req: Request, ctx: Context) -> str:
    """Why no host fits, one clause per class of host; says what would help."""
    counts: dict[str, int] = {}
    for host in hosts:
        failed = first_failure(host, req, ctx)
        if failed is not None:
            counts[failed] = counts.get(failed, 0) + 1
    return explain_counts(counts, len(hosts), req, ctx)


def _age(req: Request, ctx: Context) -> str:
    if req.qualified_since is None:
        return "at any time"
    age = ctx.now - req.qualified_since
    if age < 86400:
        return f"at most {age / 3600:g} hour(s) old"
    return f"at most {age / 86400:g} day(s) old"


def explain_counts(counts: dict[str, int], hosts: int, req: Request, ctx: Context) -> str:
    """:func:`explain` from the number of hosts failing each filter first (as SQL counts
    them) and the number of hosts in all."""
    nets = ", ".join(sorted(req.physnets))
    netnames = ", ".join(n for n, _ in req.networks)
    good = f"wired to {nets}" if req.networks else "up and RT-ready"
    need = max(req.cell_pcpus)
    node_phrase = "on one NUMA node" if len(req.cell_pcpus) == 1 else "on each of distinct nodes"
    clauses = {
        "targeted": f"not host {req.target_host} (the host asked for)",
        "rtkvm_engine": "built by Nova (agent in OpenStack mode: rtkvm never places there)",
        "registered": "enrolled but never registered by their agent",
        "agent_alive": f"down (no agent heartbeat for {ctx.agent_timeout_s:g} s)",
        "rt_ready": (
            "not RT-ready (host doctor verdict is not 'ready': run rtkvm host doctor, "
            "or for a lab host an admin may waive it with `rtkvm cloud host set NAME "
            "--rt-waiver REASON`, which gives up the latency guarantee)"
        ),
        "qualified": (
            "not qualified (the cloud requires a passed qualification for RT guests, "
            f"{_age(req, ctx)}, for the host's plan and wiring as they are: an admin runs "
            "`rtkvm cloud host qualify NAME`)"
        ),
        "dataplane_ready": "with the RT data plane not ready",
        "networks_wired": f"not wired to {nets}",
        "cpus_fit": f"{good}, none with {need} free RT pCPUs {node_phrase}",
        "memory_fit": f"{good} with the RT pCPUs, none{_memory_phrase(req, 'on such a node')}",
        "disk_fit": (
            f"{good} with the pCPUs and memory, but without {req.disk_gb} GiB free for its "
            "disk (or whose agent never reported its disk space)"
        ),
    }
    parts = [f"{_plural(counts[name])} {clauses[name]}" for name, _ in FILTERS if name in counts]
    on = f" on network(s) {netnames}" if req.networks else ""
    head = f"no host can take flavor {req.flavor!r} ({describe(req)}){on}"
    if not hosts:
        return f"{head}: no host is enrolled; enroll one with `rtkvm cloud host enroll`"
    return (
        f"{head}: of {_plural(hosts)}, "
        + "; ".join(parts)
        + ". Free capacity, wire a host, or use a smaller flavor"
    )
