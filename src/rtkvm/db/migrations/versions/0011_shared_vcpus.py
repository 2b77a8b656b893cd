"""shared (non-RT) guests: vCPUs on the hosts' shared CPUs are counted and may be capped

projects.quota_shared_vcpus (NULL: unlimited) and shared_vcpus_used; instances and
usage_records.shared_vcpus. A guest's shared vCPUs are those floating on its host's
housekeeping CPUs: every vCPU of a hw:cpu_policy=shared guest, the non-RT vCPUs of a
mixed one (Nova's VCPU). Instances placed before this count 0 (their counters agree).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("quota_shared_vcpus", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("shared_vcpus_used", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("instances") as batch:
        batch.add_column(
            sa.Column("shared_vcpus", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(
            sa.Column("shared_vcpus", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("shared_vcpus")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("shared_vcpus")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("shared_vcpus_used")
        batch.drop_column("quota_shared_vcpus")
