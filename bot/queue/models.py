"""The durable job table: every piece of model work is a row here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import BigIntId, JsonDocument, UTCDateTime

INTERACTIVE = "interactive"
BACKGROUND = "background"

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
DEAD = "dead"


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JsonDocument)
    lane: Mapped[str] = mapped_column(String(16), default=INTERACTIVE)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Fences completion: a worker whose lease was taken over cannot finish the job.
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Set once the user has been told the job is waiting; they are told only once.
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What a re-run needs to continue rather than repeat (e.g. the ts of a posted reply).
    progress: Mapped[dict | None] = mapped_column(JsonDocument, nullable=True)
    # The round this job is served in (bot.queue.store): a user's jobs take consecutive rounds
    # from the lane's current front, so every user's n-th job comes before anyone's (n+1)-th,
    # and the claim reads the order from an index instead of sorting the backlog.
    fair_key: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        # The predicates must match the claim queries' text literally for Postgres to use them.
        Index(
            "ix_jobs_ready",
            "run_at",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        Index(
            "ix_jobs_leased",
            "lease_expires_at",
            postgresql_where=text("status = 'running'"),
            sqlite_where=text("status = 'running'"),
        ),
        Index("ix_jobs_team_status", "team_id", "status"),
        # The fair order, per lane, and each user's place in it (and their count of waiting jobs).
        Index(
            "ix_jobs_fair",
            "lane",
            "fair_key",
            "run_at",
            "id",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        Index(
            "ix_jobs_user_queue",
            "team_id",
            "user_id",
            "lane",
            "fair_key",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        # Jobs waiting for a person (bot.queue.parking), woken when their time is up.
        Index(
            "ix_jobs_parked",
            "run_at",
            postgresql_where=text("status = 'awaiting'"),
            sqlite_where=text("status = 'awaiting'"),
        ),
        # /healthz counts dead jobs without scanning the done ones (#15).
        Index(
            "ix_jobs_dead",
            "finished_at",
            postgresql_where=text("status = 'dead'"),
            sqlite_where=text("status = 'dead'"),
        ),
    )
