"""Abuse-proofing (#15): approvals of state-changing tool calls

Revision ID: 0015c
Revises: 0015b
Create Date: 2026-12-01 10:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015c"
down_revision: str | None = "0015b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tool_approvals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("tool", sa.String(length=64), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("card_ts", sa.String(length=32), nullable=True),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_approvals")),
        sa.UniqueConstraint("job_id", "tool", "arguments", name=op.f("uq_tool_approvals_job_id_tool_arguments")),
    )
    op.create_index(op.f("ix_tool_approvals_job_id"), "tool_approvals", ["job_id"], unique=False)
    # Parked jobs are woken by run_at when their approval time is up.
    op.create_index(
        "ix_jobs_parked",
        "jobs",
        ["run_at"],
        unique=False,
        postgresql_where=sa.text("status = 'awaiting'"),
        sqlite_where=sa.text("status = 'awaiting'"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_parked", table_name="jobs")
    op.drop_index(op.f("ix_tool_approvals_job_id"), table_name="tool_approvals")
    op.drop_table("tool_approvals")
