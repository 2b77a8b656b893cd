"""hosts say which engine builds their guests; the RT verdicts and measurements of guests
another engine (Nova) built

A host registered by rtkvm's OpenStack-mode agent has engine 'openstack': the
scheduler never places an rtkvm instance there, and the API keeps its RT state
only. guest_verdicts holds each such host's current verdicts (replaced as a set
by its agent), guest_measurements the measurements its agent reported. Hosts
written before this are rtkvm's own.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("engine", sa.String(16), nullable=False, server_default="rtkvm"))
    op.create_table(
        "guest_verdicts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("host_id", sa.Integer(), sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("domain", sa.String(64), nullable=False),
        sa.Column("flavor", sa.String(255), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("checked_at", sa.Float(), nullable=False),
        sa.Column("changed_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("host_id", "server_id", name="uq_guest_verdicts_host_server"),
    )
    op.create_index("ix_guest_verdicts_host_id", "guest_verdicts", ["host_id"])
    op.create_index("ix_guest_verdicts_server_id", "guest_verdicts", ["server_id"])
    op.create_table(
        "guest_measurements",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("host_id", sa.Integer(), sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("server_name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("measured_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_guest_measurements_host_id", "guest_measurements", ["host_id"])
    op.create_index("ix_guest_measurements_server_id", "guest_measurements", ["server_id"])


def downgrade() -> None:
    op.drop_table("guest_measurements")
    op.drop_table("guest_verdicts")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("engine")
