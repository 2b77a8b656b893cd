"""Power: the performance cpufreq governor and no deep C-states on the isolated CPUs.

Deep idle states are disabled through sysfs (cpuN/cpuidle/stateK/disable),
which rollback can undo exactly; a PM QoS hold (/dev/cpu_dma_latency) would
need a process that lives as long as the tuning, so it is not used. A host
without cpufreq or cpuidle (common in VMs) reports unsupported. Must not
touch housekeeping CPUs.
"""

from __future__ import annotations

from rtkvm.host.power import CPU_DIR
from rtkvm.hostfs import Unknown
from rtkvm.tune.model import Change
from rtkvm.tune.plugins.base import Context, Plugin, file_change


class PowerPlugin(Plugin):
    name = "power"

    def plan(self, ctx: Context) -> list[Change]:
        item = ctx.profile.power
        if item is None:
            return []
        cpus = ctx.cpus(item.cpus, "power.cpus")
        if not cpus:
            return []
        changes: list[Change] = []
        governors = [f"{CPU_DIR}/cpu{c}/cpufreq/scaling_governor" for c in cpus]
        if not any(ctx.fs.exists(p) for p in governors):
            changes.append(
                Change(
                    "power:governor",
                    f"{CPU_DIR}/cpu*/cpufreq",
                    "file",
                    None,
                    item.governor,
                    item.why,
                    False,
                    unsupported="no cpufreq on this host (nothing to set)",
                )
            )
        else:
            changes.extend(
                file_change(ctx, "power:governor", p, item.governor, item.why) for p in governors
            )
        idle: list[Change] = []
        for cpu in cpus:
            base = f"{CPU_DIR}/cpu{cpu}/cpuidle"
            for state in ctx.fs.glob_names(base, "state*"):
                latency = ctx.fs.read_line(f"{base}/{state}/latency")
                if isinstance(latency, Unknown) or not latency.isdigit():
                    continue
                if int(latency) > item.max_idle_latency_us:
                    idle.append(
                        file_change(ctx, "power:idle", f"{base}/{state}/disable", "1", item.why)
                    )
        if not idle:
            has_idle = any(ctx.fs.is_dir(f"{CPU_DIR}/cpu{c}/cpuidle") for c in cpus)
            reason = (
                "no idle state is deeper than the limit"
                if has_idle
                else "no cpuidle states exposed on this host"
            )
            idle.append(
                Change(
                    "power:idle",
                    f"{CPU_DIR}/cpu*/cpuidle",
                    "file",
                    None,
                    "1",
                    item.why,
                    has_idle,
                    unsupported=None if has_idle else reason,
                )
            )
        return changes + idle
