"""The time every process agrees on: the database's clock on Postgres.

Dynos' clocks drift; decisions shared across dynos (leases, the rate window) use the
database server's `clock_timestamp()`. SQLite is single-machine, so the local clock is it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session


def db_now(session: Session) -> datetime:
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(text("SELECT clock_timestamp()")).scalar_one().astimezone(UTC)
    return datetime.now(UTC)


def db_epoch(session: Session) -> float:
    if session.get_bind().dialect.name == "postgresql":
        return float(session.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar_one())
    return time.time()
