"""The facts contract: every key, the type of every value, on fixtures and broken roots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rtkvm.cpuset import CpuSet
from rtkvm.host.experiments import Trial
from rtkvm.host.facts import FACT_KEYS, cpuset_fact, host_facts
from rtkvm.host.inspect import inspect_host
from rtkvm.host.irqs import Irq
from rtkvm.host.observe import observe
from rtkvm.host.power import IdleState
from rtkvm.host.topology import Nic, Topology
from rtkvm.hostfs import HostFS, Unknown

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hosts"


def _is_str_map(value: Any, item: type | tuple[type, ...]) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, int) and isinstance(v, item) for k, v in value.items()
    )


CHECKS: dict[str, Any] = {
    "kernel.release": lambda v: isinstance(v, str),
    "kernel.preempt_rt": lambda v: isinstance(v, bool),
    "topology": lambda v: isinstance(v, Topology),
    "cpus.online": lambda v: isinstance(v, CpuSet),
    "cpus.isolated": lambda v: isinstance(v, CpuSet),
    "cpus.nohz_full": lambda v: isinstance(v, CpuSet),
    "cmdline.raw": lambda v: isinstance(v, str),
    "cmdline.args": lambda v: (
        isinstance(v, dict)
        and all(isinstance(k, str) and (x is None or isinstance(x, str)) for k, x in v.items())
    ),
    "cmdline.isolcpus": lambda v: isinstance(v, CpuSet),
    "cmdline.isolcpus_flags": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "cmdline.nohz_full": lambda v: isinstance(v, CpuSet),
    "cmdline.rcu_nocbs": lambda v: isinstance(v, CpuSet),
    "cmdline.irqaffinity": lambda v: isinstance(v, CpuSet),
    "cmdline.init_args": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "sched.rt_runtime_us": lambda v: type(v) is int,
    "sched.rt_period_us": lambda v: type(v) is int,
    "kernel.timer_migration": lambda v: type(v) is int,
    "kernel.nmi_watchdog": lambda v: type(v) is int,
    "vm.stat_interval": lambda v: type(v) is int,
    "mm.ksm_run": lambda v: type(v) is int,
    "mm.thp_enabled": lambda v: v in ("always", "madvise", "never"),
    "mm.thp_defrag": lambda v: isinstance(v, str) and "[" not in v,
    "workqueue.cpumask": lambda v: isinstance(v, CpuSet),
    "irq.default_affinity": lambda v: isinstance(v, CpuSet),
    "irq.list": lambda v: (
        isinstance(v, list)
        and all(
            isinstance(i, Irq)
            and type(i.irq) is int
            and isinstance(i.name, str)
            and isinstance(i.affinity, CpuSet | Unknown)
            and isinstance(i.effective, CpuSet | Unknown)
            for i in v
        )
    ),
    "irqbalance.running": lambda v: isinstance(v, bool),
    "irqbalance.banned": lambda v: isinstance(v, CpuSet),
    "power.governors": lambda v: _is_str_map(v, (str, Unknown)),
    "power.cpufreq": lambda v: isinstance(v, bool),
    "power.idle_driver": lambda v: isinstance(v, str),
    "power.idle_states": lambda v: (
        isinstance(v, dict)
        and all(
            isinstance(s, list) and all(isinstance(x, IdleState) for x in s) for s in v.values()
        )
    ),
    "cgroup.version": lambda v: v in ("v1", "v2", "hybrid"),
    "cgroup.rt_group_sched": lambda v: isinstance(v, bool),
    "proc.capabilities": lambda v: (
        isinstance(v, frozenset) and all(x.startswith("CAP_") for x in v)
    ),
    "proc.memlock_soft": lambda v: v is None or type(v) is int,
    "proc.memlock_hard": lambda v: v is None or type(v) is int,
    "hugepages.total": lambda v: _is_str_map(v, int),
    "hugepages.free": lambda v: _is_str_map(v, int),
    "kvm.present": lambda v: isinstance(v, bool),
    "nics": lambda v: isinstance(v, list) and all(isinstance(n, Nic) for n in v),
    "probe.sched_fifo": lambda v: isinstance(v, Trial),
    "probe.memlock": lambda v: isinstance(v, Trial),
    "probe.kvm_vcpu": lambda v: isinstance(v, Trial),
}


def test_checks_cover_the_documented_keys() -> None:
    assert set(CHECKS) == set(FACT_KEYS)


@pytest.mark.parametrize("fixture", ["tuned-2node", "this-machine"])
def test_every_fact_has_its_contract_type(fixture: str) -> None:
    _, facts = observe(HostFS(FIXTURES / fixture))
    assert set(facts) == set(FACT_KEYS)
    allowed_unknown = {"this-machine": {"cpus.nohz_full", "irqbalance.banned"}}.get(fixture, set())
    for key, check in CHECKS.items():
        value = facts[key]
        if isinstance(value, Unknown):
            assert key in allowed_unknown, f"{key} is {value}"
            continue
        assert check(value), f"{key} has the wrong type: {value!r}"


def test_tuned_values() -> None:
    f = host_facts(inspect_host(HostFS(FIXTURES / "tuned-2node")))
    iso, hk = CpuSet(range(2, 8)), CpuSet([0, 1])
    assert f["kernel.preempt_rt"] is True
    assert f["cpus.isolated"] == iso and f["cpus.nohz_full"] == iso
    assert f["cmdline.isolcpus"] == iso
    assert f["cmdline.isolcpus_flags"] == ["managed_irq", "domain"]
    assert f["cmdline.rcu_nocbs"] == iso and f["cmdline.irqaffinity"] == hk
    assert f["sched.rt_runtime_us"] == -1
    assert (f["kernel.timer_migration"], f["kernel.nmi_watchdog"], f["vm.stat_interval"]) == (
        0,
        0,
        10,
    )
    assert (f["mm.ksm_run"], f["mm.thp_enabled"]) == (2, "never")
    assert f["workqueue.cpumask"] == hk and f["irq.default_affinity"] == hk
    assert f["irqbalance.banned"] == iso
    assert f["hugepages.total"] == {2048: 0, 1048576: 8}
    assert f["proc.memlock_soft"] is None
    args = f["cmdline.args"]
    assert isinstance(args, dict) and args["nosoftlockup"] is None and args["skew_tick"] == "1"


def test_this_machine_values() -> None:
    f = host_facts(inspect_host(HostFS(FIXTURES / "this-machine")))
    assert f["kernel.preempt_rt"] is False
    assert f["cpus.isolated"] == CpuSet() and f["cmdline.isolcpus"] == CpuSet()
    assert f["cmdline.isolcpus_flags"] == []
    assert f["cgroup.version"] == "hybrid" and f["cgroup.rt_group_sched"] is True
    caps = f["proc.capabilities"]
    assert isinstance(caps, frozenset) and "CAP_SYS_RESOURCE" not in caps
    assert f["proc.memlock_hard"] == 8 * 1024 * 1024
    assert f["power.cpufreq"] is False and f["power.governors"] == {}
    assert f["kvm.present"] is True
    nohz = f["cpus.nohz_full"]
    assert isinstance(nohz, Unknown) and "NO_HZ_FULL" in nohz.reason


def test_empty_root_gives_unknowns_for_read_values(tmp_path: Path) -> None:
    f = host_facts(inspect_host(HostFS(tmp_path)))
    assert set(f) == set(FACT_KEYS)
    for key in ("kernel.release", "kernel.preempt_rt", "topology", "cmdline.isolcpus", "nics"):
        assert isinstance(f[key], Unknown), key
    assert f["kvm.present"] is False


def test_cpuset_fact() -> None:
    facts: dict[str, object] = {"a": CpuSet([1]), "b": 3, "c": Unknown("/x", "gone")}
    assert cpuset_fact(facts, "a") == CpuSet([1])
    assert isinstance(cpuset_fact(facts, "b"), Unknown)
    assert cpuset_fact(facts, "c") == Unknown("/x", "gone")
    missing = cpuset_fact(facts, "zzz")
    assert isinstance(missing, Unknown) and missing.reason == "no such fact"
