"""The all-in-one's ``clouds.yaml``: one admin cloud, in the format every OpenStack client reads.

:func:`write_clouds_yaml` writes it (0600: it holds the admin's password).
Reading a ``clouds.yaml`` (this one, or an existing cloud's) is the job of
:mod:`rtkvm.openstack.session`, through openstacksdk's own loader. This module
must not talk to a cloud.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from rtkvm.openstack.aio.layout import AioSettings


def clouds_yaml_text(settings: AioSettings, admin_password: str) -> str:
    cloud = {
        "auth": {
            "auth_url": settings.auth_url,
            "username": "admin",
            "password": admin_password,
            "project_name": "admin",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": settings.region,
        "interface": "public",
        "identity_api_version": 3,
    }
    head = "# rtkvm openstack up: the all-in-one's admin (tests, demos; not production)\n"
    return head + yaml.safe_dump({"clouds": {settings.cloud: cloud}}, sort_keys=False)


def write_clouds_yaml(path: Path, settings: AioSettings, admin_password: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(clouds_yaml_text(settings, admin_password))
