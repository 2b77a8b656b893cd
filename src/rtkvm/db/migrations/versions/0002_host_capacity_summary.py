"""host capacity summary columns; topology and plan move to host_details

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 23:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SUMMARY = ("rt_free", "node_free_max", "hp2m_free_max", "hp1g_free_max")


def upgrade() -> None:
    op.create_table(
        "host_details",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("topology", sa.Text(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_host_details_host_id_hosts")
        ),
        sa.PrimaryKeyConstraint("host_id", name=op.f("pk_host_details")),
    )
    op.execute(
        "INSERT INTO host_details (host_id, topology, plan) SELECT id, topology, plan FROM hosts"
    )
    with op.batch_alter_table("hosts") as batch:
        for column in SUMMARY:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=False, server_default="0"))
        batch.drop_column("topology")
        batch.drop_column("plan")
        batch.create_index("ix_hosts_rt_free_name", ["rt_free", "name"])
    of_host = "FROM host_nodes n WHERE n.host_id = hosts.id"
    op.execute(
        "UPDATE hosts SET "
        f"rt_free = COALESCE((SELECT SUM(rt_total - rt_used) {of_host}), 0), "
        f"node_free_max = COALESCE((SELECT MAX(rt_total - rt_used) {of_host}), 0), "
        f"hp2m_free_max = COALESCE((SELECT MAX(hp2m_total - hp2m_used) {of_host}), 0), "
        f"hp1g_free_max = COALESCE((SELECT MAX(hp1g_total - hp1g_used) {of_host}), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_index("ix_hosts_rt_free_name")
        batch.add_column(sa.Column("topology", sa.Text(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("plan", sa.Text(), nullable=False, server_default="{}"))
        for column in SUMMARY:
            batch.drop_column(column)
    op.execute(
        "UPDATE hosts SET "
        "topology = (SELECT topology FROM host_details d WHERE d.host_id = hosts.id), "
        "plan = (SELECT plan FROM host_details d WHERE d.host_id = hosts.id) "
        "WHERE id IN (SELECT host_id FROM host_details)"
    )
    op.drop_table("host_details")
