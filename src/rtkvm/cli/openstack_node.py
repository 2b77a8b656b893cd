"""`rtkvm openstack agent | waiver | guests`: the node agent's OpenStack mode, from the shell.

``agent`` runs :class:`~rtkvm.openstack.nodeagent.OpenStackNodeAgent` (traits
kept current in Placement; Nova's RT guests given their flavor's priority,
verified, audited, and the verdict written on the server). ``waiver`` sets or
clears the admin's RT waiver the agent reads each round, as loudly as rtkvm's
own cloud does. ``guests`` shows the agent's last verdicts. Thin: the work is
in :mod:`rtkvm.openstack`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal, cast

import click

from rtkvm.cli.common import agent_ledger, node_plan_option, rtkvm_api_options, wiring_option
from rtkvm.cli.openstack_flavor import cloud_options
from rtkvm.dataplane.backend import OvsDpdkBackend
from rtkvm.dataplane.ovs import OvsDpdk
from rtkvm.dataplane.settings import load_settings
from rtkvm.dataplane.stack import load_layout
from rtkvm.footprint import IMAGE_DIR, KVM_PROBE_FILE, OPENSTACK_NODE_DIR, Footprint
from rtkvm.guest.create import Image
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS
from rtkvm.net.model import load_wiring
from rtkvm.openstack.nodeagent import OpenStackNodeAgent
from rtkvm.openstack.session import CloudSession
from rtkvm.openstack.wiringcheck import LiveWiringSources
from rtkvm.runtime.facts import runtime_facts
from rtkvm.tune.system import RealProcessControl

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(OPENSTACK_NODE_DIR.path),
    show_default=True,
    help="Where the waiver and the guests' verdicts are kept.",
)


def _state_dir(path: Path) -> Path:
    if path == Path(OPENSTACK_NODE_DIR.path):
        return Footprint("/").ensure_dir(OPENSTACK_NODE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _switch(rundir: Path | None) -> OvsDpdkBackend | None:
    if rundir is None:
        return None
    fs = HostFS("/")
    return OvsDpdkBackend(OvsDpdk(load_settings(), rundir, fs), load_layout(rundir))


def node_commands(group: click.Group) -> None:
    @group.command("agent")
    @cloud_options
    @node_plan_option
    @wiring_option
    @state_dir_option
    @click.option("--provider", default=None, help="The compute node's provider [hostname].")
    @click.option("--interval", type=click.FloatRange(min=0.5), default=10.0, show_default=True)
    @click.option("--rounds", type=click.IntRange(min=1), default=None, help="Stop after N.")
    @click.option(
        "--image-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(IMAGE_DIR.path),
        show_default=True,
        help="rtkvm's guest image: the KVM boot probe behind the host's quirks boots it.",
    )
    @click.option("--accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto")
    @click.option(
        "--switch-rundir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Run directory of `rtkvm net up` when Neutron plugs Nova's ports into it: each "
        "round puts its threads right (`rtkvm net sweep`), and network traits name only the "
        "wires Neutron's OVS agent can bind ports to here.",
    )
    @click.option(
        "--neutron-host",
        default=None,
        help="The host's name in Neutron (its OVS agent's `host`) when it is not the "
        "provider's name [the provider's].",
    )
    @rtkvm_api_options
    def agent(
        os_cloud: str,
        os_config_file: Path | None,
        plan_file: Path,
        wiring: Path | None,
        state_dir: Path,
        provider: str | None,
        interval: float,
        rounds: int | None,
        image_dir: Path,
        accel: str,
        switch_rundir: Path | None,
        neutron_host: str | None,
        rtkvm_url: str,
        agent_token_file: Path | None,
        ca_file: str | None,
    ) -> None:
        """Keep this host's traits current and treat Nova's RT guests (OpenStack mode).

        With --agent-token-file, the host and its guests' verdicts are kept in rtkvm's
        API too (the host enrolled there; rtkvm places nothing on it)."""
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        for chatty in ("httpx", "httpcore", "keystoneauth", "stevedore", "urllib3"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
        fs = HostFS("/")
        image = Image(image_dir / "vmlinuz", image_dir / "initramfs.cpio.gz")
        facts = runtime_facts(
            fs,
            image.kernel,
            image.initramfs,
            want=cast(Literal["auto", "kvm", "tcg"], accel),
            probe_cache=Path(KVM_PROBE_FILE.path),
        )
        quirks = {q.id for q in facts.quirks if q.present}
        for warning in facts.warnings:
            click.echo(f"warning: {warning}", err=True)
        host_wiring = load_wiring(wiring.read_text("utf-8"), source=str(wiring)) if wiring else None
        session = CloudSession(os_cloud, os_config_file)
        sources = (
            LiveWiringSources(switch_rundir, fs, session) if switch_rundir is not None else None
        )
        node = OpenStackNodeAgent(
            session,
            PartitionPlan.load(plan_file),
            fs=fs,
            control=RealProcessControl(HostFS("/", writable=True)),
            quirks=quirks,
            state_dir=_state_dir(state_dir),
            wiring=host_wiring,
            provider=provider,
            ledger=agent_ledger(rtkvm_url, agent_token_file, ca_file),
            switch=_switch(switch_rundir),
            wiring_sources=sources,
            neutron_host=neutron_host,
        )
        node.watch_libvirt()
        click.echo(f"rtkvm OpenStack agent for {node.provider}: quirks {sorted(quirks)}", err=True)
        node.run(interval, rounds)

    @group.group("waiver")
    def waiver() -> None:
        """The admin's RT waiver of this (lab) host, which the agent publishes."""

    @waiver.command("set")
    @click.argument("reason")
    @state_dir_option
    def waiver_set(reason: str, state_dir: Path) -> None:
        """Admit RT guests on this host although it is not RT-ready: CUSTOM_RTKVM_RT_WAIVED."""
        if not reason.strip():
            raise click.UsageError("give a reason (e.g. 'lab bench, no RT kernel')")
        (_state_dir(state_dir) / "rt-waiver").write_text(reason.strip() + "\n", "utf-8")
        click.echo(
            f"WARNING: RT WAIVER set ({reason.strip()}): RT guarantees are OFF on this host; "
            "the agent publishes it at its next round",
            err=True,
        )

    @waiver.command("clear")
    @state_dir_option
    def waiver_clear(state_dir: Path) -> None:
        """Withdraw the waiver: the agent takes CUSTOM_RTKVM_RT_WAIVED/ADMITTED away."""
        (state_dir / "rt-waiver").unlink(missing_ok=True)
        click.echo("RT waiver cleared; the agent withdraws it at its next round")

    @group.command("guests")
    @state_dir_option
    @click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
    def guests(state_dir: Path, fmt: str) -> None:
        """The agent's last verdict on each Nova guest of this host (exit 1 if any degraded)."""
        path = state_dir / "guests.json"
        if not path.is_file():
            raise click.ClickException(
                f"{path} does not exist: is `rtkvm openstack agent` running?"
            )
        doc = json.loads(path.read_text("utf-8"))
        if fmt == "json":
            click.echo(json.dumps(doc, indent=2))
        else:
            click.echo(f"host {doc['provider']}: traits {', '.join(doc['traits']) or 'none'}")
            if doc.get("rt_waiver"):
                click.echo(f"WARNING: RT WAIVER: {doc['rt_waiver']}", err=True)
            if doc.get("withheld_networks"):
                click.echo(
                    f"WARNING: no network trait for {', '.join(doc['withheld_networks'])}: "
                    "Neutron cannot bind ports to them here",
                    err=True,
                )
                for line in doc.get("wiring", []):
                    click.echo(f"  - {line}", err=True)
            for g in doc["guests"]:
                click.echo(f"{g['name']} ({g['server_id']}, {g['domain']}, flavor {g['flavor']})")
                click.echo(
                    f"  {g['verdict']}: {g['policy']}/{g['priority']} on vCPU {g['rt_vcpus']}"
                )
                for reason in g["reasons"]:
                    click.echo(f"  - {reason}")
                for rule, quirk in sorted(g["waived"].items()):
                    click.echo(f"  waived by the host: {rule} ({quirk})")
            for error in doc["errors"]:
                click.echo(f"error in the last round: {error}", err=True)
        if any(g["verdict"] == "degraded" for g in doc["guests"]):
            raise SystemExit(1)
