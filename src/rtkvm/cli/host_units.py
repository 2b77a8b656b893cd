"""``rtkvm host units``: systemd units for the switch, the agent and (optionally) the API.

Prints them by default; ``--write`` puts them in the unit directory and says
what to run next, ``--remove`` takes rtkvm's away again. Thin: the work is in
:mod:`rtkvm.host.units`. It never runs systemctl.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from rtkvm.host.units import API_UNIT, NODE_UNITS, UNIT_DIR, remove, render, write


def _rtkvm() -> str:
    beside = Path(sys.executable).with_name("rtkvm")
    return str(beside) if beside.exists() else (shutil.which("rtkvm") or str(beside))


@click.command("units")
@click.option("--api", "with_api", is_flag=True, help="Also the API's unit (its host only).")
@click.option("--write", "do_write", is_flag=True, help="Write them into --dest.")
@click.option("--remove", "do_remove", is_flag=True, help="Remove the units rtkvm wrote.")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=UNIT_DIR,
    show_default=True,
)
def units_cmd(with_api: bool, do_write: bool, do_remove: bool, dest: Path) -> None:
    """systemd units so the switch, the agent (and the API) come back after a reboot."""
    if do_write and do_remove:
        raise click.UsageError("give --write or --remove, not both")
    names = (*NODE_UNITS, API_UNIT) if with_api else NODE_UNITS
    if do_remove:
        gone = remove(dest, (*NODE_UNITS, API_UNIT))
        click.echo("removed: " + (", ".join(map(str, gone)) or "nothing (none was rtkvm's)"))
        return
    rtkvm = _rtkvm()
    if not do_write:
        for name in names:
            click.echo(f"# {dest / name}\n{render(name, rtkvm)}")
        return
    for path in write(dest, names, rtkvm):
        click.echo(f"wrote {path}")
    click.echo(
        "next: put plan.json, networks.toml, wiring.toml, agent.token (0600) and agent.env "
        "(RTKVM_URL=...)" + (" and api.env" if with_api else "") + " in /etc/rtkvm, then "
        f"`systemctl daemon-reload && systemctl enable --now {' '.join(names)}`"
    )
    if not Path("/run/systemd/system").is_dir():
        click.echo(
            "note: systemd does not run on this machine: the units are written, not active",
            err=True,
        )
