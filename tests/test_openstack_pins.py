"""The pinned OpenStack services parse, and their venvs go where the footprint says."""

from __future__ import annotations

from pathlib import Path

from rtkvm.footprint import OPENSTACK_VENV_DIR
from rtkvm.openstack.venvs import pins, venv_dir


def test_placement_is_pinned_to_the_release_rtkvm_is_measured_against() -> None:
    placement = pins()["placement"]
    assert placement.requirements[0] == "openstack-placement==16.0.0"
    assert "psycopg2-binary" in placement.requirements
    assert venv_dir(placement) == Path(OPENSTACK_VENV_DIR.path) / "placement-16.0.0"
