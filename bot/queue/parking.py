"""Jobs that wait for a person: parked durably, holding no worker thread and no lease.

A parked job has status `awaiting` (awaiting approval) and `run_at` = when it gives up
waiting (an approval's expiry). It is never claimed while parked; `wake` puts it back in the queue at
once (the person answered), `wake_due` those whose time is up (a worker's housekeeping, one
indexed statement). Parking does not use up an attempt: waiting is not failing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, literal_column, select, text, update
from sqlalchemy.orm import Session

from bot.db.clock import db_now
from bot.failures import AwaitingPerson
from bot.queue.models import QUEUED, RUNNING, Job
from bot.queue.store import NOTIFY_CHANNEL

AWAITING_APPROVAL = "awaiting"
IS_PARKED = literal_column("jobs.status") == literal_column(f"'{AWAITING_APPROVAL}'")


# What a handler raises to park its job (declared with the other failures).
JobParked = AwaitingPerson


def park(
    session: Session,
    job_id: int,
    lease_token: str,
    *,
    until: datetime,
    answered: Callable[[Session], bool] | None = None,
) -> bool:
    """Park the job until `until`, fenced by its lease. `answered(session)` (an approval's
    `bot.tools.approvals.answered`, which locks its row) is asked in this same transaction: when
    the person answered before the job got here, it goes back to the queue at once instead,
    since the click's `wake` found nothing parked to wake."""
    floor = func.greatest if session.get_bind().dialect.name == "postgresql" else func.max
    already = answered is not None and answered(session)
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_token == lease_token, Job.status == RUNNING)
        .values(
            status=QUEUED if already else AWAITING_APPROVAL,
            run_at=db_now(session) if already else until,
            lease_token=None,
            lease_expires_at=None,
            attempts=floor(Job.attempts - 1, 0),
        )
    )
    if already and result.rowcount:
        _notify(session)
    return result.rowcount == 1


def _notify(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


def wake(session: Session, job_id: int) -> bool:
    """Back in the queue now, if it is still parked (a second click finds it queued already)."""
    result = session.execute(
        update(Job).where(Job.id == job_id, IS_PARKED).values(status=QUEUED, run_at=db_now(session))
    )
    if result.rowcount:
        _notify(session)
    return result.rowcount == 1


def wake_due(session: Session) -> int:
    """Parked jobs whose waiting time is over go back to the queue (to tell the model no)."""
    due = select(Job.id).where(IS_PARKED, Job.run_at <= db_now(session)).limit(100)
    ids = list(session.execute(due).scalars())
    if not ids:
        return 0
    session.execute(update(Job).where(Job.id.in_(ids), IS_PARKED).values(status=QUEUED))
    _notify(session)
    return len(ids)


class ParkedJobWaker:
    """Worker housekeeping: wakes the parked jobs whose time is up, every `interval` seconds."""

    def __init__(self, sessions, *, interval: float = 2.0, clock=None):
        import time

        self.sessions = sessions
        self.interval = interval
        self.clock = clock or time.monotonic
        self._next = 0.0

    def __call__(self) -> None:
        now = self.clock()
        if now < self._next:
            return
        self._next = now + self.interval
        with self.sessions.begin() as session:
            wake_due(session)
