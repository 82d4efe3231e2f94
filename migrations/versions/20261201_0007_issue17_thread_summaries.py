"""Issue 17: running summaries of long threads

Revision ID: 0007_i17_summaries
Revises: 0006_i17_tokens
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_i17_summaries"
down_revision: str | None = "0006_i17_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "thread_summaries",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("covers_ts", sa.String(length=32), nullable=False),
        sa.Column("covers_seq", sa.Integer(), nullable=False),
        sa.Column("covered", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel_id", "thread_ts", name=op.f("pk_thread_summaries")),
    )
    op.create_index(op.f("ix_thread_summaries_updated_at"), "thread_summaries", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_thread_summaries_updated_at"), table_name="thread_summaries")
    op.drop_table("thread_summaries")
