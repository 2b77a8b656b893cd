"""sysctl settings: /proc/sys/<key with dots as slashes>, written in place.

Must not persist anything to /etc/sysctl.d: the journal and rollback own
the original values, and a reboot returns the kernel defaults.
"""

from __future__ import annotations

from rtkvm.tune.model import Change
from rtkvm.tune.plugins.base import Context, Plugin, file_change


def sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


class SysctlPlugin(Plugin):
    name = "sysctl"

    def plan(self, ctx: Context) -> list[Change]:
        changes: list[Change] = []
        for item in ctx.profile.sysctl:
            setting = f"sysctl:{item.key}"
            desired = ctx.value(item.value, setting)
            changes.append(file_change(ctx, setting, sysctl_path(item.key), desired, item.why))
        return changes
