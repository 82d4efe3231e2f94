"""Steps, feedback values and waiting messages: the pure parts of the agent surface."""

from __future__ import annotations

import json

import pytest

from bot.agent import feedback, steps, waiting
from bot.agent.render import feedback_block, steps_block, task_chunk


@pytest.mark.parametrize(
    ("name", "arguments", "title"),
    [
        ("search_messages", '{"query": "deploy"}', "Searching messages for 'deploy'"),
        ("search_messages", '{"query": "it\'s   here"}', "Searching messages for 'it\u2019s here'"),
        ("search_messages", "{}", "Searching messages"),
        ("search_messages", "{not json", "Searching messages"),
        ("get_weather", {"city": "Paris"}, "Checking the weather in Paris"),
        ("calculate", '{"expression": "6*7"}', "Calculating 6*7"),
        ("current_time", "{}", "Looking up the time in UTC"),
        ("current_time", '{"timezone": "Asia/Tokyo"}', "Looking up the time in Asia/Tokyo"),
        ("token_usage", "{}", "Checking token usage"),
        ("lookup_ticket", '{"id": 3}', "Running lookup ticket"),
        ("orders__lookup_order", '{"order_id": "4"}', "Asking orders: lookup order"),
        ("", "{}", "Running a tool"),
        ("search_messages", json.dumps({"query": "x" * 100}), "Searching messages for '" + "x" * 39 + "…'"),
    ],
)
def test_step_titles(name, arguments, title):
    assert steps.step_title(name, arguments) == title


@pytest.mark.parametrize(
    ("ok", "content", "output"),
    [
        (True, '3 messages matching "deploy":\n• <#C1> 2026-11-30, <@U1>: we deploy', '3 messages matching "deploy":'),
        (True, "", "Done"),
        (False, "", "Failed"),
        (False, "Error: division by zero", "Error: division by zero"),
        (True, "\n\n  • first real line  \nsecond", "first real line"),
        (True, "see <https://example.com/a|the doc>", "see the doc"),
        (True, "word " * 50, ("word " * 50)[:119].rstrip() + "…"),
    ],
)
def test_step_outputs_are_one_line(ok, content, output):
    assert steps.step_output(ok, content) == output


@pytest.mark.parametrize(
    ("content", "sources"),
    [
        ("no links", ()),
        ("<https://x.slack.com/archives/C1/p1|a message>", (("https://x.slack.com/archives/C1/p1", "a message"),)),
        ("read https://example.com/a. and https://example.com/a", (("https://example.com/a", "example.com/a"),)),
        (
            "<https://a.example/x> then (https://b.example/y)",
            (("https://a.example/x", "a.example/x"), ("https://b.example/y", "b.example/y")),
        ),
        (
            " ".join(f"https://e.example/{n}" for n in range(9)),
            tuple((f"https://e.example/{n}", f"e.example/{n}") for n in range(5)),
        ),
        ("ftp://nope.example/file", ()),
    ],
)
def test_links_a_tool_returns_become_sources(content, sources):
    assert tuple((s.url, s.text) for s in steps.step_sources(content)) == sources


def test_a_step_list_keeps_ids_and_announces_the_plan_once_per_change():
    listed = steps.StepList()
    first = listed.start("call_1", "calculate", '{"expression": "1+1"}')
    assert (first.id, first.status) == ("call_1", "in_progress")
    assert listed.new_plan_title() is None
    listed.start("call_2", "current_time", "{}")
    assert listed.new_plan_title() == "Working through 2 steps"
    assert listed.new_plan_title() is None
    assert listed.finish("call_1", True, "2").status == "complete"
    assert listed.finish("unknown", True, "x") is None
    assert listed.finish("call_2", False, "Unknown time zone").status == "error"
    assert listed.new_plan_title() == "Worked through 2 steps"
    assert listed.tool_names() == ("calculate", "current_time")
    assert steps.context_text(listed.steps) == (
        "*Worked through 2 steps*\n✓ Calculating 1+1 — 2\n✗ Looking up the time in UTC — Unknown time zone"
    )


@pytest.mark.parametrize(
    ("status", "output", "line", "terminal"),
    [
        ("in_progress", None, "… Searching messages for 'x'", "… searching messages for 'x'"),
        ("complete", "2 found", "✓ Searching messages for 'x' — 2 found", "✓ searching messages for 'x'"),
        ("error", "Failed", "✗ Searching messages for 'x' — Failed", "✗ searching messages for 'x'"),
    ],
)
def test_step_lines(status, output, line, terminal):
    step = steps.Step(id="1", name="search_messages", title="Searching messages for 'x'", status=status, output=output)
    assert steps.line(step) == line
    assert steps.terminal_line(step) == terminal


def test_chunks_and_blocks_are_slack_sdk_models():
    step = steps.finished(steps.started("c1", "calculate", '{"expression": "2"}'), True, "2 <https://e.example|src>")
    assert task_chunk(step).to_dict() == {
        "type": "task_update",
        "id": "c1",
        "title": "Calculating 2",
        "status": "complete",
        "output": "2 src",
        "sources": [{"type": "url", "url": "https://e.example", "text": "src"}],
    }
    assert steps_block([]) is None
    assert steps_block([step]).to_dict()["type"] == "context"
    block = feedback_block(feedback.Trace(model="m")).to_dict()
    [element] = block["elements"]
    assert element["action_id"] == feedback.FEEDBACK_ACTION_ID
    assert feedback.decode_value(element["positive_button"]["value"])[0] == "positive"
    assert feedback.decode_value(element["negative_button"]["value"])[0] == "negative"


TRACE = feedback.Trace(
    model="claude-4-5-haiku",
    prompt_tokens=1200,
    completion_tokens=80,
    tools=("search_messages", "calculate"),
    latency_ms=2345,
    attempts=2,
    thread_ts="1700000000.000100",
)


@pytest.mark.parametrize("rating", ["positive", "negative"])
def test_feedback_values_round_trip(rating):
    value = feedback.encode_value(rating, TRACE)
    assert len(value) <= feedback.VALUE_MAX_CHARS
    assert feedback.decode_value(value) == (rating, TRACE)


def test_a_long_tool_list_is_shortened_to_fit_the_value():
    trace = feedback.Trace(tools=tuple("t" * 99 for _ in range(20)))
    value = feedback.encode_value("positive", trace)
    assert len(value) <= feedback.VALUE_MAX_CHARS
    rating, decoded = feedback.decode_value(value)
    assert rating == "positive" and 0 < len(decoded.tools) < 20


@pytest.mark.parametrize(
    "value",
    [None, "", "positive", "+", "+[]", "+{bad", '*{"m": "x"}', '+{"t": "nope"}', '+{"p": "12"}', '+{"p": true}'],
)
def test_values_that_are_not_ours_are_ignored(value):
    assert feedback.decode_value(value) is None


@pytest.mark.parametrize(("positive", "negative", "share"), [(0, 0, None), (3, 1, 0.75), (0, 2, 0.0), (5, 0, 1.0)])
def test_positive_share(positive, negative, share):
    assert feedback.positive_share(positive, negative) == share


@pytest.mark.parametrize(
    ("images", "files", "first"),
    [(0, 0, "Thinking…"), (1, 0, "Reading the image…"), (3, 0, "Reading the 3 images…"), (0, 1, "Reading the file…")],
)
def test_thinking_messages(images, files, first):
    messages = waiting.thinking_messages(images=images, files=files)
    assert messages[0] == first and "Thinking…" in messages and len(messages) <= 10


def test_tool_messages_say_what_runs_then_thinking():
    assert waiting.tool_messages(["search_messages", "search_messages", "get_weather"]) == [
        "Searching messages…",
        "Checking the weather…",
        "Thinking…",
    ]
    assert len(waiting.tool_messages([f"tool_{n}" for n in range(20)])) == 10


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("<@UBOT> what is a dyno?", "What is a dyno?"),
        ("*What* is 5*5, <@UBOT>?\nThanks", "What is 5*5?"),
        ("> _quoted_ ~question~ here", "Quoted question here"),
        ("*How* do I `deploy`\nsecond line", "How do I deploy"),
        ("see <https://e.example|the page> please", "See the page please"),
        ("", ""),
        ("word " * 30, "Word word word word word word word word word word word…"),
    ],
)
def test_thread_titles_come_from_the_first_question(question, title):
    assert waiting.thread_title(question) == title
