"""The model conversation with tools, shared by thread replies and `/ask`.

One call per round: the model answers, or calls tools; their results go back and it is
called again, at most `settings.max_tool_rounds` times with tools allowed, then once more
with `tool_choice: "none"` so it must answer. Every round sends the same tool list (the
prompt cache keys on it), and the history is fitted to the context budget each time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from bot.conversation.budget import fit_to_budget
from bot.conversation.messages import thread_to_messages
from bot.conversation.thread import ThreadEntry, ToolCall
from bot.inference.gateway import CallContext, ModelGateway
from bot.limits.admission import RequestTooLarge
from bot.limits.tokens import estimate_messages_tokens, estimate_tools_tokens
from bot.tools.registry import ToolContext, ToolRegistry
from bot.tools.runner import run_tool_calls

log = logging.getLogger(__name__)

LENGTH_NOTE = "\n\n_(The answer was cut off at the length limit.)_"


class TextSink(Protocol):
    """Where the model's words go as they come (a Slack stream) or after each round."""

    streams_text: bool

    def append(self, text: str) -> None: ...


class CollectedText:
    """A sink that keeps the text, for answers posted in one piece (`/ask`)."""

    streams_text = False

    def __init__(self) -> None:
        self.parts: list[str] = []

    def append(self, text: str) -> None:
        if text:
            self.parts.append(text)

    @property
    def text(self) -> str:
        """Every round's words, a paragraph each (a streamed reply runs them together)."""
        return "\n\n".join(part.strip() for part in self.parts if part.strip())


@dataclass(frozen=True)
class ModelTurn:
    stored: list[dict]  # the tool rounds, as `history.record_turn` entries
    text: str  # the final answer (with LENGTH_NOTE when cut)
    tool_rounds: int


def converse(
    gateway: ModelGateway,
    tools: ToolRegistry,
    settings: Any,
    *,
    system: str,
    entries: list[ThreadEntry],
    tool_ctx: ToolContext,
    call: CallContext,
    sink: TextSink,
    turn_ts: str,
    thinking: bool = False,
) -> ModelTurn:
    """Run the model over `entries` (with tool rounds) and return the turn. Raises what the
    gateway raises, and RequestTooLarge when the history cannot fit the context budget."""
    openai_tools = tools.openai_tools()
    turn_entries: list[ThreadEntry] = []
    stored_turn: list[dict] = []
    max_rounds = settings.max_tool_rounds
    for round_number in range(max_rounds + 1):
        may_use_tools = bool(openai_tools) and round_number < max_rounds
        body: dict = {"max_tokens": settings.inference_max_output_tokens}
        if thinking:
            body["extended_thinking"] = {"enabled": True, "budget_tokens": settings.thinking_budget_tokens}
        fixed = (
            estimate_messages_tokens([{"role": "system", "content": system}])
            + (estimate_tools_tokens(openai_tools) if openai_tools else 0)
            + body["max_tokens"]
            + (settings.thinking_budget_tokens if thinking else 0)
        )
        budget = fit_to_budget(
            [*entries, *turn_entries], budget_tokens=settings.context_budget_tokens, fixed_tokens=fixed
        )
        if not budget.fits:
            raise RequestTooLarge("the thread does not fit the context budget")
        body["messages"] = thread_to_messages(
            budget.entries, system_prompt=system, max_images=settings.max_images_per_request
        )
        if openai_tools:
            # Same tools every round: the prompt cache keys on them; "none" forbids new calls.
            body["tools"] = openai_tools
            body["tool_choice"] = "auto" if may_use_tools else "none"
        completion = gateway.call(body, call, on_text=sink.append if sink.streams_text else None)
        if not sink.streams_text:
            sink.append(completion.content)
        if completion.reasoning and settings.show_reasoning:
            log.debug("reasoning chars=%d", len(completion.reasoning))
        if completion.tool_calls and may_use_tools:
            calls = [(c.id, c.name, c.arguments) for c in completion.tool_calls]
            step_started = getattr(sink, "tool_started", None)  # sinks that show steps (Slack replies)
            step_finished = getattr(sink, "tool_finished", None)
            for call_id, name, arguments in calls:
                if step_started:
                    step_started(call_id, name, arguments)
            results = run_tool_calls(tools, calls, tool_ctx)
            for call_id, result in results:
                if step_finished:
                    step_finished(call_id, result.ok, result.content)
            tool_calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in completion.tool_calls]
            turn_entries.append(
                ThreadEntry(
                    ts=turn_ts,
                    role="assistant",
                    text=completion.content,
                    tool_calls=tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in tool_calls),
                )
            )
            stored_turn.append({"role": "assistant", "text": completion.content, "tool_calls": tool_calls})
            for call_id, result in results:
                turn_entries.append(ThreadEntry(ts=turn_ts, role="tool", text=result.content, tool_call_id=call_id))
                stored_turn.append({"role": "tool", "text": result.content, "tool_call_id": call_id})
            log.info("reply tool_round=%d calls=%d", round_number + 1, len(calls))
            continue
        if completion.finish_reason == "length":
            sink.append(LENGTH_NOTE)
            return ModelTurn(stored_turn, completion.content + LENGTH_NOTE, round_number)
        return ModelTurn(stored_turn, completion.content, round_number)
    return ModelTurn(stored_turn, "", max_rounds)
