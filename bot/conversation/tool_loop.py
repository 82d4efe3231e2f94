"""The model conversation with tools, shared by thread replies and `/ask`.

One call per round: the model answers, or calls tools; their results go back and it is
called again, at most `settings.max_tool_rounds` times with tools allowed, then once more
with `tool_choice: "none"` so it must answer. Every round sends the same tool list (the
prompt cache keys on it), and the history is fitted to the context budget and to the
provider's request size limit each time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from bot.conversation.budget import ThreadTooLong, fit_to_budget
from bot.conversation.request_size import (
    MAX_REQUEST_BYTES,
    RequestTooBig,
    bytes_limit,
    fit_request_size,
    limit_after_413,
    request_bytes,
)
from bot.history.messages import thread_to_messages
from bot.history.thread import ThreadEntry, ToolCall
from bot.inference.errors import PayloadTooLargeError
from bot.inference.gateway import CallContext, ModelGateway
from bot.limits.tokens import estimate_messages_tokens, estimate_tools_tokens
from bot.tools.registry import ToolContext, ToolRegistry
from bot.tools.runner import RunsOnce, ToolResult, run_tool_calls

log = logging.getLogger(__name__)

LENGTH_NOTE = "\n\n_(The answer was cut off at the length limit.)_"
REASONING_NOTE_CHARS = 500
# Asked after an answer cut off at max_tokens (finish_reason "length"), with the answer so far
# as the assistant's message: the follow-up's words are appended to the same reply.
CONTINUE_PROMPT = (
    "Your answer was cut off at the length limit. Continue exactly where it stopped, "
    "without repeating anything and without any preamble."
)


class TextSink(Protocol):
    """Where the model's words go as they come (a Slack stream) or after each round."""

    streams_text: bool

    def append(self, text: str) -> None: ...


class ToolGate(Protocol):
    """Sees a tool call before it runs: None lets it run; a ToolResult answers in its place; a
    `RunsOnce` guard lets it run through the guard (an approved call runs at most once)."""

    def check(self, name: str, arguments_json: str) -> ToolResult | RunsOnce | None: ...


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


def thinking_options(settings: Any) -> dict:
    """The ``extended_thinking`` object: the budget, and ``include_reasoning`` only when the
    reasoning will be shown (BOT_SHOW_REASONING)."""
    options: dict = {"enabled": True, "budget_tokens": settings.thinking_budget_tokens}
    if settings.show_reasoning:
        options["include_reasoning"] = True
    return options


def reasoning_note(reasoning: str) -> str:
    """The short, quoted "Reasoning" paragraph shown under an answer (BOT_SHOW_REASONING)."""
    text = " ".join(reasoning.split())
    if len(text) > REASONING_NOTE_CHARS:
        text = text[: REASONING_NOTE_CHARS - 1].rstrip() + "…"
    return f"\n\n> _Reasoning:_ {text}"


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
    gate: ToolGate | None = None,
) -> ModelTurn:
    """Run the model over `entries` (with tool rounds) and return the turn. Raises what the
    gateway raises, and ThreadTooLong when the history cannot fit the context budget or the
    provider's size limit.

    With `thinking`, only the rounds before the first tool call think: Heroku documents no way
    to send an assistant message's thinking back with its tool results, and Anthropic requires
    that or thinking off for the follow-up, so the rounds after a tool call run without it.
    Tool calls cut off by the length limit (`finish_reason: length`) are never run: their
    arguments may be incomplete; the user is told the answer was cut off. An answer cut off
    there continues in follow-up calls (BOT_ANSWER_CONTINUATIONS), into the same reply.
    `gate` sees each call first (state-changing tools wait for the person: it may answer in
    the tool's place, or raise to make the job wait).
    """
    openai_tools = tools.openai_tools()
    size_limit = bytes_limit(getattr(settings, "inference_max_request_bytes", MAX_REQUEST_BYTES))
    turn_entries: list[ThreadEntry] = []
    stored_turn: list[dict] = []
    reasoning: list[str] = []
    max_rounds = settings.max_tool_rounds
    for round_number in range(max_rounds + 1):
        may_use_tools = bool(openai_tools) and round_number < max_rounds
        body: dict = {"max_tokens": output_tokens(settings, thinking=thinking and not turn_entries)}
        if thinking and not turn_entries:
            body["extended_thinking"] = thinking_options(settings)
        # Thinking tokens come out of max_tokens: the output cap already covers them.
        fixed = (
            estimate_messages_tokens([{"role": "system", "content": system}])
            + (estimate_tools_tokens(openai_tools) if openai_tools else 0)
            + body["max_tokens"]
        )
        budget = fit_to_budget(
            [*entries, *turn_entries], budget_tokens=settings.context_budget_tokens, fixed_tokens=fixed
        )
        if not budget.fits:
            raise ThreadTooLong("the thread does not fit the context budget")
        if openai_tools:
            # Same tools every round: the prompt cache keys on them; "none" forbids new calls.
            body["tools"] = openai_tools
            body["tool_choice"] = "auto" if may_use_tools else "none"
        in_turn = {id(entry) for entry in turn_entries}

        def fitted(limit: int, fields: dict = body, entries_now: list = budget.entries, in_turn: set = in_turn) -> dict:
            body, images_left_out = fit_request_size(
                [entry for entry in entries_now if id(entry) not in in_turn],
                [entry for entry in entries_now if id(entry) in in_turn],
                max_images=settings.max_images_per_request,
                build=lambda kept, images: {
                    **fields,
                    "messages": thread_to_messages(kept, system_prompt=system, max_images=images),
                },
                limit=limit,
            )
            if images_left_out:
                log.info("request trimmed to the size limit images_left_out=%d", images_left_out)
            return body

        try:
            body = fitted(size_limit)
        except RequestTooBig as exc:
            raise ThreadTooLong(str(exc)) from exc
        try:
            completion = gateway.call(body, call, on_text=sink.append if sink.streams_text else None)
        except PayloadTooLargeError as refused:
            # A 413 means "send less" (DESIGN-NOTES, "Request size"): once, fitted to a smaller
            # limit (fewer images first, then older turns); a second 413 is told to the person.
            size_limit = limit_after_413(request_bytes(body), size_limit)
            log.warning("request refused as too large (413): resending within %d bytes", size_limit)
            try:
                body = fitted(size_limit)
            except RequestTooBig:
                raise refused from None
            completion = gateway.call(body, call, on_text=sink.append if sink.streams_text else None)
        if completion.reasoning:
            reasoning.append(completion.reasoning)
        if completion.finish_reason == "length" and not completion.tool_calls:
            answer, cut = _continue_if_cut(gateway, settings, body, completion, call, sink)
            if not sink.streams_text:
                sink.append(answer)
            note = LENGTH_NOTE if cut else ""
            return _finish(settings, sink, stored_turn, answer + note, round_number, reasoning, note)
        if not sink.streams_text:
            sink.append(completion.content)
        if completion.finish_reason == "length":
            # Cut off: any tool call in it may be truncated, so none is run.
            if completion.tool_calls:
                log.info("reply tool_calls_cut_off round=%d calls=%d", round_number + 1, len(completion.tool_calls))
            return _finish(
                settings, sink, stored_turn, completion.content + LENGTH_NOTE, round_number, reasoning, LENGTH_NOTE
            )
        if completion.tool_calls and may_use_tools:
            calls = [(c.id, c.name, c.arguments) for c in completion.tool_calls]
            answered: dict[str, ToolResult] = {}
            once: dict[str, RunsOnce] = {}
            for call_id, name, arguments in calls:  # before any runs: one waiting call parks them all
                verdict = gate.check(name, arguments) if gate is not None else None
                if isinstance(verdict, ToolResult):
                    answered[call_id] = verdict
                elif verdict is not None:
                    once[call_id] = verdict
            step_started = getattr(sink, "tool_started", None)  # sinks that show steps (Slack replies)
            step_finished = getattr(sink, "tool_finished", None)
            for call_id, name, arguments in calls:
                if step_started:
                    step_started(call_id, name, arguments)
            ran = dict(run_tool_calls(tools, [c for c in calls if c[0] not in answered], tool_ctx, once=once))
            results = [(call_id, answered.get(call_id) or ran[call_id]) for call_id, _, _ in calls]
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
        return _finish(settings, sink, stored_turn, completion.content, round_number, reasoning, "")
    return ModelTurn(stored_turn, "", max_rounds)


def _finish(
    settings: Any, sink: TextSink, stored: list[dict], text: str, rounds: int, reasoning: list[str], note: str
) -> ModelTurn:
    """Show the closing note and, with BOT_SHOW_REASONING, the reasoning (shown, not stored)."""
    if note:
        sink.append(note)
    shown = "".join(reasoning).strip()
    if settings.show_reasoning and shown:
        sink.append(reasoning_note(shown))
    return ModelTurn(stored, text, rounds)


def output_tokens(settings: Any, *, thinking: bool = False) -> int:
    """max_tokens of one answer call: BOT_ANSWER_MAX_TOKENS within INFERENCE_MAX_OUTPUT_TOKENS.
    With extended thinking the thinking budget comes out of max_tokens, so the whole cap applies."""
    cap = settings.inference_max_output_tokens
    if thinking:
        return cap
    return min(getattr(settings, "answer_max_tokens", cap), cap)


def _continue_if_cut(
    gateway: ModelGateway, settings: Any, body: dict, completion: Any, call: CallContext, sink: TextSink
) -> tuple[str, bool]:
    """The whole answer, asking the model to go on (up to BOT_ANSWER_CONTINUATIONS times, without
    thinking) while it stops at the length limit; (answer, still cut off)."""
    answer = completion.content
    limit = getattr(settings, "answer_continuations", 0)
    follow_ups = 0
    while completion.finish_reason == "length" and not completion.tool_calls and answer.strip():
        if follow_ups >= limit:
            return answer, True
        follow_ups += 1
        follow = {key: value for key, value in body.items() if key != "extended_thinking"}
        follow["max_tokens"] = output_tokens(settings)
        follow["messages"] = [
            *body["messages"],
            {"role": "assistant", "content": answer},
            {"role": "user", "content": CONTINUE_PROMPT},
        ]
        if follow.get("tools"):
            follow["tool_choice"] = "none"
        completion = gateway.call(follow, call, on_text=sink.append if sink.streams_text else None)
        answer += completion.content
        log.info("reply continuation=%d finish=%s", follow_ups, completion.finish_reason)
    return answer, completion.finish_reason == "length"
