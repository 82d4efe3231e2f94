"""Abuse-proofing (#15): Enterprise Grid org workspaces, per-workspace moderation settings

Revision ID: 0015b
Revises: 0015
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015b"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "org_workspaces",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_org_workspaces")),
    )
    op.create_index(op.f("ix_org_workspaces_enterprise_id"), "org_workspaces", ["enterprise_id"], unique=False)
    op.create_table(
        "moderation_settings",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("report_channel", sa.String(length=32), nullable=True),
        sa.Column("admin_user_token", sa.Text(), nullable=True),
        sa.Column("changed_by", sa.String(length=32), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_moderation_settings")),
    )


def downgrade() -> None:
    op.drop_table("moderation_settings")
    op.drop_index(op.f("ix_org_workspaces_enterprise_id"), table_name="org_workspaces")
    op.drop_table("org_workspaces")
