"""Engines and sessions. Created by the entry point, never at import time."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from bot.db.safe_text import postgres_safe_json_dumps, postgres_safe_parameters


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """`pool_size` is the most connections this engine ever opens (no overflow), so the
    connection budget in docs/operations.md and in `bot check` is what a process really uses."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,  # a restarted database leaves dead pooled connections behind
        pool_recycle=1800,
        json_serializer=postgres_safe_json_dumps,
        connect_args={"connect_timeout": 5, "application_name": "slack-ai-bot"},
    )
    _store_safe_text(engine)
    return engine


def _store_safe_text(engine: Engine) -> None:
    """Postgres rejects NUL and neither driver encodes lone surrogates: every statement's
    strings are cleaned (bot.db.safe_text), on both databases so they behave alike."""

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _safe_text(_connection, _cursor, statement, parameters, _context, _executemany):
        return statement, postgres_safe_parameters(parameters)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url, json_serializer=postgres_safe_json_dumps, connect_args={"timeout": 30, "check_same_thread": False}
    )
    _store_safe_text(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (so BEGIN IMMEDIATE works).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # One writer at a time: claims and limiter admissions are serialized like row locks.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
