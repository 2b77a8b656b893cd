"""Has the host drifted from rtkvm's last tuning? The settings whose value is no longer applied.

:func:`tuning_drift` reads the journal of the last ``rtkvm host tune --apply``
(its plan, profile and choices) and verifies every setting against the host,
read only, as ``rtkvm host verify`` does: the ones in drift come back as
``setting (target): actual, expected``. None when rtkvm never tuned this
host (nothing to drift from). The node agent puts this in its host report.
This module must not write anything.
"""

from __future__ import annotations

from rtkvm.errors import RtkvmError
from rtkvm.hostfs import HostFS
from rtkvm.tune.engine import Tuning
from rtkvm.tune.journal import Journal
from rtkvm.tune.model import Status
from rtkvm.tune.profile import load_profile
from rtkvm.tune.resume import resolve_request
from rtkvm.tune.simkernel import SimulatedProcessControl
from rtkvm.tune.system import ProcessControl, RealProcessControl, RecordingRunner

DRIFT_MAX = 64
"""The most drifted settings one report names (the count says the rest)."""


def tuning_drift(fs: HostFS) -> list[str] | None:
    journal = Journal(fs)
    try:
        header = journal.read_header()
    except RtkvmError:
        return None
    if header is None:
        return None
    request = resolve_request(
        header, plan_path=None, profile=None, rt_throttling=None, guest_hugepages=None, only=()
    )
    proc: ProcessControl = (
        RealProcessControl(fs) if fs.is_real_host else SimulatedProcessControl(fs)
    )
    tuning = Tuning(
        fs=fs,
        profile=load_profile(request.profile),
        plan=request.plan,
        proc=proc,
        runner=RecordingRunner(),  # verify runs nothing; a command would only be recorded
        journal=journal,
        choices=request.choices,
        only=request.only,
        guest_hugepages=request.guest_hugepages,
    )
    drifted = [c for c in tuning.verify() if c.status is Status.DRIFT]
    return [
        f"{c.setting} ({c.target}): {c.actual}, expected {c.expected}" for c in drifted[:DRIFT_MAX]
    ]
