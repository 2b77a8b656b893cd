"""``rtkvm host plan`` through click: the table, the JSON object and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtkvm.cli.host_plan import plan
from rtkvm.cpuset import CpuSet
from rtkvm.errors import PlanError
from rtkvm.testing.synthetic import two_socket_smt


@pytest.fixture()
def root(tmp_path: Path) -> str:
    return str(two_socket_smt().write(tmp_path))


def test_json_has_the_sets_and_the_kernel_arguments(root: str) -> None:
    args = ["--root", root, "--rt-cores", "4", "--dataplane-cores", "2"]
    args += ["--dataplane-near", "ens1f0", "--format", "json"]
    result = CliRunner().invoke(plan, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    sets = {k: CpuSet.parse(document[k]) for k in ("housekeeping", "rt_vcpu", "dataplane")}
    assert sum(len(s) for s in sets.values()) == 32
    assert CpuSet().union(*sets.values()) == CpuSet(range(32))
    assert len(sets["rt_vcpu"]) == 8 and len(sets["dataplane"]) == 4
    assert isinstance(document["kernel_cmdline"], list)
    assert f"nohz_full={document['isolated']}" in document["kernel_cmdline"]
    assert [a["arg"] for a in document["kernel_args"]] == document["kernel_cmdline"]
    assert all(a["why"] for a in document["kernel_args"])
    assert document["nova"]["cpu_dedicated_set"] == document["rt_vcpu"]
    assert [n["node"] for n in document["nodes"]] == [0, 1]
    assert document["request"]["dataplane_near"] == "ens1f0"


def test_table_shows_nodes_arguments_and_nova(root: str) -> None:
    result = CliRunner().invoke(plan, ["--root", root, "--rt-cores", "2", "--smt", "idle-sibling"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("NODE"))
    assert lines[header + 1].split()[:2] == ["0", "8"]
    assert lines[header + 2].split()[:2] == ["1", "8"]
    assert "idle_siblings  30-31" in lines
    assert "  isolcpus=managed_irq,domain,14-15,30-31" in lines
    assert "  cpu_dedicated_set = 14-15" in lines
    assert "  cpu_shared_set = 0-13,16-29" in lines


def test_nothing_isolated_says_so(root: str) -> None:
    result = CliRunner().invoke(plan, ["--root", root, "--rt-cores", "0"])
    assert result.exit_code == 0, result.output
    assert "Kernel arguments: none (the plan isolates no CPU)" in result.output


def test_impossible_request_raises_plan_error_for_main_to_print(root: str) -> None:
    result = CliRunner().invoke(plan, ["--root", root, "--rt-cores", "15"])
    assert isinstance(result.exception, PlanError)
    assert "ask for at most 14 RT cores" in str(result.exception)


def test_rt_cores_is_required(root: str) -> None:
    result = CliRunner().invoke(plan, ["--root", root])
    assert result.exit_code == 2
    assert "--rt-cores" in result.output
