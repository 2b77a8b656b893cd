"""The doctor: pure evaluation over facts dicts, the fixture trees, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rtkvm.cli.main import cli, main
from rtkvm.cpuset import CpuSet
from rtkvm.errors import InputError
from rtkvm.findings import Finding, Report, Status
from rtkvm.host.checks import shipped_checks
from rtkvm.host.doctor import evaluate
from rtkvm.host.irqs import Irq
from rtkvm.host.observe import observe
from rtkvm.host.partition import PartitionPlan
from rtkvm.host.power import IdleState
from rtkvm.host.topology import Core, HugepagePool, Nic, NumaNode, Topology
from rtkvm.hostfs import HostFS, Unknown
from rtkvm.testing.kernel_files import TUNED_TRIALS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts"
C = CpuSet.parse
MIB = 1 << 20


def _topology(cpus: int, threads: int = 1) -> Topology:
    """One node; core k holds CPUs k, k + cpus/threads, ... (Linux's usual numbering)."""
    per = cpus // threads
    cores = tuple(Core(0, k, CpuSet(k + t * per for t in range(threads)), 0) for k in range(per))
    pools = (HugepagePool(2048, 0, 0),)
    node = NumaNode(0, CpuSet(range(cpus)), 64 << 20, 32 << 20, pools)
    return Topology(CpuSet(range(cpus)), cores, (node,), (Nic("eth0", 0, True),))


def _idle(deep_enabled: bool) -> list[IdleState]:
    return [
        IdleState("POLL", 0, False),
        IdleState("C1", 2, False),
        IdleState("C6", 133, not deep_enabled),
    ]


def tuned_facts() -> dict[str, object]:
    """An 8-CPU host tuned like tuned's realtime-virtual-host with CPUs 2-7 isolated."""
    iso, hk = C("2-7"), C("0-1")
    return {
        "kernel.release": "6.1.0-rt-amd64",
        "kernel.preempt_rt": True,
        "topology": _topology(8),
        "cpus.online": C("0-7"),
        "cpus.isolated": iso,
        "cpus.nohz_full": iso,
        "cmdline.raw": "isolcpus=managed_irq,domain,2-7 nohz_full=2-7 rcu_nocbs=2-7",
        "cmdline.args": {"isolcpus": "managed_irq,domain,2-7", "nohz_full": "2-7"},
        "cmdline.isolcpus": iso,
        "cmdline.isolcpus_flags": ["managed_irq", "domain"],
        "cmdline.nohz_full": iso,
        "cmdline.rcu_nocbs": iso,
        "cmdline.irqaffinity": hk,
        "cmdline.init_args": [],
        "sched.rt_runtime_us": -1,
        "sched.rt_period_us": 1000000,
        "kernel.timer_migration": 0,
        "kernel.nmi_watchdog": 0,
        "vm.stat_interval": 10,
        "mm.ksm_run": 2,
        "mm.thp_enabled": "never",
        "mm.thp_defrag": "never",
        "workqueue.cpumask": hk,
        "irq.default_affinity": hk,
        "irq.list": [Irq(24, "eth0-rx-0", hk, C("0")), Irq(25, "nvme0q1", hk, C("1"))],
        "irqbalance.running": True,
        "irqbalance.banned": iso,
        "power.governors": {cpu: "performance" for cpu in range(8)},
        "power.cpufreq": True,
        "power.idle_driver": "intel_idle",
        "power.idle_states": {cpu: _idle(deep_enabled=cpu < 2) for cpu in range(8)},
        "cgroup.version": "v2",
        "cgroup.rt_group_sched": False,
        "proc.capabilities": frozenset({"CAP_SYS_NICE", "CAP_IPC_LOCK", "CAP_SYS_RESOURCE"}),
        "proc.memlock_soft": None,
        "proc.memlock_hard": None,
        "hugepages.total": {2048: 1024, 1048576: 0},
        "hugepages.free": {2048: 1024, 1048576: 0},
        "kvm.present": True,
        "nics": [Nic("eth0", 0, True)],
        **{f"probe.{name}": trial for name, trial in TUNED_TRIALS.items()},
    }


def _run(facts: dict[str, object], plan: PartitionPlan | None = None) -> Report:
    return evaluate(shipped_checks(), facts, plan, subject="test host")


def _finding(report: Report, check_id: str) -> Finding:
    return next(f for f in report.findings if f.id == check_id)


def test_tuned_host_is_ready_and_nothing_fails() -> None:
    report = _run(tuned_facts())
    assert report.verdict == "ready" and report.exit_code() == 0
    statuses = {f.id: f.status for f in report.findings}
    assert Status.FAIL not in statuses.values() and Status.UNKNOWN not in statuses.values()
    assert statuses["smt.siblings"] is Status.SKIP  # no SMT on this topology


# (changes to the tuned facts, check id, status, words in the message or observed)
CASES: list[tuple[dict[str, object], str, Status, str]] = [
    ({"kernel.preempt_rt": False}, "kernel.preempt_rt", Status.FAIL, "is false"),
    ({"kernel.preempt_rt": Unknown("/sys/kernel/realtime", "gone")}, "kernel.preempt_rt",
     Status.UNKNOWN, "gone"),
    ({"kvm.present": False}, "kvm.present", Status.FAIL, "is false"),
    ({"cmdline.isolcpus_flags": ["domain"]}, "isolation.managed_irq", Status.FAIL, "managed_irq"),
    ({"cpus.nohz_full": Unknown("/sys/devices/system/cpu/nohz_full", "no NO_HZ_FULL")},
     "isolation.nohz_full", Status.UNKNOWN, "no NO_HZ_FULL"),
    ({"cpus.nohz_full": C("2-5")}, "isolation.nohz_full", Status.FAIL, "lacks CPUs 6-7"),
    ({"cmdline.rcu_nocbs": C("")}, "isolation.rcu_nocbs", Status.PASS, ""),
    ({"cmdline.rcu_nocbs": C(""), "cpus.nohz_full": C("2-3")}, "isolation.rcu_nocbs",
     Status.FAIL, "lacks CPUs 4-7"),
    ({"irq.list": [Irq(40, "nvme0q3", C("0-7"), C("3"))]}, "irq.effective_affinity",
     Status.FAIL, "IRQ 40 (nvme0q3) on 3"),
    ({"irq.list": [Irq(40, "nvme0q3", C("0-7"), C("0"))]}, "irq.effective_affinity",
     Status.PASS, ""),
    ({"irq.list": [Irq(40, "nvme0q3", C("0-7"), C("0"))]}, "irq.affinity", Status.FAIL,
     "IRQ 40 (nvme0q3) on 2-7"),
    ({"irq.list": [Irq(9, "acpi", C("0"), Unknown("/proc/irq/9/effective_affinity", "absent"))]},
     "irq.effective_affinity", Status.UNKNOWN, "absent"),
    ({"irq.list": Unknown("/proc/interrupts", "permission denied")}, "irq.affinity",
     Status.UNKNOWN, "permission denied"),
    ({"irq.default_affinity": C("0-7")}, "irq.default_affinity", Status.FAIL, "CPUs 2-7"),
    ({"irqbalance.running": False, "irqbalance.banned": C("")}, "irqbalance.banned",
     Status.SKIP, "irqbalance is not running"),
    ({"irqbalance.banned": C("2-5")}, "irqbalance.banned", Status.FAIL, "lacks CPUs 6-7"),
    ({"irqbalance.banned": Unknown("/etc/default/irqbalance", "does not exist")},
     "irqbalance.banned", Status.UNKNOWN, "does not exist"),
    ({"sched.rt_runtime_us": 950000}, "sched.rt_throttling", Status.FAIL, "950000"),
    ({"cgroup.rt_group_sched": True}, "cgroup.rt_group_sched", Status.FAIL, "is true"),
    ({"kernel.timer_migration": 1}, "kernel.timer_migration", Status.FAIL, "is 1"),
    ({"workqueue.cpumask": C("0-7")}, "workqueue.cpumask", Status.FAIL, "CPUs 2-7"),
    ({"kernel.nmi_watchdog": 1}, "kernel.nmi_watchdog", Status.FAIL, "is 1"),
    ({"vm.stat_interval": 1}, "vm.stat_interval", Status.FAIL, "at least 10"),
    ({"mm.ksm_run": 1}, "mm.ksm", Status.FAIL, "one of 0, 2"),
    ({"mm.ksm_run": 0}, "mm.ksm", Status.PASS, ""),
    ({"mm.thp_enabled": "madvise"}, "mm.thp", Status.FAIL, "'madvise'"),
    ({"hugepages.free": {2048: 0, 1048576: 0}}, "hugepages.free", Status.FAIL, "2048kB: 0"),
    ({"hugepages.free": {}}, "hugepages.free", Status.FAIL, "no page sizes"),
    ({"power.governors": {**{c: "performance" for c in range(8)}, 3: "powersave"}},
     "power.governor", Status.FAIL, "CPU 3: 'powersave'"),
    ({"power.governors": {**{c: "performance" for c in range(8)},
                          4: Unknown("/sys/devices/system/cpu/cpu4/cpufreq", "gone")}},
     "power.governor", Status.UNKNOWN, "CPU 4: gone"),
    ({"power.cpufreq": False, "power.governors": {}}, "power.governor", Status.SKIP,
     "no cpufreq"),
    ({"power.idle_states": {c: _idle(deep_enabled=c == 5) for c in range(8)}},
     "power.cstates", Status.FAIL, "CPU 5: C6 (133 us) enabled"),
    ({"power.idle_states": {c: _idle(deep_enabled=False) for c in range(2)}},
     "power.cstates", Status.UNKNOWN, "CPU 2: not reported"),
    ({"power.idle_driver": "none", "power.idle_states": {}}, "power.cstates", Status.SKIP,
     "no cpuidle driver"),
    ({"topology": _topology(8, threads=2)}, "smt.siblings", Status.FAIL,
     "CPU 4 shares its core with 0"),
    ({"topology": _topology(8, threads=2), "cpus.isolated": C("1-3,5-7")}, "smt.siblings",
     Status.PASS, "whole cores"),
    ({"proc.capabilities": frozenset({"CAP_SYS_NICE", "CAP_IPC_LOCK"})}, "caps.sys_resource",
     Status.FAIL, "missing CAP_SYS_RESOURCE"),
    ({"proc.capabilities": frozenset({"CAP_IPC_LOCK"})}, "caps.sys_nice", Status.FAIL,
     "missing CAP_SYS_NICE"),
    ({"proc.memlock_hard": 8 * MIB}, "limits.memlock", Status.FAIL, "8 MiB"),
    ({"proc.memlock_hard": 64 << 30}, "limits.memlock", Status.FAIL, "64 GiB"),
    ({"sched.rt_runtime_us": "-1"}, "sched.rt_throttling", Status.UNKNOWN, "facts contract"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "check_id", "status", "words"), CASES)
def test_one_change_moves_one_check(
    changes: dict[str, object], check_id: str, status: Status, words: str
) -> None:
    facts = {**tuned_facts(), **changes}
    finding = _finding(_run(facts), check_id)
    assert finding.status is status, finding.message
    assert words in f"{finding.message} {finding.observed}"
    assert finding.why and finding.fix
    if status is Status.FAIL and finding.severity.value == "error":
        assert _run(facts).verdict == "not ready"


def test_a_missing_fact_is_unknown_never_pass() -> None:
    facts = tuned_facts()
    del facts["kernel.preempt_rt"]
    finding = _finding(_run(facts), "kernel.preempt_rt")
    assert finding.status is Status.UNKNOWN
    assert "not provided" in finding.message


def test_warnings_alone_keep_the_host_ready() -> None:
    facts = {**tuned_facts(), "sched.rt_runtime_us": 950000, "mm.thp_enabled": "always"}
    report = _run(facts)
    assert report.counts()["warnings_failed"] == 2
    assert report.verdict == "ready" and report.exit_code() == 0


def test_nothing_isolated_fails_isolation_and_skips_what_depends_on_it() -> None:
    facts = {**tuned_facts(), "cpus.isolated": C(""), "cpus.nohz_full": C("")}
    report = _run(facts)
    isolation = _finding(report, "isolation.cpus")
    assert isolation.status is Status.FAIL and report.verdict == "not ready"
    assert "isolcpus=managed_irq,domain,<CPUs to isolate>" in isolation.fix
    assert "irqaffinity=<housekeeping CPUs>" in isolation.fix
    for check_id in ("isolation.nohz_full", "irq.effective_affinity", "power.cstates"):
        finding = _finding(report, check_id)
        assert finding.status is Status.SKIP
        assert "no CPUs are set aside" in finding.message


def test_a_plan_sets_the_target_and_fills_the_fix() -> None:
    plan = PartitionPlan(housekeeping=C("0"), rt_vcpu=C("1-5"), dataplane=C("6-7"))
    report = _run(tuned_facts(), plan)
    scheduler = _finding(report, "isolation.scheduler")
    assert scheduler.status is Status.FAIL and "lacks CPUs 1" in scheduler.message
    assert "isolcpus=managed_irq,domain,1-7" in scheduler.fix
    assert "echo 1 > /proc/irq/default_smp_affinity" in _finding(report, "irq.default_affinity").fix
    assert _finding(report, "irq.effective_affinity").status is Status.FAIL  # IRQ 25 on CPU 1
    assert any("plan" in note and "1-7" in note for note in report.notes)


def test_a_host_that_isolates_housekeeping_cpus_is_warned() -> None:
    plan = PartitionPlan(housekeeping=C("0-2"), rt_vcpu=C("3-7"), dataplane=C(""))
    report = _run(tuned_facts(), plan)
    finding = _finding(report, "isolation.housekeeping")
    assert finding.status is Status.FAIL and "includes CPUs 2" in finding.message
    assert _finding(report, "isolation.scheduler").status is Status.PASS
    assert report.verdict == "ready"


def test_a_plan_for_another_host_is_bad_input() -> None:
    plan = PartitionPlan(housekeeping=C("0-1"), rt_vcpu=C("2-11"), dataplane=C(""))
    with pytest.raises(InputError, match=r"CPUs 8-11.*not online"):
        evaluate(shipped_checks(), tuned_facts(), plan, plan_source="p.json")


def test_json_has_verdict_and_the_finding_fields() -> None:
    data = json.loads(_run({**tuned_facts(), "proc.memlock_hard": 8 * MIB}).to_json())
    assert data["verdict"] == "not ready"
    assert len(data["findings"]) == len(shipped_checks().checks)
    for finding in data["findings"]:
        assert {"id", "severity", "status", "observed", "expected", "why", "fix"} <= set(finding)
    memlock = next(f for f in data["findings"] if f["id"] == "limits.memlock")
    assert memlock["observed"] == 8 * MIB and memlock["expected"] == "unlimited"


# -- the fixture trees ---------------------------------------------------------------------


def _fixture_report(name: str) -> Report:
    _, facts = observe(HostFS(FIXTURES / name))
    return evaluate(shipped_checks(), facts, subject=name)


def test_this_machine_tells_the_truth() -> None:
    report = _fixture_report("this-machine")
    assert report.verdict == "not ready"
    for check_id in ("kernel.preempt_rt", "isolation.cpus", "caps.sys_resource",
                     "limits.memlock"):  # fmt: skip
        assert _finding(report, check_id).status is Status.FAIL, check_id
    assert "8 MiB" in _finding(report, "limits.memlock").message
    assert _finding(report, "sched.rt_throttling").observed == 950000


def test_tuned_fixture_fails_far_less_than_this_machine() -> None:
    tuned, this = _fixture_report("tuned-2node"), _fixture_report("this-machine")
    assert tuned.counts()["fail"] < this.counts()["fail"]
    assert tuned.counts()["errors_failed"] == 0
    assert _finding(tuned, "isolation.nohz_full").status is Status.PASS


# -- the command line ----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "code"), [("this-machine", 1), ("tuned-2node", 0)])
def test_cli_exit_status_follows_the_verdict(name: str, code: int) -> None:
    result = CliRunner().invoke(cli, ["host", "doctor", "--root", str(FIXTURES / name)])
    assert result.exit_code == code, result.output
    assert ("not ready" in result.output) == (code == 1)


def test_cli_json_and_verbose() -> None:
    root = str(FIXTURES / "this-machine")
    result = CliRunner().invoke(cli, ["host", "doctor", "--root", root, "--format", "json"])
    data = json.loads(result.output)
    assert data["verdict"] == "not ready" and result.exit_code == 1
    verbose = CliRunner().invoke(cli, ["host", "doctor", "--root", root, "--verbose"])
    assert "why: Without PREEMPT_RT" in verbose.output


def _planner_output(plan: PartitionPlan, isolated: str) -> str:
    """What ``rtkvm host plan --format json`` prints: the plan plus context around it."""
    data = json.loads(plan.to_json())
    data.update(isolated=isolated, request={"rt_cores": 3}, nodes=[], kernel_args=[])
    return json.dumps(data)


def test_load_plan_takes_the_planner_output() -> None:
    plan = PartitionPlan(housekeeping=C("0-1"), rt_vcpu=C("2-5"), dataplane=C("6-7"))
    assert PartitionPlan.from_json(_planner_output(plan, "2-7"), source="p.json") == plan
    assert PartitionPlan.from_json(plan.to_json(), source="p.json") == plan


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[1, 2]", "a plan is a JSON object"),
        ('{"housekeeping": "0-1"}', "rt_vcpu"),
        (_planner_output(PartitionPlan(housekeeping=C("0"), rt_vcpu=C("1"), dataplane=C("")),
                         "1-3"), "'isolated' says 1-3 but the roles give 1"),
        ('{"housekeeping": "0", "rt_vcpu": "1", "dataplane": "", "isolated": "x"}',
         "isolated: bad item 'x'"),
    ],
)  # fmt: skip
def test_load_plan_refuses_what_it_cannot_trust(text: str, words: str) -> None:
    with pytest.raises(InputError) as info:
        PartitionPlan.from_json(text, source="p.json")
    assert str(info.value).startswith("p.json: ") and words in str(info.value)


@pytest.mark.parametrize(
    ("file_name", "text", "words"),
    [
        ("plan.json", "{not json", "not valid JSON"),
        ("plan.json", '{"housekeeping": "0", "rt_vcpu": "0-1", "dataplane": ""}', "overlap"),
        ("checks.toml", '[[check]]\nid = "x"\n', "check 'x': field 'title': missing"),
    ],
)
def test_cli_bad_input_exits_2_and_says_what_to_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], file_name: str, text: str, words: str
) -> None:
    path = tmp_path / file_name
    path.write_text(text)
    option = "--plan" if file_name.endswith(".json") else "--checks"
    root = str(FIXTURES / "tuned-2node")
    with pytest.raises(SystemExit) as info:
        main(["host", "doctor", "--root", root, option, str(path)])
    assert info.value.code == 2
    assert words in capsys.readouterr().err
