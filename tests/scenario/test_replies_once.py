"""Replies are never posted twice (issue 22), on PostgreSQL: every part of a long answer is
remembered as it is posted, and a re-run updates those messages instead of posting new ones.

Before, a re-run reused only the first message (`reply_ts[0]`): a failure after part 2 of a
three-part answer turned 3 messages into 5."""

from __future__ import annotations

import pytest

from bot.conversation.tool_loop import CONTINUE_PROMPT
from tests.scenario.conftest import new_channel, start_scenario
from tests.support import slack_requests as sr

PARAGRAPHS = [f"Paragraph {n}: " + "lorem ipsum dolor sit amet " * 30 for n in range(40)]


@pytest.fixture
def scenario(postgres_url, fakes):
    yield from start_scenario(
        postgres_url,
        fakes,
        INFERENCE_MAX_OUTPUT_TOKENS="4096",
        BOT_ANSWER_MAX_TOKENS="4096",
        BOT_ANSWER_CONTINUATIONS="2",
    )


def long_answer(body: dict) -> dict:
    """About 35,000 characters over three calls (the first two stop at the length limit, so the
    answer continues): Slack needs three messages of at most 12,000 characters for it."""
    messages = body["messages"]
    going_on = messages[-1]["role"] == "user" and messages[-1]["content"] == CONTINUE_PROMPT
    asked_to_go_on = messages[-2]["content"].count("Paragraph ") // 14 if going_on else 0
    text = "\n\n".join(PARAGRAPHS[asked_to_go_on * 14 : (asked_to_go_on + 1) * 14])
    if asked_to_go_on:
        text = "\n\n" + text
    return {"content": text, "finish_reason": "length" if asked_to_go_on < 2 else "stop"}


def test_a_rerun_after_part_two_leaves_exactly_the_original_messages(scenario):
    channel = new_channel()
    scenario.inference.responder = long_answer
    # Part 1 is streamed, part 2 posted; posting part 3 fails: the job is retried.
    scenario.slack.fail_next("chat.postMessage", error="internal_error", after=1)
    scenario.post_event(sr.app_mention("<@UBOT> write a lot", channel=channel))
    [job] = scenario.wait_settled("reply", timeout=60)
    assert job.status == "done" and job.attempts == 2, (job.status, job.attempts, job.last_error)
    first_attempt_posts = [
        call for call in scenario.slack.calls_to("chat.postMessage") if call.params.get("channel") == channel
    ]
    assert len(first_attempt_posts) >= 2
    messages = scenario.slack.bot_messages(channel)
    assert len(messages) == 3, [m["ts"] for m in messages]
    assert job.progress["reply_ts"] == [m["ts"] for m in messages]
    texts = [scenario.slack.text_of(channel, m["ts"]) for m in messages]
    assert all(len(text) <= 12_000 for text in texts)
    joined = "".join(texts)
    for paragraph in PARAGRAPHS[:42]:
        assert paragraph.strip() in joined


def test_parts_an_earlier_attempt_posted_are_updated_and_surplus_ones_removed(fakes):
    """The writer on its own, against the fake Slack: a re-run whose answer is shorter than the
    first attempt's updates the parts it still needs and deletes the others."""
    from bot.config import Settings
    from bot.slack.clients import web_client
    from bot.slack.replies import UpdatingReply
    from tests.support.processes import BOT_TOKEN

    slack, _ = fakes
    slack.reset()
    client = web_client(Settings(slack_api_url=slack.api_url), BOT_TOKEN)
    channel = new_channel()
    first = UpdatingReply(client, channel=channel, thread_ts="1.000")
    posted = first.finish("\n\n".join(PARAGRAPHS[:40]))
    assert len(posted) == 3
    remembered: list[list[str]] = []
    again = UpdatingReply(client, channel=channel, thread_ts="1.000", existing_ts=posted, on_posted=remembered.append)
    assert again.finish("\n\n".join(PARAGRAPHS[:20])) == posted[:2]
    assert [m["ts"] for m in slack.bot_messages(channel)] == posted[:2]
    assert remembered[-1] == posted[:2]
    assert "Paragraph 19:" in slack.text_of(channel, posted[1])
