"""host disk: the space for servers' disks, scheduled like pCPUs and memory

hosts.disk_gb_total: GiB of the filesystem holding the servers' disks, as the
host's agent registers it (None until it does: no server with a disk goes there).
hosts.disk_gb_used: GiB the disks of the servers placed there may grow to,
kept in step by every claim and release; counted from the servers already placed.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 03:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("disk_gb_total", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("disk_gb_used", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE hosts SET disk_gb_used = (SELECT COALESCE(SUM(instances.disk_gb), 0) "
        "FROM instances WHERE instances.host_id = hosts.id "
        "AND (instances.rt_cores > 0 OR instances.shared_vcpus > 0))"
    )


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("disk_gb_used")
        batch.drop_column("disk_gb_total")
