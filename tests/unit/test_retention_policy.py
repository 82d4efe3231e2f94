from datetime import UTC, datetime, timedelta

import pytest

from bot.retention.policy import (
    BACKLOG_INTERVAL_SECONDS,
    IDEMPOTENCY_KEY_TTL,
    PURGE_INTERVAL_SECONDS,
    cutoffs,
    next_run_in,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("days", [1, 30, 365])
def test_history_is_kept_for_the_configured_days(days):
    assert cutoffs(NOW, days).history == NOW - timedelta(days=days)


def test_zero_days_keeps_history_but_still_expires_idempotency_keys():
    result = cutoffs(NOW, 0)
    assert result.history is None
    assert result.idempotency_keys == NOW - IDEMPOTENCY_KEY_TTL


@pytest.mark.parametrize(
    "hit_limit, interval, expected",
    [
        (False, PURGE_INTERVAL_SECONDS, PURGE_INTERVAL_SECONDS),
        (True, PURGE_INTERVAL_SECONDS, BACKLOG_INTERVAL_SECONDS),
        (True, 1.0, 1.0),
    ],
)
def test_a_backlog_brings_the_next_run_forward(hit_limit, interval, expected):
    assert next_run_in(hit_batch_limit=hit_limit, interval=interval) == expected
