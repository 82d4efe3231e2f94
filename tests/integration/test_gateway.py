"""Every model call through the gateway: admission, 429 pause, reconciliation, usage, budgets."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from bot.inference import gateway as gateway_module
from bot.inference.client import InferenceClient
from bot.inference.errors import RetryableError
from bot.inference.gateway import CallContext, ModelGateway, OverBudget
from bot.limits.admission import RateLimiter
from bot.limits.budgets import BudgetPolicy
from bot.limits.models import RateLimiterState, RateReservation, TokenUsage
from bot.limits.slots import RateLimits
from tests.fakes.inference import FakeInference

KEY = "gateway-test-key"
BODY = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 50}


@pytest.fixture
def fake():
    with FakeInference(api_key=KEY) as server:
        yield server


def gateway(sessions, fake, *, limits=None, budgets=None) -> ModelGateway:
    limiter = RateLimiter(sessions, limits or RateLimits(max_requests=100, max_tokens=100_000, window_seconds=60))
    return ModelGateway(
        InferenceClient(fake.url, KEY, "claude-4-5-haiku", timeout=5), limiter, sessions, budgets=budgets
    )


def test_a_call_reserves_then_reconciles_to_the_reported_usage(sessions, fake):
    completion = gateway(sessions, fake).call(BODY, CallContext(team_id="T1", user_id="U1"))
    assert completion.usage is not None
    with sessions() as session:
        [reservation] = session.execute(select(RateReservation)).scalars().all()
        usage = session.execute(select(TokenUsage)).scalar_one()
    assert reservation.reconciled and reservation.used_tokens == completion.usage.total_tokens
    assert reservation.tokens >= completion.usage.total_tokens  # the estimate stays beside it
    assert (usage.team_id, usage.user_id, usage.requests) == ("T1", "U1", 1)
    assert usage.prompt_tokens == completion.usage.prompt_tokens


def test_a_429_pauses_the_whole_pool_and_the_call_is_retried(sessions, fake):
    fake.fail_next(429, headers={"Retry-After": "1"})
    first = gateway(sessions, fake)
    other_process = gateway(sessions, fake)
    started = time.monotonic()
    results = {}

    def paused() -> bool:
        with sessions() as session:
            return bool(session.execute(select(RateLimiterState.paused_until)).scalars().first())

    def call_other():
        deadline = time.monotonic() + 10
        while not paused():  # start once the 429 has paused the pool
            assert time.monotonic() < deadline, "the pool was never paused"
            time.sleep(0.01)
        results["other"] = other_process.call(BODY, CallContext(team_id="T1", user_id="U2"))
        results["other_at"] = time.monotonic()

    thread = threading.Thread(target=call_other)
    thread.start()
    completion = first.call(BODY, CallContext(team_id="T1", user_id="U1"))
    thread.join(10)
    assert completion.content
    assert time.monotonic() - started >= 0.9  # waited out Retry-After
    assert results["other_at"] - started >= 0.9  # so did everyone else
    assert len(fake.requests) == 3  # the 429, the retry, the other call: no storm


def test_server_errors_go_up_to_the_queue(sessions, fake):
    fake.fail_next(503)
    with pytest.raises(RetryableError):
        gateway(sessions, fake).call(BODY, CallContext(team_id="T1", user_id="U1"))


def test_over_budget_makes_no_call(sessions, fake):
    gw = gateway(sessions, fake, budgets=BudgetPolicy(per_user_daily_tokens=10))
    gw.call(BODY, CallContext(team_id="T1", user_id="U1"))  # spends more than 10 tokens
    calls_before = len(fake.requests)
    with pytest.raises(OverBudget) as refused:
        gw.call(BODY, CallContext(team_id="T1", user_id="U1"))
    assert "daily allowance" in refused.value.message
    assert len(fake.requests) == calls_before
    gw.call(BODY, CallContext(team_id="T1", user_id="U2"))  # others are not affected


RATE_LIMIT_EVENT = {"message": "Too many tokens", "type": "rate_limit_error", "code": 429}


def test_every_call_is_streamed(sessions, fake):
    gateway(sessions, fake).call(BODY, CallContext(team_id="T1", user_id="U1"))  # no on_text: still a stream
    assert fake.requests[-1].body["stream"] is True


def test_a_429_event_before_any_text_is_retried_inside_the_gateway(sessions, fake, monkeypatch):
    # An error event says nothing about when to come back: the gateway pauses its default (5 s
    # in production), shortened here; how long it is does not matter to this test.
    monkeypatch.setattr(gateway_module, "DEFAULT_PAUSE_SECONDS", 0.5)
    fake.responder = lambda body: {"content": "All of it."}
    fake.error_mid_stream_next(after_chunks=1, error=RATE_LIMIT_EVENT)  # only the opening chunk: no text
    shown: list[str] = []
    completion = gateway(sessions, fake).call(BODY, CallContext(team_id="T1", user_id="U1"), on_text=shown.append)
    assert completion.content == "".join(shown) == "All of it."
    assert len(fake.requests) == 2


def test_a_failure_after_text_was_shown_goes_to_the_job_and_nothing_is_shown_twice(sessions, fake):
    fake.responder = lambda body: {"content": "Partial answer that was already shown, then the rest."}
    fake.error_mid_stream_next(after_chunks=3, error=RATE_LIMIT_EVENT)
    shown: list[str] = []
    with pytest.raises(RetryableError):
        gateway(sessions, fake).call(BODY, CallContext(team_id="T1", user_id="U1"), on_text=shown.append)
    assert len(fake.requests) == 1  # not retried with the same output
    text = "".join(shown)
    assert text and "Partial answer that was already shown, then the rest.".startswith(text)


def test_a_429_with_only_x_ratelimit_headers_is_waited_out_by_their_reset(sessions):
    # Heroku's headers without Retry-After: x-ratelimit-reset-requests ("3s") says when to come back.
    # The fake's window is 3 s (room for a slow machine between the two apps' requests) and the
    # gateway is told the same window: it holds what others use for one window after their view.
    window = 3.0
    with FakeInference(api_key=KEY, max_requests=1, window=window) as limited:
        limited.retry_after_header = False
        gw = gateway(sessions, limited, limits=RateLimits(max_requests=100, max_tokens=100_000, window_seconds=window))
        # Another app spends the window (the gateway, having seen no response yet, cannot know).
        with InferenceClient(limited.url, KEY, "claude-4-5-haiku") as other_app:
            other_app.complete(BODY)
        started = time.monotonic()
        completion = gw.call(BODY, CallContext(team_id="T1", user_id="U1"))
        waited = time.monotonic() - started
        assert completion.content
        assert limited.rejected_429 == 1 and len(limited.requests) == 3
        assert waited >= 0.9  # the reset header's second, not an immediate retry
