"""What is old enough to purge, and when to run the purge again (pure: `now` is passed in).

Kept for RETENTION_DAYS (default 30; 0 keeps them): thread messages with their images,
threads without activity, cached Slack user profiles, done and dead jobs, moderation
decisions. Idempotency keys only have to outlive Slack's retries (minutes), so they go after
two days whatever the setting, except greetings' (one per user), which last as long as the
installation. Token usage counts stay: they hold no content, and budgets and `bot stats` use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

IDEMPOTENCY_KEY_TTL = timedelta(days=2)
PURGE_INTERVAL_SECONDS = 300.0
# After a run that stopped at its batch limit, the next one comes soon to clear the backlog.
BACKLOG_INTERVAL_SECONDS = 5.0
BATCH_SIZE = 500
MAX_BATCHES_PER_RUN = 10


@dataclass(frozen=True)
class Cutoffs:
    history: datetime | None  # None: history is kept
    idempotency_keys: datetime


def cutoffs(now: datetime, retention_days: int) -> Cutoffs:
    history = now - timedelta(days=retention_days) if retention_days > 0 else None
    return Cutoffs(history=history, idempotency_keys=now - IDEMPOTENCY_KEY_TTL)


def next_run_in(*, hit_batch_limit: bool, interval: float = PURGE_INTERVAL_SECONDS) -> float:
    """Seconds until the next purge run."""
    return min(BACKLOG_INTERVAL_SECONDS, interval) if hit_batch_limit else interval
