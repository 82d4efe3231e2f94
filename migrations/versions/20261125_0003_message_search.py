"""Message search: a GIN full-text index on thread_messages.text (PostgreSQL only)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:00:00.000000

The expression must stay byte-for-byte what `bot.builtin_tools.search` queries
(`to_tsvector('simple', text)`), or PostgreSQL will not use the index. SQLite searches with
LIKE and gets no index. The index is not in the models (they cannot declare it for one
dialect only); `DIALECT_ONLY_INDEXES` in env.py keeps autogenerate from offering to drop it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_thread_messages_text_search"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON thread_messages USING gin (to_tsvector('simple', text))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
