"""`rtkvm openstack`: rtkvm as the RT layer of an OpenStack site.

``nova-conf`` writes nova-compute's RT options (dedicated and shared CPU sets,
the host-wide vCPU priority) from the partition plan into a drop-in file of
rtkvm's own and says what changed. ``traits`` inspects this host as the node
agent does (topology, the doctor against the partition plan, the wired physical
networks), turns that into rtkvm's traits (``rtkvm.openstack.traits``) and
publishes them on the host's compute node resource provider in Placement,
leaving every other trait as it is. Run it from a timer until the agent's
OpenStack mode does it every report interval.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import click

from rtkvm.agent.inventory import collect
from rtkvm.cli.common import node_plan_option, read_secret_file, wiring_option
from rtkvm.cli.openstack_aio import down_command, status_command, up_command
from rtkvm.cli.openstack_flavor import flavor_group
from rtkvm.cli.openstack_measure import measure_commands
from rtkvm.cli.openstack_net import network_commands
from rtkvm.cli.openstack_node import node_commands
from rtkvm.errors import InputError
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS
from rtkvm.net.model import load_wiring
from rtkvm.openstack.novaconf import DROP_IN, changes, nova_settings, render
from rtkvm.openstack.placement import PlacementClient
from rtkvm.openstack.publish import publish
from rtkvm.openstack.session import CloudSession
from rtkvm.openstack.traits import names, node_traits
from rtkvm.priorities import VCPU_DEFAULT


@click.group()
def openstack() -> None:
    """rtkvm as the RT layer of OpenStack (Nova, Placement)."""


up_command(openstack)
status_command(openstack)
down_command(openstack)
flavor_group(openstack)
node_commands(openstack)
measure_commands(openstack)
network_commands(openstack)


@openstack.command("traits")
@click.option(
    "--os-cloud",
    envvar="OS_CLOUD",
    default=None,
    help="The cloud in clouds.yaml (or OS_CLOUD): Placement's endpoint and a token from it.",
)
@click.option(
    "--os-config-file",
    envvar="OS_CLIENT_CONFIG_FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A clouds.yaml [default: OS_CLIENT_CONFIG_FILE, else the standard places].",
)
@click.option(
    "--placement-url",
    envvar="RTKVM_PLACEMENT_URL",
    default=None,
    help="Without --os-cloud: Placement's endpoint, e.g. http://controller:8778.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --placement-url: a file (mode 0600) with a token for Placement "
    "(with noauth2: 'admin').",
)
@click.option(
    "--provider",
    default=None,
    help="The compute node's resource provider [default: this host's name, as Nova's].",
)
@node_plan_option
@wiring_option
@click.option(
    "--rt-waiver",
    default=None,
    help="An admin's reason to admit this not-ready (lab) host: CUSTOM_RTKVM_RT_WAIVED.",
)
@click.option("--root", default="/", show_default=True, help="Host root to inspect.")
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def traits(
    os_cloud: str | None,
    os_config_file: Path | None,
    placement_url: str | None,
    token_file: Path | None,
    provider: str | None,
    plan_file: Path,
    wiring: Path | None,
    rt_waiver: str | None,
    root: str,
    dry_run: bool,
    fmt: str,
) -> None:
    """Publish this host's RT readiness and wired networks as Placement traits."""
    if rt_waiver is not None and not rt_waiver.strip():
        raise click.UsageError("--rt-waiver needs a reason (e.g. 'lab bench, no RT kernel')")
    if os_cloud is not None:
        session = CloudSession(os_cloud, os_config_file)
        placement_url, token = session.endpoint("placement"), session.token()
    elif placement_url is not None and token_file is not None:
        token = read_secret_file(
            token_file, "Placement", "a Keystone token (or 'admin' for noauth2)"
        )
    else:
        raise click.UsageError(
            "say where Placement is: --os-cloud NAME (clouds.yaml), or --placement-url URL "
            "with --token-file FILE"
        )
    plan = PartitionPlan.load(plan_file)
    host_wiring = load_wiring(wiring.read_text("utf-8"), source=str(wiring)) if wiring else None
    report = collect(HostFS(root), plan, wiring=host_wiring)
    wanted = node_traits(report.doctor.verdict, rt_waiver, report.physnets)
    name = provider or socket.gethostname()
    client = PlacementClient(placement_url, token)
    try:
        if dry_run:
            found = client.provider(name)
            now = client.traits(found.uuid).traits if found is not None else frozenset()
            mine = frozenset(t for t in now if names().owned(t))
            added, removed, attempts = wanted - mine, mine - wanted, 0
        else:
            done = publish(client, name, wanted)
            added, removed, attempts = done.added, done.removed, done.attempts
    finally:
        client.close()
    result = {
        "provider": name,
        "doctor_verdict": report.doctor.verdict,
        "failed_checks": list(report.doctor.failed),
        "rt_waiver": rt_waiver,
        "traits": sorted(wanted),
        "added": sorted(added),
        "removed": sorted(removed),
        "writes": attempts,
        "dry_run": dry_run,
    }
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
        return
    verb = "would add" if dry_run else "added"
    click.echo(f"provider {name}: doctor verdict {report.doctor.verdict}")
    if rt_waiver is not None and report.doctor.verdict != "ready":
        click.echo(f"WARNING: RT WAIVER on {name}: RT guarantees are OFF ({rt_waiver})", err=True)
    click.echo(f"  rtkvm's traits: {', '.join(sorted(wanted)) or 'none'}")
    click.echo(f"  {verb}: {', '.join(sorted(added)) or 'nothing'}")
    click.echo(
        f"  {'would remove' if dry_run else 'removed'}: {', '.join(sorted(removed)) or 'nothing'}"
    )


@openstack.command("nova-conf")
@node_plan_option
@click.option(
    "--priority",
    type=int,
    default=VCPU_DEFAULT,
    show_default=True,
    help="Nova's host-wide RT vCPU priority ([libvirt] realtime_scheduler_priority).",
)
@click.option("--virt-type", type=click.Choice(["kvm", "qemu"]), default="kvm", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(DROP_IN),
    show_default=True,
    help="The drop-in file (nova-compute reads its directory with --config-dir).",
)
@click.option("--dry-run", is_flag=True, help="Show the file and what would change.")
@click.option("--remove", is_flag=True, help="Remove rtkvm's drop-in file.")
def nova_conf(
    plan_file: Path,
    priority: int,
    virt_type: str,
    output: Path,
    dry_run: bool,
    remove: bool,
) -> None:
    """Write nova-compute's RT options (dedicated and shared CPU sets, priority) from the plan."""
    existing = output.read_text("utf-8") if output.is_file() else None
    if remove:
        if existing is None:
            click.echo(f"{output} does not exist: nothing to remove")
            return
        if "Written by rtkvm" not in existing:
            raise InputError(f"{output} was not written by rtkvm: it is left as it is")
        if not dry_run:
            output.unlink()
        click.echo(f"{'would remove' if dry_run else 'removed'} {output}; restart nova-compute")
        return
    plan = PartitionPlan.load(plan_file)
    settings = nova_settings(plan, priority=priority, virt_type=virt_type)  # type: ignore[arg-type]
    text = render(settings, str(plan_file))
    changed = changes(existing, settings)
    if existing is not None and "Written by rtkvm" not in existing:
        raise InputError(
            f"{output} exists and was not written by rtkvm: choose another --output "
            "(a file of rtkvm's own in nova-compute's --config-dir)"
        )
    for change in changed:
        click.echo(f"  {change}")
    if dry_run:
        click.echo(text, nl=False)
        return
    if not changed:
        click.echo(f"{output} already says this: nothing to change")
        return
    if not output.parent.parent.is_dir():
        raise InputError(
            f"{output.parent.parent} does not exist: is nova-compute installed here? "
            "(or give --output)"
        )
    output.parent.mkdir(mode=0o755, exist_ok=True)
    tmp = output.with_name(output.name + ".new")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    tmp.replace(output)
    click.echo(f"wrote {output} ({len(changed)} change(s)); restart nova-compute to apply")
