"""The fault suite: two web processes (gunicorn) and two workers on PostgreSQL, fake Slack and
fake inference over real HTTP, and everything we can think of going wrong. Every
acknowledged event gets exactly one answer; bad input gets a 4xx, never a 5xx or a dead process."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time

import httpx
import pytest
from sqlalchemy import create_engine, text

from bot.config import normalize_database_url
from tests.e2e.conftest import Stack, build_stack, new_channel, wait_idle
from tests.support import slack_requests as sr
from tests.support.processes import SIGNING_SECRET, wait_for


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory) -> tuple[Stack, list[str]]:
    stack = build_stack(
        request,
        tmp_path_factory,
        "postgres",
        webs=2,
        workers=2,
        JOB_LEASE_SECONDS="3",
        JOB_MAX_ATTEMPTS="6",
        INFERENCE_TIMEOUT_SECONDS="2",
        BOT_APOLOGY_AFTER_SECONDS="4",
    )
    return stack, stack.urls


def texts(stack: Stack, channel: str) -> list[str]:
    return [stack.slack.text_of(channel, m["ts"]) for m in stack.slack.bot_messages(channel)]


def answered(stack: Stack, channel: str, needle: str, timeout: float = 30) -> list[str]:
    assert wait_for(lambda: any(needle in t for t in texts(stack, channel)), timeout=timeout), stack.logs()[-3000:]
    wait_idle(stack, timeout=timeout)
    return texts(stack, channel)


def post(url: str, body, *, retry_num=None, headers=None) -> httpx.Response:
    return sr.post_signed(f"{url}/slack/events", body, SIGNING_SECRET, retry_num=retry_num, headers=headers)


def echo(stack: Stack) -> None:
    from tests.fakes.inference import echo_responder

    stack.inference.responder = echo_responder


def test_four_simultaneous_deliveries_across_both_web_processes_give_one_reply(cluster):
    stack, urls = cluster
    echo(stack)
    channel = new_channel()
    body = sr.event_callback(sr.app_mention("<@UBOT> four deliveries", channel=channel))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda n: post(urls[n % 2], body, retry_num=n or None).status_code, range(4)))
    assert statuses == [200] * 4
    assert len(answered(stack, channel, "four deliveries")) == 1


def test_inference_500_twice_then_ok(cluster):
    stack, urls = cluster
    echo(stack)
    channel = new_channel()
    stack.inference.fail_next(500, times=2)
    post(urls[0], sr.event_callback(sr.app_mention("<@UBOT> flaky model", channel=channel)))
    replies = answered(stack, channel, "flaky model")
    assert [t for t in replies if "flaky model" in t] == [replies[-1]]


def test_inference_429_with_retry_after_is_waited_out(cluster):
    stack, urls = cluster
    echo(stack)
    channel = new_channel()
    stack.inference.fail_next(429, headers={"Retry-After": "2"})
    started = time.monotonic()
    post(urls[1], sr.event_callback(sr.app_mention("<@UBOT> rate limited", channel=channel)))
    assert len(answered(stack, channel, "rate limited")) == 1
    assert time.monotonic() - started >= 2


def test_a_hung_model_response_times_out_and_is_retried(cluster):
    stack, urls = cluster
    echo(stack)
    channel = new_channel()
    stack.inference.hang_next(30)
    post(urls[0], sr.event_callback(sr.app_mention("<@UBOT> hung model", channel=channel)))
    replies = answered(stack, channel, "hung model")
    assert sum("hung model" in t for t in replies) == 1


def test_the_model_down_for_a_while_the_user_hears_back_and_nothing_is_lost(cluster):
    stack, urls = cluster
    echo(stack)
    channels = [new_channel() for _ in range(3)]
    stack.inference.set_down(True)
    try:
        for n, channel in enumerate(channels):
            assert (
                post(urls[n % 2], sr.event_callback(sr.app_mention(f"<@UBOT> outage {n}", channel=channel))).status_code
                == 200
            )
        # Each hears it in its thread's one message, which the answer later replaces (#21).
        heard = lambda: all(any("not answering" in t for t in texts(stack, c)) for c in channels)  # noqa: E731
        assert wait_for(heard, timeout=30)
        # Stay down a little longer: until another try has failed after everyone heard.
        retries = lambda: stack.logs().count("job retry ")  # noqa: E731
        failed_before = retries()
        wait_for(lambda: retries() > failed_before, timeout=30)
    finally:
        stack.inference.set_down(False)
    for n, channel in enumerate(channels):
        replies = answered(stack, channel, f"outage {n}", timeout=60)
        assert sum(f"outage {n}" in t for t in replies) == 1
        assert len(replies) == 1
        assert not any("not answering" in t for t in replies)


def test_slack_429s_on_post_and_stream_calls_are_retried_by_slack_sdk(cluster):
    stack, urls = cluster
    echo(stack)
    channel = new_channel()
    stack.slack.fail_next("chat.startStream", status=429, retry_after=1)
    stack.slack.fail_next("chat.stopStream", status=429, retry_after=1)
    post(urls[0], sr.event_callback(sr.app_mention("<@UBOT> slack is busy", channel=channel)))
    assert len(answered(stack, channel, "slack is busy")) == 1
    stack.slack.streaming_enabled = False
    try:
        other = new_channel()
        stack.slack.fail_next("chat.postMessage", status=429, retry_after=1)
        post(urls[1], sr.event_callback(sr.app_mention("<@UBOT> post is busy", channel=other)))
        assert len(answered(stack, other, "post is busy")) == 1
    finally:
        stack.slack.streaming_enabled = True
    statuses = [c.status for c in stack.slack.all_calls() if c.method in ("chat.startStream", "chat.postMessage")]
    assert 429 in statuses


def test_a_database_outage_fails_requests_cleanly_and_loses_no_acknowledged_event(cluster, postgres_admin_url):
    stack, urls = cluster
    echo(stack)
    database = normalize_database_url(stack.database_url).rsplit("/", 1)[1]
    admin = create_engine(normalize_database_url(postgres_admin_url), isolation_level="AUTOCOMMIT")
    acknowledged: list[str] = []
    failed: list[int] = []
    stop = threading.Event()

    def load():
        n = 0
        while not stop.is_set() and n < 60:
            channel = new_channel()
            try:
                response = post(urls[n % 2], sr.event_callback(sr.app_mention(f"<@UBOT> load {n}", channel=channel)))
            except httpx.HTTPError:
                failed.append(-1)
            else:
                if response.status_code == 200:
                    acknowledged.append(channel)
                else:
                    failed.append(response.status_code)
            n += 1
            time.sleep(0.05)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        sent = lambda: len(acknowledged) + len(failed)  # noqa: E731
        wait_for(lambda: acknowledged, timeout=10)  # events arrive…
        for _ in range(3):  # …and every connection is killed a few times meanwhile
            sent_before = sent()
            with admin.connect() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                )
            wait_for(lambda n=sent_before: sent() >= n + 3, timeout=10)  # a few events after each kill
    finally:
        stop.set()
        thread.join(30)
        admin.dispose()
    assert acknowledged
    assert all(status >= 500 or status == -1 for status in failed)  # a failure is a retryable 5xx for Slack
    for channel in acknowledged:
        assert wait_for(lambda c=channel: texts(stack, c), timeout=60), f"acknowledged event in {channel} lost"
    wait_idle(stack, timeout=60)
    assert all(len(texts(stack, channel)) == 1 for channel in acknowledged)
    for process in stack.processes():
        assert process.proc.poll() is None, "a process died"


BAD_INPUTS = {
    "bad signature": lambda url: httpx.post(
        f"{url}/slack/events",
        content=b'{"type":"event_callback"}',
        headers={"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": str(int(time.time()))},
    ),
    "stale timestamp": lambda url: sr.post_signed(
        f"{url}/slack/events",
        {"type": "url_verification", "challenge": "x"},
        SIGNING_SECRET,
        timestamp=int(time.time()) - 600,
    ),
    "malformed json": lambda url: sr.post_signed(
        f"{url}/slack/events",
        b'{"type": "event_callback",',
        SIGNING_SECRET,
        headers={"Content-Type": "application/json"},
    ),
    "oversized body": lambda url: sr.post_signed(
        f"{url}/slack/events", b"payload=" + b"x" * (2 * 1024 * 1024), SIGNING_SECRET
    ),
    "json that is not an object": lambda url: sr.post_signed(
        f"{url}/slack/events", b"[1, 2, 3]", SIGNING_SECRET, headers={"Content-Type": "application/json"}
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_gets_a_4xx_and_the_server_stays_up(cluster, kind):
    _, urls = cluster
    response = BAD_INPUTS[kind](urls[0])
    assert 400 <= response.status_code < 500, (kind, response.status_code, response.text)
    assert httpx.get(f"{urls[0]}/healthz").status_code == 200


def test_unknown_event_types_are_acknowledged_and_ignored(cluster):
    stack, urls = cluster
    before = len(stack.inference.requests)
    for event in (
        {"type": "emoji_changed", "subtype": "add", "name": "party", "event_ts": "1.0"},
        {"type": "made_up_event", "payload": {"nested": [1, 2, 3]}},
        {"type": "message", "subtype": "channel_join", "user": "U1", "channel": new_channel(), "ts": "1.0"},
    ):
        assert post(urls[1], sr.event_callback(event)).status_code == 200
    wait_idle(stack)  # whatever was enqueued before the acknowledgements has run
    assert len(stack.inference.requests) == before


def test_a_tool_call_with_invalid_json_arguments_does_not_break_the_answer(cluster):
    stack, urls = cluster
    channel = new_channel()

    def responder(body):
        if any(m.get("role") == "tool" for m in body["messages"]):
            results = [m["content"] for m in body["messages"] if m.get("role") == "tool"]
            return {"content": f"tool said: {json.dumps(results)}"}
        return {"tool_calls": [{"id": "call_1", "name": "calculate", "arguments": "{not json"}]}

    stack.inference.responder = responder
    post(urls[0], sr.event_callback(sr.app_mention("<@UBOT> compute something broken", channel=channel)))
    replies = answered(stack, channel, "tool said")
    assert len(replies) == 1 and "JSON" in replies[0]
