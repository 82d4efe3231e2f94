"""Claiming inbound deliveries exactly once, in the caller's transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.db.clock import db_now
from bot.db.dialect import insert as dialect_insert
from bot.idempotency.models import IdempotencyKey


def claim_once(session: Session, team_id: str, key: str) -> bool:
    """True the first time (team, key) is seen, False for every repeat, across all dynos.
    A concurrent duplicate blocks on the unique key until the first commits, then gets False."""
    insert = dialect_insert(session)
    result = session.execute(
        insert(IdempotencyKey)
        .values(team_id=team_id, key=key[:200], created_at=db_now(session))
        .on_conflict_do_nothing(index_elements=[IdempotencyKey.team_id, IdempotencyKey.key])
        # rowcount is not reliable for ORM-enabled INSERT … ON CONFLICT; RETURNING is.
        .returning(IdempotencyKey.key)
    )
    return result.first() is not None


# Keys of greetings (one per user and workspace): never purged by age, only with the workspace.
GREETING_KEY_PREFIX = "welcome:"


def greeting_key(user_id: str) -> str:
    return f"{GREETING_KEY_PREFIX}{user_id}"


def event_key(event_id: str) -> str:
    return f"event:{event_id}"


def message_key(channel: str, ts: str) -> str:
    return f"message:{channel}:{ts}"
