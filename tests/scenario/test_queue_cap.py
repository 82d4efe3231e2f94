"""One person cannot crowd out everyone (issue 22), on PostgreSQL: with BOT_MAX_QUEUED_PER_USER
requests already waiting, their next mention gets one message saying why and no model call,
while another person's mention is answered as usual."""

from __future__ import annotations

import json

import pytest

from bot.conversation.reply_job import REPLY, ReplyPayload
from bot.queue import store
from tests.scenario.conftest import new_channel, start_scenario
from tests.support import slack_requests as sr


@pytest.fixture
def scenario(postgres_url, fakes):
    yield from start_scenario(postgres_url, fakes, BOT_MAX_QUEUED_PER_USER="3")


def test_beyond_the_cap_a_mention_gets_one_message_and_no_model_call(scenario):
    with scenario.runtime.sessions.begin() as session:
        for n in range(3):  # waiting (not yet due, so the worker leaves them be)
            REPLY.enqueue(
                session,
                ReplyPayload(channel="CELSEWHERE", thread_ts=f"{n}.0", ts=f"{n}.0", user="U1"),
                team_id="T1",
                user_id="U1",
                settings=scenario.settings,
                delay_seconds=3600,
            )
        assert store.waiting_for_user(session, "T1", "U1", kinds=("reply",)) == 3
    crowded, other = new_channel(), new_channel()
    scenario.post_event(sr.app_mention("<@UBOT> one more, please", channel=crowded, user="U1"))
    scenario.post_event(sr.app_mention("<@UBOT> my own question", channel=other, user="U2"))
    [note] = scenario.wait(lambda: scenario.slack.bot_messages(crowded), "the note to U1")
    assert "you already have 3 requests waiting" in note["text"] and note["text"].startswith("<@U1>")
    scenario.wait(lambda: scenario.slack.bot_messages(other), "the answer to U2")
    scenario.wait_settled("queue_full")
    requests = [json.dumps(body) for _, _, body in list(scenario.inference.requests)]
    assert not any("one more, please" in body for body in requests)
    assert any("my own question" in body for body in requests)
    assert len(scenario.slack.bot_messages(crowded)) == 1


def test_beyond_the_cap_ask_is_refused_in_its_acknowledgement(scenario):
    import uuid

    with scenario.runtime.sessions.begin() as session:
        for n in range(3):
            REPLY.enqueue(
                session,
                ReplyPayload(channel="CELSEWHERE", thread_ts=f"{n}.0", ts=f"{n}.0", user="U3"),
                team_id="T1",
                user_id="U3",
                settings=scenario.settings,
                delay_seconds=3600,
            )
    form = sr.slash_command_form(
        "/ask",
        "what is new?",
        user_id="U3",
        channel_id=new_channel(),
        response_url=scenario.slack.response_url(uuid.uuid4().hex),
    )
    response = scenario.post_form(form)
    assert response.status_code == 200
    assert response.json()["text"].startswith("You already have 3 requests waiting for me")
    assert not [job for job in scenario.jobs("ask") if job.user_id == "U3"]
