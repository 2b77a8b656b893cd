"""PartitionPlan: the three CPU roles of a real-time compute node, as a value.

A plan says which CPUs are housekeeping (the OS, emulator threads, IRQs),
which run RT vCPUs, and which run the RT switch's polling threads, plus the
kernel arguments and Nova settings that implement it. The planner produces
it, the tuning engine applies it, the guest layer pins into it, the agent
reports it. This module holds only the value and its JSON form; it must not
compute a plan or read the host.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from rtkvm.cpuset import CpuSet
from rtkvm.errors import CpuListError, InputError


class PartitionPlan(BaseModel):
    """Three disjoint CPU sets made of whole cores, and what implements them."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    housekeeping: CpuSet
    rt_vcpu: CpuSet
    dataplane: CpuSet
    kernel_cmdline: tuple[str, ...] = ()
    """Kernel arguments implementing the plan (isolcpus=..., nohz_full=..., ...)."""
    nova: dict[str, str] = {}
    """Equivalent OpenStack Nova [compute] settings (cpu_dedicated_set, cpu_shared_set)."""
    smt_policy: str = "use-siblings"
    """'use-siblings' (both threads work) or 'idle-sibling' (second thread kept idle)."""
    idle_siblings: CpuSet = CpuSet()
    """CPUs kept idle because their core's other thread is RT and the policy says so."""

    @field_validator("kernel_cmdline", mode="before")
    @classmethod
    def _tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _disjoint(self) -> PartitionPlan:
        roles = {
            "housekeeping": self.housekeeping,
            "rt_vcpu": self.rt_vcpu,
            "dataplane": self.dataplane,
            "idle_siblings": self.idle_siblings,
        }
        names = list(roles)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                overlap = roles[a] & roles[b]
                if overlap:
                    raise ValueError(
                        f"CPUs {overlap} are in both {a} and {b}; roles must not overlap"
                    )
        if not self.housekeeping:
            raise ValueError("housekeeping is empty; at least one CPU must run the OS")
        return self

    @property
    def isolated(self) -> CpuSet:
        """CPUs taken away from the general scheduler: RT vCPUs, data plane, idle siblings."""
        return self.rt_vcpu | self.dataplane | self.idle_siblings

    @property
    def all_cpus(self) -> CpuSet:
        return self.housekeeping | self.isolated

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str, *, source: str = "plan") -> PartitionPlan:
        """Parse a plan: a bare plan, or the document ``rtkvm host plan -f json`` prints.

        The planner's document adds explanations around the plan's fields
        (``isolated``, ``kernel_args``, ``request``, ``root``, ``nodes``); they are
        dropped, except that ``isolated`` must agree with the roles. Any other
        unknown key is refused (a typo must not silently change a plan). A bad
        plan raises InputError naming the source and the problem.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(
                f"{source}: a plan is a JSON object with housekeeping, rt_vcpu and dataplane, "
                f"found {type(data).__name__}"
            )
        fields = {k: v for k, v in data.items() if k not in PLANNER_EXPLANATIONS}
        try:
            plan = cls.model_validate(fields)
        except Exception as exc:  # pydantic.ValidationError or CpuListError
            raise InputError(f"{source}: not a valid partition plan: {exc}") from None
        stated = data.get("isolated")
        if stated is not None:
            try:
                agrees = CpuSet.parse(str(stated)) == plan.isolated
            except CpuListError as exc:
                raise InputError(f"{source}: isolated: {exc}") from None
            if not agrees:
                raise InputError(
                    f"{source}: 'isolated' says {stated} but the roles give {plan.isolated}; "
                    "regenerate the plan with `rtkvm host plan -f json`"
                )
        return plan

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PartitionPlan:
        """Read a plan file (see from_json); a missing file is an InputError."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{path}: cannot read the plan ({exc.strerror or exc})") from None
        return cls.from_json(text, source=str(path))


PLANNER_EXPLANATIONS = frozenset({"isolated", "kernel_args", "request", "root", "nodes"})
"""Keys ``rtkvm host plan -f json`` adds around a plan to explain it."""
