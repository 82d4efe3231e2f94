"""Inference: request arguments the provider refused, shared by every dyno; moderation: a report
channel Slack refuses to post in, flagged once (#21)

Revision ID: 0021_refusals_reports
Revises: 0022c_fair_rounds
Create Date: 2026-12-07 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_refusals_reports"
down_revision: str | None = "0022c_fair_rounds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inference_refused_arguments",
        sa.Column("endpoint", sa.String(length=512), nullable=False),
        sa.Column("argument", sa.String(length=128), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "argument", name=op.f("pk_inference_refused_arguments")),
    )
    op.create_table(
        "moderation_report_problems",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("error", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_moderation_report_problems")),
    )


def downgrade() -> None:
    op.drop_table("moderation_report_problems")
    op.drop_table("inference_refused_arguments")
