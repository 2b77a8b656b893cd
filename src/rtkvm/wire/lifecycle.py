"""An instance's states, and the power actions a user may ask of it, as data.

A placed instance holds its pCPUs and memory in every placed state, stopped
included (like Nova: a stopped server keeps its resources, so it can start
again). A power action does not change the state at once: the API records a
*task* (``stopping``, ``starting``, ``rebooting``, ``rebooting-hard``), the
host's agent carries it out and reports the resulting state with the task it
did, which clears it. One task at a time per instance.

This module must not touch the database, the host or libvirt; the API
(rtkvm.api.routes.instance_actions) and the agent (rtkvm.agent.power) read
their rules here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rtkvm.wire.base import In

INSTANCE_STATES = (
    "scheduling",
    "building",
    "active",
    "stopped",
    "error",
    "deleting",
    "deleted",
)
PLACED_STATES = ("building", "active", "stopped", "error", "deleting")
"""On a host and holding its claims: the host's agent is given these."""
LIVE_STATES = ("scheduling", *PLACED_STATES)
"""Not deleted: what lists, metrics and the dashboard count."""

PowerAction = Literal["stop", "start", "reboot"]
Task = Literal["stopping", "starting", "rebooting", "rebooting-hard"]

STOP_TIMEOUT_S = 60.0
"""How long a stop or soft reboot waits for the guest to power off after the ACPI
power button before the agent powers it off (Nova's ``shutdown_timeout``)."""


@dataclass(frozen=True)
class ActionRule:
    """What one action does: the task it records, from which states, which state makes it a
    no-op (already there), and the state the agent reports when it is done."""

    task: Task
    allowed: frozenset[str]
    already: str | None
    result: str
    meaning: str


ACTIONS: dict[tuple[PowerAction, bool], ActionRule] = {
    ("stop", False): ActionRule(
        "stopping",
        frozenset({"active", "error"}),
        "stopped",
        "stopped",
        "ACPI power button, then powered off after the stop timeout",
    ),
    ("start", False): ActionRule(
        "starting", frozenset({"stopped"}), "active", "active", "start the stopped guest"
    ),
    ("reboot", False): ActionRule(
        "rebooting",
        frozenset({"active"}),
        None,
        "active",
        "a stop as above, then a start (a new QEMU; RT settings verified again)",
    ),
    ("reboot", True): ActionRule(
        "rebooting-hard",
        frozenset({"active", "stopped", "error"}),
        None,
        "active",
        "power off at once, then start; a guest whose domain is missing is built again",
    ),
}

TASK_RESULT: dict[str, str] = {rule.task: rule.result for rule in ACTIONS.values()}
"""The state an agent reports when it finished a task."""


class InstanceAction(In):
    """A power action a user asks of a server (the API records it as a task)."""

    action: PowerAction
    hard: bool = False
    """Reboot only: power off at once instead of asking the guest first."""


def rule_for(action: PowerAction, hard: bool) -> ActionRule | None:
    """The rule of an action; None when ``hard`` is given to an action without a hard form."""
    return ACTIONS.get((action, hard))
