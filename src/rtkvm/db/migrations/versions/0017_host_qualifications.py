"""host qualifications: a per-host proof on its free RT pCPUs and wired networks

qualifications: one run of `rtkvm cloud host qualify`, with what the host
offered when it began (its free RT pCPUs, wired networks, the digest of its
plan and wiring) and the verdict the API drew from its own measurements.
measurements.qualification_id: the qualification a measurement was made for.
hosts.qualified_at / hosts.qualification_id: the host's last passed
qualification while its plan and wiring are unchanged (None: not qualified).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qualifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("host_id", sa.Integer(), sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("basis", sa.String(64), nullable=False),
        sa.Column("free_pcpus", sa.Text(), nullable=False),
        sa.Column("held_pcpus", sa.Text(), nullable=False),
        sa.Column("networks", sa.Text(), nullable=False),
        sa.Column("max_latency_us", sa.Float(), nullable=True),
        sa.Column("rt_waiver", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_qualifications_host_id", "qualifications", ["host_id"])
    op.create_index("ix_qualifications_state", "qualifications", ["state"])
    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("qualification_id", sa.String(36), nullable=True))
        batch.create_foreign_key(
            "fk_measurements_qualification_id", "qualifications", ["qualification_id"], ["id"]
        )
        batch.create_index("ix_measurements_qualification_id", ["qualification_id"])
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("qualified_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("qualification_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("qualification_id")
        batch.drop_column("qualified_at")
    with op.batch_alter_table("measurements") as batch:
        batch.drop_index("ix_measurements_qualification_id")
        batch.drop_constraint("fk_measurements_qualification_id", type_="foreignkey")
        batch.drop_column("qualification_id")
    op.drop_index("ix_qualifications_state", table_name="qualifications")
    op.drop_index("ix_qualifications_host_id", table_name="qualifications")
    op.drop_table("qualifications")
