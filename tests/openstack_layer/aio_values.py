"""The all-in-one's config values for tests: fixed passwords, databases on a fake socket."""

from __future__ import annotations

from pathlib import Path

from rtkvm.openstack.aio.configs import ConfigValues
from rtkvm.openstack.aio.layout import Secrets, StackLayout, aio_settings

SECRETS = Secrets(admin="a-pw", service="s-pw", rabbit="r-pw")
DATABASES = ("keystone", "placement", "glance", "nova_api", "nova_cell0", "nova_cell1", "neutron")


def aio_values(root: Path) -> ConfigValues:
    urls = {n: f"postgresql+psycopg2://postgres@/{n}?host=/x" for n in DATABASES}
    return ConfigValues(
        StackLayout(root), aio_settings(), SECRETS, Path("/venv"), "node1", "qemu:///system", urls
    )
