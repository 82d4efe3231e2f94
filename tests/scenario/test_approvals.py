"""State-changing tools wait for the person, end to end with signed interactivity requests:
a mention → web → worker → the model calls a state-changing tool → an approval card in the
thread, the job parked (no lease, no thread) → Approve / Deny clicks → the job runs again and
the answer continues. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from bot.config import normalize_database_url
from bot.tools.approval_logic import APPROVE_ACTION, DENY_ACTION
from tests.support import slack_requests as sr
from tests.support.in_process import build_in_process_stack as build_stack
from tests.support.processes import wait_for
from tests.support.stacks import new_channel, wait_idle

ASKER, OTHER, ADMIN = "U1", "U2", "UADMIN"
TIMEOUT_SECONDS = 6


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory):
    stack = build_stack(request, tmp_path_factory, request.param, BOT_APPROVAL_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS))
    stack.slack.add_user(ASKER, name="alice", real_name="Alice", display_name="Alice")
    stack.slack.add_user(OTHER, name="bob", real_name="Bob", display_name="Bob")
    stack.slack.add_user(ADMIN, name="ada", real_name="Ada", display_name="Ada", is_admin=True)
    stack.inference.responder = approval_model
    return stack


def _text_of(content) -> str:
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def approval_model(body: dict) -> dict:
    """Calls a state-changing tool when asked to, then answers with its result."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return {"content": "Result: " + _text_of(last["content"])}
    said = _text_of(last["content"])
    if "forget this thread" in said:
        return {"content": "I'll forget it.", "tool_calls": [{"name": "forget_thread", "arguments": {}}]}
    if "watch images here" in said:
        return {"content": "Switching it on.", "tool_calls": [{"name": "moderation", "arguments": {"action": "on"}}]}
    return {"content": "Nothing to do."}


def sql(stack, statement: str, **params):
    engine = create_engine(normalize_database_url(stack.database_url))
    try:
        with engine.connect() as connection:
            return connection.execute(text(statement), params).all()
    finally:
        engine.dispose()


def card_in(stack, channel: str, timeout: float = 20.0) -> dict:
    def find():
        for message in stack.slack.messages_in(channel):
            if APPROVE_ACTION in json.dumps(message.get("blocks")):
                return message
        return None

    found = wait_for(find, timeout=timeout)
    assert found, f"no approval card in {channel}; logs:\n{stack.logs()[-3000:]}"
    return found


def job_status(stack, channel: str) -> str:
    rows = sql(
        stack, "SELECT status FROM jobs WHERE kind = 'reply' AND CAST(payload AS TEXT) LIKE :c", c=f"%{channel}%"
    )
    return rows[-1][0] if rows else ""


def parked(stack, channel: str) -> None:
    assert wait_for(lambda: job_status(stack, channel) == "awaiting", timeout=20), stack.logs()[-3000:]
    [(lease,)] = sql(
        stack, "SELECT lease_token FROM jobs WHERE kind = 'reply' AND CAST(payload AS TEXT) LIKE :c", c=f"%{channel}%"
    )
    assert lease is None  # no lease held while waiting


def click(stack, card: dict, channel: str, action_id: str, *, user: str) -> None:
    value = next(
        e["value"]
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id
    )
    payload = sr.block_actions(
        user=user,
        channel=channel,
        channel_name="general",
        message=card,
        action={
            "action_id": action_id,
            "block_id": f"tool_approval_{value}",
            "text": {"type": "plain_text", "text": "x"},
            "value": value,
            "type": "button",
        },
        response_url=stack.slack.response_url(uuid.uuid4().hex),
    )
    started = time.monotonic()
    response = stack.post_form(sr.interactivity_form(payload))
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 3


def answer_of(stack, channel: str, thread_ts: str, card_ts: str, expected: str, timeout: float = 25.0) -> str:
    """The answer's text once its job is done: `expected` shows while the rest still streams."""

    def find():
        for message in stack.slack.messages_in(channel):
            if (
                message["ts"] != card_ts
                and message.get("thread_ts") == thread_ts
                and expected in stack.slack.text_of(channel, message["ts"])
                and job_status(stack, channel) == "done"
            ):
                return stack.slack.text_of(channel, message["ts"])
        return None

    found = wait_for(find, timeout=timeout)
    assert found, f"no answer with {expected!r}; logs:\n{stack.logs()[-3000:]}"
    return found


def thread_stored(stack, channel: str) -> bool:
    return bool(sql(stack, "SELECT 1 FROM threads WHERE channel_id = :c", c=channel))


def test_the_asker_approves_and_nobody_else_can(stack):
    channel = new_channel()
    event = sr.app_mention("<@UBOT> please forget this thread", channel=channel, user=ASKER)
    assert stack.post_event(event).status_code == 200
    card = card_in(stack, channel)
    assert f"<@{ASKER}>" in json.dumps(card["blocks"]) and "/forget" in json.dumps(card["blocks"])
    parked(stack, channel)
    assert thread_stored(stack, channel)  # nothing was forgotten yet
    click(stack, card, channel, APPROVE_ACTION, user=OTHER)
    assert wait_for(
        lambda: any(
            c.params.get("user") == OTHER and ASKER in str(c.params.get("text"))
            for c in stack.slack.calls_to("chat.postEphemeral")
        ),
        timeout=15,
    )
    assert job_status(stack, channel) == "awaiting" and thread_stored(stack, channel)
    click(stack, card, channel, APPROVE_ACTION, user=ASKER)
    answer = answer_of(stack, channel, event["ts"], card["ts"], "Result:")
    assert "stopped following it" in answer  # the tool ran, and the answer continued from its result
    wait_idle(stack)
    assert job_status(stack, channel) == "done"
    assert "Approved by" in json.dumps(stack.slack.message(channel, card["ts"])["blocks"])


def test_deny_tells_the_model_it_was_refused(stack):
    channel = new_channel()
    event = sr.app_mention("<@UBOT> watch images here", channel=channel, user=ADMIN)
    stack.post_event(event)
    card = card_in(stack, channel)
    parked(stack, channel)
    click(stack, card, channel, DENY_ACTION, user=ADMIN)
    answer = answer_of(stack, channel, event["ts"], card["ts"], "Result:")
    assert "did not approve" in answer and "they denied it" in answer
    wait_idle(stack)
    assert not sql(stack, "SELECT 1 FROM moderation_channels WHERE channel_id = :c", c=channel)
    assert "Denied by" in json.dumps(stack.slack.message(channel, card["ts"])["blocks"])


def test_no_answer_in_time_is_a_refusal(stack):
    channel = new_channel()
    event = sr.app_mention("<@UBOT> forget this thread now", channel=channel, user=ASKER)
    stack.post_event(event)
    card = card_in(stack, channel)
    parked(stack, channel)
    answer = answer_of(stack, channel, event["ts"], card["ts"], "Result:", timeout=TIMEOUT_SECONDS + 25)
    assert "no answer in time" in answer
    assert thread_stored(stack, channel)
    click(stack, card, channel, APPROVE_ACTION, user=ASKER)  # too late: changes nothing
    wait_idle(stack)
    assert "Not approved in time" in json.dumps(stack.slack.message(channel, card["ts"])["blocks"])
    assert thread_stored(stack, channel)


def test_an_admin_only_tool_still_needs_the_asker_to_be_an_admin(stack):
    channel = new_channel()
    event = sr.app_mention("<@UBOT> watch images here", channel=channel, user=ASKER)
    stack.post_event(event)
    card = card_in(stack, channel)
    click(stack, card, channel, APPROVE_ACTION, user=ASKER)
    answer = answer_of(stack, channel, event["ts"], card["ts"], "Result:")
    assert "Only workspace admins" in answer
    assert not sql(stack, "SELECT 1 FROM moderation_channels WHERE channel_id = :c", c=channel)
