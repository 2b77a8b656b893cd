"""``rtkvm agent``: run this host's node agent against the control plane. Thin.

Reads the agent token (given once by ``rtkvm cloud host enroll``) from
--token-file, the host's partition plan from --plan, the optional host wiring
(--wiring) and switch (--switch-rundir of ``rtkvm net up``), chooses the
accelerator and host quirks like ``rtkvm guest create``, and runs
:class:`rtkvm.agent.loop.Agent` (``--once``: register, reconcile, one
step) with a measurement runner on the same libvirt URI (its worker thread
opens its own connections). Tests pass a ready client in ``ctx.obj["client"]``.
No logic beyond wiring the pieces together.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Literal, cast

import click

from rtkvm.agent.console import ConsoleRelay
from rtkvm.agent.executor import BootConfig, Executor, HostView
from rtkvm.agent.guestcheck import LiveChecker, libvirt_lookup
from rtkvm.agent.images import BaseImages
from rtkvm.agent.inventory import collect
from rtkvm.agent.loop import Agent
from rtkvm.agent.measure import MeasurementRunner
from rtkvm.agent.names import console_socket
from rtkvm.cli.common import guest_boot_options, node_plan_option, read_secret_file, wiring_option
from rtkvm.dataplane.backend import DataPlane, OvsDpdkBackend
from rtkvm.dataplane.ovs import OvsDpdk
from rtkvm.dataplane.settings import load_settings
from rtkvm.dataplane.stack import load_layout
from rtkvm.domain.audit import AuditHost
from rtkvm.domain.design import HostQuirks
from rtkvm.guest import lifecycle
from rtkvm.guest.create import Image
from rtkvm.guest.events import LifecycleWatch
from rtkvm.guest.hypervisor import LibvirtHypervisor
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.topology import read_topology
from rtkvm.hostfs import HostFS
from rtkvm.net.lldp import read_neighbors
from rtkvm.net.model import load_wiring
from rtkvm.runtime.facts import runtime_facts
from rtkvm.tune.journal import Journal
from rtkvm.wire.agent_client import AgentClient
from rtkvm.wire.http import DEFAULT_URL
from rtkvm.wire.lifecycle import STOP_TIMEOUT_S
from rtkvm.wire.node import HostReport


def read_token(path: Path) -> str:
    """The agent's token; refused from a file others may read (it acts for the host)."""
    return read_secret_file(path, "this host", "the agent token of `rtkvm cloud host enroll NAME`")


def _switch(rundir: Path | None, root: str) -> DataPlane | None:
    if rundir is None:
        return None
    ovs = OvsDpdk(load_settings(), rundir, HostFS(root, writable=True))
    return OvsDpdkBackend(ovs, load_layout(rundir))


@click.command("agent")
@click.option("--api", "url", envvar="RTKVM_URL", default=DEFAULT_URL, show_default=True)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File holding this host's agent token (from `rtkvm cloud host enroll`).",
)
@click.option(
    "--ca-file",
    envvar="RTKVM_CA_FILE",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Verify an https API against this CA (or its self-signed certificate).",
)
@click.option("--once", is_flag=True, help="Register, reconcile, do one round of work, exit.")
@node_plan_option
@wiring_option
@click.option(
    "--switch-rundir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory of `rtkvm net up` (default: run without a switch).",
)
@click.option("--uri", default=lifecycle.DEFAULT_URI, show_default=True, help="libvirt URI.")
@guest_boot_options
@click.option("--interval", type=float, default=5.0, show_default=True, help="Seconds per poll.")
@click.option(
    "--recheck",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds between two RT checks of a running guest (also after every create and start).",
)
@click.option(
    "--reinspect",
    type=click.FloatRange(min=1),
    default=30.0,
    show_default=True,
    help="Seconds between two inspections of the host (doctor, wiring); a change is registered.",
)
@click.option(
    "--stop-timeout",
    type=click.FloatRange(min=0),
    default=STOP_TIMEOUT_S,
    show_default=True,
    help="Seconds a stop or soft reboot waits for the guest to power off after the ACPI "
    "power button before powering it off (rtkvm's probe image has no ACPI daemon).",
)
@click.option(
    "--console-listen",
    default="127.0.0.1:0",
    show_default=True,
    help="HOST:PORT where the console relay listens for the API (port 0: any free one). "
    "Give an address the API's hosts reach when they are other machines.",
)
@click.option(
    "--console-advertise",
    default=None,
    help="Host name or address the API connects to (default: the listening address).",
)
@click.option("--no-console", is_flag=True, help="Relay no interactive console.")
@click.option("--root", default="/", show_default=True, help="Host root to inspect.")
@click.pass_context
def agent(
    ctx: click.Context,
    url: str,
    token_file: Path,
    ca_file: str | None,
    once: bool,
    plan_file: Path,
    wiring: Path | None,
    switch_rundir: Path | None,
    uri: str,
    image_dir: Path,
    guest_dir: Path,
    accel: str,
    probe_cache: Path,
    interval: float,
    recheck: float,
    reinspect: float,
    stop_timeout: float,
    console_listen: str,
    console_advertise: str | None,
    no_console: bool,
    root: str,
) -> None:
    """Run this host's node agent: register, heartbeat, create and delete its guests."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for chatty in ("httpx", "httpcore"):  # one INFO line per request: only rtkvm's own lines
        logging.getLogger(chatty).setLevel(logging.WARNING)
    obj = ctx.find_root().obj
    given = obj.get("client") if isinstance(obj, dict) else None

    def connect() -> AgentClient:
        """The API client: the one a test gave, else a new connection with the token."""
        if isinstance(given, AgentClient):
            return given
        return AgentClient(url, read_token(token_file), ca_file=ca_file)

    client = connect()
    fs = HostFS(root)
    plan = PartitionPlan.load(plan_file)
    host_wiring = load_wiring(wiring.read_text("utf-8"), source=str(wiring)) if wiring else None
    switch = _switch(switch_rundir, root)
    image = Image(image_dir / "vmlinuz", image_dir / "initramfs.cpio.gz")
    want = cast(Literal["auto", "kvm", "tcg"], accel)
    facts = runtime_facts(fs, image.kernel, image.initramfs, want=want, probe_cache=probe_cache)
    for warning in facts.warnings:
        click.echo(f"warning: {warning}", err=True)
    no_lock = any(q.id == "no_cap_sys_resource" and q.present for q in facts.quirks)
    boot = BootConfig(
        image=image,
        accel=facts.accel,
        guest_dir=guest_dir,
        quirks=HostQuirks(locked_memory=not no_lock),
        allow_unlocked_memory=no_lock,
        images=BaseImages(guest_dir / "base", client.fetch_image),
    )
    topology = read_topology(fs)
    executor = Executor(LibvirtHypervisor(uri), switch, HostView(plan, topology), boot)
    quirks = {q.id for q in facts.quirks if q.present}
    checker = LiveChecker(
        libvirt_lookup(uri), HostFS("/"), AuditHost.from_plan(plan, topology), quirks
    )
    relay = None
    if not no_console and not once:
        relay_client = connect()  # the relay redeems on its own threads: its own connection
        try:
            relay = ConsoleRelay(
                console_listen,
                relay_client.redeem_console,
                lambda instance_id: console_socket(guest_dir, instance_id),
                advertise=console_advertise,
            )
            relay.start()
        except (OSError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    console_address = relay.address if relay is not None else None

    def inventory() -> HostReport:
        report = collect(
            fs,
            plan,
            wiring=host_wiring,
            switch=switch,
            neighbors=read_neighbors,
            guest_dir=guest_dir,
        )
        return report.model_copy(update={"console_address": console_address})

    node = Agent(
        client,
        inventory,
        executor,
        ports=switch.ports if switch is not None else set,
        runner=MeasurementRunner(lambda: lifecycle.connect(uri), HostFS("/")),
        checker=checker,
        recheck_s=recheck,
        reinspect_s=reinspect,
        tuning=Journal(fs).fingerprint,
        stop_timeout_s=stop_timeout,
    )
    if once:
        node.run(once=True)
        return
    stopping = threading.Event()  # SIGTERM/SIGINT end the loop between two steps
    woken = threading.Event()  # a domain changed state, or the agent must stop: step now

    def halt(*_: object) -> None:
        stopping.set()
        woken.set()

    def nap(seconds: float) -> None:
        woken.wait(seconds)
        woken.clear()

    def on_event(domain: str, event: str) -> None:
        logging.getLogger("rtkvm.agent").info("libvirt: %s %s", domain, event)
        woken.set()

    signal.signal(signal.SIGTERM, halt)
    signal.signal(signal.SIGINT, halt)
    watch = LifecycleWatch(uri, on_event)
    watch.start()  # a guest that powers itself off shows at once, not at the next poll
    try:
        node.run(interval=interval, stop=stopping.is_set, sleep=nap)
    finally:
        watch.stop()
        if relay is not None:
            relay.stop()
