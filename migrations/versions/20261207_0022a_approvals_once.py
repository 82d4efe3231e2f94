"""Approvals cover one call (#22): the occurrence of an identical call, when the approved call
started, and its result (a retry gets it back instead of running the call twice)

Revision ID: 0022a_approvals_once
Revises: 0026_mcp_status
Create Date: 2026-12-07 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022a_approvals_once"
down_revision: str | None = "0026_mcp_status"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows are the first occurrence of their call; a used approval keeps no result.
    with op.batch_alter_table("tool_approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occurrence", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("used_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("result_ok", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("result", sa.Text(), nullable=True))
        batch_op.drop_constraint("uq_tool_approvals_job_id_tool_arguments", type_="unique")
        batch_op.create_unique_constraint(
            "uq_tool_approvals_job_id_tool_arguments_occurrence", ["job_id", "tool", "arguments", "occurrence"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM tool_approvals WHERE occurrence > 1")
    with op.batch_alter_table("tool_approvals", schema=None) as batch_op:
        batch_op.drop_constraint("uq_tool_approvals_job_id_tool_arguments_occurrence", type_="unique")
        batch_op.create_unique_constraint("uq_tool_approvals_job_id_tool_arguments", ["job_id", "tool", "arguments"])
        batch_op.drop_column("result")
        batch_op.drop_column("result_ok")
        batch_op.drop_column("used_at")
        batch_op.drop_column("occurrence")
