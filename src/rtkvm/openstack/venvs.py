"""Virtualenvs of OpenStack services, installed from PyPI at the versions rtkvm pins.

:func:`ensure_venv` makes ``/var/cache/rtkvm/openstack/SERVICE-VERSION`` (a
footprint path: ``rtkvm host clean --all`` removes it) with the service's
package and the extras of ``rtkvm/data/openstack.toml`` in it, once: a venv
whose marker file names the same pins is kept. A failed install says which
command failed and its last lines. This module must not start a service.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rtkvm.errors import RuntimeSetupError
from rtkvm.footprint import OPENSTACK_VENV_DIR
from rtkvm.shipped import parse_toml, shipped_text

MARKER = "rtkvm-pins.txt"


@dataclass(frozen=True)
class Pin:
    service: str
    package: str
    version: str
    extras: tuple[str, ...]

    @property
    def requirements(self) -> list[str]:
        return [f"{self.package}=={self.version}", *self.extras]


def pins() -> dict[str, Pin]:
    """The pinned services of ``rtkvm/data/openstack.toml``."""
    table = parse_toml(shipped_text("openstack.toml"), "rtkvm/data/openstack.toml")
    return {
        name: Pin(name, str(s["package"]), str(s["version"]), tuple(s.get("extras", ())))
        for name, s in table["services"].items()
    }


def venv_dir(pin: Pin, base: Path | None = None) -> Path:
    return (base or Path(OPENSTACK_VENV_DIR.path)) / f"{pin.service}-{pin.version}"


def ensure_venv(service: str, base: Path | None = None) -> Path:
    """The service's virtualenv, installed now unless it is there with the same pins."""
    pin = pins()[service]
    target = venv_dir(pin, base)
    marker = target / MARKER
    wanted = "\n".join(pin.requirements) + "\n"
    if marker.is_file() and marker.read_text() == wanted:
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    python = getattr(sys, "_base_executable", sys.executable)
    _run([python, "-m", "venv", str(target)], f"make the {service} virtualenv")
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run([*pip, "--upgrade", "pip"], "upgrade pip in it")
    _run([*pip, *pin.requirements], f"install {' '.join(pin.requirements)}")
    marker.write_text(wanted)
    return target


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env={**os.environ, "PIP_NO_INPUT": "1"}
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise RuntimeSetupError(f"could not {what} ({' '.join(cmd[:4])} ...): {tail}")
