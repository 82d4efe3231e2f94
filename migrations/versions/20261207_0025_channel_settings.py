"""Channel and workspace settings (#25): values, their history of changes, channel token usage

Revision ID: 0025_channel_settings
Revises: 0022a_approvals_once
Create Date: 2026-12-07 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_channel_settings"
down_revision: str | None = "0022a_approvals_once"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_settings",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel_id", "name", name=op.f("pk_channel_settings")),
    )
    op.create_table(
        "channel_setting_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("changed_by", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_setting_changes")),
    )
    op.create_index(
        op.f("ix_channel_setting_changes_changed_at"), "channel_setting_changes", ["changed_at"], unique=False
    )
    op.create_index(
        "ix_channel_setting_changes_place", "channel_setting_changes", ["team_id", "channel_id", "id"], unique=False
    )
    op.create_table(
        "channel_token_usage",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "channel_id", "day", name=op.f("pk_channel_token_usage")),
    )


def downgrade() -> None:
    op.drop_table("channel_token_usage")
    op.drop_index("ix_channel_setting_changes_place", table_name="channel_setting_changes")
    op.drop_index(op.f("ix_channel_setting_changes_changed_at"), table_name="channel_setting_changes")
    op.drop_table("channel_setting_changes")
    op.drop_table("channel_settings")
