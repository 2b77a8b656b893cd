"""keypairs, and what a server's first boot is given (key, user-data)

keypairs: a user's SSH public keys by name (one normalised OpenSSH line and
its SHA256 fingerprint). instances.key_name / public_key: the keypair a
server was created with and a copy of its key; instances.user_data: its
cloud-init user-data (base64). Both reach the guest on its NoCloud seed.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 16:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keypairs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("user_id", "name", name="uq_keypairs_user_id"),
    )
    op.create_index("ix_keypairs_user_id", "keypairs", ["user_id"])
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("key_name", sa.String(64), nullable=True))
        batch.add_column(sa.Column("public_key", sa.Text(), nullable=True))
        batch.add_column(sa.Column("user_data", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("user_data")
        batch.drop_column("public_key")
        batch.drop_column("key_name")
    op.drop_index("ix_keypairs_user_id", table_name="keypairs")
    op.drop_table("keypairs")
