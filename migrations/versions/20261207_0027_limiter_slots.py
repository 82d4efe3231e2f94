"""Limiter: the next free slot per attachment (#24): calls keep their slot and the provider's view
of their answer; the waiting line and the correction columns go

Revision ID: 0027_limiter_slots
Revises: 0021_refusals_reports
Create Date: 2026-12-07 07:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027_limiter_slots"
down_revision: str | None = "0021_refusals_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CORRECTION_COLUMNS = (
    "correction_requests",
    "correction_tokens",
    "correction_until",
    "correction_seen_at",
    "correction_held_requests",
    "correction_held_until",
    "correction_seen_tokens",
    "correction_taken_at",
    "correction_external_tokens",
)


def upgrade() -> None:
    # The log is a window long: rows of calls still in flight keep counting (slot = when booked).
    with op.batch_alter_table("rate_reservations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slot", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("view_requests", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("view_tokens", sa.Integer(), nullable=True))
    op.execute("UPDATE rate_reservations SET slot = admitted_at, sent_at = coalesce(sent_at, admitted_at)")
    with op.batch_alter_table("rate_reservations", schema=None) as batch_op:
        batch_op.alter_column("slot", existing_type=sa.Float(), nullable=False)
        batch_op.drop_index("ix_rate_reservations_limiter_admitted_at")
        batch_op.create_index("ix_rate_reservations_limiter_slot", ["limiter", "slot"], unique=False)
    with op.batch_alter_table("rate_limiter_state", schema=None) as batch_op:
        for column in CORRECTION_COLUMNS:
            batch_op.drop_column(column)
    with op.batch_alter_table("rate_waiters", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_waiters_limiter")
    op.drop_table("rate_waiters")


def downgrade() -> None:
    op.create_table(
        "rate_waiters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("limiter", sa.String(length=64), nullable=False),
        sa.Column("lane", sa.String(length=16), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_waiters")),
    )
    with op.batch_alter_table("rate_waiters", schema=None) as batch_op:
        batch_op.create_index("ix_rate_waiters_limiter", ["limiter"], unique=False)
    with op.batch_alter_table("rate_limiter_state", schema=None) as batch_op:
        for column in CORRECTION_COLUMNS:
            if column.endswith(("_until", "_seen_at", "_taken_at")):
                batch_op.add_column(sa.Column(column, sa.Float(), nullable=True))
            else:
                batch_op.add_column(sa.Column(column, sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("rate_reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_reservations_limiter_slot")
        batch_op.create_index("ix_rate_reservations_limiter_admitted_at", ["limiter", "admitted_at"], unique=False)
        batch_op.drop_column("view_tokens")
        batch_op.drop_column("view_requests")
        batch_op.drop_column("slot")
