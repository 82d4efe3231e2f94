"""The worker's side of retention: a housekeeping task purging old data every few minutes,
and the `forget_workspace` job that deletes a departed workspace's data in batches."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.db.clock import db_now
from bot.failures import JobStopped
from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler, JobType, Payload
from bot.queue.models import BACKGROUND
from bot.retention.policy import BATCH_SIZE, MAX_BATCHES_PER_RUN, PURGE_INTERVAL_SECONDS, cutoffs, next_run_in
from bot.retention.purge import forget_workspace, purge_expired

log = logging.getLogger(__name__)


class RetentionTask:
    """Called by the worker's housekeeping every second; purges when due, in bounded batches."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        retention_days: int,
        *,
        interval: float = PURGE_INTERVAL_SECONDS,
        batch_size: int = BATCH_SIZE,
        max_batches: int = MAX_BATCHES_PER_RUN,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.sessions = sessions
        self.retention_days = retention_days
        self.interval = interval
        self.batch_size = batch_size
        self.max_batches = max_batches
        self.clock = clock
        self._next_run = 0.0  # the first run comes right after start

    def __call__(self) -> None:
        if self.clock() < self._next_run:
            return
        totals: dict[str, int] = {}
        hit_limit = False
        try:
            for _ in range(self.max_batches):
                with self.sessions.begin() as session:
                    deleted = purge_expired(
                        session, cutoffs(db_now(session), self.retention_days), batch_size=self.batch_size
                    )
                for kind, count in deleted.items():
                    totals[kind] = totals.get(kind, 0) + count
                if max(deleted.values(), default=0) < self.batch_size:
                    break
            else:
                hit_limit = True
        except SQLAlchemyError as exc:
            log.warning("retention purge_failed error=%s", type(exc).__name__)
        self._next_run = self.clock() + next_run_in(hit_batch_limit=hit_limit, interval=self.interval)
        if any(totals.values()):
            log.info(
                "retention purged %s retention_days=%d",
                " ".join(f"{kind}={count}" for kind, count in sorted(totals.items())),
                self.retention_days,
            )


@dataclass(frozen=True)
class ForgetPayload(Payload):
    reason: str = ""  # the event that said the workspace left (for the log)


class ForgetWorkspaceJob(JobHandler):
    """Deletes everything stored for the job's team (enqueued on app_uninstalled / tokens_revoked)."""

    def __init__(self, sessions: sessionmaker[Session], *, batch_size: int = BATCH_SIZE):
        self.sessions = sessions
        self.batch_size = batch_size

    def run(self, ctx: JobContext) -> None:
        team_id, total = ctx.job.team_id, 0
        while True:
            if ctx.should_stop():
                raise JobStopped()  # released; another run continues where this one stopped
            with self.sessions.begin() as session:
                deleted = forget_workspace(session, team_id, batch_size=self.batch_size, keep_job_id=ctx.job.id)
            total += deleted
            if deleted == 0:
                break
        log.info("workspace forgotten team=%s rows=%d job_id=%d", team_id, total, ctx.job.id)


FORGET_WORKSPACE = JobType("forget_workspace", ForgetPayload, ForgetWorkspaceJob, lane=BACKGROUND)
