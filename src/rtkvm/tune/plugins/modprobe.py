"""Kernel module options (kvm low-latency settings) in /etc/modprobe.d/rtkvm.conf.

The file is rtkvm's own, persistent, journaled to /var/lib; rollback
removes it. A loaded module keeps its old options until it is reloaded, so
verify compares /sys/module/M/parameters/O and reports pending_reboot until
then. Must not unload or reload modules (guests may be running).
"""

from __future__ import annotations

from rtkvm.tune.model import Change, Check, Status
from rtkvm.tune.plugins.base import Context, Plugin

CONF = "/etc/modprobe.d/rtkvm.conf"
_BOOL = {"y": "1", "n": "0"}


def render(ctx: Context) -> str:
    lines = ["# Written by rtkvm host tune; `rtkvm host rollback` removes it."]
    for item in ctx.profile.modprobe:
        lines.append(f"# {item.module}.{item.option}: {' '.join(item.why.split())}")
        lines.append(f"options {item.module} {item.option}={item.value}")
    return "\n".join(lines) + "\n"


def _norm(value: str) -> str:
    v = value.strip().lower()
    return _BOOL.get(v, v)


class ModprobePlugin(Plugin):
    name = "modprobe"

    def plan(self, ctx: Context) -> list[Change]:
        if not ctx.profile.modprobe:
            return []
        live = ctx.fs.read_maybe(CONF)
        text = render(ctx)
        before = live if isinstance(live, str) else None
        why = "; ".join(f"{m.module}.{m.option}={m.value}" for m in ctx.profile.modprobe)
        return [
            Change(
                "modprobe:options",
                CONF,
                "config",
                before,
                text,
                f"low-latency module options ({why})",
                before == text,
                persistent=True,
            )
        ]

    def verify(self, ctx: Context) -> list[Check]:
        checks: list[Check] = []
        file_ok = all(c.in_effect for c in self.plan(ctx))
        for item in ctx.profile.modprobe:
            setting = f"modprobe:{item.module}.{item.option}"
            param = f"/sys/module/{item.module}/parameters/{item.option}"
            live = ctx.fs.read_line(param)
            loaded = ctx.fs.is_dir(f"/sys/module/{item.module}")
            if isinstance(live, str) and _norm(live) == _norm(item.value):
                status, note, actual = Status.OK, "", live
            elif not file_ok:
                status, note = Status.DRIFT, f"{CONF} does not set it"
                actual = live if isinstance(live, str) else "(module not loaded)"
            elif not loaded:
                status, note, actual = Status.PENDING_REBOOT, "applies when the module loads", "-"
            elif not isinstance(live, str):
                status, note, actual = Status.UNSUPPORTED, f"{param} does not exist", "-"
            else:
                status, note, actual = (Status.PENDING_REBOOT, "reload the module or reboot", live)
            checks.append(Check(setting, param, status, item.value, actual, item.why, note))
        return checks
