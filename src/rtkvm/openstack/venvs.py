"""Virtualenvs of OpenStack services, installed from PyPI at the versions rtkvm pins.

:func:`ensure_venv` makes ``/var/cache/rtkvm/openstack/NAME-TAG`` (a
footprint path: ``rtkvm host clean --all`` removes it) with the services and
extras that ``rtkvm/data/openstack.toml`` lists for venv NAME, once: a venv
whose marker file names the same pins is kept (``placement``: Placement alone,
for tests and benchmarks; ``cloud``: every service of the all-in-one). A failed install says which
command failed and its last lines. This module must not start a service.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rtkvm.errors import RuntimeSetupError
from rtkvm.footprint import OPENSTACK_VENV_DIR
from rtkvm.shipped import parse_toml, shipped_text

MARKER = "rtkvm-pins.txt"


@dataclass(frozen=True)
class Pin:
    service: str
    package: str
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class VenvSpec:
    """One virtualenv: the pinned services in it and the extra packages they need."""

    name: str
    services: tuple[Pin, ...]
    extras: tuple[str, ...]

    @property
    def requirements(self) -> list[str]:
        return [p.requirement for p in self.services] + list(self.extras)

    @property
    def tag(self) -> str:
        """The directory's suffix: the one service's version, or a digest of the pins."""
        if len(self.services) == 1:
            return self.services[0].version
        digest = hashlib.sha256("\n".join(self.requirements).encode()).hexdigest()
        return digest[:10]


def _table() -> dict[str, Any]:
    return parse_toml(shipped_text("openstack.toml"), "rtkvm/data/openstack.toml")


def pins() -> dict[str, Pin]:
    """The pinned services of ``rtkvm/data/openstack.toml``."""
    return {
        name: Pin(name, str(s["package"]), str(s["version"]))
        for name, s in _table()["services"].items()
    }


def venv_spec(name: str) -> VenvSpec:
    table = _table()["venvs"][name]
    services = pins()
    return VenvSpec(
        name,
        tuple(services[s] for s in table["services"]),
        tuple(str(e) for e in table.get("extras", ())),
    )


def venv_dir(spec: VenvSpec, base: Path | None = None) -> Path:
    return (base or Path(OPENSTACK_VENV_DIR.path)) / f"{spec.name}-{spec.tag}"


def ensure_venv(name: str, base: Path | None = None) -> Path:
    """The virtualenv ``name``, installed now unless it is there with the same pins."""
    spec = venv_spec(name)
    target = venv_dir(spec, base)
    marker = target / MARKER
    wanted = "\n".join(spec.requirements) + "\n"
    if marker.is_file() and marker.read_text() == wanted:
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    python = getattr(sys, "_base_executable", sys.executable)
    _run([python, "-m", "venv", str(target)], f"make the {name} virtualenv")
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run([*pip, "--upgrade", "pip"], "upgrade pip in it")
    _run([*pip, *spec.requirements], f"install {' '.join(spec.requirements)}")
    marker.write_text(wanted)
    return target


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env={**os.environ, "PIP_NO_INPUT": "1"}
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise RuntimeSetupError(f"could not {what} ({' '.join(cmd[:4])} ...): {tail}")
