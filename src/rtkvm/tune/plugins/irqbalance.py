"""irqbalance: ban the isolated CPUs in its config file; restart it only if it runs.

The config (/etc/default/irqbalance or /etc/sysconfig/irqbalance) is a
persistent file, replaced atomically and journaled to /var/lib. Only the
IRQBALANCE_BANNED_CPULIST line is added or replaced; every other byte stays.
Must not start irqbalance when it is not running, nor touch IRQs itself.
"""

from __future__ import annotations

import re

from rtkvm.cpuset import CpuSet
from rtkvm.host.irqs import IRQBALANCE_CONFIGS, parse_irqbalance_banned, read_irqbalance_running
from rtkvm.hostfs import Unknown
from rtkvm.tune.model import Change
from rtkvm.tune.plugins.base import Context, Plugin

KEY = "IRQBALANCE_BANNED_CPULIST"
BINARIES = ("/usr/sbin/irqbalance", "/usr/bin/irqbalance", "/sbin/irqbalance")
_LINE = re.compile(rf"^\s*(?:export\s+)?{KEY}=.*$", re.MULTILINE)


def with_banned(text: str, cpus: CpuSet) -> str:
    """The config text with the banned list set (last assignment replaced, or appended)."""
    line = f'{KEY}="{cpus.format()}"'
    matches = list(_LINE.finditer(text))
    if matches:
        last = matches[-1]
        return text[: last.start()] + line + text[last.end() :]
    sep = "" if not text or text.endswith("\n") else "\n"
    return f"{text}{sep}# rtkvm: keep IRQs off the isolated CPUs\n{line}\n"


def restart_command(ctx: Context) -> tuple[str, ...]:
    if ctx.fs.is_dir("/run/systemd/system"):
        return ("systemctl", "restart", "irqbalance")
    return ("service", "irqbalance", "restart")


class IrqbalancePlugin(Plugin):
    name = "irqbalance"

    def plan(self, ctx: Context) -> list[Change]:
        item = ctx.profile.irqbalance
        if item is None:
            return []
        setting = "irqbalance:banned"
        cpus = ctx.cpus(item.banned, "irqbalance.banned")
        path = next((p for p in IRQBALANCE_CONFIGS if ctx.fs.is_file(p)), None)
        running = read_irqbalance_running(ctx.fs) is True
        if path is None:
            installed = any(ctx.fs.exists(b) for b in BINARIES)
            if not installed and not running:
                return [
                    Change(
                        setting,
                        IRQBALANCE_CONFIGS[0],
                        "config",
                        None,
                        cpus.format(),
                        item.why,
                        False,
                        persistent=True,
                        unsupported="irqbalance is not installed; nothing moves IRQs back",
                    )
                ]
            path = IRQBALANCE_CONFIGS[0]
        live = ctx.fs.read_maybe(path)
        text = live if isinstance(live, str) else ""
        banned = parse_irqbalance_banned(text, path)
        in_effect = not isinstance(banned, Unknown) and banned == cpus and isinstance(live, str)
        return [
            Change(
                setting,
                path,
                "config",
                live if isinstance(live, str) else None,
                with_banned(text, cpus),
                item.why,
                in_effect,
                persistent=True,
                then_run=restart_command(ctx) if running else (),
            )
        ]
