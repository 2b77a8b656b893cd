"""index hosts by free RT pCPUs per kind: ready ones, and (partial) waived ones

A decision reads the RT-ready hosts that have at least the guest's pCPUs free,
in the weigher's order, and stops after a few; then the same for hosts admitted
by an admin's waiver. ix_hosts_ready_free (doctor_verdict, rt_free, name) lets
the first skip the full hosts instead of walking past them; the partial
ix_hosts_waived_free (rt_free, name) WHERE rt_waiver IS NOT NULL holds only the
few waived hosts, so the second does not walk every host of a cluster that has
none. ix_hosts_rt_free_name, which neither uses, goes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


WAIVED = sa.text("rt_waiver IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_hosts_ready_free", "hosts", ["doctor_verdict", "rt_free", "name"])
    op.create_index(
        "ix_hosts_waived_free",
        "hosts",
        ["rt_free", "name"],
        sqlite_where=WAIVED,
        postgresql_where=WAIVED,
    )
    op.drop_index("ix_hosts_rt_free_name", table_name="hosts")


def downgrade() -> None:
    op.create_index("ix_hosts_rt_free_name", "hosts", ["rt_free", "name"])
    op.drop_index("ix_hosts_waived_free", table_name="hosts")
    op.drop_index("ix_hosts_ready_free", table_name="hosts")
