"""`rtkvm cloud ...`: the control plane from the command line (thin, over rtkvm.wire.user_client).

Commands follow the openstack client: ``rtkvm cloud server create --flavor
rt4 --network blue vm1``, ``server list``, ``flavor create``, ``network
create``, ``project``, ``user``, ``token``, ``host``, ``usage``, plus
``serve`` to run the API server. The API URL and token come from --url /
--token or RTKVM_URL / RTKVM_TOKEN (see cloud_conn). This module must not contain
logic the API does not also enforce.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from rtkvm.cli import cloud_wait
from rtkvm.cli.cloud_conn import api_of, remember
from rtkvm.cli.cloud_format import (
    disk_cell,
    format_option,
    plain,
    plains,
    qualified_cell,
    rt_cell,
    show_list,
    show_one,
    waiver_cell,
)
from rtkvm.cli.cloud_guests import guest
from rtkvm.cli.cloud_images import image, keypair
from rtkvm.cli.cloud_measure import measure
from rtkvm.cli.cloud_wait import ACTIVE_OR_ERROR, DELETED_OR_ERROR
from rtkvm.wire.http import DEFAULT_URL
from rtkvm.wire.measure import CyclictestParamsIn
from rtkvm.wire.schemas import NicRequest
from rtkvm.wire.uuids import is_uuid

CYCLICTEST = CyclictestParamsIn()
"""cyclictest's defaults, as the API applies them to a measurement."""

SERVER_COLUMNS = (
    "id",
    "name",
    "state",
    "task",
    "host",
    "flavor",
    "image",
    "networks",
    "rt_cores",
    "rt",
)
HOST_COLUMNS = ("name", "status", "engine", "doctor_verdict", "dataplane_state", "physnets")
UNKNOWN_COLUMNS = ("kind", "name", "uuid", "running", "verdict", "hint")


@click.group()
@click.option("--url", envvar="RTKVM_URL", default=DEFAULT_URL, show_default=True)
@click.option("--token", envvar="RTKVM_TOKEN", default=None, help="API token (or RTKVM_TOKEN).")
@click.option(
    "--ca-file",
    envvar="RTKVM_CA_FILE",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Verify an https API against this CA (or self-signed certificate); or RTKVM_CA_FILE.",
)
@click.pass_context
def cloud(ctx: click.Context, url: str, token: str | None, ca_file: str | None) -> None:
    """The rtkvm control plane: servers, flavors, networks, projects, hosts."""
    remember(ctx, url, token, ca_file)


# -- servers -----------------------------------------------------------------------


@cloud.group()
def server() -> None:
    """RT guests (instances)."""


@server.command("create")
@click.argument("name")
@click.option("--flavor", required=True)
@click.option(
    "--network",
    "networks",
    multiple=True,
    metavar="NAME[,ip=ADDR/PREFIX]",
    help="Repeat for more NICs, in order; ip= sets the NIC's address in the guest "
    "(unmanaged networks have no DHCP and rtkvm invents none): any NIC of a server with "
    "an image (cloud-init), the first NIC of a probe server.",
)
@click.option("--project", default=None, help="Admins: create in this project.")
@click.option(
    "--image",
    default=None,
    help="Boot a copy-on-write disk of this image (name or id); default rtkvm's probe kernel.",
)
@click.option(
    "--disk",
    "disk_gb",
    type=click.IntRange(min=1),
    default=None,
    help="The disk's size in GiB (default the image's virtual size).",
)
@click.option("--key-name", default=None, help="One of your keypairs (an image's cloud-init).")
@click.option(
    "--user-data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="cloud-init user-data for an image server (at most 64 KiB).",
)
@click.option(
    "--host",
    "on_host",
    default=None,
    help="Admins: place it on this host or nowhere (a qualification's probes skip the "
    "cloud's requirement of qualified hosts this way).",
)
@click.option("--wait", is_flag=True, help="Wait until its host's agent made it active.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds --wait waits.")  # fmt: skip
@format_option
@click.pass_context
def server_create(
    ctx: click.Context,
    name: str,
    flavor: str,
    networks: tuple[str, ...],
    project: str | None,
    image: str | None,
    disk_gb: int | None,
    key_name: str | None,
    user_data: Path | None,
    on_host: str | None,
    wait: bool,
    timeout: float,
    fmt: str,
) -> None:
    """Create a server: scheduled and pinned at once, then built by its host's agent.

    With --wait, exits 1 with the fault when the agent could not build it.
    """
    api = api_of(ctx)
    nics = [nic_option(n) for n in networks]
    created = api.create_server(
        name,
        flavor,
        nics,
        project,
        image=image,
        disk_gb=disk_gb,
        key_name=key_name,
        user_data=user_data.read_bytes() if user_data is not None else None,
        host=on_host,
    )
    if wait:
        created = (
            cloud_wait.wait_server(api, created.id, ACTIVE_OR_ERROR, timeout=timeout) or created
        )
    item = plain(created)
    show_one(item, fmt)
    if item["state"] == "error":
        click.echo(f"rtkvm: server {name} failed: {item['fault']}", err=True)
        raise SystemExit(1)


def nic_option(text: str) -> NicRequest:
    """``NAME`` or ``NAME,ip=ADDR/PREFIX`` (the API checks the address)."""
    name, *opts = [part.strip() for part in text.split(",")]
    address = None
    for opt in opts:
        key, _, value = opt.partition("=")
        if key != "ip" or not value or address is not None:
            raise click.BadParameter(
                f"{text!r}: give NAME or NAME,ip=ADDR/PREFIX (e.g. blue,ip=192.0.2.10/24)",
                param_hint="--network",
            )
        address = value
    if not name:
        raise click.BadParameter(
            f"{text!r}: the network's name comes first", param_hint="--network"
        )
    try:
        return NicRequest(network=name, address=address)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise click.BadParameter(f"{text!r}: {problem}", param_hint="--network") from None


@server.command("list")
@click.option("--all-projects", is_flag=True, help="Admins: every project.")
@format_option
@click.pass_context
def server_list(ctx: click.Context, all_projects: bool, fmt: str) -> None:
    """List servers; RT says "not assured" for those placed under a host's RT waiver."""
    items = plains(api_of(ctx).servers(all_projects=all_projects))
    if fmt != "json":
        for item in items:
            item["rt"] = rt_cell(item)
    show_list(items, SERVER_COLUMNS, fmt)


@server.command("show")
@click.argument("ref")
@format_option
@click.pass_context
def server_show(ctx: click.Context, ref: str, fmt: str) -> None:
    """Show a server by id or name, with its pCPU pinning and its RT state (with every reason;
    not assured under a waiver)."""
    item = plain(api_of(ctx).server(ref))
    if fmt == "table":
        item["rt"] = rt_cell(item)
    show_one(item, fmt)


@server.command("delete")
@click.argument("refs", nargs=-1, required=True)
@click.option(
    "--force",
    is_flag=True,
    help="Admins: free servers whose host is down or removed (or that are in error) without "
    "their host's agent; their guests may stay on the host (`rtkvm guest delete` there).",
)
@click.option("--wait", is_flag=True, help="Wait until their hosts' agents removed them.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds --wait waits per server.")  # fmt: skip
@click.pass_context
def server_delete(
    ctx: click.Context, refs: tuple[str, ...], force: bool, wait: bool, timeout: float
) -> None:
    """Delete servers (idempotent by id); their hosts free them."""
    api = api_of(ctx)
    targets = []
    for ref in refs:
        target = ref if is_uuid(ref) else api.server(ref).id
        api.delete_server(target, force=force)
        targets.append(target)
        if force:
            click.echo(
                f"warning: server {target} force-deleted: its guest may still exist on its host; "
                f"run `rtkvm guest delete rtkvm-{target}` there",
                err=True,
            )
    for target in targets if wait else ():
        left = cloud_wait.wait_server(api, target, DELETED_OR_ERROR, timeout=timeout)
        if left is not None and left.state == "error":
            click.echo(f"rtkvm: server {target} could not be deleted: {left.fault}", err=True)
            raise SystemExit(1)


def _power(
    ctx: click.Context, refs: tuple[str, ...], action: str, hard: bool, wait: bool, timeout: float
) -> None:
    """Ask each server's agent for a power action; with ``wait``, until each is done."""
    api = api_of(ctx)
    asked = []
    for ref in refs:
        target = ref if is_uuid(ref) else api.server(ref).id
        item = api.server_action(target, action, hard=hard)
        doing = item.task or f"already {item.state}"
        click.echo(f"server {item.name} ({item.id}): {doing}", err=True)
        asked.append(target)
    failed = []
    for target in asked if wait else ():
        done = cloud_wait.wait_task(api, target, timeout=timeout)
        if done.state == "error":
            failed.append(f"server {done.name} ({target}): {done.fault}")
    if failed:
        click.echo("rtkvm: " + "; ".join(failed), err=True)
        raise SystemExit(1)


_WAIT = click.option("--wait", is_flag=True, help="Wait until each server's agent did it.")
_TIMEOUT = click.option("--timeout", type=click.FloatRange(min=1), default=300.0,
                        show_default=True, help="Seconds --wait waits per server.")  # fmt: skip


@server.command("stop")
@click.argument("refs", nargs=-1, required=True)
@_WAIT
@_TIMEOUT
@click.pass_context
def server_stop(ctx: click.Context, refs: tuple[str, ...], wait: bool, timeout: float) -> None:
    """Stop servers: the ACPI power button, then power-off after the agent's --stop-timeout.
    A stopped server keeps its pCPUs (start it again, or delete it to free them)."""
    _power(ctx, refs, "stop", False, wait, timeout)


@server.command("start")
@click.argument("refs", nargs=-1, required=True)
@_WAIT
@_TIMEOUT
@click.pass_context
def server_start(ctx: click.Context, refs: tuple[str, ...], wait: bool, timeout: float) -> None:
    """Start stopped servers; their RT settings are verified again once they run."""
    _power(ctx, refs, "start", False, wait, timeout)


@server.command("reboot")
@click.argument("refs", nargs=-1, required=True)
@click.option("--hard", is_flag=True,
              help="Power off at once instead of asking the guest; also builds a server in "
              "error (or whose domain vanished) again.")  # fmt: skip
@_WAIT
@_TIMEOUT
@click.pass_context
def server_reboot(
    ctx: click.Context, refs: tuple[str, ...], hard: bool, wait: bool, timeout: float
) -> None:
    """Reboot servers: a stop, then a start (a new QEMU; RT settings verified again)."""
    _power(ctx, refs, "reboot", hard, wait, timeout)


@server.command("console")
@click.argument("ref")
@click.option(
    "--chat",
    "steps",
    type=(str, str),
    multiple=True,
    metavar="EXPECT SEND",
    help="Script the session: wait for EXPECT (a regular expression; '' waits for "
    "nothing), then send SEND (\\r \\n \\t understood); repeat in order.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds each --chat EXPECT may take.",
)
@click.option(
    "--linger",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="With piped input: seconds of quiet output after it ends before leaving.",
)
@click.pass_context
def server_console(
    ctx: click.Context, ref: str, steps: tuple[tuple[str, str], ...], timeout: float, linger: float
) -> None:
    """A server's interactive serial console through the API (a websocket, with your token):
    no host access needed. Ctrl-] leaves. One session per server at a time."""
    from rtkvm.cli import cloud_console

    api = api_of(ctx)
    found = api.server(ref)
    with api.open_console(found.id) as session:
        if steps:
            cloud_console.chat(session, steps, timeout)
            click.echo("", err=True)
        elif sys.stdin.isatty():
            cloud_console.interactive(session, found.name)
        else:
            cloud_console.piped(session, linger)


@server.command("console-log")
@click.argument("ref")
@click.option("--lines", type=click.IntRange(min=1), default=None, help="Only the last N lines.")
@click.option("--timeout", type=click.FloatRange(min=1), default=30.0, show_default=True,
              help="Seconds to wait for the host's agent.")  # fmt: skip
@click.pass_context
def server_console_log(ctx: click.Context, ref: str, lines: int | None, timeout: float) -> None:
    """The end of a server's serial console (64 KiB at most), fetched by its host's agent
    through the API: no host access needed."""
    api = api_of(ctx)
    found = cloud_wait.wait_console(api, api.server(ref).id, timeout=timeout)
    text = found.text
    if lines is not None:
        text = "\n".join(text.splitlines()[-lines:]) + ("\n" if text else "")
    if found.truncated and lines is None:
        click.echo("(the console log's end; earlier output is cut)", err=True)
    click.echo(text, nl=not text.endswith("\n"))


# -- flavors -----------------------------------------------------------------------


@cloud.group()
def flavor() -> None:
    """RT flavors (Nova extra specs)."""


@flavor.command("create")
@click.argument("name")
@click.option("--vcpus", type=int, required=True)
@click.option("--ram", type=int, required=True, help="MiB.")
@click.option(
    "--property", "props", multiple=True, help="Extra spec KEY=VALUE, e.g. hw:cpu_realtime=yes."
)
@format_option
@click.pass_context
def flavor_create(
    ctx: click.Context, name: str, vcpus: int, ram: int, props: tuple[str, ...], fmt: str
) -> None:
    from rtkvm.domain.spec import parse_extra_spec_args

    body: dict[str, Any] = {
        "name": name,
        "vcpus": vcpus,
        "ram": ram,
        "extra_specs": parse_extra_spec_args(props),
    }
    show_one(plain(api_of(ctx).create_flavor(body)), fmt)


@flavor.command("list")
@format_option
@click.pass_context
def flavor_list(ctx: click.Context, fmt: str) -> None:
    columns = (
        "name",
        "vcpus",
        "ram",
        "rt_vcpus",
        "emulator_threads_policy",
        "page_size",
        "rt_cores",
    )
    show_list(plains(api_of(ctx).flavors()), columns, fmt)


@flavor.command("show")
@click.argument("name")
@format_option
@click.pass_context
def flavor_show(ctx: click.Context, name: str, fmt: str) -> None:
    show_one(plain(api_of(ctx).flavor(name)), fmt)


@flavor.command("delete")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def flavor_delete(ctx: click.Context, names: tuple[str, ...]) -> None:
    for name in names:
        api_of(ctx).delete("flavors", name)


# -- networks ----------------------------------------------------------------------


@cloud.group()
def network() -> None:
    """Unmanaged L2 networks (physical network label, optional VLAN)."""


@network.command("create")
@click.argument("name")
@click.option("--provider-physical-network", "physnet", required=True)
@click.option("--provider-segment", "vlan", type=int, default=None, help="VLAN id 1-4094.")
@click.option("--share/--no-share", default=False)
@click.option("--project", default=None, help="Owner of a private network.")
@format_option
@click.pass_context
def network_create(
    ctx: click.Context,
    name: str,
    physnet: str,
    vlan: int | None,
    share: bool,
    project: str | None,
    fmt: str,
) -> None:
    body = {"name": name, "physnet": physnet, "vlan": vlan, "shared": share, "project": project}
    show_one(plain(api_of(ctx).create_network(body)), fmt)


@network.command("list")
@format_option
@click.pass_context
def network_list(ctx: click.Context, fmt: str) -> None:
    show_list(plains(api_of(ctx).networks()), ("name", "physnet", "vlan", "shared", "project"), fmt)


@network.command("delete")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def network_delete(ctx: click.Context, names: tuple[str, ...]) -> None:
    for name in names:
        api_of(ctx).delete("networks", name)


# -- projects, users, tokens, hosts, usage -----------------------------------------


@cloud.group()
def project() -> None:
    """Projects and quotas (admin)."""


@project.command("create")
@click.argument("name")
@click.option("--rt-cores", type=int, default=None, help="Quota of dedicated pCPUs.")
@click.option("--instances", type=int, default=None, help="Quota of instances.")
@click.option("--shared-vcpus", type=int, default=None,
              help="Quota of vCPUs on the hosts' shared CPUs (non-RT).")  # fmt: skip
@click.option("--image-gib", type=click.FloatRange(min=0), default=None,
              help="Quota of the image store: GiB of the project's active images.")  # fmt: skip
@format_option
@click.pass_context
def project_create(
    ctx: click.Context,
    name: str,
    rt_cores: int | None,
    instances: int | None,
    shared_vcpus: int | None,
    image_gib: float | None,
    fmt: str,
) -> None:
    created = api_of(ctx).create_project(
        name,
        quota_rt_cores=rt_cores,
        quota_instances=instances,
        quota_shared_vcpus=shared_vcpus,
        quota_image_bytes=_bytes(image_gib),
    )
    show_one(plain(created), fmt)


def _bytes(gib: float | None) -> int | None:
    return None if gib is None else int(gib * 2**30)


@project.command("list")
@format_option
@click.pass_context
def project_list(ctx: click.Context, fmt: str) -> None:
    columns = ("name", "quota_rt_cores", "rt_cores_used", "quota_shared_vcpus",
               "shared_vcpus_used", "quota_instances", "instances_used",
               "quota_image_bytes", "image_bytes_used")  # fmt: skip
    show_list(plains(api_of(ctx).projects()), columns, fmt)


@project.command("quota")
@click.argument("name")
@click.option("--rt-cores", type=int, default=None)
@click.option("--instances", type=int, default=None)
@click.option("--shared-vcpus", type=int, default=None)
@click.option("--image-gib", type=click.FloatRange(min=0), default=None,
              help="GiB of active images the project may keep in the image store.")  # fmt: skip
@format_option
@click.pass_context
def project_quota(
    ctx: click.Context,
    name: str,
    rt_cores: int | None,
    instances: int | None,
    shared_vcpus: int | None,
    image_gib: float | None,
    fmt: str,
) -> None:
    """Set quotas (only the options given change)."""
    quota: dict[str, int | None] = {}
    if image_gib is not None:
        quota["image_bytes"] = _bytes(image_gib)
    if shared_vcpus is not None:
        quota["shared_vcpus"] = shared_vcpus
    if rt_cores is not None:
        quota["rt_cores"] = rt_cores
    if instances is not None:
        quota["instances"] = instances
    show_one(plain(api_of(ctx).set_quota(name, **quota)), fmt)


@cloud.group()
def user() -> None:
    """Users (admin)."""


@user.command("create")
@click.argument("name")
@click.option("--project", required=True)
@click.option("--role", type=click.Choice(["member", "admin"]), default="member")
@format_option
@click.pass_context
def user_create(ctx: click.Context, name: str, project: str, role: str, fmt: str) -> None:
    show_one(plain(api_of(ctx).create_user(name, project, role)), fmt)


@user.command("list")
@format_option
@click.pass_context
def user_list(ctx: click.Context, fmt: str) -> None:
    show_list(plains(api_of(ctx).users()), ("name", "project", "role"), fmt)


@cloud.group()
def token() -> None:
    """API tokens."""


@token.command("issue")
@click.option("--user", default=None, help="Admins: for this user (default: yourself).")
@click.option(
    "--lifetime",
    type=click.IntRange(min=60),
    default=None,
    help="Seconds the token is accepted (default: the site's, or until revoked).",
)
@format_option
@click.pass_context
def token_issue(ctx: click.Context, user: str | None, lifetime: int | None, fmt: str) -> None:
    """Create a token; its secret is shown this once."""
    show_one(plain(api_of(ctx).create_token(user, lifetime_s=lifetime)), fmt)


@cloud.group()
def host() -> None:
    """Compute hosts (admin)."""


@host.command("enroll")
@click.argument("name")
@format_option
@click.pass_context
def host_enroll(ctx: click.Context, name: str, fmt: str) -> None:
    """Enroll a host; prints the agent token for that host (shown this once)."""
    done = plain(api_of(ctx).enroll_host(name))
    show_one({"name": done["host"]["name"], "agent_token": done["agent_token"]}, fmt)


@host.command("list")
@format_option
@click.pass_context
def host_list(ctx: click.Context, fmt: str) -> None:
    """List hosts; a host with an RT waiver shows WAIVED and the reason; disk_gb is the
    GiB its servers' disks take of what its agent reported."""
    items = plains(api_of(ctx).hosts())
    for item in items:
        item["rt_free"] = sum(n["rt_total"] - n["rt_used"] for n in item["nodes"])
        if fmt != "json":
            item["rt_waiver"] = waiver_cell(item)
            item["qualified"] = qualified_cell(item)
            item["disk_gb"] = disk_cell(item)
    show_list(items, (*HOST_COLUMNS, "rt_free", "disk_gb", "qualified", "rt_waiver"), fmt)


@host.command("show")
@click.argument("name")
@format_option
@click.pass_context
def host_show(ctx: click.Context, name: str, fmt: str) -> None:
    """Show a host (an RT waiver as WAIVED and the reason)."""
    item = plain(api_of(ctx).host(name))
    if fmt != "json":
        item["rt_waiver"] = waiver_cell(item)
        item["qualification"] = qualified_cell(item)
    show_one(item, fmt)


@host.command("delete")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def host_delete(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Remove hosts (idempotent; refused while servers are placed there): their agent
    tokens are revoked and what was measured there forgotten."""
    api = api_of(ctx)
    for name in names:
        api.delete("hosts", name)


@host.command("qualify")
@click.argument("name")
@click.option("--flavor", default=None, help="An RT flavor for the probe servers (required).")
@click.option(
    "--max-latency-us",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Fail when a free RT pCPU's worst cyclictest latency is above this (default: no "
    "limit, the figures are recorded).",
)
@click.option("--loops", type=click.IntRange(min=100), default=CYCLICTEST.loops,
              show_default=True, help="cyclictest samples per RT vCPU.")  # fmt: skip
@click.option("--interval", type=click.IntRange(min=50), default=CYCLICTEST.interval_us,
              show_default=True, help="cyclictest wake-up interval, µs.")  # fmt: skip
@click.option("--buckets", type=click.IntRange(min=10), default=CYCLICTEST.buckets,
              show_default=True, help="cyclictest histogram size, µs.")  # fmt: skip
@click.option("--rtt-seconds", type=click.IntRange(min=1), default=10, show_default=True,
              help="Round trip duration per network.")  # fmt: skip
@click.option("--rtt-mps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Round trip messages per second.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=1), default=900.0, show_default=True,
              help="Seconds a probe server or a measurement may take.")  # fmt: skip
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the qualification (JSON, with its proof) to this file.",
)
@click.option(
    "--abandon",
    "abandon_id",
    default=None,
    metavar="ID",
    help="End the running qualification ID without a verdict (its client died).",
)
@format_option
@click.pass_context
def host_qualify(
    ctx: click.Context,
    name: str,
    flavor: str | None,
    max_latency_us: float | None,
    loops: int,
    interval: int,
    buckets: int,
    rtt_seconds: int,
    rtt_mps: int,
    timeout: float,
    save: Path | None,
    abandon_id: str | None,
    fmt: str,
) -> None:
    """Qualify a host: probe servers on every free RT pCPU and on each wired network are
    measured (cyclictest, round trip), and the API records its verdict as the host's proof.

    Guests already on the host are never disturbed: the pCPUs they hold are not measured.
    Exits 1 when the host fails.
    """
    from rtkvm.cli import cloud_qualify

    api = api_of(ctx)
    if abandon_id is not None:
        cloud_qualify.show_verdict(api.end_qualification(abandon_id, abandon=True), fmt, save)
        return
    if flavor is None:
        raise click.UsageError("give --flavor: an RT flavor for the probe servers")
    knobs = cloud_qualify.Knobs(loops, interval, buckets, rtt_seconds, rtt_mps, timeout)
    verdict = cloud_qualify.qualify(api, name, flavor, max_latency_us, knobs)
    cloud_qualify.show_verdict(verdict, fmt, save)
    if verdict.state != "passed":
        click.echo(f"rtkvm: host {name} did not qualify: {verdict.fault}", err=True)
        raise SystemExit(1)


@host.command("qualifications")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 100), default=20, show_default=True)
@format_option
@click.pass_context
def host_qualifications(ctx: click.Context, name: str, limit: int, fmt: str) -> None:
    """The host's qualifications, newest first."""
    from rtkvm.cli import cloud_qualify

    cloud_qualify.show_history(api_of(ctx).qualifications(name, limit), fmt)


@host.command("set")
@click.argument("name")
@click.option(
    "--rt-waiver",
    "reason",
    default=None,
    metavar="REASON",
    help="Admit this host for RT guests although it is not RT-ready (a lab or demo host), "
    "for this reason; its guests' latency is then not assured.",
)
@click.option("--no-rt-waiver", "clear", is_flag=True, help="Clear the host's RT waiver.")
@click.option(
    "--pcpu-share",
    type=click.IntRange(1, 8),
    default=None,
    help="With a waiver: up to N servers share each RT pCPU (lab hosts with too few RT "
    "pCPUs for a functional test; their vCPUs preempt each other).",
)
@format_option
@click.pass_context
def host_set(
    ctx: click.Context,
    name: str,
    reason: str | None,
    clear: bool,
    pcpu_share: int | None,
    fmt: str,
) -> None:
    """Change a host: set (--rt-waiver REASON) or clear (--no-rt-waiver) its RT waiver."""
    if reason is not None and clear:
        raise click.UsageError("give one of --rt-waiver REASON or --no-rt-waiver, not both")
    if reason is None and not clear and pcpu_share is None:
        raise click.UsageError("give --rt-waiver REASON, --no-rt-waiver or --pcpu-share N")
    api = api_of(ctx)
    if reason is None and not clear:  # only the share changes
        item = plain(api.update_host(name, {"pcpu_share": pcpu_share}))
    else:
        item = plain(api.set_rt_waiver(name, None if clear else reason, pcpu_share=pcpu_share))
    if int(item.get("pcpu_share", 1)) > 1:
        click.echo(
            f"WARNING: up to {item['pcpu_share']} servers share each RT pCPU of host {name}: "
            "for functional tests only, their vCPUs preempt each other.",
            err=True,
        )
    if reason is not None:
        click.echo(
            f"WARNING: RT scheduling guarantees are off for host {name}: RT guests may be "
            f"placed there although its doctor verdict is {item['doctor_verdict']!r}, and "
            f"their latency is not assured (reason: {item['rt_waiver']}). Clear it with "
            f"`rtkvm cloud host set {name} --no-rt-waiver`.",
            err=True,
        )
    if fmt != "json":
        item["rt_waiver"] = waiver_cell(item)
    show_one(item, fmt)


@host.command("plan")
@click.argument("name")
@format_option
@click.pass_context
def host_plan(ctx: click.Context, name: str, fmt: str) -> None:
    """The partition plan (CPU sets) the host's agent last registered."""
    got = api_of(ctx).host_plan(name)
    if fmt == "json":
        show_one(plain(got), fmt)
        return
    plan = {k: v for k, v in got.plan.items() if isinstance(v, str)}
    show_one({"name": got.name, "engine": got.engine, **plan}, fmt)


@host.command("unknown")
@click.argument("name")
@format_option
@click.pass_context
def host_unknown(ctx: click.Context, name: str, fmt: str) -> None:
    """Domains and switch ports the host's agent found but the cloud does not know."""
    show_list(plains(api_of(ctx).host_unknown(name)), UNKNOWN_COLUMNS, fmt)


@cloud.command("check")
@format_option
@click.pass_context
def check_cmd(ctx: click.Context, fmt: str) -> None:
    """Check the control plane's invariants (admins); exit 1 when one is broken.

    No pCPU claimed twice, node and project counters equal to what instances hold, quotas
    kept, usage records open exactly while resources are held, host summaries current.
    """
    result = api_of(ctx).check()
    if fmt == "json":
        show_one(plain(result), fmt)
    elif result.ok:
        click.echo("ok: every invariant of the control plane holds")
    else:
        for line in result.violations:
            click.echo(f"VIOLATION: {line}")
    if not result.ok:
        click.echo(f"rtkvm: {len(result.violations)} invariant(s) broken", err=True)
        raise SystemExit(1)


@cloud.command("usage")
@click.argument("project")
@click.option("--since", type=float, default=None, help="UNIX seconds.")
@format_option
@click.pass_context
def usage(ctx: click.Context, project: str, since: float | None, fmt: str) -> None:
    """RT core-seconds and instance-seconds of a project."""
    show_one(plain(api_of(ctx).usage(project, since)), fmt)


CONNECTION_BUDGET = 4096
"""Connections (and requests) the server takes at once; past it uvicorn answers 503, so one
address may hold only a share of it (``connections_per_source``)."""


def _raise_open_files(want: int) -> None:
    """Lift the soft open-files limit toward ``want`` (as far as the hard limit allows), so
    the connection budget is not cut short by a default of 1024 descriptors."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@cloud.command("serve")
@click.option("--database", envvar="RTKVM_DATABASE_URL", default=None, help="SQLAlchemy URL.")
@click.option("--listen", default="127.0.0.1:8754", show_default=True)
@click.option(
    "--access-log",
    is_flag=True,
    help="Log every HTTP request (off by default: agents poll every few seconds).",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    envvar="RTKVM_TLS_CERT",
    default=None,
    help="Serve HTTPS with this certificate (PEM; with --tls-key).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False),
    envvar="RTKVM_TLS_KEY",
    default=None,
    help="The certificate's private key (PEM).",
)
@click.option(
    "--image-store",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory of uploaded images (default RTKVM_IMAGE_STORE or /var/lib/rtkvm/images); "
    "every API process of one cloud must see the same one.",
)
def serve(
    database: str | None,
    listen: str,
    access_log: bool,
    tls_cert: str | None,
    tls_key: str | None,
    image_store: str | None,
) -> None:
    """Run the API server (migrates the database first); HTTPS with --tls-cert/--tls-key."""
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("give --tls-cert and --tls-key together (or neither)")
    import uvicorn

    from rtkvm.api.app import create_app
    from rtkvm.api.connections import DeadlineH11Protocol
    from rtkvm.settings import Settings

    settings = Settings.from_env()
    if database is not None:
        settings = settings.model_copy(update={"database_url": database})
    if image_store is not None:
        settings = settings.model_copy(update={"image_store_dir": image_store})
    hostname, _, port = listen.rpartition(":")
    _raise_open_files(CONNECTION_BUDGET + 256)
    # rtkvm's own lines (refused tokens, closed connections, repairs) beside uvicorn's
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=hostname or "127.0.0.1",
        port=int(port),
        access_log=access_log,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        http=DeadlineH11Protocol.configured(
            settings.request_read_timeout_s, settings.connections_per_source
        ),
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
        limit_concurrency=CONNECTION_BUDGET,
    )


cloud.add_command(measure)
cloud.add_command(guest)
cloud.add_command(image)
cloud.add_command(keypair)
