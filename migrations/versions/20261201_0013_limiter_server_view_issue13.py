"""Limiter: the server's view as a correction, reported usage kept beside the estimate, the waiting line (#13)

Revision ID: 0013_limiter
Revises: 0007_i17_summaries
Create Date: 2026-12-01 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_limiter"
down_revision: str | None = "0007_i17_summaries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rate_limiter_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("correction_requests", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("correction_tokens", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("correction_until", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("correction_seen_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("correction_held_requests", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("correction_held_until", sa.Float(), nullable=True))
    with op.batch_alter_table("rate_reservations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("used_tokens", sa.Integer(), nullable=True))
    op.create_table(
        "rate_waiters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("limiter", sa.String(length=64), nullable=False),
        sa.Column("lane", sa.String(length=16), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_waiters")),
    )
    with op.batch_alter_table("rate_waiters", schema=None) as batch_op:
        batch_op.create_index("ix_rate_waiters_limiter", ["limiter"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rate_waiters", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_waiters_limiter")
    op.drop_table("rate_waiters")
    with op.batch_alter_table("rate_reservations", schema=None) as batch_op:
        batch_op.drop_column("used_tokens")
    with op.batch_alter_table("rate_limiter_state", schema=None) as batch_op:
        batch_op.drop_column("correction_held_until")
        batch_op.drop_column("correction_held_requests")
        batch_op.drop_column("correction_seen_at")
        batch_op.drop_column("correction_until")
        batch_op.drop_column("correction_tokens")
        batch_op.drop_column("correction_requests")
