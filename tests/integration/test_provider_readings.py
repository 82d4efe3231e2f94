"""The gateway against every provider reading of the fake (tests/fakes/inference.py switches):
``stream_options`` refused (learned once, shared through the database), no usage (an estimate is
counted everywhere usage counts), the three error shapes and plain text (a 400 is told, never
retried, before or inside a stream)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.inference.client import InferenceClient
from bot.inference.errors import RejectedError
from bot.inference.gateway import CallContext, ModelGateway
from bot.inference.models import RefusedArgument
from bot.limits.admission import RateLimiter
from bot.limits.budgets import BudgetPolicy
from bot.limits.models import RateReservation, TokenUsage
from bot.limits.slots import RateLimits
from tests.fakes.inference import ERROR_SHAPES, FakeInference

KEY = "readings-test-key"
BODY = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 50}
CTX = CallContext(team_id="T1", user_id="U1")


@pytest.fixture
def fake():
    with FakeInference(api_key=KEY) as server:
        yield server


def gateway(sessions, fake, *, budgets=None) -> ModelGateway:
    """One dyno's gateway: its own client, so its own memory of refused arguments."""
    limiter = RateLimiter(sessions, RateLimits(max_requests=100, max_tokens=100_000, window_seconds=60))
    client = InferenceClient(fake.url, KEY, "claude-4-5-haiku", timeout=5)
    return ModelGateway(client, limiter, sessions, budgets=budgets)


def test_stream_options_refused_is_dropped_at_once_and_other_dynos_learn_it(sessions, fake):
    fake.refuse_stream_options = True
    first, second = gateway(sessions, fake), gateway(sessions, fake)
    shown: list[str] = []
    completion = first.call(BODY, CTX, on_text=shown.append)
    assert completion.content and "".join(shown) == completion.content
    assert len(fake.argument_refusals) == 1 and len(fake.requests) == 2  # refused, then sent without it
    assert "stream_options" not in fake.requests[-1].body
    first.call(BODY, CTX)
    assert len(fake.argument_refusals) == 1  # remembered for the process
    second.call(BODY, CTX)
    assert len(fake.argument_refusals) == 1  # another dyno read it from the database
    with sessions() as session:
        assert session.execute(select(RefusedArgument.argument)).scalars().all() == ["stream_options"]
    # Without usage in the answer (stream_options was what asked for it) the call is still counted.
    assert completion.usage is not None and completion.usage.estimated


def test_without_usage_an_estimate_counts_for_budgets_stats_and_the_limiter(sessions, fake):
    fake.report_usage = False
    gw = gateway(sessions, fake, budgets=BudgetPolicy(per_user_daily_tokens=10))
    completion = gw.call(BODY, CTX)
    usage = completion.usage
    assert usage is not None and usage.estimated and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    with sessions() as session:
        row = session.execute(select(TokenUsage)).scalar_one()
        [reservation] = session.execute(select(RateReservation)).scalars().all()
    assert (row.requests, row.prompt_tokens, row.completion_tokens) == (
        1,
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert reservation.reconciled and reservation.used_tokens == usage.total_tokens
    assert reservation.prompt_used is None  # our own estimate never calibrates the estimates
    from bot.inference.gateway import OverBudget

    with pytest.raises(OverBudget):  # the estimate spent the 10-token allowance
        gw.call(BODY, CTX)


@pytest.mark.invalid_inference_requests
@pytest.mark.parametrize("shape", ERROR_SHAPES)
def test_a_400_before_the_stream_is_told_with_the_reason_and_sent_once(sessions, fake, shape):
    fake.error_shape = shape
    body = {**BODY, "max_tokens": 9000}  # over Haiku's 4096: the strict fake answers 400
    with pytest.raises(RejectedError) as refused:
        gateway(sessions, fake).call(body, CTX)
    assert refused.value.status == 400
    assert "9000" in refused.value.detail and "HTTP" not in refused.value.detail
    assert len(fake.requests) == 1


@pytest.mark.parametrize("shape", ERROR_SHAPES)
def test_a_400_inside_the_stream_is_rejected_not_retried(sessions, fake, shape):
    fake.error_shape = shape
    fake.responder = lambda body: {"content": "Some words, then a refusal."}
    fake.error_mid_stream_next(
        after_chunks=2, error={"message": "messages: text content blocks must be non-empty", "code": 400}
    )
    with pytest.raises(RejectedError) as refused:
        gateway(sessions, fake).call(BODY, CTX)
    assert "non-empty" in refused.value.detail
    assert len(fake.requests) == 1
