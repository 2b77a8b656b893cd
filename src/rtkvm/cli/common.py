"""Shared CLI pieces: the --root and --format options and error handling."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from rtkvm.cpuset import CpuSet
from rtkvm.errors import InputError
from rtkvm.host.partition import PartitionPlan
from rtkvm.hostfs import HostFS
from rtkvm.wire.base import DEFAULT_URL

if TYPE_CHECKING:
    from rtkvm.wire.agent_client import AgentClient

F = TypeVar("F", bound=Callable[..., Any])

root_option = click.option(
    "--root",
    "root",
    default="/",
    show_default=True,
    type=click.Path(exists=True, file_okay=False),
    help="Read the host from this directory instead of / (a captured or synthetic tree).",
)

format_option = click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for machines.",
)


def open_host(root: str) -> HostFS:
    """The HostFS for a --root value."""
    return HostFS(root)


def guest_boot_options(command: F) -> F:
    """The options of every command that boots guests: accelerator, image, guest files, probe.

    Shared by `rtkvm guest create` and `rtkvm agent`, so both boot guests the same way.
    """
    from rtkvm.guest.create import DEFAULT_GUEST_DIR
    from rtkvm.image.build import DEFAULT_OUTPUT
    from rtkvm.runtime.facts import DEFAULT_PROBE_CACHE

    options = [
        click.option(
            "--accel",
            type=click.Choice(["auto", "kvm", "tcg"]),
            default="auto",
            show_default=True,
            help="auto: KVM if a bounded boot probe succeeds, else TCG.",
        ),
        click.option(
            "--image",
            "image_dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=DEFAULT_OUTPUT,
            show_default=True,
            help="Built guest image directory.",
        ),
        click.option(
            "--guest-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=DEFAULT_GUEST_DIR,
            show_default=True,
            help="Guests' files (serial logs).",
        ),
        click.option(
            "--probe-cache",
            type=click.Path(dir_okay=False, path_type=Path),
            default=DEFAULT_PROBE_CACHE,
            show_default=True,
            help="Where the KVM boot probe's answer is cached.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def resolve_plan(
    plan_file: str | Path | None,
    housekeeping: str | None,
    rt_cpus: str | None,
    online: Callable[[], CpuSet] | None = None,
) -> PartitionPlan:
    """The plan of --plan FILE, or one made of --housekeeping CPUS and --rt-vcpus CPUS
    (default: every other online CPU, when ``online`` can say which)."""
    if plan_file:
        return PartitionPlan.load(plan_file)
    if not housekeeping:
        raise InputError("give --plan FILE, or --housekeeping CPUS (and --rt-vcpus CPUS)")
    hk = CpuSet.parse(housekeeping)
    if rt_cpus is not None:
        rt = CpuSet.parse(rt_cpus)
    elif online is not None:
        rt = online() - hk
    else:
        raise InputError("give --rt-vcpus CPUS with --housekeeping, or --plan FILE")
    return PartitionPlan(housekeeping=hk, rt_vcpu=rt, dataplane=CpuSet())


def read_text(path: Path, what: str) -> str:
    """A user's input file; InputError naming ``what`` when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} {path}: {exc}") from None


def read_secret_file(path: Path, what: str, fill_with: str) -> str:
    """A token from a file; refused when others may read it or it is empty. ``what`` names
    whom the token acts for, ``fill_with`` says where a token comes from."""
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"cannot read the token {path}: {exc.strerror or exc}") from None
    if mode & 0o077:
        raise InputError(
            f"{path} can be read by other users (mode {stat.S_IMODE(mode):04o}): the token acts "
            f"for {what}; run `chmod 600 {path}`"
        )
    if not token:
        raise InputError(f"{path} is empty: put {fill_with} in it")
    return token


NODE_PLAN = Path("/etc/rtkvm/plan.json")
"""Where a node's partition plan lives for the commands that act for the node."""

node_plan_option = click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=NODE_PLAN,
    show_default=True,
    help="This host's partition plan (rtkvm host plan -f json).",
)
wiring_option = click.option(
    "--wiring",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Host wiring TOML ([[uplink]] physnet/interface): the physical networks it carries.",
)


def rtkvm_api_options(command: F) -> F:
    """rtkvm's API for a node whose guests Nova builds: URL, the host's agent token, CA.

    Without ``--agent-token-file`` the command reports nothing to rtkvm's API."""
    command = click.option(
        "--ca-file",
        envvar="RTKVM_CA_FILE",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Verify an https rtkvm API against this CA (or its self-signed certificate).",
    )(command)
    command = click.option(
        "--agent-token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="This host's agent token for rtkvm's API (`rtkvm cloud host enroll NAME`): "
        "the host, its guests' RT verdicts and measurements are kept there too.",
    )(command)
    return click.option(
        "--rtkvm-api",
        "rtkvm_url",
        envvar="RTKVM_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="rtkvm's API (with --agent-token-file).",
    )(command)


def agent_ledger(url: str, token_file: Path | None, ca_file: str | None) -> AgentClient | None:
    """The rtkvm API client of ``rtkvm_api_options`` (None: no token file given)."""
    if token_file is None:
        return None
    from rtkvm.wire.agent_client import AgentClient

    token = read_secret_file(
        token_file, "this host", "the agent token of `rtkvm cloud host enroll NAME`"
    )
    return AgentClient(url, token, ca_file=ca_file)
