"""The fair order from an index (#22): each job's round (`fair_key`), and indexes for the lanes'
order and each user's waiting jobs

Jobs already waiting get the rounds the old query gave them (their user's n-th ready job is
round n), so the deploy keeps their order.

Revision ID: 0022c_fair_rounds
Revises: 0022b_attachment_reads
Create Date: 2026-12-07 08:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022c_fair_rounds"
down_revision: str | None = "0022b_attachment_reads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fair_key", sa.BigInteger(), server_default="0", nullable=False))
    op.execute(
        "UPDATE jobs SET fair_key = (SELECT count(*) FROM jobs AS earlier WHERE earlier.status = 'queued' "
        "AND earlier.lane = jobs.lane AND earlier.team_id = jobs.team_id AND earlier.user_id = jobs.user_id "
        "AND (earlier.run_at < jobs.run_at OR (earlier.run_at = jobs.run_at AND earlier.id <= jobs.id))) "
        "WHERE status = 'queued'"
    )
    op.create_index(
        "ix_jobs_fair",
        "jobs",
        ["lane", "fair_key", "run_at", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
        sqlite_where=sa.text("status = 'queued'"),
    )
    op.create_index(
        "ix_jobs_user_queue",
        "jobs",
        ["team_id", "user_id", "lane", "fair_key"],
        unique=False,
        postgresql_where=sa.text("status = 'queued'"),
        sqlite_where=sa.text("status = 'queued'"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_user_queue", table_name="jobs")
    op.drop_index("ix_jobs_fair", table_name="jobs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("fair_key")
