"""What differs between PostgreSQL and SQLite, in one place: the INSERT that knows
``ON CONFLICT`` and the wake-up signal (``pg_notify``; SQLite has none, its workers poll)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert(session: Session):
    """The dialect's ``insert`` construct (with ``on_conflict_do_nothing`` / ``_do_update``)."""
    return postgresql_insert if is_postgres(session) else sqlite_insert


def notify(session: Session, channel: str) -> None:
    """Wake the processes listening on ``channel`` when this transaction commits (Postgres only)."""
    if is_postgres(session):
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})
