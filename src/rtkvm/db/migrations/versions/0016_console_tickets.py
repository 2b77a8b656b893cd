"""interactive consoles: agents' relay addresses and one-use console tickets

hosts.console_address: HOST:PORT of the agent's console relay (None: none).
console_tickets: a ticket per console opened through the API, kept hashed,
redeemed once by the server's host agent before it expires.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("console_address", sa.String(300), nullable=True))
    op.create_table(
        "console_tickets",
        sa.Column("secret_hash", sa.String(64), primary_key=True),
        sa.Column("instance_id", sa.String(36), sa.ForeignKey("instances.id"), nullable=False),
        sa.Column("host_id", sa.Integer(), sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("redeemed_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_console_tickets_instance_id", "console_tickets", ["instance_id"])
    op.create_index("ix_console_tickets_expires_at", "console_tickets", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_console_tickets_expires_at", table_name="console_tickets")
    op.drop_index("ix_console_tickets_instance_id", table_name="console_tickets")
    op.drop_table("console_tickets")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("console_address")
