"""IRQ affinity: /proc/irq/default_smp_affinity and every /proc/irq/N/smp_affinity.

Some IRQs cannot be moved (the timer, per-CPU and managed IRQs): the kernel
answers EIO. That is normal, so apply reports it and goes on; verify then
reports that IRQ as unsupported rather than drift. Must not touch
irqbalance (its own plugin does).
"""

from __future__ import annotations

from rtkvm.errors import WriteRefusedError
from rtkvm.host.irqs import DEFAULT_AFFINITY_PATH, IRQ_DIR
from rtkvm.tune.model import Change
from rtkvm.tune.plugins.base import Context, Plugin, file_change
from rtkvm.tune.writer import Writer


class IrqPlugin(Plugin):
    name = "irqs"

    def plan(self, ctx: Context) -> list[Change]:
        item = ctx.profile.irqs
        if item is None:
            return []
        cpus = ctx.cpus(item.affinity, "irqs.affinity")
        mask = cpus.format_mask()
        changes = [
            file_change(
                ctx,
                "irqs:default_smp_affinity",
                DEFAULT_AFFINITY_PATH,
                mask,
                item.why,
                compare="mask",
            )
        ]
        names = ctx.fs.listdir_maybe(IRQ_DIR)
        numbers = sorted(int(n) for n in names if n.isdigit()) if isinstance(names, list) else []
        for irq in numbers:
            path = f"{IRQ_DIR}/{irq}/smp_affinity"
            if ctx.fs.exists(path):
                changes.append(
                    file_change(ctx, "irqs:smp_affinity", path, mask, item.why, compare="mask")
                )
        return changes

    def apply(self, ctx: Context, change: Change, writer: Writer) -> str | None:
        try:
            writer.apply(change)
        except WriteRefusedError as exc:
            if change.setting != "irqs:smp_affinity":
                raise
            return f"{change.target}: not moved ({exc.reason}); normal for some IRQs"
        return None
