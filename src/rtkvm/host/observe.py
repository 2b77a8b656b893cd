"""Everything the doctor judges about a host seen through a HostFS: read, and tried.

:func:`observe` inspects the host (:func:`rtkvm.host.inspect.inspect_host`),
gets the experiments' trials (:func:`rtkvm.host.experiments.experiments_for`:
run now on the live host, recorded with a captured tree) and flattens both
into the facts contract (:func:`rtkvm.host.facts.host_facts`). The doctor's
CLI and the node agents use it, so that every verdict rests on the same
facts. This module must not judge them.
"""

from __future__ import annotations

from rtkvm.host.experiments import experiments_for
from rtkvm.host.facts import host_facts
from rtkvm.host.inspect import HostReport, inspect_host
from rtkvm.hostfs import HostFS


def observe(fs: HostFS) -> tuple[HostReport, dict[str, object]]:
    """The inspection report and the facts (experiments included) of the host under ``fs``."""
    report = inspect_host(fs)
    trials = experiments_for(fs, kvm=report.process.kvm_present is True)
    return report, host_facts(report, trials)
