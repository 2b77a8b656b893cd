"""The dashboard's pages: hosts with their partition maps, servers, networks, measurements.

Server-rendered HTML under ``/ui`` on the API's own port. Logging in sends an
API token once (as a bearer token, from a small script) and the API keeps it
in an HttpOnly, SameSite=Strict cookie scoped to ``/ui``; every page then
checks it exactly as the API checks a token (expired, revoked and throttled
alike). Admins see everything; members see their project's servers and
measurements and the networks they may use, never hosts. The pages are read
only: nothing here writes, and the cookie authorizes nothing outside ``/ui``.
The data comes from the same views and visibility rules as the API's JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from rtkvm.api.dashboard.html import badge, esc, link, login_page, page, table
from rtkvm.api.dashboard.partition import partition_map, render_map
from rtkvm.api.deps import Principal, ServicesDep, get_caller, principal_of
from rtkvm.api.errors import ApiError
from rtkvm.api.proofs import Proof, last_cyclictests, worst_of
from rtkvm.api.views import host_out, hosts_out, instances_out, network_out, visible_networks
from rtkvm.api.views_guests import verdict_out
from rtkvm.api.views_measure import measurement_out
from rtkvm.db.models import (
    CpuClaim,
    GuestVerdict,
    Host,
    HostDetail,
    Instance,
    Measurement,
    Network,
    UnknownResource,
)
from rtkvm.errors import RtkvmError
from rtkvm.host.checks import shipped_checks
from rtkvm.host.partition import PartitionPlan
from rtkvm.measure import report as measure_report
from rtkvm.measure.report import measurement_warnings
from rtkvm.wire.guest import InstanceOut, NetworkPort
from rtkvm.wire.measure import MeasurementOut
from rtkvm.wire.schemas import HostOut
from rtkvm.wire.topology import TopologyDoc
from rtkvm.wire.uuids import is_uuid

router = APIRouter(prefix="/ui", tags=["dashboard"], include_in_schema=False)

COOKIE = "rtkvm_session"
COOKIE_AGE_S = 8 * 3600
LIST_MAX = 500
"""The most servers or measurements one list page shows (first by name, or newest); the
page says when there are more. Hosts and networks are all shown."""
WHEN = "%Y-%m-%d %H:%M:%S UTC"


class _LoginRequiredError(RtkvmError):
    """No valid session: the page answers with the login form."""

    def __init__(self, why: str = "") -> None:
        self.why = why


def viewer(request: Request, services: ServicesDep) -> Principal:
    token = request.cookies.get(COOKIE)
    if not token:
        raise _LoginRequiredError()
    try:
        who = principal_of(request, services, token)
    except ApiError as exc:
        raise _LoginRequiredError(exc.message) from None
    if who.kind != "user":
        raise _LoginRequiredError("an agent token cannot log in: use a user's token")
    return who


Viewer = Annotated[Principal, Depends(viewer)]


def install(app: FastAPI) -> None:
    """Answer _LoginRequiredError with the login page (401), _PageError with its page."""

    @app.exception_handler(_LoginRequiredError)
    async def _login(_request: Request, exc: _LoginRequiredError) -> Response:
        return HTMLResponse(login_page(exc.why), status_code=401)

    @app.exception_handler(_PageError)
    async def _page_error(_request: Request, exc: _PageError) -> Response:
        body = f'<p class="warn" role="alert">{esc(exc.message)}</p><p>{link("/ui", "back")}</p>'
        return HTMLResponse(page(f"{exc.status}", body, who=""), status_code=exc.status)


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime(WHEN, time.gmtime(ts))


def _who(p: Principal) -> str:
    return f"{p.user_name} ({p.role}, project {p.project_name})"


def _html(title: str, body: str, p: Principal, active: str) -> HTMLResponse:
    return HTMLResponse(page(title, body, who=_who(p), active=active))


class _PageError(RtkvmError):
    """A page that cannot be shown: an HTML answer with the status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _admins_only(p: Principal) -> None:
    if not p.is_admin:
        raise _PageError(403, "hosts are shown to admins only")


# -- session ------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def home(p: Viewer) -> Response:
    return RedirectResponse("/ui/hosts" if p.is_admin else "/ui/servers", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login() -> HTMLResponse:
    return HTMLResponse(login_page())


@router.post("/session")
def open_session(
    request: Request,
    services: ServicesDep,
    caller: Annotated[Principal, Depends(get_caller)],
) -> JSONResponse:
    """Check the bearer token and keep it in the dashboard's cookie."""
    if caller.kind != "user":
        raise ApiError(403, "an agent token cannot log in to the dashboard: use a user's token")
    token = request.headers.get("authorization", "").split(" ", 1)[-1].strip()
    answer = JSONResponse({"home": "/ui/hosts" if caller.is_admin else "/ui/servers"})
    answer.set_cookie(
        COOKIE, token, max_age=COOKIE_AGE_S, path="/ui", httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return answer


@router.get("/logout")
def logout() -> Response:
    answer = RedirectResponse("/ui/login", status_code=303)
    answer.delete_cookie(COOKIE, path="/ui")
    return answer


# -- hosts --------------------------------------------------------------------------


@router.get("/hosts", response_class=HTMLResponse)
def hosts_page(services: ServicesDep, p: Viewer) -> HTMLResponse:
    _admins_only(p)
    now, timeout = services.clock(), services.settings.agent_timeout_s
    with services.db.read() as s:
        hosts = list(s.scalars(select(Host).order_by(Host.name)))
        outs = hosts_out(s, hosts, now, timeout)
        proofs = _worst_per_host(last_cyclictests(s))
    rows = []
    for h in outs:
        total = sum(n.rt_total for n in h.nodes)
        used = sum(n.rt_used for n in h.nodes)
        proof = proofs.get(h.name)
        rows.append([
            link(f"/ui/hosts/{h.name}", h.name), badge(h.status), esc(h.engine),
            badge(h.doctor_verdict) + ("<br>" + esc(", ".join(h.doctor_failed))
                                       if h.doctor_failed else "")
            + (f"<br>{badge('drift')} {len(h.tuning_drift)} setting(s)"
               if h.tuning_drift else ""),
            badge("waived") + " " + esc(h.rt_waiver) if h.rt_waiver else "",
            esc(h.dataplane_state), esc(", ".join(h.physnets)), f"{used} / {total}",
            f"{h.disk_gb_used} / "
            + ("not reported" if h.disk_gb_total is None else str(h.disk_gb_total)),
            _proof_cell(proof), _qualified_cell(h),
        ])  # fmt: skip
    body = table(
        ["host", "status", "engine", "doctor", "RT waiver", "data plane", "wired to",
         "RT pCPUs used", "disk GiB used", "last proof", "qualification"], rows,
        empty="no host is enrolled",
    )  # fmt: skip
    return _html("Hosts", body, p, "hosts")


def _findings(failed: Sequence[str]) -> str:
    """The failed checks with their title and fix, from the doctor's own checks (data)."""
    checks = shipped_checks()
    rows = []
    for check_id in failed:
        try:
            check = checks.get(check_id)
        except KeyError:  # a check this version does not ship: the agent's is newer
            rows.append([esc(check_id), "", "run <code>rtkvm host doctor</code> on the host"])
            continue
        rows.append([esc(check_id), esc(check.title), esc(" ".join(check.fix.split()))])
    return table(["check", "what", "fix"], rows)


def _worst_per_host(proofs: Sequence[Proof]) -> dict[str, Proof]:
    out: dict[str, Proof] = {}
    for pr in proofs:
        if pr.host not in out or pr.worst_us > out[pr.host].worst_us:
            out[pr.host] = pr
    return out


def _proof_cell(proof: Proof | None) -> str:
    if proof is None:
        return badge("unmeasured")
    emulated = " " + badge("emulated") if proof.emulated else ""
    return (
        f"max {proof.worst_us:g} µs{emulated}<br><small>{esc(proof.name)}, "
        f"{_when(proof.finished_at)}</small>"
    )


def _qualified_cell(host: HostOut) -> str:
    """The host's qualification: qualified (with its worst and date), stale (passed for
    another plan or wiring), the last one's state, or never."""
    q = host.qualification
    if q is None:
        return badge("never")
    worst = "" if q.worst_us is None else f" worst {q.worst_us:g} µs"
    emulated = " " + badge("emulated") if q.emulated else ""
    state = "qualified" if host.qualified else "stale" if q.state == "passed" else q.state
    return f"{badge(state)}{esc(worst)}{emulated}<br><small>{_when(q.finished_at)}</small>"


@router.get("/hosts/{name}", response_class=HTMLResponse)
def host_page(name: str, services: ServicesDep, p: Viewer) -> HTMLResponse:
    _admins_only(p)
    now, timeout = services.clock(), services.settings.agent_timeout_s
    with services.db.read() as s:
        host = s.scalar(select(Host).where(Host.name == name))
        if host is None:
            raise _PageError(404, f"host {name!r} not found")
        out = host_out(s, host, now, timeout)
        detail = s.get(HostDetail, host.id)
        claims = s.execute(
            select(CpuClaim.pcpu, Instance.name)
            .join(Instance, Instance.id == CpuClaim.instance_id)
            .where(CpuClaim.host_id == host.id)
        ).all()
        unknown = list(s.scalars(select(UnknownResource).where(UnknownResource.host_id == host.id)))
        verdicts = [
            verdict_out(v, host, now, timeout)
            for v in s.scalars(select(GuestVerdict).where(GuestVerdict.host_id == host.id))
        ]
    parts = [
        "<p>",
        f"status {badge(out.status)} · engine {esc(out.engine)} · doctor "
        f"{badge(out.doctor_verdict)} · data plane {esc(out.dataplane_state)} · wired to "
        f"{esc(', '.join(out.physnets) or 'nothing')} · heartbeat {_when(out.heartbeat_at)}",
        "</p>",
    ]
    if out.rt_waiver:
        parts.append(
            f'<p class="warn" role="alert">RT WAIVER: {esc(out.rt_waiver)}: guests here have no '
            "latency guarantee</p>"
        )
    if out.doctor_failed:
        parts.append("<h2>Doctor findings</h2>")
        parts.append(_findings(out.doctor_failed))
    if out.tuning_drift:
        parts.append(
            '<h2>Tuning drift</h2><p class="warn">settings of rtkvm\'s last tuning that no '
            "longer hold (<code>rtkvm host verify</code>; re-apply with <code>rtkvm host tune "
            "--apply</code>)</p><ul>"
            + "".join(f"<li>{esc(d)}</li>" for d in out.tuning_drift)
            + "</ul>"
        )
    parts.append("<h2>CPU partition</h2>")
    if detail is None or host.registered_at is None:
        parts.append("<p><em>not registered by its agent yet</em></p>")
    else:
        plan = PartitionPlan.model_validate_json(detail.plan)
        topology = TopologyDoc.model_validate_json(detail.topology)
        parts.append(render_map(partition_map(topology, plan, claims)))
        if out.pcpu_share > 1:
            parts.append(f"<p>up to {out.pcpu_share} guests share each RT pCPU (lab host)</p>")
    if out.dataplane is not None:
        d = out.dataplane
        parts.append(
            f"<h2>Data plane</h2><p>{esc(d.backend)} ({esc(d.vif_type)}), PMDs on CPUs "
            f"{esc(d.pmd_cpus)} at {esc(d.pmd_sched)}; networks {esc(', '.join(d.networks))}</p>"
        )
    if verdicts:
        parts.append("<h2>Guests Nova built</h2>")
        parts.append(table(
            ["server", "flavor", "RT", "summary", "checked"],
            [[esc(v.name), esc(v.flavor), badge(v.verdict), esc(v.summary),
              _when(v.checked_at)] for v in verdicts],
        ))  # fmt: skip
    if unknown:
        parts.append("<h2>Domains and ports the cloud does not know</h2>")
        parts.append(table(
            ["kind", "name", "verdict", "hint"],
            [[esc(u.kind), esc(u.name), esc(u.verdict), esc(u.hint)] for u in unknown],
        ))  # fmt: skip
    return _html(f"Host {name}", "".join(parts), p, "hosts")


# -- servers ------------------------------------------------------------------------


def _servers(s: Session, p: Principal) -> tuple[list[Instance], int]:
    """The first LIST_MAX servers the viewer sees, by name, and how many there are."""
    where = [Instance.state != "deleted"]
    if not p.is_admin:
        where.append(Instance.project_id == p.project_id)
    total = s.scalar(select(func.count()).select_from(Instance).where(*where)) or 0
    query = select(Instance).where(*where).order_by(Instance.name, Instance.id).limit(LIST_MAX)
    return list(s.scalars(query)), total


def _more(shown: int, total: int, what: str) -> str:
    if total <= shown:
        return ""
    return f'<p class="warn">showing the first {shown} of {total} {what}</p>'


def _nic(port: NetworkPort) -> str:
    return f"{port.name} {port.address}" if port.address else port.name


@router.get("/servers", response_class=HTMLResponse)
def servers_page(services: ServicesDep, p: Viewer) -> HTMLResponse:
    with services.db.read() as s:
        insts, total = _servers(s, p)
        outs = instances_out(s, insts)
        proofs = {pr.instance_id: pr for pr in last_cyclictests(s, [i.id for i in insts])}
    rows = [
        [
            link(f"/ui/servers/{o.id}", o.name), esc(o.project), esc(o.flavor), _power(o),
            esc(o.host or "-"),
            badge(o.rt_state) + ("<br>" + esc("; ".join(o.rt_reasons)) if o.rt_reasons else ""),
            esc(", ".join(f"{v}→{c}" for v, c in o.vcpu_pins)),
            esc(", ".join(_nic(n) for n in o.networks)), _proof_cell(proofs.get(o.id)),
        ]
        for o in outs
    ]  # fmt: skip
    body = table(
        ["server", "project", "flavor", "state", "host", "RT", "vCPU→pCPU", "networks",
         "last proof"], rows, empty="no servers",
    )  # fmt: skip
    return _html("Servers", _more(len(insts), total, "servers") + body, p, "servers")


@router.get("/servers/{server_id}", response_class=HTMLResponse)
def server_page(server_id: str, services: ServicesDep, p: Viewer) -> HTMLResponse:
    with services.db.read() as s:
        inst = s.get(Instance, server_id.lower()) if is_uuid(server_id) else None
        if inst is None or (not p.is_admin and inst.project_id != p.project_id):
            raise _PageError(404, f"server {server_id!r} not found")
        o = instances_out(s, [inst])[0]
        ms = [
            measurement_out(s, m)
            for m in s.scalars(
                select(Measurement)
                .where(or_(Measurement.instance_id == inst.id,
                           Measurement.peer_instance_id == inst.id))
                .order_by(Measurement.created_at.desc())
                .limit(50)
            )
        ]  # fmt: skip
    parts = [
        f"<p>{_power(o)} on {esc(o.host or 'no host')} · flavor {esc(o.flavor)} · "
        f"project {esc(o.project)} · {o.rt_cores} RT pCPUs</p>",
        f"<h2>RT state: {badge(o.rt_state)}</h2>",
    ]
    if o.rt_reasons:
        parts.append("<ul>" + "".join(f"<li>{esc(r)}</li>" for r in o.rt_reasons) + "</ul>")
    if o.rt_waived:
        waived = ", ".join(f"{rule} ({quirk})" for rule, quirk in sorted(o.rt_waived.items()))
        parts.append(f"<p>waived by the host: {esc(waived)}</p>")
    parts.append(f"<p>checked {_when(o.rt_checked_at)}</p>")
    if o.fault:
        parts.append(f'<p class="warn">{esc(o.fault)}</p>')
    parts.append("<h2>Placement</h2>")
    parts.append(table(
        ["vCPU", "pCPU"], [[str(v), str(c)] for v, c in o.vcpu_pins], empty="not placed"
    ))  # fmt: skip
    parts.append(f"<p>emulator threads on CPUs {esc(o.emulator_cpus or '-')}; NUMA nodes "
                 f"{esc(', '.join(map(str, o.cell_nodes)) or '-')}</p>")  # fmt: skip
    parts.append("<h2>Measurements</h2>")
    parts.append(_measurement_table(ms))
    return _html(f"Server {o.name}", "".join(parts), p, "servers")


# -- networks -----------------------------------------------------------------------


@router.get("/networks", response_class=HTMLResponse)
def networks_page(services: ServicesDep, p: Viewer) -> HTMLResponse:
    with services.db.read() as s:
        nets = [
            network_out(s, n)
            for n in s.scalars(select(Network).where(visible_networks(p)).order_by(Network.name))
        ]
        hosts = list(s.scalars(select(Host).order_by(Host.name))) if p.is_admin else []
    rows = []
    for n in nets:
        wired = [h for h in hosts if n.physnet in json.loads(h.physnets)]
        carrying = [h.name for h in wired if h.dataplane_state == "ready"]
        rows.append([
            esc(n.name), esc(n.physnet), esc(n.vlan if n.vlan is not None else "flat"),
            "shared" if n.shared else esc(n.project or ""),
            esc(", ".join(h.name for h in wired)) if p.is_admin else "-",
            esc(", ".join(carrying)) if p.is_admin else "-",
        ])  # fmt: skip
    body = table(
        ["network", "physical network", "VLAN", "owner", "hosts wired", "hosts whose switch runs"],
        rows, empty="no networks",
    )  # fmt: skip
    return _html("Networks", body, p, "networks")


# -- measurements -------------------------------------------------------------------


def _measurement_table(ms: Sequence[MeasurementOut]) -> str:
    rows = []
    for m in ms:
        d = m.model_dump(mode="json")
        result = d.get("result") or {}
        worst = ""
        cyclictest_worst = worst_of(result)[0] if d["kind"] == "cyclictest" else None
        if cyclictest_worst is not None:
            worst = f"max {cyclictest_worst:g} µs"
        elif d["kind"] == "rtt" and isinstance(result.get("max_us"), (int, float)):
            worst = f"max {result['max_us']:g} µs"
        warns = measurement_warnings(d)
        rows.append([
            link(f"/ui/measurements/{d['id']}", d["id"][:8]), esc(d["kind"]), badge(d["state"]),
            esc(d["server_name"]) + (" → " + esc(d["peer_name"]) if d["peer_name"] else ""),
            esc(d["host"] or "-") + (" → " + esc(d["peer_host"]) if d["peer_host"] else ""),
            esc(worst), _when(d["finished_at"]),
            esc("; ".join(warns)),
        ])  # fmt: skip
    return table(
        ["id", "kind", "state", "servers", "host", "worst", "finished", "warnings"],
        rows, empty="no measurements",
    )  # fmt: skip


def _visible_measurements(
    s: Session, p: Principal, ids: Sequence[str] | None = None
) -> list[MeasurementOut]:
    """The newest LIST_MAX measurements the viewer sees (of ``ids`` when given)."""
    query = select(Measurement).where(*_measurement_scope(p, ids))
    query = query.order_by(Measurement.created_at.desc()).limit(LIST_MAX)
    return [measurement_out(s, m) for m in s.scalars(query)]


def _measurement_scope(p: Principal, ids: Sequence[str] | None = None) -> list[Any]:
    where: list[Any] = []
    if not p.is_admin:
        where.append(Measurement.project_id == p.project_id)
    if ids is not None:
        where.append(Measurement.id.in_([i.lower() for i in ids if is_uuid(i)]))
    return where


@router.get("/measurements", response_class=HTMLResponse)
def measurements_page(services: ServicesDep, p: Viewer) -> HTMLResponse:
    with services.db.read() as s:
        ms = _visible_measurements(s, p)
        total = s.scalar(
            select(func.count()).select_from(Measurement).where(*_measurement_scope(p))
        )
    done = [m.id for m in ms if m.state == "done"]
    download = ""
    if done:
        query = "&".join(f"id={i}" for i in done[:50])
        download = f'<p><a href="/ui/report.html?{query}" id="report">report of the last ' \
                   f"{min(len(done), 50)} finished measurements (HTML)</a></p>"  # fmt: skip
    more = _more(len(ms), total or 0, "measurements (the newest)")
    return _html("Measurements", more + download + _measurement_table(ms), p, "measurements")


@router.get("/measurements/{measurement_id}", response_class=HTMLResponse)
def measurement_page(measurement_id: str, services: ServicesDep, p: Viewer) -> HTMLResponse:
    with services.db.read() as s:
        found = _visible_measurements(s, p, [measurement_id])
    if not found:
        raise _PageError(404, f"measurement {measurement_id!r} not found")
    m = found[0]
    built = _report(found, f"measurement {m.id}")
    summary = measure_report.summarise(built)
    parts = [_measurement_table(found)]
    parts += [f'<p class="warn">{esc(n)}</p>' for n in summary["notes"]]
    if summary["warnings"]:
        parts.append('<div class="warn" role="alert"><ul>' + "".join(
            f"<li>{esc(w)}</li>" for w in summary["warnings"]) + "</ul></div>")  # fmt: skip
    figures = [x["figures"] for x in [*summary["cyclictest"], *summary["rtt"]] if x["figures"]]
    for f in figures:
        parts.append("<h2>Percentiles (µs)</h2>" + table(
            ["min", *f["percentiles_us"].keys(), "max"],
            [[esc(f["min_us"]), *(esc(v if v is not None else "n/a")
                                  for v in f["percentiles_us"].values()), esc(f["max_us"])]],
        ))  # fmt: skip
    for name, svg in measure_report.render_pictures(built).items():
        parts.append(f'<figure class="histogram" id="{esc(name)}">{svg}</figure>')
    parts.append(f'<p><a href="/ui/report.html?id={esc(m.id)}">download as HTML</a></p>')
    return _html(f"Measurement {m.id[:8]}", "".join(parts), p, "measurements")


def _report(ms: Sequence[MeasurementOut], title: str) -> measure_report.Report:
    """The report of these measurements; one whose stored result cannot be read is named in
    the report's notes instead of failing the page."""
    entries: list[measure_report.Entry] = []
    notes: list[str] = []
    for m in ms:
        try:
            entries += measure_report.load(m.model_dump(mode="json"), m.id)
        except RtkvmError as exc:
            notes.append(f"measurement {m.id}: its result cannot be shown: {exc}")
    return measure_report.Report(title, tuple(entries), notes=tuple(notes))


@router.get("/report.html")
def report_download(
    services: ServicesDep, p: Viewer, id: Annotated[list[str], Query(max_length=36)]
) -> Response:
    """A standalone HTML report of these measurements (what ``rtkvm report build`` writes)."""
    if len(id) > LIST_MAX:
        raise _PageError(422, f"at most {LIST_MAX} measurements per report")
    with services.db.read() as s:
        found = _visible_measurements(s, p, id)
    if not found:
        raise _PageError(404, "none of these measurements is yours or exists")
    html = measure_report.render_html(_report(found, "rtkvm latency report"))
    return Response(
        html, media_type="text/html; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="rtkvm-report.html"'},
    )  # fmt: skip


def _power(o: InstanceOut) -> str:
    """The state, with the power task under way (stopping, rebooting...)."""
    return badge(o.state) + (f" {badge(o.task)}" if o.task else "")
