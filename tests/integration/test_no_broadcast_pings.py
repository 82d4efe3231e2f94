"""No pings the bot did not mean: every posting path, against the fake Slack over HTTP.

The model's text carries `<!channel>`, `<!here>`, `<!everyone>` and `<!subteam^…>`; whatever
path posts it (stream chunks, the chat.update fallback, split messages, ephemeral notes,
reports, response_url), no request Slack receives contains a broadcast or group mention.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import httpx
import pytest

from bot.config import Settings
from bot.moderation.report import DecisionView, report_blocks, report_text
from bot.slack.clients import web_client
from bot.slack.replies import StreamingReply, UpdatingReply
from bot.slack.response_url import post_response
from tests.fakes.slack import FakeSlack

PINGS = "Hey <!channel>, <!here|here> and <!everyone>; also <!subteam^S0123|@oncall> and @here."
MENTION = re.compile(r"<!(channel|here|everyone|group|subteam)|(?<![\w@])@(channel|here|everyone)\b", re.I)


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        fake.add_user("U1", name="alice")
        yield fake


@pytest.fixture
def client(slack):
    return web_client(Settings(slack_api_url=slack.api_url), "xoxb-test-token")


def assert_no_mentions(slack: FakeSlack) -> None:
    calls = [c for c in slack.all_calls() if c.method.startswith("chat.")]
    assert calls, "nothing was posted"
    for call in calls:
        found = MENTION.search(json.dumps(call.params, ensure_ascii=False))
        assert found is None, (call.method, found.group())


def long_answer() -> str:
    # Longer than one message, so the answer is split and the pings land in several parts.
    return "\n\n".join(f"Paragraph {i}: {PINGS} " + "word " * 150 for i in range(30))


def test_streamed_answer_with_overflow(slack, client):
    reply = StreamingReply(client, channel="C1", thread_ts="1.000", team_id="T1", user_id="U1")
    for piece in [PINGS[:9], PINGS[9:], long_answer()]:
        reply.append(piece)
    ts_list = reply.finish()
    assert len(ts_list) >= 2
    assert_no_mentions(slack)
    assert "@\u2060channel" in slack.text_of("C1", ts_list[0]) or slack.text_of("C1", ts_list[0]) == ""


def test_updating_reply_previews_and_split_parts(slack, client):
    times = iter(range(0, 1000, 2))
    reply = UpdatingReply(client, channel="C1", thread_ts="1.000", clock=lambda: next(times))
    reply.append(PINGS)
    reply.append(" more " + PINGS)
    ts_list = reply.finish(long_answer())
    assert len(ts_list) >= 2
    assert {c.method for c in slack.all_calls()} >= {"chat.postMessage", "chat.update"}
    assert_no_mentions(slack)


def test_ephemeral_notes_and_moderation_reports(slack, client):
    client.chat_postEphemeral(channel="C1", user="U1", text=PINGS)
    view = DecisionView(
        id=1,
        channel_id="C1",
        user_id="U1",
        file_id="F1",
        file_name=PINGS,
        permalink=None,
        verdict="flag",
        categories=("scam",),
        confidence=0.9,
        reason=PINGS,
        model="m",
        action="reported",
        created_at=datetime.now(UTC),
    )
    client.chat_postMessage(channel="C1", text=report_text(view), blocks=report_blocks(view, buttons=True))
    assert_no_mentions(slack)


def test_response_url_answers(slack):
    name = "cmd1"
    with httpx.Client() as http:
        post_response(http, slack.response_url(name), PINGS, public=True, slack_api_url=slack.api_url)
    [post] = slack.responses_to(name)
    assert MENTION.search(json.dumps(post.body, ensure_ascii=False)) is None
    assert "@\u2060oncall" in post.body["text"]
