"""Abuse-proofing (#15): dead jobs counted from a partial index (/healthz)

Revision ID: 0015
Revises: 0016
Create Date: 2026-12-01 09:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_dead",
        "jobs",
        ["finished_at"],
        unique=False,
        postgresql_where=sa.text("status = 'dead'"),
        sqlite_where=sa.text("status = 'dead'"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_dead", table_name="jobs")
