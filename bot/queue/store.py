"""Queue operations on the jobs table. Every function works inside the caller's session;
the caller commits, so enqueueing can share a transaction with recording the event.

Completion and rescheduling are fenced by the lease token: a worker whose lease expired
and was taken over by another worker can no longer finish, fail or release the job.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, literal, literal_column, select, union_all, update
from sqlalchemy.orm import Session

from bot.db.clock import db_now
from bot.db.dialect import notify
from bot.queue.models import BACKGROUND, DEAD, DONE, INTERACTIVE, QUEUED, RUNNING, Job

NOTIFY_CHANNEL = "bot_jobs"
# A background job that has waited this long is served like an interactive one.
BACKGROUND_MAX_WAIT = timedelta(seconds=30)

# Literal SQL so Postgres matches the partial indexes ix_jobs_ready / ix_jobs_leased.
IS_QUEUED = literal_column("jobs.status") == literal_column("'queued'")
IS_RUNNING = literal_column("jobs.status") == literal_column("'running'")


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    payload: dict
    lane: str
    team_id: str
    user_id: str
    attempts: int
    max_attempts: int
    lease_token: str
    progress: dict
    created_at: datetime
    notified_at: datetime | None


def enqueue(
    session: Session,
    *,
    kind: str,
    payload: dict,
    team_id: str,
    user_id: str = "",
    lane: str = INTERACTIVE,
    max_attempts: int = 5,
    delay_seconds: float = 0.0,
) -> int:
    if lane not in (INTERACTIVE, BACKGROUND):
        raise ValueError(f"unknown lane {lane!r}")
    now = db_now(session)
    job = Job(
        fair_key=_next_round(session, lane, team_id, user_id or ""),
        kind=kind,
        payload=payload,
        lane=lane,
        team_id=team_id,
        user_id=user_id or "",
        status=QUEUED,
        attempts=0,
        max_attempts=max_attempts,
        run_at=now + timedelta(seconds=delay_seconds),
        created_at=now,
    )
    session.add(job)
    session.flush()
    notify_workers(session)
    return job.id


def waiting_for_user(session: Session, team_id: str, user_id: str, *, kinds: tuple[str, ...]) -> int:
    """How many interactive jobs of these kinds this person has waiting (ix_jobs_user_queue)."""
    return session.execute(
        select(func.count())
        .select_from(Job)
        .where(IS_QUEUED, Job.team_id == team_id, Job.user_id == user_id, Job.lane == INTERACTIVE, Job.kind.in_(kinds))
    ).scalar_one()


def notify_workers(session: Session) -> None:
    """Wake listening workers when this transaction commits (Postgres only)."""
    notify(session, NOTIFY_CHANNEL)


def _next_round(session: Session, lane: str, team_id: str, user_id: str) -> int:
    """The round a new job of this user is served in: right after the user's last waiting job,
    or, if they have none, the lane's current front (the smallest round waiting). Two indexed
    lookups (ix_jobs_user_queue, ix_jobs_fair), whatever the backlog."""
    last = session.execute(
        select(func.max(Job.fair_key)).where(
            IS_QUEUED, Job.team_id == team_id, Job.user_id == user_id, Job.lane == lane
        )
    ).scalar_one_or_none()
    if last is not None:
        return int(last) + 1
    front = session.execute(select(func.min(Job.fair_key)).where(IS_QUEUED, Job.lane == lane)).scalar_one_or_none()
    return int(front) if front is not None else 1


def _fair_candidates(now, per_branch: int):
    """The first `per_branch` ready jobs of each lane in its fair order, as a subquery (id,
    priority, turn, run_at). Each branch walks ix_jobs_fair in order and stops after
    `per_branch` rows, so the cost does not grow with the backlog. Interactive jobs have
    priority 0; background ones 1, or 0 once they have waited BACKGROUND_MAX_WAIT (so they
    are not starved). `turn` is the job's round counted from its lane's front, which makes the
    lanes comparable."""
    branches = []
    for lane in (INTERACTIVE, BACKGROUND):
        front = select(func.min(Job.fair_key)).where(IS_QUEUED, Job.lane == lane).scalar_subquery()
        priority = literal(0) if lane == INTERACTIVE else case((Job.run_at <= now - BACKGROUND_MAX_WAIT, 0), else_=1)
        branch = (
            select(
                Job.id.label("id"),
                priority.label("priority"),
                (Job.fair_key - front).label("turn"),
                Job.run_at.label("run_at"),
            )
            .where(IS_QUEUED, Job.lane == lane, Job.run_at <= now)
            .order_by(Job.fair_key, Job.run_at, Job.id)
            .limit(per_branch)
            .subquery()
        )
        branches.append(select(branch))
    candidates = union_all(*branches).subquery("candidates")
    return candidates, (candidates.c.priority, candidates.c.turn, candidates.c.run_at, candidates.c.id)


def fair_pick(now, limit: int):
    """The ids of the next `limit` ready jobs in the fair order, locked (others' locks skipped)."""
    # Room for rows other claimers hold locked right now (skipped).
    candidates, fair_order = _fair_candidates(now, per_branch=4 * limit + 16)
    return (
        select(Job.id)
        .join(candidates, candidates.c.id == Job.id)
        .where(IS_QUEUED)
        .order_by(*fair_order)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Job)
    )


def claim(session: Session, *, lease_seconds: float, limit: int = 1) -> list[ClaimedJob]:
    """Claim up to `limit` ready jobs, fairly: interactive first (background after waiting
    BACKGROUND_MAX_WAIT), and within that, every user's n-th job before anyone's (n+1)-th
    (their rounds, `fair_key`). Reads a few index entries per group, never the whole backlog."""
    if limit <= 0:
        return []
    # On Postgres the database's clock inside the statement (its transaction began with it): one
    # round trip per claim instead of two.
    now = func.now() if session.get_bind().dialect.name == "postgresql" else db_now(session)
    picked = fair_pick(now, limit)
    token = uuid.uuid4().hex
    rows = session.execute(
        update(Job)
        .where(Job.id.in_(picked.scalar_subquery()))
        .values(
            status=RUNNING,
            attempts=Job.attempts + 1,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            started_at=func.coalesce(Job.started_at, now),
        )
        .returning(Job)
        .execution_options(synchronize_session=False)
    ).scalars()
    claimed = [_claimed(job) for job in rows]
    claimed.sort(key=lambda job: (job.lane != INTERACTIVE, job.id))
    return claimed


def _claimed(job: Job) -> ClaimedJob:
    return ClaimedJob(
        id=job.id,
        kind=job.kind,
        payload=job.payload,
        lane=job.lane,
        team_id=job.team_id,
        user_id=job.user_id,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        lease_token=job.lease_token or "",
        progress=dict(job.progress or {}),
        created_at=job.created_at,
        notified_at=job.notified_at,
    )


def _fenced(job_id: int, lease_token: str):
    return update(Job).where(Job.id == job_id, Job.lease_token == lease_token, Job.status == RUNNING)


def renew(session: Session, job_id: int, lease_token: str, *, lease_seconds: float) -> bool:
    now = db_now(session)
    result = session.execute(
        _fenced(job_id, lease_token).values(lease_expires_at=now + timedelta(seconds=lease_seconds))
    )
    return result.rowcount == 1


def complete(session: Session, job_id: int, lease_token: str) -> bool:
    now = db_now(session)
    result = session.execute(
        _fenced(job_id, lease_token).values(
            status=DONE, finished_at=now, lease_token=None, lease_expires_at=None, last_error=None
        )
    )
    return result.rowcount == 1


def save_progress(session: Session, job_id: int, lease_token: str, progress: dict) -> bool:
    result = session.execute(_fenced(job_id, lease_token).values(progress=progress))
    return result.rowcount == 1


def hold_queued(session: Session, job_id: int) -> dict | None:
    """The progress of a job still queued, its row locked until the caller's transaction ends
    (a worker's claim skips it meanwhile: SKIP LOCKED); None when it started or is locked."""
    query = select(Job.progress).where(Job.id == job_id, IS_QUEUED)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = session.execute(query).first()
    return None if row is None else dict(row[0] or {})


def set_queued_progress(session: Session, job_id: int, progress: dict) -> bool:
    """Store ``progress`` for a job that is still queued (see :func:`hold_queued`)."""
    result = session.execute(update(Job).where(Job.id == job_id, IS_QUEUED).values(progress=progress))
    return result.rowcount == 1


def retry_later(
    session: Session,
    job_id: int,
    lease_token: str,
    *,
    error: str,
    delay_seconds: float,
    counts_attempt: bool = True,
) -> bool:
    """Back to the queue after ``delay_seconds``. ``counts_attempt`` False gives back the attempt
    the claim counted (the failure was not the job's: a 429)."""
    now = db_now(session)
    values: dict = {
        "status": QUEUED,
        "run_at": now + timedelta(seconds=delay_seconds),
        "lease_token": None,
        "lease_expires_at": None,
        "last_error": error[:2000],
    }
    if not counts_attempt:
        values["attempts"] = _decrement(session, Job.attempts)
    result = session.execute(_fenced(job_id, lease_token).values(**values))
    return result.rowcount == 1


def _decrement(session: Session, column):
    floor = func.greatest if session.get_bind().dialect.name == "postgresql" else func.max
    return floor(column - 1, 0)


def bury(session: Session, job_id: int, lease_token: str, *, error: str) -> bool:
    """Out of attempts: keep the row, marked dead, for inspection."""
    now = db_now(session)
    result = session.execute(
        _fenced(job_id, lease_token).values(
            status=DEAD, finished_at=now, lease_token=None, lease_expires_at=None, last_error=error[:2000]
        )
    )
    return result.rowcount == 1


def release(session: Session, job_id: int, lease_token: str) -> bool:
    """Give an unfinished job back (shutdown); the attempt it used is not counted."""
    result = session.execute(
        _fenced(job_id, lease_token).values(
            status=QUEUED,
            attempts=_decrement(session, Job.attempts),
            lease_token=None,
            lease_expires_at=None,
        )
    )
    if result.rowcount == 1:
        notify_workers(session)
    return result.rowcount == 1


def mark_notified(session: Session, job_id: int) -> bool:
    """Record that the user was told the job is waiting; False if someone already did."""
    now = db_now(session)
    result = session.execute(update(Job).where(Job.id == job_id, Job.notified_at.is_(None)).values(notified_at=now))
    return result.rowcount == 1


def recover_expired(session: Session) -> tuple[int, list[ClaimedJob]]:
    """Requeue jobs whose worker died (lease expired). Those already out of attempts are
    marked dead and returned, so the caller can tell their users."""
    now = db_now(session)
    expired = (
        session.execute(
            select(Job).where(IS_RUNNING, Job.lease_expires_at < now).with_for_update(skip_locked=True).limit(100)
        )
        .scalars()
        .all()
    )
    requeued, dead = 0, []
    for job in expired:
        if job.attempts >= job.max_attempts:
            job.status, job.finished_at = DEAD, now
            job.last_error = "lease expired on the last attempt (worker died?)"
            dead.append(_claimed(job))
        else:
            job.status, job.run_at = QUEUED, now
            requeued += 1
        job.lease_token, job.lease_expires_at = None, None
    if requeued:
        notify_workers(session)
    return requeued, dead


def jobs_waiting_since(session: Session, *, older_than_seconds: float, limit: int = 50) -> list[ClaimedJob]:
    """Interactive jobs never started, still queued after `older_than_seconds` (waiting behind
    others), whose users were not told yet. Retried jobs have their own notice (on_retry)."""
    now = db_now(session)
    rows = session.execute(
        select(Job)
        .where(
            IS_QUEUED,
            Job.lane == INTERACTIVE,
            Job.notified_at.is_(None),
            Job.attempts == 0,
            Job.created_at <= now - timedelta(seconds=older_than_seconds),
        )
        .order_by(Job.id)
        .limit(limit)
    ).scalars()
    return [_claimed(job) for job in rows]


# Positions are worked out for the first this-many jobs of the fair order; those further back
# hear theirs when they get there (telling 100,000 people their place would sort the backlog).
POSITIONS_TOLD_WITHIN = 1000


def waiting_positions(session: Session, *, older_than_seconds: float, limit: int = 50) -> list[tuple[ClaimedJob, int]]:
    """Interactive jobs never started, still queued after `older_than_seconds`, with how many
    ready jobs are ahead of each in the fair order :func:`claim` serves (the same order), among
    the first POSITIONS_TOLD_WITHIN of it."""
    now = db_now(session)
    candidates, fair_order = _fair_candidates(now, per_branch=POSITIONS_TOLD_WITHIN)
    ranked = select(
        candidates.c.id.label("id"),
        (func.row_number().over(order_by=fair_order) - 1).label("ahead"),
    ).subquery("ranked")
    rows = session.execute(
        select(Job, ranked.c.ahead)
        .join(ranked, ranked.c.id == Job.id)
        .where(
            IS_QUEUED,
            Job.lane == INTERACTIVE,
            Job.attempts == 0,
            Job.created_at <= now - timedelta(seconds=older_than_seconds),
            ranked.c.ahead < POSITIONS_TOLD_WITHIN,
        )
        .order_by(ranked.c.ahead)
        .limit(limit)
    ).all()
    return [(_claimed(job), int(ahead)) for job, ahead in rows]


def mark_told(session: Session, job_ids: list[int], *, min_interval_seconds: float) -> set[int]:
    """Record that queued jobs' users are told (again) where they stand; returns the ids marked,
    leaving out those told less than `min_interval_seconds` ago (by any worker) or started."""
    if not job_ids:
        return set()
    now = db_now(session)
    rows = session.execute(
        update(Job)
        .where(
            Job.id.in_(job_ids),
            IS_QUEUED,
            (Job.notified_at.is_(None)) | (Job.notified_at <= now - timedelta(seconds=min_interval_seconds)),
        )
        .values(notified_at=now)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    return {row[0] for row in rows}


@dataclass(frozen=True)
class QueueStats:
    queued: int
    running: int
    dead: int
    oldest_queued_age_seconds: float | None


def queue_stats(session: Session) -> QueueStats:
    """Counts from the partial indexes only (one per status counted), never a scan of done jobs:
    the predicates are written as the indexes' (ix_jobs_ready, ix_jobs_leased, ix_jobs_dead)."""
    now = db_now(session)

    def count(status: str) -> int:
        where = literal_column("jobs.status") == literal_column(f"'{status}'")
        return session.execute(select(func.count()).select_from(Job).where(where)).scalar_one()

    counts = {status: count(status) for status in (QUEUED, RUNNING, DEAD)}
    oldest = session.execute(select(func.min(Job.created_at)).where(IS_QUEUED)).scalar_one()
    if isinstance(oldest, str):  # SQLite aggregate bypasses the column type
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        from datetime import UTC

        oldest = oldest.replace(tzinfo=UTC)
    return QueueStats(
        queued=counts.get(QUEUED, 0),
        running=counts.get(RUNNING, 0),
        dead=counts.get(DEAD, 0),
        oldest_queued_age_seconds=(now - oldest).total_seconds() if oldest else None,
    )
