"""host RT waivers and lab pCPU sharing, measurements, unknown domains and ports

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("rt_waiver", sa.Text(), nullable=True))
        batch.add_column(sa.Column("pcpu_share", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("rt_waiver", sa.Text(), nullable=True))
    with op.batch_alter_table("cpu_claims") as batch:
        batch.add_column(sa.Column("slot", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("uq_cpu_claims_host_pcpu", type_="unique")
        batch.create_unique_constraint("uq_cpu_claims_host_pcpu_slot", ["host_id", "pcpu", "slot"])
    op.create_table(
        "measurements",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("peer_instance_id", sa.String(36), nullable=True),
        sa.Column("network_id", sa.Integer(), nullable=True),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_measurements_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_measurements_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["instance_id"], ["instances.id"], name=op.f("fk_measurements_instance_id_instances")
        ),
        sa.ForeignKeyConstraint(
            ["peer_instance_id"],
            ["instances.id"],
            name=op.f("fk_measurements_peer_instance_id_instances"),
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fk_measurements_network_id_networks")
        ),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_measurements_host_id_hosts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measurements")),
    )
    for column in ("project_id", "instance_id", "peer_instance_id", "host_id", "state"):
        op.create_index(op.f(f"ix_measurements_{column}"), "measurements", [column])
    op.create_table(
        "unknown_resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("hint", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_unknown_resources_host_id_hosts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unknown_resources")),
        sa.UniqueConstraint("host_id", "kind", "name", name="uq_unknown_resources_host_kind_name"),
    )
    op.create_index(op.f("ix_unknown_resources_host_id"), "unknown_resources", ["host_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_unknown_resources_host_id"), table_name="unknown_resources")
    op.drop_table("unknown_resources")
    for column in ("project_id", "instance_id", "peer_instance_id", "host_id", "state"):
        op.drop_index(op.f(f"ix_measurements_{column}"), table_name="measurements")
    op.drop_table("measurements")
    with op.batch_alter_table("cpu_claims") as batch:
        batch.drop_constraint("uq_cpu_claims_host_pcpu_slot", type_="unique")
        batch.create_unique_constraint("uq_cpu_claims_host_pcpu", ["host_id", "pcpu"])
        batch.drop_column("slot")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("rt_waiver")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("pcpu_share")
        batch.drop_column("rt_waiver")
