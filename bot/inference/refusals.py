"""Reading and writing the arguments a provider refused (bot.inference.models); callers commit."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.dialect import insert as dialect_insert
from bot.inference.models import RefusedArgument

MAX_ARGUMENT_CHARS = 128


def refused_arguments(session: Session, endpoint: str) -> set[str]:
    rows = session.execute(select(RefusedArgument.argument).where(RefusedArgument.endpoint == endpoint[:512]))
    return set(rows.scalars())


def remember_refusal(session: Session, endpoint: str, argument: str) -> None:
    """Record that ``endpoint`` refused ``argument`` (once; a second dyno's insert is a no-op)."""
    statement = dialect_insert(session)(RefusedArgument).values(
        endpoint=endpoint[:512], argument=argument[:MAX_ARGUMENT_CHARS], learned_at=datetime.now(UTC)
    )
    session.execute(
        statement.on_conflict_do_nothing(index_elements=[RefusedArgument.endpoint, RefusedArgument.argument])
    )


__all__ = ["refused_arguments", "remember_refusal"]
