"""host nodes account RAM for guests with 4k pages: mem_total, mem_used (MiB); hosts keep
mem_free_max for the scheduler's prefilter

Rows written before this hold 0: a node's RAM is known again at its agent's next
registration, and until then no 4k-page guest is placed on it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 20:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("host_nodes") as batch:
        batch.add_column(sa.Column("mem_total", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("mem_used", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(
            sa.Column("mem_free_max", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("mem_free_max")
    with op.batch_alter_table("host_nodes") as batch:
        batch.drop_column("mem_used")
        batch.drop_column("mem_total")
