"""cross-host rtt: the peer's host serves its half of a round trip

measurements.peer_host_id: the host whose agent runs the sockperf server, when the
peer instance is on another host than the client (None: one host runs both).
measurements.peer_state: that half's state (queued, running, serving, done, error;
None when one host runs both).
measurements.peer_result: JSON of what the serving host reported of its half.
measurements.peer_fault: why the serving half failed.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.add_column(sa.Column("peer_host_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("peer_state", sa.String(16), nullable=True))
        batch.add_column(sa.Column("peer_result", sa.Text(), nullable=True))
        batch.add_column(sa.Column("peer_fault", sa.Text(), nullable=True))
        batch.create_foreign_key(
            "fk_measurements_peer_host_id_hosts", "hosts", ["peer_host_id"], ["id"]
        )
        batch.create_index("ix_measurements_peer_host_id", ["peer_host_id"])


def downgrade() -> None:
    with op.batch_alter_table("measurements") as batch:
        batch.drop_index("ix_measurements_peer_host_id")
        batch.drop_constraint("fk_measurements_peer_host_id_hosts", type_="foreignkey")
        batch.drop_column("peer_fault")
        batch.drop_column("peer_result")
        batch.drop_column("peer_state")
        batch.drop_column("peer_host_id")
