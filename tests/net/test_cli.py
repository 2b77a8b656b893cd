"""``rtkvm net plan`` and ``net networks`` on synthetic hosts: output and bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rtkvm.cli.main import main
from rtkvm.testing.synthetic import SyntheticHost

NETWORKS = '[[network]]\nname = "blue"\nphysnet = "p1"\nvlan = 100\n'
NETWORKS += '[[network]]\nname = "red"\nphysnet = "p2"\n'
WIRING = '[[uplink]]\nphysnet = "p1"\ninterface = "ens1"\n'
WIRING += '[[uplink]]\nphysnet = "p2"\ninterface = "ens9"\n'  # ens9 is not on the host


@pytest.fixture
def host(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    SyntheticHost(sockets=2, cores_per_socket=4, nics={"ens1": 0}).write(root)
    (tmp_path / "nets.toml").write_text(NETWORKS)
    (tmp_path / "wiring.toml").write_text(WIRING)
    return tmp_path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def test_plan_json(host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        ["net", "plan", "--root", str(host / "root"), "--housekeeping", "0,4",
         "--rt-vcpus", "1-2", "--dataplane-cpus", "3", "--networks", str(host / "nets.toml"),
         "--wiring", str(host / "wiring.toml"), "--format", "json"],
        capsys,
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["layout"]["other_config"]["pmd-cpu-mask"] == "0x8"
    assert data["layout"]["other_config"]["dpdk-socket-mem"] == "512,0"
    assert [b["name"] for b in data["layout"]["bridges"]] == ["rt-p1"]
    assert data["availability"]["available"] == ["blue"]
    assert "'ens9'" in data["availability"]["unavailable"]["red"]


def test_plan_refuses_a_host_with_no_dataplane_cpus(
    host: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(
        ["net", "plan", "--root", str(host / "root"), "--housekeeping", "0", "--rt-vcpus", "1-7"],
        capsys,
    )
    assert code == 2
    assert "not enough CPUs for a separate data plane" in err


def test_bad_vlan_in_networks_file(host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (host / "nets.toml").write_text('[[network]]\nname = "blue"\nphysnet = "p1"\nvlan = 4095\n')
    code, _, err = _run(
        ["net", "networks", "--root", str(host / "root"), "--no-lldp",
         "--networks", str(host / "nets.toml"), "--wiring", str(host / "wiring.toml")],
        capsys,
    )  # fmt: skip
    assert code == 2 and "VLAN id 4095 is out of range" in err


def test_networks_report(host: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        ["net", "networks", "--root", str(host / "root"), "--no-lldp",
         "--networks", str(host / "nets.toml"), "--wiring", str(host / "wiring.toml")],
        capsys,
    )  # fmt: skip
    assert code == 0
    assert "available: blue" in out
    assert "unavailable: red" in out
