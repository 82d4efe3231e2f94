"""The limiter's database side: serialized admission, reconciliation, pool-wide pause."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
from sqlalchemy import select

from bot.limits.admission import GlobalRateLimiter, RequestTooLarge, record_usage
from bot.limits.models import TokenUsage
from bot.limits.window import RateLimits


def _max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_refuses_beyond_the_request_limit_and_says_when(sessions):
    limiter = GlobalRateLimiter(sessions, RateLimits(max_requests=3, max_tokens=1000, window_seconds=30))
    for _ in range(3):
        decision, reservation, _ = limiter.try_admit(10)
        assert decision.admitted and reservation
    decision, reservation, now = limiter.try_admit(10)
    assert not decision.admitted and reservation is None
    assert decision.reason == "requests"
    assert 29 < decision.retry_at - now <= 30


def test_reconciliation_frees_overestimated_tokens(sessions):
    limiter = GlobalRateLimiter(sessions, RateLimits(max_requests=100, max_tokens=1000, window_seconds=30))
    decision, reservation, _ = limiter.try_admit(900)
    assert decision.admitted
    assert limiter.try_admit(200)[0].reason == "tokens"
    limiter.reconcile(reservation, 300)
    assert limiter.try_admit(200)[0].admitted
    assert limiter.usage() == (2, 500)


def test_pause_stops_everyone_until_it_ends(sessions):
    limiter = GlobalRateLimiter(sessions, RateLimits(max_requests=100, max_tokens=1000, window_seconds=30))
    limiter.pause(0.5)
    decision, _, now = limiter.try_admit(1)
    assert decision.reason == "paused" and 0 < decision.retry_at - now <= 0.5
    other_process_view = GlobalRateLimiter(sessions, limiter.limits)
    assert other_process_view.try_admit(1)[0].reason == "paused"
    ticket = limiter.admit(1)  # waits out the pause
    assert ticket.waited_seconds >= 0.3


def test_a_request_larger_than_the_window_is_refused_explicitly(sessions):
    limiter = GlobalRateLimiter(sessions, RateLimits(max_requests=10, max_tokens=100, window_seconds=30))
    with pytest.raises(RequestTooLarge):
        limiter.admit(101)


def test_concurrent_admissions_never_exceed_the_window(sessions):
    window = 1.0
    limiter = GlobalRateLimiter(sessions, RateLimits(max_requests=15, max_tokens=10**6, window_seconds=window))
    errors: list[BaseException] = []
    admitted: list[float] = []

    def caller():
        try:
            for _ in range(5):
                admitted.append(limiter.admit(1).admitted_at)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(admitted) == 40
    assert _max_in_any_window(admitted, window) <= 15
    # 40 requests at 15 per window need at least two full windows.
    assert time.monotonic() - started >= 2 * window * 0.9


def _admit_in_process(url: str, count: int, queue) -> None:
    from bot.db.engine import make_engine, make_session_factory

    engine = make_engine(url)
    limiter = GlobalRateLimiter(
        make_session_factory(engine), RateLimits(max_requests=10, max_tokens=10**6, window_seconds=1.0)
    )
    for _ in range(count):
        limiter.admit(1)
        queue.put(time.time())
    engine.dispose()


def test_two_processes_share_one_window(postgres_url):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_admit_in_process, args=(postgres_url, 15, queue)) for _ in range(2)]
    for process in processes:
        process.start()
    times = [queue.get(timeout=60) for _ in range(30)]
    for process in processes:
        process.join(timeout=30)
    # Admission times are taken just after admission in each process; allow their scheduling slack.
    assert _max_in_any_window(times, 1.0 - 0.05) <= 10


def test_usage_is_recorded_per_team_user_and_day(sessions):
    with sessions.begin() as session:
        record_usage(session, team_id="T1", user_id="U1", prompt_tokens=100, completion_tokens=20)
    with sessions.begin() as session:
        record_usage(session, team_id="T1", user_id="U1", prompt_tokens=50, completion_tokens=5)
        record_usage(session, team_id="T2", user_id="U1", prompt_tokens=7, completion_tokens=1)
    with sessions() as session:
        rows = {(r.team_id, r.user_id): r for r in session.execute(select(TokenUsage)).scalars()}
    assert (rows["T1", "U1"].requests, rows["T1", "U1"].prompt_tokens, rows["T1", "U1"].completion_tokens) == (
        2,
        150,
        25,
    )
    assert rows["T2", "U1"].prompt_tokens == 7
