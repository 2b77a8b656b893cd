"""systemd units for a production host: the switch, the agent and the API, started at boot.

rtkvm starts its own daemons where there is no systemd (this development
machine, CI). On a host with systemd an operator installs the units
(``rtkvm host units --write``): :func:`render` fills the templates shipped in
``rtkvm/data/systemd`` with this installation's ``rtkvm`` executable, and
:func:`write` puts them in the unit directory. A unit file there that rtkvm
did not write (no :data:`MARKER`) is never overwritten or removed. After a
reboot the switch comes back with the networks of /etc/rtkvm, and the agent
registers again and reconciles (its own start-up). This module must not
start, stop or enable anything: systemctl is the operator's.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rtkvm.errors import HostWriteError, InputError

UNIT_DIR = Path("/etc/systemd/system")
NODE_UNITS = ("rtkvm-switch.service", "rtkvm-agent.service")
API_UNIT = "rtkvm-api.service"
MARKER = "written by `rtkvm host units --write`"
"""Every shipped unit says so in its first comment: how a file is known to be rtkvm's."""


def template(name: str) -> str:
    return resources.files("rtkvm.data").joinpath("systemd").joinpath(name).read_text("utf-8")


def render(name: str, rtkvm: str) -> str:
    if not Path(rtkvm).is_absolute():
        raise InputError(f"{rtkvm}: systemd needs the rtkvm executable's absolute path")
    return template(name).replace("{rtkvm}", rtkvm)


def _ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text("utf-8")
    except OSError:
        return False


def write(dest: Path, names: tuple[str, ...], rtkvm: str) -> list[Path]:
    """Write the units; refused (nothing written) when a file there is not rtkvm's."""
    foreign = [dest / n for n in names if (dest / n).exists() and not _ours(dest / n)]
    if foreign:
        raise InputError(
            f"{', '.join(map(str, foreign))} exist and were not written by rtkvm: move them "
            "away first, or give another --dest"
        )
    written = []
    for name in names:
        path = dest / name
        try:
            dest.mkdir(parents=True, exist_ok=True)
            path.write_text(render(name, rtkvm), "utf-8")
        except OSError as exc:
            raise HostWriteError(str(path), exc.strerror or str(exc)) from None
        written.append(path)
    return written


def remove(dest: Path, names: tuple[str, ...]) -> list[Path]:
    """Remove the units rtkvm wrote; others are left alone."""
    removed = []
    for name in names:
        path = dest / name
        if path.exists() and _ours(path):
            path.unlink()
            removed.append(path)
    return removed
