"""Guests created with vhost-user NICs and a static address, and the overcommit warning."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from rtkvm.domain.design import VhostUserNic
from rtkvm.errors import InputError
from rtkvm.guest import lifecycle
from rtkvm.guest.create import CreatePlan, Image, default_spec, plan_guest, shared_pcpus_warning
from rtkvm.testing.guests import make_plan, make_topology


def _plan(name: str, tmp_path: Path, rt_cpus: str = "1", **kw: object) -> CreatePlan:
    return plan_guest(
        name,
        default_spec(name),
        make_plan("0", rt_cpus),
        make_topology(cores_per_node=4),
        Image(tmp_path / "vmlinuz", tmp_path / "initramfs.cpio.gz"),
        [],
        accel="tcg",
        guest_dir=tmp_path,
        **kw,  # type: ignore[arg-type]
    )


def test_nic_and_address_reach_the_domain(tmp_path: Path) -> None:
    sock = "/run/rtkvm/vhost/g1.0.sock"
    created = _plan("g1", tmp_path, nics=(VhostUserNic(sock),), address="10.77.0.11/24")
    root = etree.fromstring(created.xml.encode())
    (iface,) = root.findall("./devices/interface")
    assert iface.get("type") == "vhostuser"
    source = iface.find("source")
    assert source is not None and (source.get("path"), source.get("mode")) == (sock, "server")
    assert root.find("./memoryBacking/access").get("mode") == "shared"  # type: ignore[union-attr]
    assert lifecycle.cmdline_of(created.xml).endswith("rtkvm.ip=10.77.0.11/24")
    assert any("vectors=0" in w for w in created.warnings)  # TCG: MSI-X workaround said


def test_no_nic_keeps_the_command_line_without_network_words(tmp_path: Path) -> None:
    assert "rtkvm." not in lifecycle.cmdline_of(_plan("g", tmp_path).xml)


def test_address_without_nic_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="an address needs a NIC"):
        _plan("g", tmp_path, address="10.77.0.11/24")


def test_bad_address_is_refused_before_anything_is_defined(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no prefix length"):
        _plan("g", tmp_path, nics=(VhostUserNic("/run/x.sock"),), address="10.77.0.11")


def test_guests_planned_one_by_one_on_one_pcpu_get_a_loud_warning(tmp_path: Path) -> None:
    plans = {n: _plan(n, tmp_path) for n in ("g1", "g2", "g3")}
    warning = shared_pcpus_warning(plans)
    assert warning is not None and warning.startswith("WARNING")
    assert "pCPU 1: g1, g2, g3" in warning and "means nothing" in warning


def test_guests_on_their_own_pcpus_get_no_warning(tmp_path: Path) -> None:
    plans = {"g1": _plan("g1", tmp_path, rt_cpus="1"), "g2": _plan("g2", tmp_path, rt_cpus="2")}
    assert shared_pcpus_warning(plans) is None
