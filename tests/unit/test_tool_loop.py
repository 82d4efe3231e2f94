"""The tool loop (bot.conversation.tool_loop.converse) with a scripted gateway: thinking only
before a tool call, tool calls cut off by the length limit never run, requests trimmed to the
size limit, the reasoning shown only when asked. Every body it builds is checked against the
strict fake's rules (tests.fakes.inference.request_problem)."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.conversation.request_size import request_bytes
from bot.conversation.tool_loop import LENGTH_NOTE, CollectedText, converse
from bot.history.thread import ImagePart, ThreadEntry
from bot.inference.client import Completion
from bot.inference.gateway import CallContext
from bot.inference.sse import ToolCallOut
from bot.tools.registry import ToolContext, ToolRegistry
from tests.fakes.inference import request_problem

RUNS: list[str] = []


def add(ctx: ToolContext, a: int, b: int = 0) -> int:
    """Add two numbers.

    Args:
        a: First.
        b: Second.
    """
    RUNS.append(f"{a}+{b}")
    return a + b


class ScriptedGateway:
    def __init__(self, *answers: Completion) -> None:
        self.answers = list(answers)
        self.bodies: list[dict] = []

    def call(self, body, ctx, *, on_text=None, prompt_caching=True) -> Completion:
        full = {"model": "claude-4-5-haiku", **body}
        problem = request_problem(full)
        assert problem is None, problem
        self.bodies.append(full)
        return self.answers.pop(0)


def tool_call(arguments: str = '{"a": 2, "b": 3}', call_id: str = "toolu_1") -> ToolCallOut:
    return ToolCallOut(id=call_id, name="add", arguments=arguments)


def run(gateway: ScriptedGateway, *, thinking: bool = False, entries=None, **settings) -> tuple[str, CollectedText]:
    registry = ToolRegistry()
    registry.add(add)
    sink = CollectedText()
    turn = converse(
        gateway,
        registry,
        Settings(**settings),
        system="Be brief.",
        entries=entries or [ThreadEntry(ts="1.0", role="user", text="what is 2+3?", user_id="U1")],
        tool_ctx=ToolContext(team_id="T1", user_id="U1"),
        call=CallContext(team_id="T1", user_id="U1"),
        sink=sink,
        turn_ts="1.0",
        thinking=thinking,
    )
    return turn.text, sink


@pytest.fixture(autouse=True)
def _clear_runs():
    RUNS.clear()


def test_only_the_rounds_before_a_tool_call_think():
    gateway = ScriptedGateway(
        Completion(content="Let me add.", tool_calls=[tool_call()], finish_reason="tool_calls"),
        Completion(content="It is 5.", finish_reason="stop"),
    )
    text, _ = run(gateway, thinking=True)

    assert text == "It is 5." and RUNS == ["2+3"]
    first, second = gateway.bodies
    assert first["extended_thinking"] == {"enabled": True, "budget_tokens": 2048}
    assert first["tool_choice"] == "auto" and "temperature" not in first
    assert "extended_thinking" not in second
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]


def test_reasoning_is_asked_for_and_shown_only_with_show_reasoning():
    answer = Completion(content="It is 5.", finish_reason="stop", reasoning="Two plus three.\nEasy.")
    quiet = ScriptedGateway(answer)
    assert run(quiet, thinking=True)[1].text == "It is 5."
    assert "include_reasoning" not in quiet.bodies[0]["extended_thinking"]

    shown = ScriptedGateway(answer)
    text, sink = run(shown, thinking=True, show_reasoning=True)
    assert shown.bodies[0]["extended_thinking"]["include_reasoning"] is True
    assert text == "It is 5."  # what is stored: the answer alone
    assert sink.text == "It is 5.\n\n> _Reasoning:_ Two plus three. Easy."


def test_tool_calls_cut_off_by_the_length_limit_are_not_run():
    gateway = ScriptedGateway(
        Completion(content="Adding", tool_calls=[tool_call('{"a": 2, "b"')], finish_reason="length"),
    )
    text, sink = run(gateway)

    assert RUNS == []
    assert len(gateway.bodies) == 1
    assert text == "Adding" + LENGTH_NOTE and "cut off" in sink.text


def png_entry(ts: str, size: int) -> ThreadEntry:
    # Stand-in bytes: the size check counts base64 text, not pixels.
    image = ImagePart(media_type="image/png", data=b"\x89PNG" + bytes(size), width=100, height=100)
    return ThreadEntry(ts=ts, role="user", text=f"picture {ts}", user_id="U1", images=(image,))


def test_a_request_over_the_size_limit_leaves_out_the_oldest_images_first():
    entries = [png_entry(f"{n}.0", 3_700_000) for n in range(1, 10)]  # 9 images of ~4.9 MB base64
    gateway = ScriptedGateway(Completion(content="Nice pictures.", finish_reason="stop"))
    run(gateway, entries=entries, context_budget_tokens=10_000_000)

    [body] = gateway.bodies
    assert request_bytes(body) < 32 * 1024 * 1024
    parts = [
        part
        for message in body["messages"]
        for part in (message["content"] if isinstance(message["content"], list) else [])
    ]
    images = [part for part in parts if part["type"] == "image_url"]
    assert 0 < len(images) < 9
    # The newest image stays; the oldest became a note.
    assert "picture 9.0" in str(body["messages"][-1]) and "image_url" in str(body["messages"][-1])
    assert "(an earlier image was left out)" in str(body["messages"][1])
