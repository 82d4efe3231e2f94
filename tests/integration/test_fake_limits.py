"""The fakes' limits that the load tests rely on: token accountings, another app, Slack's latency
and per-channel posting limit."""

from __future__ import annotations

import time

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.inference.client import InferenceClient
from bot.inference.errors import RateLimitedError
from tests.fakes.inference import FakeInference, fake_prompt_tokens
from tests.fakes.rate_limit import WindowLimit
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack
from tests.support.processes import wait_for

MODEL = "claude-4-5-haiku"
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}


@pytest.mark.parametrize(
    ("accounting", "charged_after"),
    [("actual", "actual"), ("corrected", "actual"), ("reserved", "reserved")],
)
def test_each_accounting_charges_what_it_says(accounting, charged_after):
    with FakeInference(max_tokens=10_000, window=30, accounting=accounting) as fake:
        with InferenceClient(fake.url, fake.api_key, MODEL) as client:
            completion = client.complete(BODY)
        reserved = fake_prompt_tokens({**BODY, "model": MODEL, "stream": False}) + 100
        actual = completion.usage.total_tokens
        assert actual < reserved
        expected = actual if charged_after == "actual" else reserved
        # The fake settles a "corrected" charge after the last byte is sent: wait for it, with a deadline.
        wait_for(lambda: fake.tokens_charged == expected, timeout=5)
        assert fake.tokens_charged == expected
        remaining = int(completion.rate_limit_headers["x-ratelimit-remaining-tokens"])
        # The header is the server's view when the request arrived.
        assert remaining == 10_000 - (actual if accounting == "actual" else reserved)


def test_another_app_uses_the_same_window_and_the_headers_show_it():
    with FakeInference(max_requests=3, window=30) as fake, InferenceClient(fake.url, fake.api_key, MODEL) as client:
        httpx.post(fake.url + "/_external", json={"requests": 2, "tokens": 50}).raise_for_status()
        completion = client.complete(BODY)
        assert completion.rate_limit_headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(RateLimitedError) as refused:
            client.complete(BODY)
        assert refused.value.headers["x-ratelimit-remaining-requests"] == "0"
        assert 29 <= refused.value.retry_after <= 30
        assert fake.admitted == 1 and fake.rejected_429 == 1


@pytest.mark.parametrize(
    ("reset", "expected"),
    [
        ("oldest", "6000ms"),  # Heroku: when the oldest entry (at 100) expires
        ("replenished", "10000ms"),  # when the newest charge (at 104) expires
        ("zero", "0ms"),  # 0 while there is room
    ],
)
def test_reset_headers_follow_the_chosen_reading(reset, expected):
    limit = WindowLimit(max_requests=5, max_tokens=None, window=10.0, reset=reset)
    limit.admit(100.0, actual_tokens=1, reserved_tokens=1)
    _, headers, _ = limit.admit(104.0, actual_tokens=1, reserved_tokens=1)
    assert headers["x-ratelimit-reset-requests"] == expected
    assert headers["x-ratelimit-remaining-requests"] == "3"


def test_a_429_says_when_the_refused_request_would_fit_whatever_the_reading():
    limit = WindowLimit(max_requests=1, max_tokens=None, window=10.0, reset="zero")
    limit.admit(100.0, actual_tokens=1, reserved_tokens=1)
    refusal, headers, _ = limit.admit(104.0, actual_tokens=1, reserved_tokens=1)
    assert refusal is not None and headers["x-ratelimit-reset-requests"] == "6000ms"


def test_slack_latency_and_the_per_channel_posting_limit():
    with FakeSlack(latency={"chat.postMessage": 0.2}, post_limit_per_channel=1) as slack:
        client = WebClient(token=DEFAULT_TOKEN, base_url=slack.api_url)
        started = time.monotonic()
        client.chat_postMessage(channel="C1", text="one")
        assert time.monotonic() - started >= 0.2
        with pytest.raises(SlackApiError) as limited:
            client.chat_postMessage(channel="C1", text="two")
        assert limited.value.response.status_code == 429
        assert limited.value.response.headers["Retry-After"] == "1"
        client.chat_postMessage(channel="C2", text="another channel is not limited")
        assert slack.rate_limited_posts == 1
        assert [m["text"] for m in slack.bot_messages("C1")] == ["one"]


@pytest.mark.parametrize(
    ("mode", "on_200", "on_429"), [("always", True, True), ("none", False, False), ("only_429", False, True)]
)
def test_which_answers_carry_rate_limit_headers(mode, on_200, on_429):
    with FakeInference(max_requests=1, window=30.0, headers=mode) as fake:
        with InferenceClient(fake.url, fake.api_key, "claude-4-5-haiku") as client:
            completion = client.complete(BODY)
            with pytest.raises(RateLimitedError) as refused:
                client.complete(BODY)
    assert ("x-ratelimit-remaining-requests" in completion.rate_limit_headers) is on_200
    assert ("x-ratelimit-remaining-requests" in refused.value.headers) is on_429


def test_headers_that_stop_mid_run():
    with FakeInference(max_requests=10, window=30.0) as fake:
        with InferenceClient(fake.url, fake.api_key, "claude-4-5-haiku") as client:
            assert client.complete(BODY).rate_limit_headers
            fake.headers_stop_at = time.monotonic()
            assert client.complete(BODY).rate_limit_headers == {}
