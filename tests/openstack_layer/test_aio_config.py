"""The all-in-one's configuration: templates filled, clouds.yaml readable by openstacksdk."""

from __future__ import annotations

import configparser
from pathlib import Path

from tests.openstack_layer.aio_values import aio_values

from rtkvm.openstack.aio.configs import FILES, render_all, write_all
from rtkvm.openstack.aio.layout import StackLayout, aio_settings
from rtkvm.openstack.cloudsyaml import write_clouds_yaml
from rtkvm.openstack.session import CloudSession


def test_every_template_fills_and_parses_and_listens_only_on_localhost(tmp_path: Path) -> None:
    files = render_all(aio_values(tmp_path))
    assert set(files) == set(FILES)
    for rel, text in files.items():
        ini = configparser.ConfigParser(interpolation=None, strict=False)
        ini.read_string(text)  # every placeholder was filled, and it is INI
        assert "{" not in text, rel
    nova = configparser.ConfigParser(interpolation=None, strict=False)
    nova.read_string(files["nova/nova.conf"])
    assert nova["DEFAULT"]["transport_url"] == "rabbit://rtkvm:r-pw@127.0.0.1:25005/"
    assert nova["placement"]["password"] == "s-pw" and nova["DEFAULT"]["host"] == "node1"
    assert "127.0.0.1" in nova["keystone_authtoken"]["auth_url"]
    changed = write_all(StackLayout(tmp_path), files)
    assert sorted(changed) == sorted(files)
    assert (tmp_path / "etc/nova/nova.conf").stat().st_mode & 0o777 == 0o600  # passwords
    assert write_all(StackLayout(tmp_path), files) == []  # unchanged: nothing to restart


def test_the_stack_s_passwords_are_made_once(tmp_path: Path) -> None:
    layout = StackLayout(tmp_path)
    layout.make()
    first = layout.secrets()
    assert layout.secrets() == first and len({first.admin, first.service, first.rabbit}) == 3
    assert layout.secrets_file.stat().st_mode & 0o777 == 0o600

    # none may look like an option on a command line (keystone-manage refused '-...' once)
    for _ in range(200):
        layout.secrets_file.unlink()
        made = layout.secrets()
        assert not any(v.startswith("-") for v in (made.admin, made.service, made.rabbit))


def test_clouds_yaml_is_read_back_by_openstacksdk_s_own_loader(tmp_path: Path) -> None:
    settings = aio_settings()
    path = tmp_path / "clouds.yaml"
    write_clouds_yaml(path, settings, "a-pw")
    session = CloudSession(settings.cloud, path)
    auth = session.region.config["auth"]
    assert auth["auth_url"] == "http://127.0.0.1:25000/v3" and auth["password"] == "a-pw"
    assert session.region_name == "RegionOne"
    assert path.stat().st_mode & 0o777 == 0o600
