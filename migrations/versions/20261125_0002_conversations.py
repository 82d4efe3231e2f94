"""Conversations: threads, their messages, processed images and cached Slack users

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 02:28:53.827879
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_users",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_slack_users")),
    )
    op.create_table(
        "thread_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("files", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("tool_calls", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("tool_call_id", sa.String(length=100), nullable=True),
        sa.Column("reply_ts", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("edited", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_thread_messages")),
        sa.UniqueConstraint(
            "team_id", "channel_id", "ts", "seq", name=op.f("uq_thread_messages_team_id_channel_id_ts_seq")
        ),
    )
    op.create_index(op.f("ix_thread_messages_created_at"), "thread_messages", ["created_at"], unique=False)
    op.create_index(
        "ix_thread_messages_thread",
        "thread_messages",
        ["team_id", "channel_id", "thread_ts", "ts", "seq"],
        unique=False,
    )
    op.create_table(
        "threads",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("engaged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("needs_backfill", sa.Boolean(), nullable=False),
        sa.Column("backfilled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel_id", "thread_ts", name=op.f("pk_threads")),
    )
    op.create_index(op.f("ix_threads_last_activity_at"), "threads", ["last_activity_at"], unique=False)
    op.create_table(
        "message_images",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("file_id", sa.String(length=32), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["thread_messages.id"],
            name=op.f("fk_message_images_message_id_thread_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_images")),
    )
    op.create_index(op.f("ix_message_images_message_id"), "message_images", ["message_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_message_images_message_id"), table_name="message_images")
    op.drop_table("message_images")
    op.drop_index(op.f("ix_threads_last_activity_at"), table_name="threads")
    op.drop_table("threads")
    op.drop_index("ix_thread_messages_thread", table_name="thread_messages")
    op.drop_index(op.f("ix_thread_messages_created_at"), table_name="thread_messages")
    op.drop_table("thread_messages")
    op.drop_table("slack_users")
