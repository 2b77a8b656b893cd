"""Benchmark: inspect + doctor + plan on a synthetic 512-CPU host (target: under 1 s).

Writes the tree once (timed separately: it is set-up, not rtkvm's work), then
runs the host layer in-process several times and prints min / median / max of
each stage and of the whole. Run with ``make bench`` or
``.venv/bin/python benchmarks/host_layer.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rtkvm.cpuset import CpuSet
from rtkvm.host.checks import shipped_checks
from rtkvm.host.doctor import evaluate
from rtkvm.host.facts import host_facts
from rtkvm.host.inspect import inspect_host
from rtkvm.host.planner import PlanRequest, plan_partition
from rtkvm.hostfs import HostFS
from rtkvm.testing.kernel_files import IrqSpec, KernelFiles
from rtkvm.testing.synthetic import big_512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=base, prefix="rtkvm-bench-") as tmp:
        root = Path(tmp)
        shape = big_512()
        cpus = CpuSet(range(512))
        irqs = {
            n: IrqSpec(f"ens1f0-TxRx-{n}", CpuSet([n % 512]), CpuSet([n % 512]))
            for n in range(24, 24 + 600)
        }
        start = time.perf_counter()
        shape.write(root)
        KernelFiles(cpus=cpus, irqs=irqs).write(root)
        write_s = time.perf_counter() - start
        checks = shipped_checks()
        request = PlanRequest(rt_cores=200, dataplane_cores=8, dataplane_near="ens1f0")

        stages: dict[str, list[float]] = {"inspect": [], "plan": [], "doctor": [], "total": []}
        for _ in range(args.runs):
            t0 = time.perf_counter()
            report = inspect_host(HostFS(root))
            t1 = time.perf_counter()
            plan = plan_partition(report.topology, request)
            t2 = time.perf_counter()
            doc = evaluate(checks, host_facts(report), plan)
            t3 = time.perf_counter()
            stages["inspect"].append(t1 - t0)
            stages["plan"].append(t2 - t1)
            stages["doctor"].append(t3 - t2)
            stages["total"].append(t3 - t0)

        print(f"host: 512 CPUs, 8 NUMA nodes, 600 IRQs; tree written in {write_s:.3f} s")
        print(f"plan: {len(plan.rt_vcpu)} RT vCPU CPUs, {len(plan.dataplane)} dataplane CPUs")
        print(f"doctor verdict: {doc.verdict} ({len(doc.findings)} checks)")
        print(f"{'stage':<8} {'min':>9} {'median':>9} {'max':>9}   ({args.runs} runs, seconds)")
        for name, values in stages.items():
            print(
                f"{name:<8} {min(values):9.4f} {statistics.median(values):9.4f} {max(values):9.4f}"
            )
        target = 1.0
        median = statistics.median(stages["total"])
        print(f"target: under {target:.1f} s -> {'met' if median < target else 'NOT met'}")


if __name__ == "__main__":
    main()
