"""What the bot sends Heroku Managed Inference, end to end against the strict fake: extended
thinking that works (with and without tools), streams that break without repeating text, and a
system prompt that names the place. Every request here must pass the fake's rules (the suite
fails a test during which one was refused)."""

from __future__ import annotations

import json

import pytest

from bot.inference import gateway as gateway_module
from tests.scenario.test_conversations import bot_messages, finished_replies
from tests.support import slack_requests as sr
from tests.support.in_process import build_in_process_stack as build_stack
from tests.support.stacks import new_channel

ANSWER = "Here is the whole answer, written once and only once, from its first word to its last."


def requests_mentioning(stack, text: str) -> list[dict]:
    return [body for _, _, body in list(stack.inference.requests) if text in json.dumps(body)]


def test_think_hard_in_a_thread_gets_a_real_answer_with_thinking_in_the_request(fresh):
    channel = new_channel()
    fresh.inference.responder = lambda body: {"content": "Thought it through: 42.", "reasoning": "hidden"}
    fresh.post_event(sr.app_mention("<@UBOT> think hard: what is six times seven?", channel=channel))
    [reply] = finished_replies(fresh, channel)

    assert fresh.slack.text_of(channel, reply["ts"]) == "Thought it through: 42."
    [body] = requests_mentioning(fresh, "six times seven")
    thinking = body["extended_thinking"]
    assert thinking["enabled"] is True
    assert 1024 <= thinking["budget_tokens"] < body["max_tokens"] <= 4096
    assert "include_reasoning" not in thinking  # BOT_SHOW_REASONING is off: the reasoning is not asked for
    assert "temperature" not in body and body["tool_choice"] == "auto"


def test_think_hard_with_a_tool_call_gets_a_real_answer_and_no_round_is_rejected(fresh):
    channel = new_channel()

    def model(body):
        if body["messages"][-1]["role"] == "tool":
            return {"content": "Six times seven is " + body["messages"][-1]["content"] + "."}
        return {
            "content": "Let me calculate.",
            "tool_calls": [{"name": "calculate", "arguments": {"expression": "6*7"}}],
        }

    fresh.inference.responder = model
    fresh.post_event(sr.app_mention("<@UBOT> think carefully: six times seven, with the calculator", channel=channel))
    [reply] = finished_replies(fresh, channel)

    assert "Six times seven is 6*7 = 42." in fresh.slack.text_of(channel, reply["ts"])
    first, second = requests_mentioning(fresh, "six times seven, with the calculator")
    assert first["extended_thinking"]["enabled"] is True
    # After the tool call the round runs with thinking off: Heroku gives no way to send the
    # thinking back with the tool result, and Anthropic requires that or thinking off.
    assert "extended_thinking" not in second
    assert [m["role"] for m in second["messages"]][-2:] == ["assistant", "tool"]
    assert second["messages"][-2]["content"].strip()  # never empty beside tool calls


def assert_one_message_without_repeats(stack, channel: str, answer: str) -> None:
    [reply] = finished_replies(stack, channel, timeout=30)
    assert len(bot_messages(stack, channel)) == 1
    text = stack.slack.text_of(channel, reply["ts"])
    assert text == answer, text
    assert text.count(answer[:20]) == 1


def test_an_error_event_mid_stream_leaves_one_message_without_repeated_text(fresh):
    channel = new_channel()
    fresh.inference.responder = lambda body: {"content": ANSWER}
    fresh.inference.error_mid_stream_next(after_chunks=3)
    before = len(fresh.inference.requests)
    fresh.post_event(sr.app_mention("<@UBOT> tell me everything (stream breaks)", channel=channel))

    assert_one_message_without_repeats(fresh, channel, ANSWER)
    assert len(fresh.inference.requests) - before == 2  # the broken stream, then the job's re-run


def test_a_rate_limit_error_event_after_text_is_not_retried_into_the_same_message(fresh, monkeypatch):
    # An error event says nothing about when to come back: the gateway pauses its default (5 s
    # in production) before the job's re-run, shortened here; how long does not matter here.
    monkeypatch.setattr(gateway_module, "DEFAULT_PAUSE_SECONDS", 0.5)
    channel = new_channel()
    fresh.inference.responder = lambda body: {"content": ANSWER}
    fresh.inference.error_mid_stream_next(
        after_chunks=3, error={"message": "Too many tokens", "type": "rate_limit_error", "code": 429}
    )
    fresh.post_event(sr.app_mention("<@UBOT> tell me everything (rate limited midway)", channel=channel))

    assert_one_message_without_repeats(fresh, channel, ANSWER)


def test_a_connection_dropped_mid_stream_leaves_one_message_without_repeated_text(fresh):
    channel = new_channel()
    fresh.inference.responder = lambda body: {"content": ANSWER}
    fresh.inference.hang_next(0.2, after_chunks=3)
    fresh.post_event(sr.app_mention("<@UBOT> tell me everything (connection drops)", channel=channel))

    assert_one_message_without_repeats(fresh, channel, ANSWER)


def test_usage_split_across_chunks_is_counted_whole(fresh):
    channel = new_channel()
    fresh.inference.usage_split = True
    try:
        fresh.post_event(sr.app_mention("<@UBOT> count my tokens in parts", channel=channel))
        finished_replies(fresh, channel)
    finally:
        fresh.inference.usage_split = False
    logs = fresh.logs()
    done = [line for line in logs.splitlines() if "inference done" in line and "prompt_tokens=" in line]
    assert done and "prompt_tokens=0 " not in done[-1] and "completion_tokens=0 " not in done[-1]


def test_the_system_prompt_names_the_channel_and_the_person_of_a_dm(fresh):
    channel = new_channel()
    fresh.slack.add_channel(channel, name="launch-plans")
    fresh.slack.add_user("UALICE", name="alice", real_name="Alice", display_name="Alice")
    fresh.post_event(sr.app_mention("<@UBOT> where are we talking?", channel=channel, user="UALICE"))
    finished_replies(fresh, channel)
    [body] = requests_mentioning(fresh, "where are we talking?")
    system = body["messages"][0]["content"]
    assert "#launch-plans" in system and channel not in system

    dm = "D" + new_channel()[1:]
    fresh.slack.add_channel(dm, user="UALICE")
    fresh.post_event(sr.message("and here?", user="UALICE", channel=dm, channel_type="im"))
    finished_replies(fresh, dm)
    [body] = requests_mentioning(fresh, "and here?")
    system = body["messages"][0]["content"]
    assert "a direct message with Alice" in system and dm not in system


def test_ask_with_think_hard_streams_thinks_then_runs_its_tool_without_thinking(fresh):
    from tests.scenario.test_slash_commands import run

    def model(body):
        if body["messages"][-1]["role"] == "tool":
            return {"content": "The calculator says " + body["messages"][-1]["content"] + "."}
        return {"content": "Calculating.", "tool_calls": [{"name": "calculate", "arguments": {"expression": "7*8"}}]}

    fresh.inference.responder = model
    answer = run(fresh, "/ask", "think hard: what is seven times eight?")
    assert "The calculator says 7*8 = 56." in answer["text"]
    first, second = requests_mentioning(fresh, "what is seven times eight?")
    assert first["stream"] is True and second["stream"] is True  # long answers never wait in silence
    assert first["extended_thinking"]["enabled"] is True and "extended_thinking" not in second


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def reasoning_stack(request, tmp_path_factory):
    return build_stack(request, tmp_path_factory, request.param, BOT_SHOW_REASONING="true")


def test_show_reasoning_asks_for_it_and_shows_it_short_under_the_answer_but_never_stores_it(reasoning_stack):
    stack = reasoning_stack
    channel = new_channel()
    thought = "The user wants a product. " * 40  # longer than what is shown
    stack.inference.responder = lambda body: {"content": "It is 42.", "reasoning": thought}
    first = sr.app_mention("<@UBOT> think hard: six times seven?", channel=channel)
    stack.post_event(first)
    [reply] = finished_replies(stack, channel)

    text = stack.slack.text_of(channel, reply["ts"])
    assert text.startswith("It is 42.\n\n> _Reasoning:_ The user wants a product.")
    assert len(text) < len("It is 42.") + 600 and text.endswith("…")
    [body] = requests_mentioning(stack, "six times seven?")
    assert body["extended_thinking"]["include_reasoning"] is True

    stack.inference.responder = lambda body: {"content": "You are welcome."}
    stack.post_event(sr.message("thanks", user="U1", channel=channel, thread_ts=first["ts"]))
    finished_replies(stack, channel, count=2)
    [follow_up] = requests_mentioning(stack, "]: thanks")
    assert "Reasoning" not in json.dumps(follow_up)  # the history keeps the answer, not the reasoning
    assert "extended_thinking" not in follow_up  # "thanks" does not ask for thinking
