"""rtkvm host tune / verify / rollback through the CLI, on fake roots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtkvm.cli.main import cli
from rtkvm.errors import RtkvmError
from rtkvm.tune.fakes import differences, snapshot, write_tuning_host

PLAN = {
    "housekeeping": "0",
    "rt_vcpu": "1-2",
    "dataplane": "3",
    "kernel_cmdline": ["isolcpus=managed_irq,domain,1-3", "nohz_full=1-3"],
}


@pytest.fixture()
def host(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    root.mkdir()
    write_tuning_host(root)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    return root, plan


def run(*args: str) -> tuple[int, str]:
    """Run through click's runner; a deliberate error is rendered the way main() does."""
    result = CliRunner().invoke(cli, list(args))
    if isinstance(result.exception, RtkvmError):
        return 2, f"rtkvm: error: {result.exception}"
    return result.exit_code, result.output


def test_tune_shows_the_diff_and_changes_nothing(host: tuple[Path, Path]) -> None:
    root, plan = host
    before = snapshot(root)
    code, out = run("host", "tune", "--plan", str(plan), "--root", str(root), "--why")
    assert code == 0
    assert "sysctl:kernel.sched_rt_runtime_us" in out and "950000" in out and "-1" in out
    assert "add --apply" in out
    assert "RT throttling policy" in out  # --why explains
    assert differences(before, snapshot(root)) == []


def test_apply_verify_rollback(host: tuple[Path, Path]) -> None:
    root, plan = host
    before = snapshot(root)
    code, out = run("host", "tune", "--plan", str(plan), "--root", str(root), "--apply")
    assert code == 0, out
    assert "applied" in out and "not run (--root is not the real host): update-grub" in out
    code, out = run("host", "verify", "--root", str(root))  # plan and profile from the journal
    assert code == 0, out
    assert "PENDING_REBOOT" in out and "0 drift" in out
    code, out = run("host", "verify", "--root", str(root), "--format", "json")
    data = json.loads(out)
    assert data["counts"]["drift"] == 0 and data["counts"]["ok"] > 20
    (root / "sys/kernel/mm/ksm/run").write_text("1\n")
    code, out = run("host", "verify", "--root", str(root))
    assert code == 1 and "DRIFT" in out
    code, out = run("host", "rollback", "--root", str(root))
    assert code == 0 and "restored" in out
    assert differences(before, snapshot(root)) == []
    code, out = run("host", "rollback", "--root", str(root))
    assert "nothing to roll back" in out


def test_verify_without_plan_or_journal_says_what_to_give(host: tuple[Path, Path]) -> None:
    root, _ = host
    code, out = run("host", "verify", "--root", str(root))
    assert code == 2
    assert "give --plan PLAN.json" in out


def test_bad_plan_and_profile_are_clear(host: tuple[Path, Path], tmp_path: Path) -> None:
    root, plan = host
    bad = tmp_path / "bad.json"
    bad.write_text('{"housekeeping": "0", "rt_vcpu": "0", "dataplane": ""}')
    code, out = run("host", "tune", "--plan", str(bad), "--root", str(root))
    assert code == 2 and "both housekeeping and rt_vcpu" in out
    code, out = run("host", "tune", "--plan", str(plan), "--root", str(root), "--profile", "x")
    assert code == 2 and "unknown tuning profile 'x'" in out


def test_json_diff(host: tuple[Path, Path]) -> None:
    root, plan = host
    code, out = run("host", "tune", "--plan", str(plan), "--root", str(root), "-f", "json")
    assert code == 0
    data = json.loads(out[: out.rindex("]") + 1])
    ksm = next(c for c in data if c["setting"] == "sysfs:/sys/kernel/mm/ksm/run")
    assert (ksm["before"], ksm["after"], ksm["in_effect"]) == ("1\n", "2", False)
    assert "KSM" in ksm["why"]


def test_export_tuned(host: tuple[Path, Path], tmp_path: Path) -> None:
    root, plan = host
    out_dir = tmp_path / "tuned"
    code, out = run(
        "host", "tune", "--plan", str(plan), "--root", str(root), "--export", "tuned", str(out_dir)
    )
    assert code == 0, out
    profile = out_dir / "rtkvm-realtime-virtual-host"
    conf = (profile / "tuned.conf").read_text()
    variables = (profile / "rtkvm-variables.conf").read_text()
    assert "include=${i:PROFILE_DIR}/rtkvm-variables.conf" in conf
    assert "kernel.sched_rt_runtime_us=-1" in conf
    assert "/sys/devices/virtual/workqueue/cpumask=${f:cpulist2hex:${housekeeping_cores}}" in conf
    assert "banned_cpus=${isolated_cores}" in conf
    assert "default_irq_smp_affinity=${housekeeping_cores}" in conf  # tuned takes a cpulist
    assert "group.rtkvm0=0:f:2:*:^\\[?ksoftirqd/.*" in conf
    assert "group.rtkvm1=0:f:3:*:^\\[?ktimers/.*" in conf
    assert "group.rtkvm2=0:f:4:*:^\\[?rcuc/.*" in conf
    assert "pmd" not in conf.split("[scheduler]")[-1]  # the data plane owns PMD priority
    assert "kvm=+r kvmclock_periodic_sync=0 nx_huge_pages=0" in conf
    assert "cmdline_rtkvm=+isolcpus=managed_irq,domain,1-3 nohz_full=1-3" in conf
    assert "# KSM scans and merges guest pages" in conf
    assert "isolated_cores=1-3" in variables and "housekeeping_cores=0" in variables


def test_accepts_the_planners_own_output(tmp_path: Path) -> None:
    from rtkvm.testing.synthetic import two_socket_smt

    topo = tmp_path / "topo"
    topo.mkdir()
    two_socket_smt().write(topo)
    code, doc = run(
        "host",
        "plan",
        "--root",
        str(topo),
        "--rt-cores",
        "4",
        "--dataplane-cores",
        "2",
        "--format",
        "json",
    )
    assert code == 0, doc
    plan = tmp_path / "plan.json"
    plan.write_text(doc)
    root = tmp_path / "root"
    root.mkdir()
    write_tuning_host(root, cpus=32)
    code, out = run("host", "tune", "--plan", str(plan), "--root", str(root), "--apply")
    assert code == 0, out
    isolated = json.loads(doc)["isolated"]
    assert (
        f'IRQBALANCE_BANNED_CPULIST="{isolated}"' in (root / "etc/default/irqbalance").read_text()
    )
    assert f"nohz_full={isolated}" in (root / "etc/default/grub").read_text()


def test_plan_whose_isolated_disagrees_is_refused(host: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = host
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**PLAN, "isolated": "1"}))
    code, out = run("host", "tune", "--plan", str(bad), "--root", str(root))
    assert code == 2 and "'isolated' says 1" in out


def test_verify_defaults_to_what_was_applied(host: tuple[Path, Path]) -> None:
    root, plan = host
    code, out = run(
        "host",
        "tune",
        "--plan",
        str(plan),
        "--root",
        str(root),
        "--apply",
        "--only",
        "sysctl:*",
        "--rt-throttling",
        "large",
    )
    assert code == 0, out
    code, out = run("host", "verify", "--root", str(root), "-f", "json")
    assert code == 0, out
    checks = json.loads(out)["checks"]
    assert {c["setting"].split(":")[0] for c in checks} == {"sysctl"}
    rt = next(c for c in checks if c["setting"] == "sysctl:kernel.sched_rt_runtime_us")
    assert (rt["status"], rt["expected"]) == ("ok", "999000")


def test_guest_hugepages_option(host: tuple[Path, Path]) -> None:
    root, plan = host
    pool = root / "sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"
    before = snapshot(root)
    code, out = run("host", "tune", "--plan", str(plan), "--root", str(root))
    assert code == 0 and "hugepages:guest: not requested" in out
    args = ("host", "tune", "--plan", str(plan), "--root", str(root), "--only", "hugepages:*")
    code, out = run(*args, "--guest-hugepages", "512")
    assert code == 0 and "/sys/devices/system/node/node0/hugepages/" in out and "512" in out
    code, out = run(*args, "--guest-hugepages", "-1")
    assert code == 2 and "-1" in out
    code, out = run(*args, "--guest-hugepages", "8000")  # 16 GiB node: 7372 fit
    assert code == 2 and "at most 7372 fit" in out
    code, out = run(*args, "--guest-hugepages", "512", "--apply")
    assert code == 0, out
    assert pool.read_text().strip() == "512"
    code, out = run("host", "verify", "--root", str(root))  # the count comes from the journal
    assert code == 0 and "OK" in out and ">= 512" in out
    pool.write_text("100\n")
    code, out = run("host", "verify", "--root", str(root))
    assert code == 1 and "DRIFT" in out and "fewer than 512" in out
    code, out = run("host", "rollback", "--root", str(root))
    pool.write_text("0\n")  # what rollback restores over the drifted value
    assert differences(before, snapshot(root)) == []
