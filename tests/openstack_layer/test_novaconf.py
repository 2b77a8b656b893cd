"""nova-compute's RT options from the partition plan, as rtkvm's own drop-in file."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtkvm.cli.main import cli
from rtkvm.cpuset import CpuSet
from rtkvm.errors import InputError
from rtkvm.host.partition import PartitionPlan
from rtkvm.openstack.novaconf import changes, nova_settings, render

PLAN = PartitionPlan(
    housekeeping=CpuSet.parse("0-1,16-17"),
    rt_vcpu=CpuSet.parse("2-11,18-27"),
    dataplane=CpuSet.parse("12-15,28-31"),
)


def _ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_the_plan_s_sets_go_to_nova_and_the_data_plane_to_neither() -> None:
    text = render(nova_settings(PLAN, priority=40, virt_type="kvm"), "plan.json")
    ini = _ini(text)
    assert ini["compute"]["cpu_dedicated_set"] == "2-11,18-27"
    assert ini["compute"]["cpu_shared_set"] == "0-1,16-17"
    assert ini["libvirt"]["realtime_scheduler_priority"] == "40"
    assert ini["libvirt"]["cpu_power_management"] == "false"
    assert ini["libvirt"]["virt_type"] == "kvm"
    assert ini["libvirt"]["cpu_mode"] == "host-passthrough"
    assert ini["libvirt"]["mem_stats_period_seconds"] == "0"  # no balloon
    dedicated = CpuSet.parse(ini["compute"]["cpu_dedicated_set"])
    shared = CpuSet.parse(ini["compute"]["cpu_shared_set"])
    assert not (dedicated | shared) & PLAN.dataplane  # PMD CPUs are nobody's but OVS's
    assert "# Nova's one host-wide FIFO priority" in text  # each option says why


def test_a_priority_outside_the_rt_band_and_a_plan_without_rt_cpus_are_refused() -> None:
    with pytest.raises(InputError, match="--priority 1"):
        nova_settings(PLAN, priority=1, virt_type="kvm")
    empty = PartitionPlan(housekeeping=CpuSet.parse("0-3"), rt_vcpu=CpuSet(), dataplane=CpuSet())
    with pytest.raises(InputError, match="no RT vCPU CPUs"):
        nova_settings(empty, priority=40, virt_type="kvm")


def test_changes_name_each_option_that_moves() -> None:
    old = render(nova_settings(PLAN, priority=40, virt_type="kvm"), "old")
    new = nova_settings(PLAN, priority=45, virt_type="qemu")
    assert [str(c) for c in changes(old, new)] == [
        "[libvirt] cpu_mode: host-passthrough -> none",  # TCG cannot pass the host CPU through
        "[libvirt] realtime_scheduler_priority: 40 -> 45",
        "[libvirt] virt_type: kvm -> qemu",
    ]
    assert changes(render(new, "x"), new) == []


def test_the_command_writes_reports_keeps_and_removes_its_file(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(PLAN.to_json())
    out = tmp_path / "nova" / "nova.conf.d" / "50-rtkvm.conf"
    (tmp_path / "nova").mkdir()
    args = ["openstack", "nova-conf", "--plan", str(plan), "-o", str(out), "--virt-type", "qemu"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "[compute] cpu_dedicated_set = 2-11,18-27 (new)" in first.output
    assert f"wrote {out}" in first.output and out.stat().st_mode & 0o777 == 0o644
    again = CliRunner().invoke(cli, args)
    assert "already says this: nothing to change" in again.output
    moved = CliRunner().invoke(cli, [*args, "--priority", "45"])
    assert "[libvirt] realtime_scheduler_priority: 40 -> 45" in moved.output
    gone = CliRunner().invoke(cli, [*args, "--remove"])
    assert f"removed {out}" in gone.output and not out.exists()


def test_a_file_rtkvm_did_not_write_is_never_overwritten_or_removed(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(PLAN.to_json())
    theirs = tmp_path / "90-site.conf"
    theirs.write_text("[compute]\ncpu_dedicated_set = 4-7\n")
    args = ["openstack", "nova-conf", "--plan", str(plan), "-o", str(theirs)]
    for extra in ([], ["--remove"]):
        result = CliRunner().invoke(cli, [*args, *extra])
        assert isinstance(result.exception, InputError), result.output
        assert "not written by rtkvm" in str(result.exception)
    assert theirs.read_text() == "[compute]\ncpu_dedicated_set = 4-7\n"
