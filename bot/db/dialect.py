"""What differs between PostgreSQL and SQLite, in one place: the INSERT that knows
``ON CONFLICT`` and the wake-up signal (``pg_notify``; SQLite has none: a commit wakes the
listeners of its own process, :class:`LocalListener`, and other processes' workers poll)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

_PENDING = "bot_local_notify"  # session.info: the channels this transaction notifies (SQLite)
_local_lock = threading.Lock()
_local: dict[tuple[str | None, str], list[Callable[[], None]]] = {}  # (database file, channel)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def insert(session: Session):
    """The dialect's ``insert`` construct (with ``on_conflict_do_nothing`` / ``_do_update``)."""
    return postgresql_insert if is_postgres(session) else sqlite_insert


def notify(session: Session, channel: str) -> None:
    """Wake the listeners on ``channel`` when this transaction commits: every process's on
    Postgres, this process's on SQLite."""
    if is_postgres(session):
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})
    else:
        session.info.setdefault(_PENDING, set()).add(channel)


@event.listens_for(Session, "after_commit")
def _wake_local_listeners(session: Session) -> None:
    channels = session.info.pop(_PENDING, None)
    if not channels:
        return
    database = session.get_bind().url.database
    with _local_lock:
        callbacks = [callback for channel in channels for callback in _local.get((database, channel), ())]
    for callback in callbacks:
        callback()


@event.listens_for(Session, "after_rollback")
def _forget_local_notifications(session: Session) -> None:
    session.info.pop(_PENDING, None)


class LocalListener:
    """SQLite's stand-in for :class:`bot.db.listen.NotificationListener`, with its interface: while
    started, a commit in this process that notifies a channel calls the channel's callback (`bot
    serve`, `bot chat`: the enqueue wakes the worker at once). Other processes' commits reach no
    one here; their workers poll."""

    def __init__(self, sqlalchemy_url: str, channels: dict[str, Callable[[], None]]):
        database = make_url(sqlalchemy_url).database
        self._keys = [((database, channel), callback) for channel, callback in channels.items()]

    def start(self) -> None:
        with _local_lock:
            for key, callback in self._keys:
                _local.setdefault(key, []).append(callback)

    def stop(self) -> None:
        with _local_lock:
            for key, callback in self._keys:
                callbacks = _local.get(key, [])
                if callback in callbacks:
                    callbacks.remove(callback)
                if not callbacks:
                    _local.pop(key, None)
