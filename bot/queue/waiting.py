"""Where queued jobs stand: which interactive jobs, still unclaimed after QUEUED_NOTICE_SECONDS,
should hear their position now (the worker hands each to its handler's ``on_waiting`` hook,
which words it for the person).

A position counts the jobs ahead in the fair order (bot.queue.store.waiting_positions) plus the
calls waiting in the rate limiter's line. A job hears it when its position changed, at most
every FEEDBACK_INTERVAL_SECONDS (spaced in the database, so two workers do not both tell it)
and at most MAX_FEEDBACK_UPDATES times. A job that has waited LONG_WAIT_SECONDS is told once
more, whatever its position (``JobEvent.waited``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.queue import store
from bot.queue.job_type import JobEvent
from bot.queue.store import ClaimedJob

log = logging.getLogger(__name__)

# Interactive jobs still unclaimed after this long are told where they stand (on_waiting).
QUEUED_NOTICE_SECONDS = 5.0
# A waiting job hears its position at most this often, at most this many times.
FEEDBACK_INTERVAL_SECONDS = 5.0
MAX_FEEDBACK_UPDATES = 12
# A queue wait this long is told once more (``JobEvent.waited``), whatever the position: the
# thread's status clears itself after 2 minutes (DESIGN-NOTES, Slack), so it belongs in a message.
LONG_WAIT_SECONDS = 120.0


class QueueFeedback:
    """``line_length()``: calls waiting in the rate limiter's line, ahead of every queued job."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        older_than_seconds: float = QUEUED_NOTICE_SECONDS,
        line_length: Callable[[], int] = lambda: 0,
    ):
        self.sessions = sessions
        self.older_than_seconds = older_than_seconds
        self.line_length = line_length
        self._told: dict[int, tuple[float, int, int]] = {}  # job id -> (when, position, updates)
        self._long_told: set[int] = set()  # jobs told about a long wait (LONG_WAIT_SECONDS)

    def due(self) -> list[tuple[ClaimedJob, JobEvent]]:
        """The jobs to tell now, each with its event (``position``; ``update``: told before),
        marked told in the database in one commit. Empty when the database cannot say."""
        try:
            with self.sessions() as session:
                waiting = store.waiting_positions(session, older_than_seconds=self.older_than_seconds)
            ahead_in_line = self.line_length() if waiting else 0
        except SQLAlchemyError as exc:
            log.warning("queue_feedback failed error=%s", type(exc).__name__)
            return []
        now = time.monotonic()
        alive = {job.id for job, _ in waiting}
        for job_id in [j for j in self._told if j not in alive]:
            del self._told[job_id]
        self._long_told &= alive
        to_tell = []
        wall = datetime.now(UTC)
        for job, ahead in waiting:
            position = ahead + ahead_in_line
            _, last_position, updates = self._told.get(job.id, (0.0, -1, 0))
            waited = (wall - job.created_at).total_seconds()
            long_wait = waited >= LONG_WAIT_SECONDS and job.id not in self._long_told
            if long_wait or (position != last_position and updates < MAX_FEEDBACK_UPDATES):
                to_tell.append((job, position, updates, waited if long_wait else None))
        if not to_tell:
            return []
        try:
            with self.sessions.begin() as session:  # one commit per round, however many are told
                marked = store.mark_told(
                    session, [job.id for job, *_ in to_tell], min_interval_seconds=FEEDBACK_INTERVAL_SECONDS - 0.5
                )
        except SQLAlchemyError:
            return []
        due = []
        for job, position, updates, waited in to_tell:
            if job.id not in marked:
                continue
            self._told[job.id] = (now, position, updates + 1)
            if waited is not None:
                self._long_told.add(job.id)
            event = JobEvent(position=position, update=updates > 0 or job.notified_at is not None, waited=waited)
            due.append((job, event))
        return due
