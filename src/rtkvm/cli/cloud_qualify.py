"""`rtkvm cloud host qualify HOST`: an admin qualifies a host through the API, and reads the proof.

``qualify`` begins a qualification (the API records the host's free RT
pCPUs and wired networks), boots rtkvm's probe servers there with an RT
flavor (``server create`` with ``host``): enough to hold every free RT pCPU,
two on each network. The host's agent measures cyclictest in each and the
round trip between the two of each network, every measurement made for the
qualification; then the API judges and the verdict is printed. The probe
servers are deleted whatever happens, and a qualification that could not be
finished is abandoned. A failed verdict exits 1. ``qualifications HOST``
lists a host's. Must not judge anything: the API does (rtkvm.api.qualify).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from rtkvm.cli import cloud_wait
from rtkvm.cli.cloud_format import plain, plains, show_list, show_one, table
from rtkvm.cli.cloud_wait import ACTIVE_OR_ERROR, DELETED_OR_ERROR
from rtkvm.cpuset import CpuSet
from rtkvm.errors import CloudError, InputError, MeasureTimeoutError
from rtkvm.wire.measure import MeasurementOut
from rtkvm.wire.qualify import QualificationOut
from rtkvm.wire.user_client import CloudClient

POLL_SECONDS = 2.0
sleep: Callable[[float], None] = time.sleep
"""How waits pause between polls (tests replace it with a fake agent's step)."""
LIST_COLUMNS = ("id", "state", "started_at", "finished_at", "free_pcpus", "current", "fault")


@dataclass(frozen=True)
class Knobs:
    """How long and how hard each measurement runs."""

    loops: int
    interval_us: int
    buckets: int
    rtt_seconds: int
    rtt_mps: int
    timeout: float


@dataclass
class Run:
    """One qualification as the client drives it."""

    api: CloudClient
    host: str
    flavor: str
    knobs: Knobs
    q: QualificationOut
    servers: list[str] = field(default_factory=list)
    """Ids of the probe servers alive (deleted at the end)."""
    made: int = 0

    def say(self, text: str) -> None:
        click.echo(f"qualify {self.host}: {text}", err=True)


def plan_servers(free_pcpus: int, per_server: int, share: int, networks: int) -> int:
    """How many probe servers the first round boots: enough to hold every free RT pCPU
    (once), at least two when there is a network, no more than the free slots take."""
    if per_server < 1:
        raise InputError("the flavor claims no RT pCPU: qualify with an RT flavor")
    slots = free_pcpus * share // per_server
    if slots < 1:
        raise InputError(
            f"a probe server of this flavor claims {per_server} RT pCPUs; the host has "
            f"{free_pcpus} free ({share} guest(s) per pCPU): qualify with a smaller RT flavor"
        )
    want = max(math.ceil(free_pcpus / per_server), 2 if networks else 1)
    return min(want, slots)


def qualify(
    api: CloudClient, host: str, flavor: str, max_latency_us: float | None, knobs: Knobs
) -> QualificationOut:
    """Run a whole qualification; the API's verdict (the probe servers gone)."""
    rt = api.flavor(flavor)
    if rt.rt_cores < 1 or not rt.rt_vcpus:
        raise InputError(
            f"flavor {flavor} has no RT vCPU on a pCPU of its own: give an RT flavor "
            "(hw:cpu_policy=dedicated or mixed, hw:cpu_realtime=yes)"
        )
    share = api.host(host).pcpu_share
    run = Run(api, host, flavor, knobs, api.begin_qualification(host, max_latency_us))
    free = CpuSet.parse(run.q.free_pcpus)
    run.say(
        f"qualification {run.q.id}: free RT pCPUs {run.q.free_pcpus}, networks "
        f"{', '.join(run.q.networks) or 'none'}"
    )
    finished = False
    try:
        count = plan_servers(len(free), rt.rt_cores, share, len(run.q.networks))
        nets = list(run.q.networks)
        first = [nets[i // 2] if i // 2 < len(nets) else None for i in range(count)]
        if count % 2 and first[-1] is not None:
            first[-1] = None  # a network needs a pair
        covered = min(count // 2, len(nets))
        ids = _boot(run, first)
        _measure_all(run, [_cyclictest(run, i) for i in ids])
        _measure_all(run, _round_trips(run, ids, first))
        left = range(covered, len(nets)) if count >= 2 else range(0)  # room for pairs only
        for start in left:  # the networks the first round left
            _delete(run, ids)
            ids = _boot(run, [nets[start], nets[start]])
            _measure_all(run, _round_trips(run, ids, [nets[start]] * 2))
        verdict = api.end_qualification(run.q.id)
        finished = True
        return verdict
    finally:
        try:
            _delete(run, run.servers)
        finally:
            if not finished:
                _abandon(run)


def _boot(run: Run, networks: list[str | None]) -> list[str]:
    """Create the probe servers (one per entry, on that network or none), wait till active."""
    ids = []
    for net in networks:
        name = f"qualify-{run.q.id[:8]}-{run.made}"
        run.made += 1
        created = run.api.create_server(
            name, run.flavor, [net] if net is not None else [], host=run.host
        )
        run.servers.append(created.id)
        ids.append(created.id)
        run.say(f"probe server {name} ({created.id}) on {net or 'no network'}")
    for server_id in ids:
        _wait_server(run, server_id)
    return ids


def _wait_server(run: Run, server_id: str) -> None:
    item = cloud_wait.wait_server(run.api, server_id, ACTIVE_OR_ERROR, timeout=run.knobs.timeout)
    if item is None or item.state == "error":
        why = item.fault if item is not None else "it vanished"
        raise CloudError(f"probe server {server_id} failed on host {run.host}: {why}")


def _cyclictest(run: Run, server_id: str) -> MeasurementOut:
    k = run.knobs
    params = {"loops": k.loops, "interval_us": k.interval_us, "buckets": k.buckets}
    return run.api.create_measurement(
        {
            "kind": "cyclictest",
            "server": server_id,
            "cyclictest": params,
            "qualification": run.q.id,
        }
    )


def _round_trips(run: Run, ids: list[str], networks: list[str | None]) -> list[MeasurementOut]:
    out = []
    for i in range(0, len(ids) - 1, 2):
        net = networks[i]
        if net is None or networks[i + 1] != net:
            continue
        out.append(
            run.api.create_measurement(
                {
                    "kind": "rtt",
                    "server": ids[i],
                    "peer": ids[i + 1],
                    "network": net,
                    "rtt": {"seconds": run.knobs.rtt_seconds, "mps": run.knobs.rtt_mps},
                    "qualification": run.q.id,
                }
            )
        )
    return out


def _measure_all(run: Run, queued: list[MeasurementOut]) -> None:
    """Wait for the measurements; the verdict is the API's, an error is recorded there."""
    deadline = time.monotonic() + run.knobs.timeout * max(1, len(queued))
    for m in queued:
        current = m
        while current.state not in ("done", "error"):
            if time.monotonic() > deadline:
                raise MeasureTimeoutError(
                    f"measurement {m.id} is still {current.state} on host {run.host}: "
                    "see its agent's log"
                )
            sleep(POLL_SECONDS)
            current = run.api.measurement(m.id)
        what = f"{m.kind} on {m.server_name}" + (f" <-> {m.peer_name}" if m.peer_name else "")
        run.say(f"{what}: {current.state}" + (f" ({current.fault})" if current.fault else ""))


def _delete(run: Run, ids: list[str]) -> None:
    for server_id in ids:
        try:
            run.api.delete_server(server_id)
        except CloudError as exc:
            run.say(f"probe server {server_id} could not be deleted: {exc}")
    for server_id in ids:
        cloud_wait.wait_server(run.api, server_id, DELETED_OR_ERROR, timeout=run.knobs.timeout)
    run.servers = [s for s in run.servers if s not in ids]


def _abandon(run: Run) -> None:
    try:
        run.api.end_qualification(run.q.id, abandon=True)
        run.say(f"qualification {run.q.id} abandoned")
    except CloudError as exc:
        run.say(f"qualification {run.q.id} could not be abandoned: {exc}")


def show_verdict(q: QualificationOut, fmt: str, save: Path | None) -> None:
    """The verdict with its per-pCPU and per-network figures; loud about emulation."""
    item = plain(q)
    if save is not None:
        save.write_text(q.model_dump_json(indent=2) + "\n")
    if fmt != "table":
        show_one(item, fmt)
        return
    show_one(item, fmt, ["id", "host", "state", "free_pcpus", "held_pcpus", "current", "fault"])
    proof = q.proof
    if proof is None:
        return
    rows = [[str(p.pcpu), _us(p.worst_us), str(p.samples), p.server or "-"] for p in proof.pcpus]
    click.echo(table(["pcpu", "worst_us", "samples", "probe server"], rows))
    if proof.networks:
        nets = [
            [n.network, str(n.samples), _us(n.p99_us), _us(n.p99_99_us), _us(n.max_us)]
            for n in proof.networks
        ]
        click.echo(table(["network", "samples", "p99_us", "p99.99_us", "max_us"], nets))
    if proof.emulated:
        click.echo(
            "WARNING: measured under emulation (TCG, no KVM): these figures say nothing of "
            "real time",
            err=True,
        )
    if q.rt_waiver:
        click.echo(f"WARNING: host is waived ({q.rt_waiver}): its latency is not assured", err=True)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def show_history(items: list[QualificationOut], fmt: str) -> None:
    show_list(plains(items), LIST_COLUMNS, fmt)
