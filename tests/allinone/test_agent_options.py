"""`rtkvm up --engine openstack` starts the OpenStack-mode agent against the same API."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from rtkvm.allinone.stack import AgentOptions, AllInOne, UpRequest
from rtkvm.allinone.state import StateDir
from rtkvm.cli.main import cli
from rtkvm.errors import InputError


def test_the_openstack_engine_runs_rtkvm_openstack_agent_with_the_host_token() -> None:
    options = AgentOptions(
        engine="openstack", os_cloud="site", os_config_file=Path("/etc/c.yaml"),
        node_dir=Path("/var/n"), interval=2, wiring=Path("/etc/w.toml"),
    )  # fmt: skip
    assert options.command("http://x", Path("/s/agent.token")) == [
        "openstack", "agent", "--rtkvm-api", "http://x", "--agent-token-file", "/s/agent.token",
    ]  # fmt: skip
    argv = options.argv()
    assert argv[:4] == ["--accel", "auto", "--interval", "2"]
    pairs = dict(zip(argv[4::2], argv[5::2], strict=True))
    assert pairs == {
        "--wiring": "/etc/w.toml",
        "--os-cloud": "site",
        "--os-config-file": "/etc/c.yaml",
        "--state-dir": "/var/n",
    }
    own = AgentOptions()
    assert own.command("http://x", Path("/t"))[:3] == ["agent", "--api", "http://x"]
    assert "--root" in own.argv() and "--os-cloud" not in own.argv()


def test_mixed_options_are_refused_with_what_to_give() -> None:
    with pytest.raises(InputError, match="needs --os-cloud"):
        AgentOptions(engine="openstack")
    with pytest.raises(InputError, match="for --engine openstack"):
        AgentOptions(os_cloud="site")


def test_an_rt_waiver_is_refused_for_an_openstack_node(tmp_path: Path) -> None:
    request = UpRequest(rt_waiver="lab", agent=AgentOptions(engine="openstack", os_cloud="site"))
    with pytest.raises(InputError, match="rtkvm openstack waiver set"):
        AllInOne(StateDir(tmp_path)).up(request)


def test_the_agents_own_cli_takes_that_argv(tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    plan = tmp_path / "plan.json"
    options = AgentOptions(engine="openstack", os_cloud="site", os_config_file=clouds)
    argv = [*options.command("http://x", tmp_path / "t"), "--plan", str(plan), *options.argv()]
    ctx = click.Context(cli)
    group = cli.get_command(ctx, argv[0])
    assert isinstance(group, click.Group)
    agent = group.get_command(ctx, argv[1])
    assert agent is not None
    parsed = agent.make_context("agent", argv[2:])
    assert parsed.params["os_cloud"] == "site" and parsed.params["rtkvm_url"] == "http://x"
    assert parsed.params["agent_token_file"] == tmp_path / "t"
