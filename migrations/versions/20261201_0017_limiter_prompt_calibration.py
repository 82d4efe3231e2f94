"""Limiter: prompt calibration, each call's ceiling, 429s the server never counted, what a view covered (#13)

Revision ID: 0017_calibration
Revises: 0013_limiter
Create Date: 2026-12-01 12:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_calibration"
down_revision: str | None = "0013_limiter"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rate_limiter_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("correction_seen_tokens", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("correction_taken_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("correction_external_tokens", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("rate_reservations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prompt_estimate", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prompt_used", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("output_cap", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("answered_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("sent_at", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("refused", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("rate_waiters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prompt_tokens", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("rate_waiters", schema=None) as batch_op:
        batch_op.drop_column("prompt_tokens")
    with op.batch_alter_table("rate_reservations", schema=None) as batch_op:
        batch_op.drop_column("refused")
        batch_op.drop_column("sent_at")
        batch_op.drop_column("answered_at")
        batch_op.drop_column("output_cap")
        batch_op.drop_column("prompt_used")
        batch_op.drop_column("prompt_estimate")
    with op.batch_alter_table("rate_limiter_state", schema=None) as batch_op:
        batch_op.drop_column("correction_external_tokens")
        batch_op.drop_column("correction_taken_at")
        batch_op.drop_column("correction_seen_tokens")
