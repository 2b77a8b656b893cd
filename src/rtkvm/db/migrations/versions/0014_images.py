"""disk images, and servers whose disk is an overlay of one

images: the API's image store index (one file per active image, named by
its id, in the store directory); a live name is unique in its project.
instances.image_id / disk_gb: the image a server's copy-on-write disk is
made over, and that disk's size; NULL for servers that boot rtkvm's probe.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("disk_format", sa.String(8), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("virtual_size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_images_project_id", "images", ["project_id"])
    op.create_index(
        "uq_images_live_name",
        "images",
        ["project_id", "name"],
        unique=True,
        sqlite_where=sa.text("status != 'deleted'"),
        postgresql_where=sa.text("status != 'deleted'"),
    )
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("image_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("disk_gb", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_instances_image_id_images", "images", ["image_id"], ["id"])
        batch.create_index("ix_instances_image_id", ["image_id"])


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_index("ix_instances_image_id")
        batch.drop_constraint("fk_instances_image_id_images", type_="foreignkey")
        batch.drop_column("disk_gb")
        batch.drop_column("image_id")
    op.drop_index("uq_images_live_name", table_name="images")
    op.drop_index("ix_images_project_id", table_name="images")
    op.drop_table("images")
