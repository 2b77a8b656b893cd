"""`rtkvm openstack flavor sync`: rtkvm flavors into Nova, with the traits Nova must require.

Also :func:`cloud_options`, the ``--os-cloud``/``--os-config-file`` pair every
``rtkvm openstack`` command that talks to a cloud takes (as openstack's own CLI:
``OS_CLOUD`` and ``OS_CLIENT_CONFIG_FILE``). Thin: options in, the work is in
:mod:`rtkvm.openstack.flavors`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from rtkvm.domain.spec import load_flavor
from rtkvm.openstack.flavors import nova_flavor, sync
from rtkvm.openstack.session import CloudSession

F = TypeVar("F", bound=Callable[..., Any])


def cloud_options(fn: F) -> F:
    fn = click.option(
        "--os-config-file",
        envvar="OS_CLIENT_CONFIG_FILE",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help="A clouds.yaml [default: OS_CLIENT_CONFIG_FILE, else the standard places].",
    )(fn)
    return click.option(
        "--os-cloud",
        envvar="OS_CLOUD",
        required=True,
        help="The cloud in clouds.yaml (or OS_CLOUD); `rtkvm openstack up` makes rtkvm-aio.",
    )(fn)


def flavor_group(group: click.Group) -> None:
    @group.group("flavor")
    def flavor() -> None:
        """Nova flavors made from rtkvm flavors."""

    @flavor.command("sync")
    @click.argument(
        "files",
        nargs=-1,
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
    )
    @click.option(
        "--network",
        "networks",
        multiple=True,
        help="A physical network the flavor's servers need (repeat); Nova then requires "
        "CUSTOM_RTKVM_NET_<LABEL> on the host.",
    )
    @click.option(
        "--admit-waived",
        is_flag=True,
        help="A lab flavor: require CUSTOM_RTKVM_RT_ADMITTED (ready OR waived hosts) instead "
        "of CUSTOM_RTKVM_RT_READY. Its servers get no RT assurance on a waived host.",
    )
    @click.option(
        "--disk", "disk_gib", type=int, default=1, show_default=True, help="Root disk GiB."
    )
    @cloud_options
    @click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
    def flavor_sync(
        files: tuple[Path, ...],
        networks: tuple[str, ...],
        admit_waived: bool,
        disk_gib: int,
        os_cloud: str,
        os_config_file: Path | None,
        fmt: str,
    ) -> None:
        """Create or update Nova flavors from rtkvm flavor files (rtkvm's JSON or Nova's)."""
        wanted = []
        for path in files:
            parsed = load_flavor(path.read_text("utf-8"), source=str(path))
            wanted.append(
                nova_flavor(
                    parsed.spec, networks=networks, admit_waived=admit_waived, disk_gib=disk_gib
                )
            )
        done = sync(CloudSession(os_cloud, os_config_file), wanted)
        if fmt == "json":
            click.echo(json.dumps([d.__dict__ for d in done], indent=2, default=list))
            return
        for d in done:
            click.echo(f"{d.name}: {d.action} (id {d.flavor_id})")
            for key, value in sorted(d.set_keys.items()):
                click.echo(f"  set {key}={value}")
            for key in d.removed_keys:
                click.echo(f"  removed {key}")
        if admit_waived:
            click.echo(
                "WARNING: --admit-waived: these flavors also land on hosts under an RT waiver, "
                "which give no RT assurance",
                err=True,
            )
