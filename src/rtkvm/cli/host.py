"""``rtkvm host ...``: inspect, doctor, plan and capture a compute node."""

from __future__ import annotations

import click

from rtkvm.cli.host_clean import clean_cmd
from rtkvm.cli.host_doctor import doctor_cmd
from rtkvm.cli.host_inspect import capture_cmd, inspect_cmd
from rtkvm.cli.host_plan import plan
from rtkvm.cli.host_tune import rollback_cmd, tune, verify
from rtkvm.cli.host_units import units_cmd


@click.group()
def host() -> None:
    """Inspect, check and plan a real-time compute node."""


host.add_command(inspect_cmd)
host.add_command(capture_cmd)
host.add_command(plan)
host.add_command(doctor_cmd)
host.add_command(tune)
host.add_command(verify)
host.add_command(rollback_cmd)
host.add_command(clean_cmd)
host.add_command(units_cmd)
