"""a server's console log, fetched through the API

instance_consoles: the end of an instance's serial console (at most 64 KiB of
printable text) as its host's agent last sent it; requested_at is when a
user last asked, taken_at when the agent answered.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 13:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_consoles",
        sa.Column("instance_id", sa.String(36), sa.ForeignKey("instances.id"), primary_key=True),
        sa.Column("requested_at", sa.Float(), nullable=True),
        sa.Column("taken_at", sa.Float(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False, server_default=""),
        sa.Column("truncated", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_table("instance_consoles")
