"""The node agent's OpenStack mode: this host's traits kept current, Nova's RT guests treated.

Each round (every ``interval`` seconds, and at once when libvirt reports a
domain started, resumed or migrated in) :class:`OpenStackNodeAgent`:

1. inspects the host as rtkvm's own agent does (topology, the doctor against
   the partition plan, the wired physical networks; :func:`rtkvm.agent.inventory.collect`),
   reads the admin's RT waiver (a file, so that it can be set and cleared while
   the agent runs: ``rtkvm openstack waiver``) and publishes the node's traits
   on its compute node provider in Placement (:mod:`rtkvm.openstack.publish`:
   generation-aware, Nova's traits kept, nothing written when nothing changed);
   a verdict that changes or a wire that goes down takes its trait away within
   one round. With rtkvm's switch on the host, a network trait names only a physical
   network Neutron can bind a port to here (the switch has its bridge and
   Neutron's live OVS agent maps it there, :mod:`rtkvm.openstack.wiringcheck`):
   a wire Neutron cannot use would have Nova place servers whose ports then
   fail to bind. What is withheld, and why, is logged and kept in guests.json;
2. for every running domain Nova built, applies the flavor's RT policy and
   priority to the RT vCPU threads, verifies and audits it
   (:func:`rtkvm.openstack.enforce.enforce`), and when the verdict changed,
   writes it on the Nova server: metadata ``rtkvm_rt`` (the one-line summary)
   and a tag ``rtkvm-rt-verified`` or ``rtkvm-rt-degraded``;
3. writes every verdict to ``guests.json`` in its state directory, which
   ``rtkvm openstack guests`` shows;
4. with rtkvm's switch on the host (Neutron's agent and os-vif plug Nova's
   ports into it, not rtkvm), puts its threads right again
   (:meth:`SwitchKeeper.sweep`: PMDs at their RT priority passing nothing on
   to the threads they create, every other thread on housekeeping CPUs);
5. with an rtkvm API to report to (its :class:`~rtkvm.agent.port.RtLedger`,
   the host's agent token), registers the host there as engine ``openstack``
   (topology, plan, doctor verdict, wiring: again whenever they change,
   a heartbeat otherwise) and reports the round's verdicts as the host's
   set, with the node's waiver. rtkvm's scheduler never places a guest on
   such a host; its API keeps the RT state the issue asks for in both modes.

A round that fails (Placement or Nova unreachable) is logged and the next one
tries again; the agent never exits on a transient error. This module must not
create, delete or migrate servers: Nova does.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rtkvm.agent.inventory import collect
from rtkvm.agent.port import RtLedger
from rtkvm.dataplane.sched import Sweep
from rtkvm.domain.audit import AuditHost
from rtkvm.errors import NotRegisteredError, RtkvmError
from rtkvm.findings import Status
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS
from rtkvm.net.lldp import read_neighbors
from rtkvm.net.model import HostWiring
from rtkvm.openstack.enforce import GuestVerdict, enforce
from rtkvm.openstack.novaguest import parse_nova_guest
from rtkvm.openstack.placement import PlacementClient
from rtkvm.openstack.publish import publish
from rtkvm.openstack.session import CloudSession
from rtkvm.openstack.traits import node_traits
from rtkvm.openstack.wiringcheck import WiringSources, bindable, check_wiring
from rtkvm.tune.system import ProcessControl
from rtkvm.wire.node import OPENSTACK_ENGINE, Heartbeat, HostReport
from rtkvm.wire.rtguest import GuestVerdictIn, GuestVerdictReport

log = logging.getLogger("rtkvm.openstack.agent")

METADATA_KEY = "rtkvm_rt"
TAGS = {"verified": "rtkvm-rt-verified", "degraded": "rtkvm-rt-degraded"}
TAG_MICROVERSION = "2.26"
QEMU_PID_DIR = "/var/run/libvirt/qemu"


class SwitchKeeper(Protocol):
    """rtkvm's switch on this host (rtkvm.dataplane.backend.OvsDpdkBackend)."""

    def sweep(self) -> Sweep: ...


@dataclass
class Round:
    """What one round did."""

    traits: frozenset[str] = frozenset()
    trait_writes: int = 0
    report: HostReport | None = None
    """What the host is this round (None: it could not be inspected)."""
    verdicts: list[GuestVerdict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    switch: list[str] = field(default_factory=list)
    """What the switch's sweep changed this round."""
    withheld: list[str] = field(default_factory=list)
    """Wired physical networks given no trait: Neutron cannot bind a port to them here."""
    wiring: list[str] = field(default_factory=list)
    """The wiring check's failed findings (the switch or Neutron disagreeing with the wiring)."""


class OpenStackNodeAgent:
    def __init__(
        self,
        session: CloudSession,
        plan: PartitionPlan,
        *,
        fs: HostFS,
        control: ProcessControl,
        quirks: set[str],
        state_dir: Path,
        wiring: HostWiring | None = None,
        provider: str | None = None,
        uri: str = "qemu:///system",
        ledger: RtLedger | None = None,
        switch: SwitchKeeper | None = None,
        wiring_sources: WiringSources | None = None,
        neutron_host: str | None = None,
    ) -> None:
        self.session = session
        self.plan = plan
        self.fs = fs
        self.control = control
        self.quirks = quirks
        self.state_dir = state_dir
        self.wiring = wiring
        self.provider = provider or socket.gethostname()
        self.uri = uri
        self.audit_host = AuditHost.from_plan(plan, read_topology(fs))
        self.reported: dict[str, str] = {}
        """server id -> the summary last written on the server."""
        self.wake = threading.Event()
        self.ledger = ledger
        self.switch = switch
        self.wiring_sources = wiring_sources
        self.neutron_host = neutron_host or self.provider
        """The host's name in Neutron (its OVS agent's ``host``): the provider's unless the
        two differ (a compute node named by its FQDN, Neutron's ``host`` short)."""
        self.bindable: list[str] | None = None
        """What Neutron could bind at the last round that could ask it (None: never asked)."""
        self.withheld: list[str] = []
        """The wires last logged as withheld."""
        self.registered: HostReport | None = None
        """What rtkvm's API was last told the host is (None: not registered yet)."""

    @property
    def waiver_file(self) -> Path:
        return self.state_dir / "rt-waiver"

    @property
    def guests_file(self) -> Path:
        return self.state_dir / "guests.json"

    def waiver(self) -> str | None:
        try:
            text = self.waiver_file.read_text("utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    # -- one round ----------------------------------------------------------------------------

    def round(self) -> Round:
        done = Round()
        try:
            done.report = self.inspect()
            self._publish(done, done.report)
        except RtkvmError as exc:
            done.errors.append(f"traits: {exc}")
        if self.ledger is not None and done.report is not None:
            try:
                self._tell_rtkvm_host(self.ledger, done.report)
            except RtkvmError as exc:
                done.errors.append(f"rtkvm API (host): {exc}")
        if self.switch is not None:
            try:
                self._sweep(self.switch, done)
            except RtkvmError as exc:
                done.errors.append(f"switch: {exc}")
        try:
            self._guests(done)
        except RtkvmError as exc:
            done.errors.append(f"guests: {exc}")
        else:
            if self.ledger is not None and self.registered is not None:
                try:
                    self._tell_rtkvm_guests(self.ledger, done)
                except RtkvmError as exc:
                    done.errors.append(f"rtkvm API (guests): {exc}")
        self._save(done)
        return done

    def _sweep(self, switch: SwitchKeeper, done: Round) -> None:
        swept = switch.sweep()
        done.switch = [f"PMD {t.comm} (tid {t.tid}) set" for t in swept.changed] + [
            f"{t.comm} (tid {t.tid}) moved from CPUs {t.cpus_allowed.format()} to housekeeping"
            for t in swept.rehomed
        ]
        for line in done.switch:
            log.info("switch: %s", line)

    def inspect(self) -> HostReport:
        """What the host is now (the doctor against the plan, the live wires): Nova's host."""
        report = collect(self.fs, self.plan, wiring=self.wiring, neighbors=read_neighbors)
        return report.model_copy(update={"engine": OPENSTACK_ENGINE})

    def wanted_traits(self, done: Round, report: HostReport) -> frozenset[str]:
        """The traits the host should carry now: readiness, and a trait per usable wire."""
        waiver = self.waiver()
        if waiver is not None and report.doctor.verdict != "ready":
            log.warning("RT WAIVER on %s: RT guarantees are OFF (%s)", self.provider, waiver)
        physnets = report.physnets
        if self.wiring_sources is not None:
            physnets = self._bindable(done, report.physnets, self.wiring_sources)
        return node_traits(report.doctor.verdict, waiver, physnets)

    def _bindable(self, done: Round, physnets: list[str], sources: WiringSources) -> list[str]:
        """The live wires Neutron can bind here; when Neutron cannot be asked, the last
        answer holds (readiness still changes: the round goes on)."""
        switch = sources.switch()
        try:
            agent = sources.agent(self.neutron_host) if switch is not None else None
        except RtkvmError as exc:
            done.errors.append(f"neutron: {exc}")
            known = self.bindable if self.bindable is not None else physnets
            usable = [p for p in physnets if p in known]
        else:
            usable = bindable(physnets, switch, agent)
            self.bindable = usable
            wiring = self.wiring or HostWiring()
            failed = [f for f in check_wiring(wiring, switch, agent, self.neutron_host)
                      if f.status is not Status.PASS]  # fmt: skip
            done.wiring = [f"{f.message} (fix: {f.fix})" for f in failed]
        done.withheld = sorted(set(physnets) - set(usable))
        if done.withheld != self.withheld:  # said when it changes, not every round
            if done.withheld:
                log.warning(
                    "no network trait for %s: Neutron cannot bind ports to it here; %s",
                    ", ".join(done.withheld), "; ".join(done.wiring) or "Neutron unreachable",
                )  # fmt: skip
            else:
                log.info("every live wire has its network trait again")
            self.withheld = done.withheld
        return usable

    def _publish(self, done: Round, report: HostReport) -> None:
        """The host's traits on its compute node provider in Placement."""
        wanted = self.wanted_traits(done, report)
        client = PlacementClient(self.session.endpoint("placement"), self.session.token())
        try:
            published = publish(client, self.provider, wanted)
        finally:
            client.close()
        done.traits, done.trait_writes = wanted, published.attempts
        if published.added or published.removed:
            log.info(
                "traits of %s: added %s, removed %s",
                self.provider,
                sorted(published.added) or "nothing",
                sorted(published.removed) or "nothing",
            )

    def _guests(self, done: Round) -> None:
        from rtkvm.guest.lifecycle import connect

        with connect(self.uri) as conn:
            domains = [(d.name(), d.XMLDesc(0)) for d in conn.listAllDomains() if d.isActive()]
        for name, xml in domains:
            guest = parse_nova_guest(xml)
            if guest is None:
                continue
            pid = self._qemu_pid(name)
            if pid is None:
                continue
            verdict = enforce(
                guest, xml, pid, fs=self.fs, control=self.control, host=self.audit_host,
                quirks=self.quirks,
            )  # fmt: skip
            for line in verdict.applied:
                log.info("server %s (%s): %s", guest.name, guest.server_id, line)
            done.verdicts.append(verdict)
            if self.reported.get(guest.server_id) != verdict.summary:
                try:
                    self._tell_nova(verdict)
                    self.reported[guest.server_id] = verdict.summary
                    log.info("server %s: %s", guest.name, verdict.summary)
                except RtkvmError as exc:
                    done.errors.append(f"server {guest.server_id}: {exc}")

    def _tell_rtkvm_host(self, ledger: RtLedger, report: HostReport) -> None:
        """Register when the host is new to the API or changed, else a heartbeat."""
        if report != self.registered:
            host = ledger.register(report)
            log.info("registered %s in rtkvm's API (engine %s)", host.name, host.engine)
        else:
            try:
                ledger.heartbeat(Heartbeat(doctor=report.doctor))
            except NotRegisteredError:
                log.warning("rtkvm's API lost this host's registration: registering again")
                ledger.register(report)
        self.registered = report

    def _tell_rtkvm_guests(self, ledger: RtLedger, done: Round) -> None:
        guests = [
            GuestVerdictIn(
                server_id=v.server_id,
                name=v.name[:255],
                domain=v.domain,
                flavor=v.flavor[:255],
                verdict=v.verdict,
                summary=v.summary,
                policy=v.policy,
                priority=v.priority,
                rt_vcpus=v.rt_vcpus,
                reasons=list(v.reasons),
                waived=dict(v.waived),
                applied=list(v.applied),
            )
            for v in done.verdicts
        ]
        ledger.report_guests(GuestVerdictReport(guests=guests, rt_waiver=self.waiver()))

    def _qemu_pid(self, domain: str) -> int | None:
        text = self.fs.read_maybe(f"{QEMU_PID_DIR}/{domain}.pid")
        return int(text.strip()) if isinstance(text, str) and text.strip().isdigit() else None

    def _tell_nova(self, verdict: GuestVerdict) -> None:
        """The verdict on the Nova server: metadata rtkvm_rt, and one rtkvm-rt-* tag."""
        sid = verdict.server_id
        self.session.call(
            "compute", "PUT", f"/servers/{sid}/metadata/{METADATA_KEY}",
            json={"meta": {METADATA_KEY: verdict.summary}},
            what=f"write {METADATA_KEY} on server {sid}",
        )  # fmt: skip
        wanted = TAGS.get(verdict.verdict)
        tags = self.session.call(
            "compute", "GET", f"/servers/{sid}/tags", microversion=TAG_MICROVERSION,
            what=f"read the tags of server {sid}",
        )["tags"]  # fmt: skip
        for tag in tags:
            if tag in TAGS.values() and tag != wanted:
                self.session.call(
                    "compute", "DELETE", f"/servers/{sid}/tags/{tag}",
                    microversion=TAG_MICROVERSION, ok=(204,), what=f"untag server {sid}",
                )  # fmt: skip
        if wanted is not None and wanted not in tags:
            self.session.call(
                "compute", "PUT", f"/servers/{sid}/tags/{wanted}",
                microversion=TAG_MICROVERSION, ok=(201, 204), what=f"tag server {sid}",
            )  # fmt: skip

    def _save(self, done: Round) -> None:
        doc: dict[str, Any] = {
            "provider": self.provider,
            "at": time.time(),
            "traits": sorted(done.traits),
            "rt_waiver": self.waiver(),
            "errors": done.errors,
            "withheld_networks": done.withheld,
            "wiring": done.wiring,
            "guests": [v.to_dict() for v in done.verdicts],
        }
        tmp = self.guests_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
        tmp.replace(self.guests_file)

    # -- the loop -------------------------------------------------------------------------------

    def watch_libvirt(self) -> None:
        """Wake a round at once when a domain starts, resumes or arrives by migration."""
        import libvirt

        libvirt.virEventRegisterDefaultImpl()

        def spin() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=spin, name="libvirt-events", daemon=True).start()
        conn = libvirt.open(self.uri)
        woken = {
            libvirt.VIR_DOMAIN_EVENT_STARTED,
            libvirt.VIR_DOMAIN_EVENT_RESUMED,
        }

        def lifecycle(_conn: Any, dom: Any, event: int, _detail: int, _opaque: Any) -> None:
            if event in woken:
                log.info("libvirt: domain %s started or resumed", dom.name())
                self.wake.set()

        conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, None)
        self._events_conn = conn  # kept open: the callbacks live as long as the connection

    def run(self, interval: float, rounds: int | None = None) -> None:
        done = 0
        while rounds is None or done < rounds:
            result = self.round()
            for error in result.errors:
                log.warning("%s (retried next round)", error)
            done += 1
            self.wake.wait(interval)
            self.wake.clear()
