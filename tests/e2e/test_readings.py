"""The main flows under every reading of the services (tests/fakes switches), end to end on
PostgreSQL with two worker processes: a mention, an agent answer with a tool step, and an image
moderated in a watched channel. A flow that fails under any switch is a real bug (issue 21).

Each provider reading also has its own promise checked here: ``stream_options`` refused costs at
most one refusal per process; without usage, budgets and ``bot stats`` still count; a 400 before
or inside a stream is told once and sent at most twice; ten large screenshots under Bedrock's
20 MB limit are answered (a 413 makes the request smaller and sends it once more)."""

from __future__ import annotations

import functools
import io
import json
import uuid

import pytest
from PIL import Image

from tests.e2e.conftest import build_stack, new_channel, wait_idle
from tests.e2e.test_operations import run_cli
from tests.fakes.inference import BEDROCK_MAX_BODY_BYTES, echo_responder
from tests.fakes.slack import next_ts
from tests.scenario.test_agent import _tool_then_answer
from tests.scenario.test_conversations import bot_messages, finished_replies, requests_mentioning
from tests.scenario.test_moderation import decided, new_file, post_image, prepare, verdict_model
from tests.support import slack_requests as sr

WATCHED = "CWATCHREAD"
REPORTS = "CREPORTSREAD"


@pytest.fixture(scope="module")
def stack(request, tmp_path_factory):
    stack = build_stack(
        request,
        tmp_path_factory,
        "postgres",
        workers=2,  # two dynos
        MODERATION_CHANNELS=WATCHED,
        MODERATION_REPORT_CHANNEL=REPORTS,
        BOT_MAX_FILE_BYTES=str(8_000_000),
        INFERENCE_MAX_REQUESTS_PER_MINUTE="100000",
        MODERATION_ALLOW_REACTION="white_check_mark",
    )
    return prepare(stack)


def _reset(stack) -> None:
    stack.inference.reset_script()
    stack.inference.responder = echo_responder
    stack.slack.streams_stored_as_blocks = stack.slack.enforce_membership = stack.slack.replies_throttle = False


@pytest.fixture
def fresh(stack):
    _reset(stack)
    yield stack
    _reset(stack)


# -- the flows ----------------------------------------------------------------------------------


def conversation_flow(stack) -> None:
    """A mention in a thread the bot joined mid-way (so the thread is read from Slack)."""
    channel, parent = new_channel(), next_ts()
    stack.slack.add_thread(channel, parent, ["we are planning the offsite", "Lisbon or Porto?"])
    question = f"what is a dyno, in the readings? {uuid.uuid4().hex[:6]}"
    mention = sr.app_mention(f"<@UBOT> {question}", channel=channel, thread_ts=parent)
    stack.slack.add_message(channel, {"text": mention["text"], "ts": mention["ts"]}, thread_ts=parent)
    stack.post_event(mention)
    [reply] = finished_replies(stack, channel, timeout=30)
    assert stack.slack.visible_text(channel, reply["ts"]).startswith("You said")
    body = requests_mentioning(stack, question)[-1]  # the one answered (a refused or failed try may precede it)
    assert "planning the offsite" in json.dumps(body["messages"])  # the thread's start was read


def agent_flow(stack) -> None:
    channel = new_channel()
    stack.inference.responder = _tool_then_answer("calculate", {"expression": "6*7"}, "It is 42.")
    try:
        stack.post_event(sr.app_mention("<@UBOT> what is 6*7, in the readings?", channel=channel))
        [reply] = finished_replies(stack, channel, timeout=30)
    finally:
        stack.inference.responder = echo_responder
    assert "It is 42." in stack.slack.visible_text(channel, reply["ts"])
    assert len(bot_messages(stack, channel)) == 1


def moderation_flow(stack) -> None:
    stack.inference.responder = verdict_model("allow", reason="A red rectangle.")
    try:
        file_object = new_file(stack)
        post_image(stack, WATCHED, file_object)
        decision = decided(stack, file_object["id"], timeout=30)
    finally:
        stack.inference.responder = echo_responder
    assert (decision.verdict, decision.action) == ("allow", "reacted")
    assert decision.prompt_tokens > 0 and decision.completion_tokens > 0


FLOWS = [conversation_flow, agent_flow, moderation_flow]


def refuse_stream_options(stack):
    stack.inference.refuse_stream_options = True


def no_usage(stack):
    stack.inference.report_usage = False


def error_shape(shape: str):
    def switch(stack):
        stack.inference.error_shape = shape
        stack.inference.fail_next(503)  # one temporary failure in that shape: retried, then answered

    switch.__name__ = f"errors_as_{shape}"
    return switch


def bedrock_limit(stack):
    stack.inference.max_body_bytes = BEDROCK_MAX_BODY_BYTES


PROVIDER_READINGS = [
    refuse_stream_options,
    no_usage,
    error_shape("string"),
    error_shape("top_level"),
    error_shape("text"),
    bedrock_limit,
]


def streams_stored_as_blocks(stack):
    stack.slack.streams_stored_as_blocks = True


def membership_enforced(stack):
    stack.slack.enforce_membership = True


def replies_throttled(stack):
    stack.slack.replies_throttle = True


SLACK_READINGS = [streams_stored_as_blocks, membership_enforced, replies_throttled]


@pytest.mark.parametrize("reading", PROVIDER_READINGS + SLACK_READINGS, ids=lambda reading: reading.__name__)
@pytest.mark.parametrize("flow", FLOWS, ids=lambda flow: flow.__name__)
def test_the_main_flows_work_under_every_reading(fresh, reading, flow):
    reading(fresh)
    flow(fresh)


# -- each provider reading's own promise --------------------------------------------------------


def test_stream_options_refused_answers_every_mention_with_at_most_one_refusal_per_process(fresh):
    fresh.inference.refuse_stream_options = True
    channels = [new_channel() for _ in range(6)]
    for channel in channels:
        fresh.post_event(sr.app_mention("<@UBOT> hello under a strict provider", channel=channel))
    for channel in channels:
        [reply] = finished_replies(fresh, channel, timeout=30)
        assert "hello under a strict provider" in fresh.slack.text_of(channel, reply["ts"])
    for worker in fresh.workers:
        assert worker.output().count("argument_refused") <= 1, worker.output()[-2000:]
    assert len(fresh.inference.argument_refusals) <= len(fresh.workers)


def _stats(stack) -> dict:
    result = run_cli(stack.env, "stats", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _team_tokens(stats: dict) -> int:
    return sum(w["tokens_today"] for w in stats["workspaces"] if w["team_id"] == "T1")


def test_without_usage_budgets_and_bot_stats_still_count_tokens(fresh):
    fresh.inference.report_usage = False
    wait_idle(fresh)
    before = _team_tokens(_stats(fresh))
    channel = new_channel()
    fresh.post_event(sr.app_mention("<@UBOT> count me even without usage", channel=channel))
    finished_replies(fresh, channel, timeout=30)
    after = _team_tokens(_stats(fresh))
    assert after > before
    assert "usage=estimated" in fresh.logs()


REASON = "messages.0.content: the thing you sent is not acceptable here"


@pytest.mark.invalid_inference_requests
@pytest.mark.parametrize("shape", ["openai", "string", "top_level", "text"])
@pytest.mark.parametrize("where", ["before", "inside"])
def test_a_400_is_told_once_with_the_reason_and_sent_at_most_twice(fresh, shape, where):
    fresh.inference.error_shape = shape
    error = {"message": REASON, "type": "invalid_request_error", "code": 400}
    if where == "before":
        body = REASON if shape == "text" else fresh.inference.error_document(error)
        fresh.inference.fail_next(400, body=body)
    else:
        fresh.inference.responder = lambda body: {"content": "Starting to answer, and then"}
        fresh.inference.error_mid_stream_next(after_chunks=2, error=error)
    channel = new_channel()
    question = f"tell me something ({where}, {shape}) {uuid.uuid4().hex[:6]}"
    fresh.post_event(sr.app_mention(f"<@UBOT> {question}", channel=channel))
    [reply] = finished_replies(fresh, channel, timeout=30)
    text = fresh.slack.text_of(channel, reply["ts"])
    assert text.count("Sorry, the model could not answer this") == 1, text
    assert REASON in text and "HTTP" not in text
    assert len(bot_messages(fresh, channel)) == 1
    assert len(requests_mentioning(fresh, question)) <= 2


@functools.cache  # ~0.5 s of CPU each; the 413 test asks about the first five again
def screenshot(seed: int, width: int = 1500, height: int = 1000) -> bytes:
    """A large, noisy PNG screenshot (under BOT_MAX_FILE_BYTES): about 4.5 MB of base64 even
    after the bot scales it to Claude's 1.15 megapixels, so ten of them are far over 20 MB."""
    noise = Image.merge("RGB", [Image.effect_noise((width, height), 90 + seed) for _ in range(3)])
    buffer = io.BytesIO()
    noise.save(buffer, "PNG")
    return buffer.getvalue()


def _screenshots(stack, count: int) -> list[dict]:
    files = []
    for number in range(count):
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        files.append(
            stack.slack.add_file(file_id, screenshot(number), name=f"screen{number}.png", mimetype="image/png")
        )
    return files


def _ask_about_screenshots(stack, files: list[dict], question: str) -> tuple[str, dict]:
    channel = new_channel()
    stack.post_event(sr.app_mention(f"<@UBOT> {question}", channel=channel, files=files))
    [reply] = finished_replies(stack, channel, timeout=90)
    return channel, reply


def test_ten_large_screenshots_under_bedrocks_20_mb_limit_are_answered(fresh):
    fresh.inference.max_body_bytes = BEDROCK_MAX_BODY_BYTES
    question = f"what do these ten screenshots show? {uuid.uuid4().hex[:6]}"
    channel, reply = _ask_about_screenshots(fresh, _screenshots(fresh, 10), question)
    assert question in fresh.slack.text_of(channel, reply["ts"])
    bodies = requests_mentioning(fresh, question)
    assert bodies and max(len(json.dumps(body)) for body in bodies) <= BEDROCK_MAX_BODY_BYTES
    images = [part for m in bodies[-1]["messages"] if isinstance(m["content"], list) for part in m["content"]]
    assert len([part for part in images if part["type"] == "image_url"]) >= 3  # as many as fit, not none


@pytest.mark.invalid_inference_requests
def test_a_413_makes_the_request_smaller_and_sends_it_once_more(fresh):
    # Stricter than the bot's 20 MB cap: the ~18 MB first request gets a 413, the resend fits.
    fresh.inference.max_body_bytes = 12_000_000
    question = f"and these five? {uuid.uuid4().hex[:6]}"
    refused_before = len([r for r in fresh.inference.rejections if r.status == 413])
    channel, reply = _ask_about_screenshots(fresh, _screenshots(fresh, 5), question)
    assert question in fresh.slack.text_of(channel, reply["ts"])
    refused = len([r for r in fresh.inference.rejections if r.status == 413]) - refused_before
    assert refused == 1
    assert len(bot_messages(fresh, channel)) == 1
