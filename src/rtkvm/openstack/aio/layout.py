"""Where the OpenStack all-in-one keeps everything, and the settings it is made from.

:class:`AioSettings` is the ``[aio]`` table of ``rtkvm/data/openstack.toml``
(region, cloud name, cell, ports). :class:`StackLayout` names every path under
the stack's directory (default ``/var/lib/rtkvm/openstack``, a footprint path):
``etc/`` (configs, root only: they hold passwords), ``pg/`` (the PostgreSQL
cluster, owned by postgres), ``rabbit/``, ``log/``, ``run/`` (pid files),
``glance/``, ``nova/``, ``neutron/``, ``keystone/`` and ``clouds.yaml``.
:class:`Secrets` are the stack's passwords, made once and kept (0600).
This module must not start, stop or configure anything.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from rtkvm.footprint import OPENSTACK_AIO_DIR
from rtkvm.shipped import parse_toml, shipped_text

LISTEN = "127.0.0.1"


@dataclass(frozen=True)
class AioSettings:
    region: str
    cloud: str
    cell: str
    ports: dict[str, int]

    def url(self, service: str) -> str:
        return f"http://{LISTEN}:{self.ports[service]}"

    @property
    def auth_url(self) -> str:
        return self.url("keystone") + "/v3"


def aio_settings() -> AioSettings:
    table = parse_toml(shipped_text("openstack.toml"), "rtkvm/data/openstack.toml")["aio"]
    return AioSettings(
        str(table["region"]),
        str(table["cloud"]),
        str(table["cell"]),
        {str(k): int(v) for k, v in table["ports"].items()},
    )


@dataclass(frozen=True)
class Secrets:
    admin: str
    service: str
    rabbit: str


class StackLayout:
    """The paths of one all-in-one stack under ``root``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(OPENSTACK_AIO_DIR.path)

    @property
    def marker(self) -> str:
        """A string every process of this stack has on its command line."""
        return str(self.root)

    def etc(self, service: str) -> Path:
        return self.root / "etc" / service

    def log(self, name: str) -> Path:
        return self.root / "log" / f"{name}.log"

    def pid(self, name: str) -> Path:
        return self.root / "run" / f"{name}.pid"

    @property
    def pg(self) -> Path:
        return self.root / "pg"

    @property
    def rabbit(self) -> Path:
        return self.root / "rabbit"

    @property
    def instances(self) -> Path:
        return self.root / "nova" / "instances"

    @property
    def clouds_yaml(self) -> Path:
        return self.root / "clouds.yaml"

    @property
    def secrets_file(self) -> Path:
        return self.root / "etc" / "secrets.json"

    @property
    def steps_file(self) -> Path:
        """The one-time steps done so far (database syncs, Keystone's catalog, cells)."""
        return self.root / "run" / "steps-done"

    def make(self) -> None:
        """The directories, with their modes (the stack's root itself: 0711)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(OPENSTACK_AIO_DIR.mode)
        for sub, mode in (("etc", 0o700), ("log", 0o700), ("run", 0o700)):
            (self.root / sub).mkdir(exist_ok=True)
            (self.root / sub).chmod(mode)
        for sub in (
            "keystone",
            "glance/images",
            "glance/locks",
            "nova/instances",
            "nova/locks",
            "neutron/locks",
            "rabbit",
        ):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def secrets(self) -> Secrets:
        """The stack's passwords: read, or made now and kept (0600)."""
        if self.secrets_file.is_file():
            return Secrets(**json.loads(self.secrets_file.read_text()))
        # hex: a urlsafe token may begin with '-', which a command line reads as an option
        # (keystone-manage bootstrap refused its password so, one start in 64)
        made = Secrets(*(secrets.token_hex(18) for _ in range(3)))
        fd = os.open(self.secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(made), out)
        return made

    def done(self) -> set[str]:
        try:
            return set(self.steps_file.read_text().split())
        except FileNotFoundError:
            return set()

    def mark_done(self, step: str) -> None:
        with self.steps_file.open("a") as out:
            out.write(step + "\n")
