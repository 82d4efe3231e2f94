"""The agent surface's job and listeners in one process: a 👍/👎 click on an answer becomes a
`feedback_thanks` job, and a Stop is recorded for its thread.
On SQLite and on PostgreSQL."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select

from bot.agent.models import StopRequest
from bot.conversation.feedback_job import FEEDBACK_THANKS
from bot.conversation.reply_job import REPLY
from tests.scenario.conftest import new_channel
from tests.support import slack_requests as sr


def click(scenario, channel: str, answer: dict, rating: str) -> None:
    message = scenario.slack.message(channel, answer["ts"])
    [block] = [b for b in message["blocks"] if b["type"] == "context_actions"]
    [element] = block["elements"]
    button = element["positive_button" if rating == "positive" else "negative_button"]
    payload = sr.block_actions(
        user="U1",
        channel=channel,
        channel_name=channel.lower(),
        message=message,
        action={
            "type": "feedback_buttons",
            "action_id": element["action_id"],
            "block_id": block.get("block_id", "fb"),
            "text": button["text"],
            "value": button["value"],
        },
        response_url=scenario.slack.response_url(uuid.uuid4().hex),
        thread_ts=answer.get("thread_ts"),
    )
    assert scenario.post_form(sr.interactivity_form(payload)).status_code == 200


def test_a_feedback_click_is_thanked(scenario):
    channel = new_channel()
    scenario.post_event(sr.app_mention("<@UBOT> hi", channel=channel))
    scenario.wait_settled(REPLY.kind)
    [answer] = scenario.slack.bot_messages(channel)
    click(scenario, channel, answer, "negative")
    [job] = scenario.wait_settled(FEEDBACK_THANKS.kind)
    assert job.status == "done" and job.max_attempts == FEEDBACK_THANKS.max_attempts
    thanks = scenario.slack.wait_for_call("chat.postEphemeral", where=lambda c: c.params["channel"] == channel)
    assert thanks.ok and "Thanks" in thanks.params["text"]


def test_stop_is_recorded_for_the_thread(scenario):
    channel = new_channel()
    event = {
        "type": "agent_session_stopped",
        "channel": channel,
        "thread_ts": "1.000001",
        "streaming_message_ts": [],
        "user": "U1",
        "event_ts": str(time.time()),
    }
    assert scenario.post_event(event).status_code == 200
    with scenario.runtime.sessions() as session:
        rows = session.execute(select(StopRequest.channel_id, StopRequest.thread_ts, StopRequest.user_id)).all()
    assert (channel, "1.000001", "U1") in rows
    assert scenario.jobs(REPLY.kind) == []
