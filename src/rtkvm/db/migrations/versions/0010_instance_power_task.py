"""instances keep the power action their agent has yet to carry out

task: 'stopping', 'starting', 'rebooting' or 'rebooting-hard' (rtkvm.wire.lifecycle),
NULL when none. The new state 'stopped' needs no schema change (states are strings).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("task", sa.String(16), nullable=True))


def downgrade() -> None:
    # a stopped instance has no place in the older schema's states: it counts as active,
    # which its agent corrects (an older agent starts it again)
    op.execute("UPDATE instances SET state = 'active' WHERE state = 'stopped'")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("task")
