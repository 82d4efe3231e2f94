"""What a running job holds: its claimed row, its lease, and the checkpoint that fences writes.

A job writes to Slack or stores its turn only while its lease is provably ours:
:meth:`JobContext.checkpoint` refuses when the last successful renewal is older than
SAFE_LEASE_FRACTION of the lease, unless renewing in the database right then succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.failures import LeaseLost
from bot.queue import store
from bot.queue.store import ClaimedJob

log = logging.getLogger(__name__)

# A job may write to Slack while its last renewal is younger than this fraction of the lease.
SAFE_LEASE_FRACTION = 0.5


@dataclass
class JobContext:
    job: ClaimedJob
    sessions: sessionmaker[Session]
    stopping: threading.Event
    progress: dict = field(default_factory=dict)
    lease_lost: threading.Event = field(default_factory=threading.Event)
    lease_seconds: float = 60.0
    # time.monotonic() when the last successful claim or renewal began (the lease runs from then)
    renewed_at: float = field(default_factory=time.monotonic)
    # The job's payload as its kind's dataclass (JobType.payload_of); the stored dict for a kind
    # the worker was given no declaration of.
    payload: Any = None

    def should_stop(self) -> bool:
        return self.stopping.is_set() or self.lease_lost.is_set()

    def lease_is_fresh(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return now - self.renewed_at <= self.lease_seconds * SAFE_LEASE_FRACTION

    def checkpoint(self) -> None:
        """Call before a visible side effect (posting to Slack, storing the turn): raises
        LeaseLost unless the lease is provably ours, renewing it in the database first when the
        last renewal is older than SAFE_LEASE_FRACTION of the lease."""
        if self.lease_lost.is_set():
            raise LeaseLost()
        if not self.lease_is_fresh():
            self.renew_now()

    def renew_now(self) -> None:
        """Renew the lease in the database now; LeaseLost if it is not ours, or cannot be proved
        while the lease may still be ours (a database blip is retried until then)."""
        while True:
            started = time.monotonic()
            try:
                with self.sessions.begin() as session:
                    ours = store.renew(session, self.job.id, self.job.lease_token, lease_seconds=self.lease_seconds)
                break
            except SQLAlchemyError as exc:
                if started + 0.25 - self.renewed_at >= self.lease_seconds * 0.9:
                    log.warning("job lease_unproven id=%d error=%s", self.job.id, type(exc).__name__)
                    raise LeaseLost() from exc
                time.sleep(0.25)
        if not ours:
            self.lease_lost.set()
            raise LeaseLost()
        self.renewed_at = max(self.renewed_at, started)

    def save_progress(self, **updates) -> None:
        """Persist what a re-run must not repeat; raises LeaseLost if the job is no longer ours.
        A database blip is retried while the lease may still be ours: losing what was already
        shown (a reply's ts) would make the re-run post a second message."""
        while True:
            started = time.monotonic()
            try:
                with self.sessions.begin() as session:
                    self.save_progress_in(session, **updates)
                return
            except OperationalError:
                if started + 0.25 - self.renewed_at >= self.lease_seconds * 0.9:
                    raise
                time.sleep(0.25)

    def save_progress_in(self, session: Session, **updates) -> None:
        """save_progress inside the caller's transaction (e.g. with the turn it stored): if the
        job is no longer ours, LeaseLost is raised and the whole transaction rolls back."""
        progress = {**self.progress, **updates}
        if not store.save_progress(session, self.job.id, self.job.lease_token, progress):
            self.lease_lost.set()
            raise LeaseLost()
        self.progress.update(updates)
