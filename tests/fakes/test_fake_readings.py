"""The readings of the fakes (switches where Slack's or Heroku's documentation says more than a
lenient fake shows), spoken to by the real clients."""

from __future__ import annotations

import json

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.inference import BEDROCK_MAX_BODY_BYTES, STREAM_OPTIONS_REFUSAL, FakeInference
from tests.fakes.slack import DEFAULT_TOKEN, FakeSlack

BODY = {"model": "claude-4-5-haiku", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack) -> WebClient:
    return WebClient(token=DEFAULT_TOKEN, base_url=slack.api_url, timeout=5)


def test_a_finished_stream_is_stored_as_blocks_and_a_text_only_update_changes_nothing_seen(slack, client):
    slack.streams_stored_as_blocks = True
    started = client.chat_startStream(channel="D1", thread_ts="1.0", markdown_text="Hello there")
    client.chat_stopStream(channel="D1", ts=started["ts"])
    client.chat_update(channel="D1", ts=started["ts"], text="Hello there (stopped)")
    assert slack.text_of("D1", started["ts"]) == "Hello there (stopped)"
    assert slack.visible_text("D1", started["ts"]) == "Hello there"  # the blocks stayed
    client.chat_update(
        channel="D1", ts=started["ts"], text="x", blocks=[{"type": "markdown", "text": "Hello there (stopped)"}]
    )
    assert slack.visible_text("D1", started["ts"]) == "Hello there (stopped)"


def test_posting_where_the_bot_is_not_a_member_fails_while_conversations_info_succeeds(slack, client):
    slack.enforce_membership = True
    slack.add_channel("CREPORTS", name="reports", members=["U1"])
    slack.add_channel("COLD", name="old", members=["UBOT"], is_archived=True)
    info = client.conversations_info(channel="CREPORTS")["channel"]
    assert info["is_member"] is False
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="CREPORTS", text="a report")
    assert refused.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError) as archived:
        client.chat_postMessage(channel="COLD", text="a report")
    assert archived.value.response["error"] == "is_archived"
    assert client.chat_postMessage(channel="CELSEWHERE", text="fine")["ok"]


def test_throttled_conversations_replies_gives_15_a_call_and_one_call_a_minute(slack):
    slack.replies_throttle = True
    slack.add_thread("C1", "1.000100", [f"message {n}" for n in range(40)])
    client = WebClient(token=DEFAULT_TOKEN, base_url=slack.api_url, timeout=5)  # no 429 retries
    page = client.conversations_replies(channel="C1", ts="1.000100", limit=200)
    assert len(page["messages"]) == 15 and page["has_more"]
    with pytest.raises(SlackApiError) as throttled:
        client.conversations_replies(channel="C1", ts="1.000100", cursor=page["response_metadata"]["next_cursor"])
    assert throttled.value.response.status_code == 429
    assert int(throttled.value.response.headers["Retry-After"]) > 50


@pytest.fixture
def inference():
    with FakeInference(api_key="k") as fake:
        yield fake


def post(fake: FakeInference, body: dict, **kwargs) -> httpx.Response:
    return httpx.post(f"{fake.url}/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}, **kwargs)


def test_stream_options_refused_in_herokus_words(inference):
    inference.refuse_stream_options = True
    refused = post(inference, {**BODY, "stream": True, "stream_options": {"include_usage": True}})
    assert refused.status_code == 400 and STREAM_OPTIONS_REFUSAL in refused.text
    assert len(inference.argument_refusals) == 1
    assert post(inference, {**BODY, "stream": False}).status_code == 200


def test_no_usage_anywhere(inference):
    inference.report_usage = False
    assert "usage" not in post(inference, BODY).json()
    streamed = post(inference, {**BODY, "stream": True, "stream_options": {"include_usage": True}})
    assert '"usage"' not in streamed.text


@pytest.mark.invalid_inference_requests
@pytest.mark.parametrize(
    ("shape", "check"),
    [
        ("openai", lambda r: isinstance(r.json()["error"], dict)),
        ("string", lambda r: json.loads(r.json()["error"])["code"] == 400),
        ("top_level", lambda r: r.json()["code"] == 400 and "error" not in r.json()),
        ("text", lambda r: r.headers["content-type"].startswith("text/plain") and "max_tokens" in r.text),
    ],
)
def test_every_error_shape(inference, shape, check):
    inference.error_shape = shape
    answer = post(inference, {**BODY, "max_tokens": 9000})
    assert answer.status_code == 400 and check(answer)


@pytest.mark.invalid_inference_requests
def test_bedrocks_20_mb_limit(inference):
    inference.max_body_bytes = BEDROCK_MAX_BODY_BYTES
    big = {**BODY, "messages": [{"role": "user", "content": "x" * (BEDROCK_MAX_BODY_BYTES + 10)}]}
    assert post(inference, big, timeout=30).status_code == 413
