"""What a tune, verify or rollback is about: the options given, else what was last applied.

``rtkvm host verify`` and a second ``host tune`` without ``--plan`` continue
from the journal's header (written by the last apply): its plan, profile,
choices, ``--only`` patterns and guest hugepages. An option given on the
command line wins; with ``--plan`` nothing is taken from the header (a new
plan is a new tuning). This module must not read or write the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rtkvm.errors import InputError
from rtkvm.host.partition import PartitionPlan
from rtkvm.tune.profile import DEFAULT_PROFILE


@dataclass(frozen=True)
class TuningRequest:
    plan: PartitionPlan
    profile: str
    choices: dict[str, str] = field(default_factory=dict)
    only: tuple[str, ...] = ()
    guest_hugepages: int | None = None


def resolve_request(
    header: Mapping[str, Any] | None,
    *,
    plan_path: str | None,
    profile: str | None,
    rt_throttling: str | None,
    guest_hugepages: int | None,
    only: tuple[str, ...],
) -> TuningRequest:
    """The tuning to plan or check; InputError when there is neither a plan nor an apply."""
    applied = header if plan_path is None else None
    choices: dict[str, str] = {}
    if applied is not None and isinstance(applied.get("choices"), dict):
        choices = {str(k): str(v) for k, v in applied["choices"].items()}
    if rt_throttling is not None:
        choices["rt_throttling"] = rt_throttling
    if guest_hugepages is None and applied is not None:
        recorded = applied.get("guest_hugepages")
        guest_hugepages = recorded if isinstance(recorded, int) else None
    name = profile or (str(applied["profile"]) if applied and "profile" in applied else None)
    if not only and applied is not None:
        only = tuple(str(p) for p in applied.get("only") or ())
    return TuningRequest(
        plan=_plan(plan_path, applied),
        profile=name or DEFAULT_PROFILE,
        choices=choices,
        only=only,
        guest_hugepages=guest_hugepages,
    )


def _plan(path: str | None, applied: Mapping[str, Any] | None) -> PartitionPlan:
    if path is not None:
        return PartitionPlan.load(path)
    if applied is not None and isinstance(applied.get("plan"), dict):
        return PartitionPlan.model_validate(applied["plan"])
    raise InputError(
        "no applied tuning found in the journal: give --plan PLAN.json (from `rtkvm host plan`)"
    )
