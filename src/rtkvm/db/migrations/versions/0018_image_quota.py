"""per-project image quota: bytes of active images a project may keep in the store

projects.quota_image_bytes: the most bytes of active images (None: unlimited).
projects.image_bytes_used: what its active images take now, kept in step by
every upload that activates an image and every delete; counted from the
images already stored.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("quota_image_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("image_bytes_used", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE projects SET image_bytes_used = (SELECT COALESCE(SUM(images.size_bytes), 0) "
        "FROM images WHERE images.project_id = projects.id AND images.status = 'active')"
    )


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("image_bytes_used")
        batch.drop_column("quota_image_bytes")
