"""`rtkvm openstack traits` on a captured host tree against the real Placement."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from click.testing import CliRunner

from rtkvm.cli.main import cli
from rtkvm.cpuset import CpuSet
from rtkvm.errors import InputError, PlacementError
from rtkvm.host.partition import PartitionPlan
from rtkvm.openstack.placement import PlacementClient
from rtkvm.testing.placement import TOKEN, PlacementService

HOST_ROOT = Path(__file__).parents[1] / "fixtures" / "hosts" / "tuned-2node"
WIRING = '[[uplink]]\nphysnet = "blue"\ninterface = "ens1f0"\n'
WIRING += '[[uplink]]\nphysnet = "red"\ninterface = "ens9"\n'  # ens9 is not on the host


def _files(tmp_path: Path) -> list[str]:
    token = tmp_path / "placement.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    plan = tmp_path / "plan.json"
    plan.write_text(
        PartitionPlan(
            housekeeping=CpuSet.parse("0-1"), rt_vcpu=CpuSet.parse("2-7"), dataplane=CpuSet()
        ).to_json()
    )
    wiring = tmp_path / "wiring.toml"
    wiring.write_text(WIRING)
    return ["--token-file", str(token), "--plan", str(plan), "--wiring", str(wiring),
            "--root", str(HOST_ROOT)]  # fmt: skip


def test_the_host_s_verdict_and_wires_become_traits_beside_nova_s(
    placement_service: PlacementService, placement: PlacementClient, tmp_path: Path
) -> None:
    name = f"compute-{uuid.uuid4().hex[:8]}"
    node = placement.create_provider(name)
    placement.put_traits(node.uuid, frozenset({"COMPUTE_NODE"}), node.generation)
    args = ["openstack", "traits", "--placement-url", placement_service.endpoint,
            "--provider", name, *_files(tmp_path), "-f", "json"]  # fmt: skip
    dry = CliRunner().invoke(cli, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)
    assert placement.traits(node.uuid).traits == {"COMPUTE_NODE"}  # a dry run writes nothing
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["added"] == planned["added"] == result["traits"]
    assert "CUSTOM_RTKVM_NET_BLUE" in result["traits"]  # ens1f0 is there
    assert "CUSTOM_RTKVM_NET_RED" not in result["traits"]  # ens9 is not
    ready = result["doctor_verdict"] == "ready"
    assert ("CUSTOM_RTKVM_RT_READY" in result["traits"]) is ready
    assert placement.traits(node.uuid).traits == {"COMPUTE_NODE", *result["traits"]}


def test_an_unreadable_token_and_an_unknown_node_are_said_plainly(
    placement_service: PlacementService, tmp_path: Path
) -> None:
    args = ["openstack", "traits", "--placement-url", placement_service.endpoint,
            "--provider", "nowhere", *_files(tmp_path)]  # fmt: skip
    unknown = CliRunner().invoke(cli, args)
    assert isinstance(unknown.exception, PlacementError)
    assert "Placement has no resource provider 'nowhere'" in str(unknown.exception)
    (tmp_path / "placement.token").chmod(0o644)
    loose = CliRunner().invoke(cli, args)
    assert isinstance(loose.exception, InputError)
    assert "can be read by other users" in str(loose.exception)


def test_the_traits_come_from_a_clouds_yaml_too(
    placement_service: PlacementService, placement: PlacementClient, tmp_path: Path
) -> None:
    name = f"compute-{uuid.uuid4().hex[:8]}"
    placement.create_provider(name)
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  site:\n    auth_type: admin_token\n"
        f"    auth: {{endpoint: '{placement_service.endpoint}', token: admin}}\n"
    )
    args = ["openstack", "traits", "--os-cloud", "site", "--os-config-file", str(clouds),
            "--provider", name, *_files(tmp_path)[2:], "-f", "json"]  # fmt: skip
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert "CUSTOM_RTKVM_NET_BLUE" in json.loads(done.output)["added"]
    neither = CliRunner().invoke(cli, ["openstack", "traits", *_files(tmp_path)[2:]])
    assert neither.exit_code == 2 and "--os-cloud NAME" in neither.output
