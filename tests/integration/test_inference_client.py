"""InferenceClient against FakeInference over real HTTP on 127.0.0.1, and the fake's own rate limit."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bot.inference.client import PROMPT_CACHING_HEADER, Completion, InferenceClient
from bot.inference.errors import InferenceError, RateLimitedError, RejectedError, RetryableError
from bot.inference.sse import ToolCallOut, Usage
from tests.fakes.inference import (
    FakeInference,
    echo_responder,
    fake_answer_tokens,
    fake_prompt_tokens,
)

MODEL = "claude-4-5-haiku"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Reasoning comes back only when the request asks for it.
WITH_REASONING = {
    "max_tokens": 2048,
    "extended_thinking": {"enabled": True, "budget_tokens": 1024, "include_reasoning": True},
}


def ask(text: str = "What is Heroku?") -> dict:
    return {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]}


@pytest.fixture
def fake() -> Iterator[FakeInference]:
    with FakeInference() as server:
        yield server


@pytest.fixture
def client(fake: FakeInference) -> Iterator[InferenceClient]:
    with InferenceClient(fake.url, fake.api_key, MODEL, timeout=5.0, connect_timeout=1.0) as inference:
        yield inference


def header(fake: FakeInference, name: str, request: int = -1) -> str | None:
    headers = {key.lower(): value for key, value in fake.requests[request].headers.items()}
    return headers.get(name.lower())


# --- successful calls ----------------------------------------------------------------------


def test_complete_returns_content_usage_and_defaults_the_model(fake: FakeInference, client: InferenceClient) -> None:
    result = client.complete(ask("Tell me about dynos"))

    body = fake.requests[-1].body
    assert body["model"] == MODEL
    assert body["stream"] is False
    assert result.content == "You said: Tell me about dynos"
    assert result.finish_reason == "stop"
    prompt = fake_prompt_tokens(body)
    completion = fake_answer_tokens({"content": result.content})
    assert result.usage == Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)
    assert result.tool_calls == []
    assert result.reasoning is None


def test_an_explicit_model_is_kept(fake: FakeInference, client: InferenceClient) -> None:
    client.complete({**ask(), "model": "claude-4-5-sonnet"})
    assert fake.requests[-1].body["model"] == "claude-4-5-sonnet"


def test_bearer_key_is_sent_and_a_wrong_key_is_rejected_without_echoing_it(fake: FakeInference) -> None:
    with InferenceClient(fake.url, fake.api_key, MODEL) as good:
        good.complete(ask())
    assert header(fake, "Authorization") == f"Bearer {fake.api_key}"

    with InferenceClient(fake.url, "inf-wrong-secret", MODEL) as bad, pytest.raises(RejectedError) as raised:
        bad.complete(ask())
    assert raised.value.status == 401
    assert "inf-wrong-secret" not in str(raised.value)
    assert "inf-wrong-secret" not in repr(bad)


def test_prompt_caching_header_only_when_turned_off(fake: FakeInference, client: InferenceClient) -> None:
    client.complete(ask())
    assert header(fake, PROMPT_CACHING_HEADER) is None
    client.complete(ask(), prompt_caching=False)
    assert header(fake, PROMPT_CACHING_HEADER) == "false"
    client.stream(ask(), prompt_caching=False)
    assert header(fake, PROMPT_CACHING_HEADER) == "false"


def test_stream_delivers_text_as_it_arrives_and_assembles_tool_calls() -> None:
    def responder(body: dict) -> dict:
        return {
            "content": "Checking the weather and the time for you now.",
            "reasoning": "The user wants two facts.",
            "tool_calls": [
                {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
                {"id": "toolu_2", "name": "get_time", "arguments": {"tz": "Europe/Paris"}},
            ],
        }

    with (
        FakeInference(responder=responder) as fake,
        InferenceClient(fake.url, fake.api_key, MODEL, timeout=5.0) as client,
    ):
        pieces: list[str] = []
        result = client.stream({**ask(), **WITH_REASONING}, on_text=pieces.append)

        body = fake.requests[-1].body
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
        assert header(fake, "Accept") == "text/event-stream"
    assert len(pieces) > 1
    assert "".join(pieces) == result.content == "Checking the weather and the time for you now."
    assert result.reasoning == "The user wants two facts."
    assert result.finish_reason == "tool_calls"
    assert [(call.id, call.name) for call in result.tool_calls] == [("toolu_1", "get_weather"), ("toolu_2", "get_time")]
    assert json.loads(result.tool_calls[0].arguments) == {"city": "Paris", "unit": "celsius"}
    assert json.loads(result.tool_calls[1].arguments) == {"tz": "Europe/Paris"}
    prompt = fake_prompt_tokens(body)
    assert result.usage is not None
    assert result.usage.prompt_tokens == prompt
    assert result.usage.total_tokens == prompt + result.usage.completion_tokens
    assert result.usage.completion_tokens == fake_answer_tokens(responder(body))


@pytest.mark.parametrize("streaming", [False, True])
def test_unusual_characters_survive_the_wire(streaming: bool) -> None:
    # The fake sends raw UTF-8; U+2028 and NEL are line breaks to str.splitlines but not to SSE.
    text = "naïve\u2028line\x85next\u2029🙂 done"
    with (
        FakeInference(responder=lambda body: {"content": text}) as fake,
        InferenceClient(fake.url, fake.api_key, MODEL) as client,
    ):
        call = client.stream if streaming else client.complete
        assert call(ask()).content == text


def test_complete_reads_tool_calls_and_reasoning() -> None:
    def responder(body: dict) -> dict:
        return {"content": "ok", "reasoning": "hmm", "tool_calls": [{"name": "lookup", "arguments": '{"id": 3}'}]}

    with FakeInference(responder=responder) as fake, InferenceClient(fake.url, fake.api_key, MODEL) as client:
        result = client.complete({**ask(), **WITH_REASONING})
    assert result.reasoning == "hmm"
    assert len(result.tool_calls) == 1
    assert result.tool_calls[0].name == "lookup"
    assert result.tool_calls[0].id  # the fake fills in an id
    assert json.loads(result.tool_calls[0].arguments) == {"id": 3}


def test_stream_usage_missing_when_the_server_sends_none(fake: FakeInference, client: InferenceClient) -> None:
    # A server that ignores stream_options still gives a complete answer.
    fake.fail_next(
        200,
        body='data: {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}\n\n'
        "data: [DONE]\n\n",
    )
    result = client.stream(ask())
    assert result == Completion(content="hi", finish_reason="stop")


def test_stream_accepts_a_whole_json_completion(fake: FakeInference, client: InferenceClient) -> None:
    # A server that ignores "stream": true answers one chat.completion document.
    document = {"choices": [{"index": 0, "message": {"content": "whole"}, "finish_reason": "stop"}]}
    fake.fail_next(200, body=document)
    pieces: list[str] = []
    assert client.stream(ask(), on_text=pieces.append).content == "whole"
    assert pieces == ["whole"]


def test_rate_limit_headers_are_reported_on_success() -> None:
    with (
        FakeInference(max_requests=10, max_tokens=100_000, window=30) as fake,
        InferenceClient(fake.url, fake.api_key, MODEL) as client,
    ):
        first = client.complete(ask())
        second = client.stream(ask())
    assert first.rate_limit_headers["x-ratelimit-remaining-requests"] == "9"
    assert second.rate_limit_headers["x-ratelimit-remaining-requests"] == "8"
    assert first.usage is not None
    assert first.rate_limit_headers["x-ratelimit-remaining-tokens"] == str(100_000 - first.usage.total_tokens)


def test_one_client_serves_many_threads(fake: FakeInference, client: InferenceClient) -> None:
    fake.latency_min, fake.latency_max = 0.05, 0.1
    questions = [f"question {n}" for n in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda q: client.complete(ask(q)).content, questions[:6]))
        streamed = list(pool.map(lambda q: client.stream(ask(q)).content, questions[6:]))
    assert answers + streamed == [f"You said: {q}" for q in questions]
    assert len(fake.requests) == 12


# --- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_server_errors_are_retryable(
    fake: FakeInference, client: InferenceClient, status: int, streaming: bool
) -> None:
    fake.fail_next(status)
    call = client.stream if streaming else client.complete
    with pytest.raises(RetryableError) as raised:
        call(ask())
    assert type(raised.value) is RetryableError
    assert raised.value.status == status
    assert call(ask()).content  # only the next request failed


def test_a_proxy_html_page_is_retryable(fake: FakeInference, client: InferenceClient) -> None:
    fake.fail_next(502, body="<html><h1>Bad Gateway</h1></html>")
    with pytest.raises(RetryableError, match="Bad Gateway"):
        client.complete(ask())


@pytest.mark.parametrize("streaming", [False, True])
def test_429_is_rate_limited_with_retry_after(fake: FakeInference, client: InferenceClient, streaming: bool) -> None:
    fake.fail_next(
        429,
        headers={"Retry-After": "7", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "5s"},
    )
    call = client.stream if streaming else client.complete
    with pytest.raises(RateLimitedError) as raised:
        call(ask())
    assert raised.value.status == 429
    assert raised.value.retry_after == 7.0
    assert raised.value.headers["x-ratelimit-remaining-requests"] == "0"
    assert isinstance(raised.value, RetryableError)


@pytest.mark.parametrize("streaming", [False, True])
def test_400_is_rejected_with_the_servers_reason(fake: FakeInference, client: InferenceClient, streaming: bool) -> None:
    fake.fail_next(
        400,
        body={"error": {"message": "prompt is too long: 210000 tokens", "type": "invalid_request_error", "code": 400}},
    )
    call = client.stream if streaming else client.complete
    with pytest.raises(RejectedError) as raised:
        call(ask())
    assert raised.value.status == 400
    assert "prompt is too long" in raised.value.message
    assert raised.value.error_type == "invalid_request_error"
    assert not isinstance(raised.value, RetryableError)


@pytest.mark.invalid_inference_requests
def test_a_request_the_server_finds_invalid_is_rejected(fake: FakeInference, client: InferenceClient) -> None:
    with pytest.raises(RejectedError, match="messages"):
        client.complete({"messages": []})


def test_a_hung_request_times_out_as_retryable(fake: FakeInference) -> None:
    fake.hang_next(5.0, times=2)
    with InferenceClient(fake.url, fake.api_key, MODEL, timeout=0.3) as client:
        for call in (client.complete, client.stream):
            started = time.monotonic()
            with pytest.raises(RetryableError, match="timed out"):
                call(ask())
            assert time.monotonic() - started < 3.0


def test_a_stream_that_stalls_midway_times_out_after_delivering_what_came(fake: FakeInference) -> None:
    fake.hang_next(5.0, after_chunks=3)  # role chunk + two content pieces, then silence
    pieces: list[str] = []
    with InferenceClient(fake.url, fake.api_key, MODEL, timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(RetryableError, match="timed out"):
            client.stream(ask("a question long enough to need several chunks"), on_text=pieces.append)
        assert time.monotonic() - started < 3.0
    full_answer = "You said: a question long enough to need several chunks"
    assert len(pieces) == 2
    assert full_answer.startswith("".join(pieces))
    assert len("".join(pieces)) < len(full_answer)


def test_a_connection_closed_mid_stream_is_retryable(fake: FakeInference, client: InferenceClient) -> None:
    fake.hang_next(0.0, after_chunks=2)  # closes the connection at once, body unfinished
    with pytest.raises(RetryableError):
        client.stream(ask())


@pytest.mark.parametrize(
    "body",
    [
        "data: {not json\n\n",
        'data: {"choices": [{"index": 0, "delta": {"content": "cut"}}]}\n\n',  # no finish_reason, no [DONE]
        'data: {"error": {"message": "Overloaded", "type": "overloaded_error"}}\n\n',
    ],
)
def test_a_broken_stream_is_retryable(fake: FakeInference, client: InferenceClient, body: str) -> None:
    fake.fail_next(200, body=body)
    with pytest.raises(RetryableError):
        client.stream(ask())


def test_a_malformed_completion_is_retryable(fake: FakeInference, client: InferenceClient) -> None:
    fake.fail_next(200, body={"object": "chat.completion", "choices": []})
    with pytest.raises(RetryableError, match="malformed"):
        client.complete(ask())


def test_on_text_errors_propagate_unchanged(fake: FakeInference, client: InferenceClient) -> None:
    def explode(text: str) -> None:
        raise KeyError("slack is down")

    with pytest.raises(KeyError):
        client.stream(ask(), on_text=explode)


def test_a_down_server_is_retryable_and_recovery_works(fake: FakeInference, client: InferenceClient) -> None:
    client.complete(ask())  # leaves a pooled keep-alive connection behind
    fake.set_down(True)
    for call in (client.complete, client.stream):
        with pytest.raises(RetryableError, match="unreachable"):
            call(ask())
    fake.set_down(False)
    assert client.complete(ask("back")).content == "You said: back"


def test_nothing_listening_is_retryable() -> None:
    with FakeInference() as fake:
        url = fake.url
    with InferenceClient(url, "k", MODEL, connect_timeout=1.0) as client, pytest.raises(RetryableError):
        client.complete(ask())


def test_a_bad_url_is_rejected_not_retried() -> None:
    with InferenceClient("ftp://example.invalid", "k", MODEL) as client, pytest.raises(RejectedError):
        client.complete(ask())


def test_no_httpx_exception_escapes(fake: FakeInference) -> None:
    fake.hang_next(5.0)
    with InferenceClient(fake.url, fake.api_key, MODEL, timeout=0.2) as client:
        try:
            client.complete(ask())
        except InferenceError as error:
            assert not isinstance(error, httpx.HTTPError)
            assert isinstance(error.__cause__, httpx.TimeoutException)
        else:
            pytest.fail("a hung request must fail")


def test_a_shared_http_client_is_left_open() -> None:
    with FakeInference() as fake, httpx.Client() as http:
        with InferenceClient(fake.url, fake.api_key, MODEL, http=http) as client:
            client.complete(ask())
        assert not http.is_closed
        assert http.post(fake.url + "/v1/chat/completions").status_code == 401


# --- the fake's sliding window -------------------------------------------------------------


def test_fake_window_limits_requests_and_frees_capacity_as_it_slides() -> None:
    window = 1.0
    with (
        FakeInference(max_requests=3, window=window) as fake,
        InferenceClient(fake.url, fake.api_key, MODEL) as client,
    ):
        client.complete(ask())
        first_arrival = fake.requests[0].arrival
        while time.monotonic() < first_arrival + 0.4:  # the next two arrive well after the first
            time.sleep(0.01)
        client.complete(ask())
        client.complete(ask())
        with pytest.raises(RateLimitedError) as raised:
            client.complete(ask())
        assert raised.value.headers["retry-after"] == "1"  # ceil(about 0.6 s)
        assert raised.value.headers["x-ratelimit-remaining-requests"] == "0"
        assert raised.value.retry_after == 1.0
        assert fake.rejected_429 == 1

        deadline = time.monotonic() + 5
        while True:  # poll until the window has slid past the first request
            try:
                client.complete(ask())
                break
            except RateLimitedError:
                assert time.monotonic() < deadline, "capacity never came back"
                time.sleep(0.02)
        assert fake.requests[-1].arrival - first_arrival >= window
        # Sliding, not fixed: the two later requests still fill the window, so one slot freed, not three.
        with pytest.raises(RateLimitedError):
            client.complete(ask())
        assert fake.admitted == 4


def test_fake_window_limits_tokens() -> None:
    body = {**ask(), "model": MODEL, "stream": False}
    cost = fake_prompt_tokens(body) + fake_answer_tokens(echo_responder(body))
    with (
        FakeInference(max_tokens=2 * cost + 1, window=30) as fake,
        InferenceClient(fake.url, fake.api_key, MODEL) as client,
    ):
        assert client.complete(ask()).usage.total_tokens == cost
        client.complete(ask())
        with pytest.raises(RateLimitedError) as raised:
            client.complete(ask())
        assert raised.value.headers["x-ratelimit-remaining-tokens"] == "1"
        assert raised.value.retry_after is not None and 29 <= raised.value.retry_after <= 30
        assert fake.stats() == {"requests": 3, "admitted": 2, "rejected_429": 1, "tokens_charged": 2 * cost}


def test_fake_refuses_a_request_bigger_than_the_whole_budget() -> None:
    with (
        FakeInference(max_tokens=50, window=2.5) as fake,
        InferenceClient(fake.url, fake.api_key, MODEL) as client,
    ):
        with pytest.raises(RateLimitedError) as raised:
            client.complete(ask("x" * 400))
        assert raised.value.headers["retry-after"] == str(math.ceil(2.5))
        assert fake.admitted == 0


def test_fake_admits_exactly_the_limit_under_concurrency() -> None:
    with (
        FakeInference(max_requests=4, window=30, latency_min=0.05, latency_max=0.05) as fake,
        InferenceClient(fake.url, fake.api_key, MODEL) as client,
    ):
        barrier = threading.Barrier(10)

        def call(_: int) -> str:
            barrier.wait(timeout=5)
            try:
                client.complete(ask())
                return "ok"
            except RateLimitedError:
                return "429"

        with ThreadPoolExecutor(max_workers=10) as pool:
            outcomes = list(pool.map(call, range(10)))
        assert outcomes.count("ok") == 4
        assert outcomes.count("429") == 6
        assert fake.rejected_429 == 6
        assert len(fake.requests) == 10


def test_fake_wait_for_times_out(fake: FakeInference) -> None:
    with pytest.raises(TimeoutError):
        fake.wait_for(lambda: len(fake.requests) > 0, timeout=0.1)


def test_fake_runs_as_its_own_process() -> None:
    command = [
        sys.executable, "-m", "tests.fakes.inference", "--port", "0", "--api-key", "bench-key",
        "--max-requests", "1", "--window", "30",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with InferenceClient(url, "bench-key", MODEL) as client:
            assert client.complete(ask("hi")).content == "You said: hi"
            with pytest.raises(RateLimitedError):
                client.complete(ask("again"))
        stats = httpx.get(url + "/_stats").json()
        assert stats["admitted"] == 1
        assert stats["rejected_429"] == 1
    finally:
        process.terminate()
        process.wait(timeout=5)
    assert process.returncode == 0


def test_tool_call_out_round_trips_into_the_next_request(fake: FakeInference, client: InferenceClient) -> None:
    call = ToolCallOut(id="toolu_9", name="lookup", arguments='{"q": 1}')
    messages = [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": "Looking.", "tool_calls": [call.to_message_dict()]},
        {"role": "tool", "tool_call_id": "toolu_9", "content": "42"},
        {"role": "user", "content": "thanks"},
    ]
    assert client.complete({"messages": messages}).content == "You said: thanks"
    assert fake.requests[-1].body["messages"][1]["tool_calls"][0]["function"]["name"] == "lookup"
