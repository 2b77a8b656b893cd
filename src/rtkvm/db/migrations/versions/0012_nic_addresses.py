"""a NIC's address on an unmanaged network, as its user gave it

instance_networks.address: ADDR/PREFIX (normalised), NULL for a NIC without
one. rtkvm never invents an address; one IP is held by one live instance per
network (the API checks it under the network's row lock).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instance_networks") as batch:
        batch.add_column(sa.Column("address", sa.String(43), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instance_networks") as batch:
        batch.drop_column("address")
