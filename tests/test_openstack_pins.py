"""The pinned OpenStack services parse, and their venvs go where the footprint says."""

from __future__ import annotations

from pathlib import Path

from rtkvm.footprint import OPENSTACK_VENV_DIR
from rtkvm.openstack.venvs import venv_dir, venv_spec


def test_placement_is_pinned_to_the_release_rtkvm_is_measured_against() -> None:
    placement = venv_spec("placement")
    assert placement.requirements == ["openstack-placement==16.0.0", "psycopg2-binary"]
    assert venv_dir(placement) == Path(OPENSTACK_VENV_DIR.path) / "placement-16.0.0"


def test_the_cloud_venv_holds_every_service_of_the_all_in_one_at_its_pin() -> None:
    cloud = venv_spec("cloud")
    assert cloud.requirements[:5] == [
        "keystone==30.0.0",
        "openstack-placement==16.0.0",
        "glance==33.0.0",
        "nova==34.0.0",
        "neutron==29.0.0",
    ]
    assert {"gunicorn", "libvirt-python", "psycopg2-binary"} <= set(cloud.requirements)
    # a different set of pins is a different directory: an old venv is never reused
    assert venv_dir(cloud).name.startswith("cloud-") and len(venv_dir(cloud).name) == 16
