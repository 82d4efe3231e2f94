"""Issue 17: token estimates stored with each thread message; documents' text with attachments

Revision ID: 0006_i17_tokens
Revises: 0015c
Create Date: 2026-12-01 09:30:00.000000

Existing rows get their estimates computed here (in batches), with the same function the
writers use, so a rebuild never has to recount them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_i17_tokens"
down_revision: str | None = "0015c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("thread_messages") as batch:
        batch.add_column(sa.Column("tokens", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("image_tokens", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("image_count", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("message_images") as batch:
        batch.add_column(sa.Column("text", sa.Text(), nullable=True))
    _backfill()


def _backfill() -> None:
    from bot.history.estimates import row_estimates

    connection = op.get_bind()
    messages = sa.table(
        "thread_messages",
        sa.column("id", sa.BigInteger),
        sa.column("role", sa.String),
        sa.column("text", sa.Text),
        sa.column("files", sa.JSON),
        sa.column("tool_calls", sa.JSON),
        sa.column("tool_call_id", sa.String),
        sa.column("deleted", sa.Boolean),
        sa.column("tokens", sa.Integer),
        sa.column("image_tokens", sa.Integer),
        sa.column("image_count", sa.Integer),
    )
    images = sa.table(
        "message_images",
        sa.column("message_id", sa.BigInteger),
        sa.column("file_id", sa.String),
        sa.column("media_type", sa.String),
        sa.column("width", sa.Integer),
        sa.column("height", sa.Integer),
        sa.column("problem", sa.Text),
    )
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(messages).where(messages.c.id > last_id).order_by(messages.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        prepared: dict[int, list] = {}
        for image in connection.execute(
            sa.select(images).where(images.c.message_id.in_([row.id for row in rows]))
        ).all():
            prepared.setdefault(image.message_id, []).append(image)
        for row in rows:
            tokens, image_tokens, image_count = row_estimates(row, prepared.get(row.id, []))
            connection.execute(
                sa.update(messages)
                .where(messages.c.id == row.id)
                .values(tokens=tokens, image_tokens=image_tokens, image_count=image_count)
            )
        last_id = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("message_images") as batch:
        batch.drop_column("text")
    with op.batch_alter_table("thread_messages") as batch:
        batch.drop_column("image_count")
        batch.drop_column("image_tokens")
        batch.drop_column("tokens")
