"""sysfs settings: a path (``*`` matches one component) and a value, written in place.

The compare mode says how the live file reads back (exact text, the
[selected] word, a hex mask, a CPU list). Must not create sysfs files: a
path that does not exist is reported as unsupported on this kernel.
"""

from __future__ import annotations

from rtkvm.tune.model import Change
from rtkvm.tune.plugins.base import Context, Plugin, file_change, glob_paths


class SysfsPlugin(Plugin):
    name = "sysfs"

    def plan(self, ctx: Context) -> list[Change]:
        changes: list[Change] = []
        for item in ctx.profile.sysfs:
            setting = f"sysfs:{item.path}"
            desired = ctx.value(item.value, setting)
            paths = glob_paths(ctx.fs, item.path)
            if not paths:
                paths = [item.path]
            for path in paths:
                changes.append(
                    file_change(ctx, setting, path, desired, item.why, compare=item.compare)
                )
        return changes
