"""``rtkvm up`` / ``rtkvm down`` / ``rtkvm status``: the all-in-one control plane. Thin.

Wires options into :class:`rtkvm.allinone.stack.AllInOne` and prints what it
did. The admin token is never printed in full unless ``--show-admin-token``
is given; otherwise the output says where it is. No logic beyond that.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from rtkvm.allinone.stack import AgentOptions, AllInOne, DownResult, Status, UpRequest, UpResult
from rtkvm.allinone.state import DEFAULT_STATE_DIR, StateDir
from rtkvm.guest import lifecycle
from rtkvm.wire.node import Engine

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Database, tokens, plan, pid and log files of the all-in-one installation.",
)
FilePath = click.Path(exists=True, dir_okay=False, path_type=Path)
DirPath = click.Path(file_okay=False, path_type=Path)


@click.command("up")
@state_dir_option
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="API port on 127.0.0.1 [default: the last one, else 8754].",
)
@click.option("--host-name", default=None, help="This host's name [default: the hostname].")
@click.option(
    "--plan",
    "plan_file",
    type=FilePath,
    default=None,
    help="This host's partition plan [default: the planner's, like `make demo`].",
)
@click.option(
    "--accel",
    type=click.Choice(["auto", "kvm", "tcg"]),
    default="auto",
    show_default=True,
    help="Guests' accelerator (auto probes KVM once).",
)
@click.option("--uri", default=lifecycle.DEFAULT_URI, show_default=True, help="libvirt URI.")
@click.option("--root", default="/", show_default=True, help="Host root the agent inspects.")
@click.option("--image", "image_dir", type=DirPath, default=None, help="Guest image directory.")
@click.option("--guest-dir", type=DirPath, default=None, help="Guests' files directory.")
@click.option("--probe-cache", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--wiring", type=FilePath, default=None, help="Host wiring TOML for the agent.")
@click.option("--switch-rundir", type=DirPath, default=None, help="`rtkvm net up` run directory.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Agent's seconds per poll.",
)
@click.option(
    "--stop-timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Agent: seconds a stop waits for the guest to power off after the ACPI power button "
    "(default: the agent's).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=90.0,
    show_default=True,
    help="Seconds to wait for the API, then for the host to be up.",
)
@click.option(
    "--rt-waiver",
    default=None,
    metavar="REASON",
    help="Admit this host for RT guests although it is not RT-ready (a lab or demo machine), "
    "for this reason: their latency is then not assured. It stays set on later runs until "
    "`rtkvm cloud host set NAME --no-rt-waiver`.",
)
@click.option(
    "--pcpu-share",
    type=click.IntRange(1, 8),
    default=None,
    help="With --rt-waiver: up to N servers share each RT pCPU of this lab host (a machine "
    "with fewer RT pCPUs than a functional test needs; never for latency).",
)
@click.option(
    "--tls/--no-tls",
    default=None,
    help="Serve the API over HTTPS with a self-signed certificate kept in the state "
    "directory (clients are told to verify it) [default: as the last up, else HTTP].",
)
@click.option(
    "--engine",
    type=click.Choice(["rtkvm", "openstack"]),
    default="rtkvm",
    show_default=True,
    help="Who builds this host's guests: rtkvm, or Nova (the OpenStack-mode agent runs; "
    "the API keeps the host's and its guests' RT state and places nothing there).",
)
@click.option("--os-cloud", default=None, help="--engine openstack: the cloud in clouds.yaml.")
@click.option(
    "--os-config-file",
    type=FilePath,
    default=None,
    help="--engine openstack: the clouds.yaml (`rtkvm openstack up` writes one).",
)
@click.option(
    "--node-dir",
    type=DirPath,
    default=None,
    help="--engine openstack: the agent's state (the node's waiver, its last verdicts) "
    "[default: the OpenStack agent's].",
)
@click.option("--show-admin-token", is_flag=True, help="Print the admin token in full.")
def up(
    state_dir: Path,
    port: int | None,
    host_name: str | None,
    plan_file: Path | None,
    accel: str,
    uri: str,
    root: str,
    image_dir: Path | None,
    guest_dir: Path | None,
    probe_cache: Path | None,
    wiring: Path | None,
    switch_rundir: Path | None,
    interval: float,
    stop_timeout: float | None,
    timeout: float,
    rt_waiver: str | None,
    pcpu_share: int | None,
    tls: bool | None,
    engine: str,
    os_cloud: str | None,
    os_config_file: Path | None,
    node_dir: Path | None,
    show_admin_token: bool,
) -> None:
    """Run the API (SQLite) and this host's agent in the background; idempotent."""
    agent_options = AgentOptions(
        accel=accel,
        root=root,
        interval=interval,
        uri=uri,
        image=image_dir,
        guest_dir=guest_dir,
        probe_cache=probe_cache,
        wiring=wiring,
        switch_rundir=switch_rundir,
        stop_timeout=stop_timeout,
        engine=cast(Engine, engine),
        os_cloud=os_cloud,
        os_config_file=os_config_file,
        node_dir=node_dir,
    )
    request = UpRequest(port=port, host=host_name, plan=plan_file, agent=agent_options,
                        timeout=timeout, rt_waiver=rt_waiver, pcpu_share=pcpu_share,
                        tls=tls)  # fmt: skip
    stack = AllInOne(StateDir(state_dir))
    result = stack.up(request)
    _print_up(stack.state, result, show_admin_token)


def _print_up(state: StateDir, result: UpResult, show_token: bool) -> None:
    for action in result.actions:
        click.echo(f"  {action}")
        if action in result.warnings:
            click.echo(f"WARNING: {action}", err=True)
    click.echo(
        f"rtkvm is up: API {result.url} (pid {result.api_pid}), agent of host {result.host} "
        f"(pid {result.agent_pid}); host {result.host} is up ({result.seconds:.1f} s)"
    )
    token = state.read_secret(state.admin_token_file) or ""
    shown = token if show_token else f"$(cat {state.admin_token_file})"
    click.echo("Use the CLI as admin:")
    click.echo(f"  export RTKVM_URL={result.url}")
    click.echo(f"  export RTKVM_TOKEN={shown}")
    if result.ca_file is not None:
        click.echo(f"  export RTKVM_CA_FILE={result.ca_file}")
    click.echo("  rtkvm cloud host list")
    click.echo(f"Logs: {state.log_file('api')}, {state.log_file('agent')}")
    click.echo(f"Stop with `rtkvm down` (the state stays in {state.root}; --purge removes it).")


@click.command("down")
@state_dir_option
@click.option("--purge", is_flag=True, help="Also remove the state directory (database, tokens).")
def down(state_dir: Path, purge: bool) -> None:
    """Stop the agent and the API (SIGTERM, then SIGKILL after 20 s); keep the state."""
    result = AllInOne(StateDir(state_dir)).down(purge=purge)
    _print_down(state_dir, result)


def _print_down(state_dir: Path, result: DownResult) -> None:
    for item in result.stopped:
        if item.how in ("stopped", "killed"):
            how = "stopped" if item.how == "stopped" else "did not stop on SIGTERM: killed"
            click.echo(f"{item.name}: {how} (pid {item.pid}, {item.seconds:.1f} s)")
        elif item.how == "stale":
            click.echo(f"{item.name}: was not running (stale pid file of pid {item.pid} removed)")
        else:
            click.echo(f"{item.name}: was not running")
    if result.servers:
        click.echo(
            f"{len(result.servers)} server(s) stay defined, their guests untouched; the next "
            f"`rtkvm up` adopts them: {', '.join(result.servers)}"
        )
    if result.purged:
        click.echo(f"removed {state_dir}")
    else:
        click.echo(f"state kept in {state_dir} (`rtkvm up` starts again from it)")


@click.command("status")
@state_dir_option
def status(state_dir: Path) -> None:
    """Say whether the all-in-one API and agent run, and the host's status in the API."""
    _print_status(AllInOne(StateDir(state_dir)).status())


def _print_status(st: Status) -> None:
    if st.config is None:
        click.echo(f"rtkvm up has not run with {st.state_dir}")
    else:
        click.echo(f"state {st.state_dir}: API {st.config.url}, host {st.config.host}")
    for proc in st.procs:
        if proc.pid is not None:
            click.echo(f"{proc.name}: running (pid {proc.pid}, log {proc.log})")
        elif proc.stale_pid is not None:
            click.echo(f"{proc.name}: not running (stale pid file: pid {proc.stale_pid})")
        else:
            click.echo(f"{proc.name}: not running")
    if st.host_status is not None:
        click.echo(f"host in the API: {st.host_status}; servers: {st.servers}")
