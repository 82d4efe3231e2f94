"""Slack's agent surface end to end (real web under gunicorn and worker processes, fake Slack):
tool calls as task steps, 👍/👎 on every answer and clicks kept, the native Stop button."""

from __future__ import annotations

import json

from tests.e2e.conftest import new_channel, wait_idle
from tests.e2e.test_conversations import bot_messages, finished_replies
from tests.support import slack_requests as sr


def _tool_then_answer(name: str, arguments: dict, answer: str):
    def responder(body):
        if any(m.get("role") == "tool" for m in body["messages"]):
            return {"content": answer}
        return {"content": "", "tool_calls": [{"id": "call_calc_1", "name": name, "arguments": json.dumps(arguments)}]}

    return responder


def test_a_tool_call_is_streamed_as_a_task_step_then_the_answer_ends_with_feedback_buttons(fresh):
    channel = new_channel()
    fresh.inference.responder = _tool_then_answer("calculate", {"expression": "6*7"}, "It is 42.")
    event = sr.app_mention("<@UBOT> what is 6*7?", channel=channel)
    fresh.post_event(event)
    [reply] = finished_replies(fresh, channel)

    tasks = fresh.slack.tasks_of(channel, reply["ts"])
    assert list(tasks) == ["call_calc_1"]  # the tool call's id: stable across its updates
    updates = tasks["call_calc_1"]
    assert [u["status"] for u in updates] == ["in_progress", "complete"]
    assert {u["title"] for u in updates} == {"Calculating 6*7"}
    assert "42" in updates[-1]["output"]
    start = fresh.slack.wait_for_call("chat.startStream", where=lambda c: c.params["channel"] == channel)
    assert start.params["task_display_mode"] == "timeline"
    assert "It is 42." in fresh.slack.text_of(channel, reply["ts"])

    [feedback] = [b for b in fresh.slack.message(channel, reply["ts"])["blocks"] if b["type"] == "context_actions"]
    [buttons] = feedback["elements"]
    assert buttons["type"] == "feedback_buttons"
    assert buttons["positive_button"]["text"]["text"] == "👍" and buttons["negative_button"]["text"]["text"] == "👎"
    stop = fresh.slack.wait_for_call("chat.stopStream", where=lambda c: c.params["channel"] == channel)
    assert stop.params["blocks"] == [feedback]

    # The session was `processing` while the answer was worked on, and is not any more.
    assert fresh.slack.session_history(channel, event["ts"]) == ["processing", "active"]


def test_several_tool_calls_show_a_plan_title(fresh):
    channel = new_channel()

    def responder(body):
        if any(m.get("role") == "tool" for m in body["messages"]):
            return {"content": "Both done."}
        return {
            "content": "",
            "tool_calls": [
                {"id": "call_a", "name": "calculate", "arguments": json.dumps({"expression": "1+1"})},
                {"id": "call_b", "name": "current_time", "arguments": json.dumps({"timezone": "Europe/Paris"})},
            ],
        }

    fresh.inference.responder = responder
    fresh.post_event(sr.app_mention("<@UBOT> two things", channel=channel))
    [reply] = finished_replies(fresh, channel)
    chunks = fresh.slack.chunks_of(channel, reply["ts"])
    plans = [c["title"] for c in chunks if c["type"] == "plan_update"]
    assert plans and plans[-1] == "Worked through 2 steps"
    tasks = fresh.slack.tasks_of(channel, reply["ts"])
    assert set(tasks) == {"call_a", "call_b"}
    assert tasks["call_b"][0]["title"] == "Looking up the time in Europe/Paris"
    assert all(updates[-1]["status"] == "complete" for updates in tasks.values())


def test_without_streaming_the_steps_are_a_context_line_in_the_one_message(fresh):
    channel = new_channel()
    fresh.slack.streaming_enabled = False
    try:
        fresh.inference.responder = _tool_then_answer("calculate", {"expression": "2+2"}, "Four.")
        fresh.post_event(sr.app_mention("<@UBOT> 2+2 please", channel=channel))
        [reply] = finished_replies(fresh, channel)
    finally:
        fresh.slack.streaming_enabled = True
    assert len(bot_messages(fresh, channel)) == 1
    blocks = fresh.slack.message(channel, reply["ts"])["blocks"]
    assert [b["type"] for b in blocks] == ["context", "markdown", "context_actions"]
    assert blocks[0]["elements"][0]["text"].startswith("✓ Calculating 2+2 — ")
    wait_idle(fresh)


def test_a_tool_that_fails_is_an_error_step(fresh):
    channel = new_channel()
    fresh.inference.responder = _tool_then_answer("calculate", {"expression": "1/0"}, "Cannot.")
    fresh.post_event(sr.app_mention("<@UBOT> divide by zero", channel=channel))
    [reply] = finished_replies(fresh, channel)
    updates = fresh.slack.tasks_of(channel, reply["ts"])["call_calc_1"]
    assert [u["status"] for u in updates] == ["in_progress", "error"]
    assert updates[-1]["output"]
