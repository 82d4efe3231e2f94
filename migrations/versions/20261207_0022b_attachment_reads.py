"""Attachments are read once (#22): one row per (message, file) in message_images, and a claim
table so two replies never read the same file at once

Existing duplicates (two quick mentions that both read the same file) are removed first,
keeping the first row stored; the messages they belonged to get their estimates recomputed on
their next edit or read, and are only too high meanwhile.

Revision ID: 0022b_attachment_reads
Revises: 0025_channel_settings
Create Date: 2026-12-07 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022b_attachment_reads"
down_revision: str | None = "0025_channel_settings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM message_images WHERE id NOT IN "
        "(SELECT keep FROM (SELECT MIN(id) AS keep FROM message_images GROUP BY message_id, file_id) AS firsts)"
    )
    with op.batch_alter_table("message_images", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_message_images_message_id_file_id", ["message_id", "file_id"])
    op.create_table(
        "attachment_reads",
        sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("file_id", sa.String(length=32), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["thread_messages.id"],
            name=op.f("fk_attachment_reads_message_id_thread_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", "file_id", name=op.f("pk_attachment_reads")),
    )


def downgrade() -> None:
    op.drop_table("attachment_reads")
    with op.batch_alter_table("message_images", schema=None) as batch_op:
        batch_op.drop_constraint("uq_message_images_message_id_file_id", type_="unique")
