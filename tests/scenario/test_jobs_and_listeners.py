"""Every job type, reached through its listener, in one process: signed request → web app →
queue → worker thread → fakes. On SQLite and on PostgreSQL (the `database_url` fixture)."""

from __future__ import annotations

import json
import uuid

from bot.conversation.ask_job import ASK
from bot.conversation.reply_job import REPLY
from bot.conversation.welcome_job import WELCOME
from bot.retention.tasks import FORGET_WORKSPACE
from bot.runtime import JOB_TYPES
from bot.tools.slash_job import SLASH_COMMAND
from tests.fakes.slack import next_ts
from tests.scenario.conftest import new_channel
from tests.support import slack_requests as sr


def bot_texts(scenario, channel: str) -> list[str]:
    messages = scenario.slack.bot_messages(channel)
    return [scenario.slack.text_of(channel, m["ts"]) for m in messages]


def test_a_mention_is_answered_in_its_thread(scenario):
    channel = new_channel()
    event = sr.app_mention("<@UBOT> what is a dyno?", channel=channel)
    assert scenario.post_event(event).status_code == 200
    [job] = scenario.wait_settled(REPLY.kind)
    assert job.status == "done" and job.lane == REPLY.lane
    [reply] = scenario.slack.bot_messages(channel)
    assert reply["thread_ts"] == event["ts"]
    assert "what is a dyno?" in scenario.slack.text_of(channel, reply["ts"])


def test_a_direct_message_is_answered_and_a_slack_retry_is_not(scenario):
    dm = "D" + new_channel()[1:]
    event = sr.message("hello there", user="U1", channel=dm, channel_type="im")
    event_id = sr.new_event_id()
    assert scenario.post_event(event, event_id=event_id).status_code == 200
    assert scenario.post_event(event, event_id=event_id).status_code == 200  # Slack's retry
    scenario.wait_settled(REPLY.kind)
    assert len(scenario.jobs(REPLY.kind)) == 1
    assert any("hello there" in text for text in bot_texts(scenario, dm))


def test_the_messages_tab_greets_once(scenario):
    dm = "D" + new_channel()[1:]
    opened = {"type": "app_home_opened", "user": "U7", "channel": dm, "tab": "messages", "event_ts": next_ts()}
    scenario.post_event(opened)
    scenario.post_event({**opened, "event_ts": next_ts()})  # a second visit: no second greeting
    [job] = scenario.wait_settled(WELCOME.kind)
    assert job.max_attempts == WELCOME.max_attempts
    assert len(bot_texts(scenario, dm)) == 1


def test_an_assistant_thread_gets_suggested_prompts(scenario):
    dm = "D" + new_channel()[1:]
    started = {
        "type": "assistant_thread_started",
        "assistant_thread": {"user_id": "U7", "channel_id": dm, "thread_ts": next_ts()},
        "event_ts": next_ts(),
    }
    scenario.post_event(started)
    scenario.wait_settled(WELCOME.kind)
    call = scenario.slack.wait_for_call("assistant.threads.setSuggestedPrompts", timeout=10)
    assert call.ok and call.params["channel_id"] == dm
    assert "thread_ts" not in call.params  # with it, the call silently fails for agent apps


def _command(scenario, command: str, text: str) -> str:
    name = uuid.uuid4().hex
    url = scenario.slack.response_url(name)
    form = sr.slash_command_form(command, text, channel_id=new_channel(), response_url=url)
    assert scenario.post_form(form).status_code == 200
    return name


def test_a_tool_command_answers_through_its_response_url(scenario):
    name = _command(scenario, "/calc", "6*7")
    [job] = scenario.wait_settled(SLASH_COMMAND.kind)
    assert job.status == "done"
    [post] = scenario.wait(lambda: scenario.slack.responses_to(name), "the answer at the response_url")
    assert "42" in post.body["text"] and post.body["response_type"] == "ephemeral"


def test_ask_answers_through_its_response_url(scenario):
    name = _command(scenario, "/ask", "what is a dyno?")
    [job] = scenario.wait_settled(ASK.kind)
    assert job.status == "done"
    [post] = scenario.wait(lambda: scenario.slack.responses_to(name), "the answer at the response_url")
    assert "what is a dyno?" in post.body["text"]


def test_an_uninstall_forgets_the_workspace(scenario):
    channel = new_channel()
    scenario.post_event(sr.app_mention("<@UBOT> remember me", channel=channel))
    scenario.wait_settled(REPLY.kind)
    assert scenario.post_event({"type": "app_uninstalled", "event_ts": next_ts()}).status_code == 200
    [job] = scenario.wait_settled(FORGET_WORKSPACE.kind)
    assert job.status == "done" and job.lane == FORGET_WORKSPACE.lane
    assert [j.kind for j in scenario.jobs()] == [FORGET_WORKSPACE.kind]  # the team's other rows are gone


def test_every_declared_job_type_has_a_handler_in_the_running_worker(scenario):
    assert set(scenario.runtime.worker.handlers) == {job_type.kind for job_type in JOB_TYPES}


def test_an_edit_is_recorded_and_the_next_reply_sees_it(scenario):
    channel = new_channel()
    first = sr.app_mention("<@UBOT> my number is 41", channel=channel)
    scenario.post_event(first)
    scenario.wait_settled(REPLY.kind)
    edit = sr.message_changed(channel, first["ts"], "<@UBOT> my number is 43", previous_text=first["text"])
    assert scenario.post_event(edit).status_code == 200
    scenario.post_event(sr.app_mention("<@UBOT> and now?", channel=channel, thread_ts=first["ts"]))
    scenario.wait_settled(REPLY.kind, count=2)
    last = scenario.inference.requests[-1][2]
    said = json.dumps([m for m in last["messages"] if m["role"] == "user"])  # the echo answer quotes the old text
    assert "my number is 43" in said and "my number is 41" not in said
