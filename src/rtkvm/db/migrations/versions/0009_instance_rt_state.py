"""instances keep what their agent found when it last checked the running guest; hosts
keep their agent's counters and the tuning drift it found

rt_state ('verified', 'degraded', 'unverified'), rt_detail (JSON: reasons and the
host's waived rules) and rt_checked_at. Instances written before this are
'unverified' until their agent checks them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(
            sa.Column("rt_state", sa.String(16), nullable=False, server_default="unverified")
        )
        batch.add_column(sa.Column("rt_detail", sa.Text(), nullable=True))
        batch.add_column(sa.Column("rt_checked_at", sa.Float(), nullable=True))
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("agent_stats", sa.Text(), nullable=True))
        batch.add_column(sa.Column("tuning_drift", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("tuning_drift")
        batch.drop_column("agent_stats")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("rt_checked_at")
        batch.drop_column("rt_detail")
        batch.drop_column("rt_state")
