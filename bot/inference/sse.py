"""From wire JSON to one assistant message (pure: no I/O, no clock).

Two shapes reach us from ``/v1/chat/completions``:

* a ``chat.completion`` document (non-streaming): :func:`message_from_completion`;
* a server-sent-event body of ``chat.completion.chunk`` documents ending with
  ``data: [DONE]``: :class:`SseChunkReader` turns raw bytes into chunk dicts and
  :class:`StreamAssembler` folds the chunks into the same :class:`AssembledMessage`.

Lines are split on CR, LF and CRLF only, as the SSE spec says. ``str.splitlines`` (and
so ``httpx.Response.iter_lines``) also splits on U+2028, U+0085 and friends, which JSON
may carry unescaped inside a string, and would cut a chunk in half.

httpx-sse 0.4.2 and 0.4.3 split lines right, but were not adopted for the framing: their line
decoder holds back a line ended by a CR at the end of a network read until more bytes arrive (an
event of a CR-only stream shows one read late; ``test_line_splitter``), and ``EventSource`` drops
a last event the body ends without its blank line, which ``SseChunkReader.close`` still reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

DONE_MARKER = "[DONE]"
_LINE_END = re.compile(rb"\r\n|\r|\n")


class MalformedResponseError(ValueError):
    """The server's answer is not the JSON (or SSE) a chat completion should be."""


class StreamErrorEvent(Exception):
    """The stream itself reported a failure: a chunk of the form ``{"error": {...}}``."""

    def __init__(self, error: Mapping[str, Any]) -> None:
        super().__init__(str(error.get("message") or "error event in stream"))
        self.error = dict(error)


@dataclass(frozen=True)
class Usage:
    """Tokens of one call. ``estimated``: the server reported none, so these are our own count
    (bot.inference.usage), counted everywhere usage counts and marked so."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool = False


@dataclass(frozen=True)
class ToolCallOut:
    """One tool call the model asked for; ``arguments`` is JSON text (``"{}"`` when it sent none)."""

    id: str
    name: str
    arguments: str

    def to_message_dict(self) -> dict[str, Any]:
        """The OpenAI form, for the ``tool_calls`` of the assistant message sent back next turn."""
        function = {"name": self.name, "arguments": self.arguments}
        return {"id": self.id, "type": "function", "function": function}


@dataclass(frozen=True)
class AssembledMessage:
    content: str = ""
    tool_calls: list[ToolCallOut] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    reasoning: str | None = None


# --- SSE framing -------------------------------------------------------------------------


class SseLineSplitter:
    """Cuts a byte stream into text lines at CR, LF or CRLF, however the bytes are chunked."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._after_cr = False  # the last byte seen was a CR ending a line: skip an LF right after it

    def feed(self, data: bytes) -> list[str]:
        if self._after_cr and data.startswith(b"\n"):
            data = data[1:]
        self._after_cr = False
        lines: list[str] = []
        start = 0
        for match in _LINE_END.finditer(data):
            self._buffer += data[start : match.start()]
            lines.append(self._take())
            start = match.end()
            self._after_cr = match.group() == b"\r" and start == len(data)
        self._buffer += data[start:]
        return lines

    def flush(self) -> list[str]:
        """The unterminated last line, if any (the body ended without a newline)."""
        return [self._take()] if self._buffer else []

    def _take(self) -> str:
        # CR and LF never occur inside a multi-byte UTF-8 sequence, so each line decodes alone.
        line = self._buffer.decode("utf-8", errors="replace")
        self._buffer.clear()
        return line


class SseEventDecoder:
    """Collects ``data:`` fields into events; an empty line ends an event (other fields are ignored)."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed_line(self, line: str) -> str | None:
        """The data of the event this line completes, or None."""
        if line == "":
            return self.flush()
        if line.startswith(":"):  # comment, often a keep-alive
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        return None

    def flush(self) -> str | None:
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data = []
        return data


def parse_event_data(data: str) -> dict[str, Any] | None:
    """The chunk dict in one event's data, or None for the ``[DONE]`` marker."""
    if data.strip() == DONE_MARKER:
        return None
    try:
        chunk = json.loads(data)
    except ValueError as error:
        raise MalformedResponseError(f"stream event is not JSON ({len(data)} characters)") from error
    if not isinstance(chunk, dict):
        raise MalformedResponseError("stream event is not a JSON object")
    return chunk


class SseChunkReader:
    """Raw SSE body bytes in, chunk dicts out; ``done`` turns True at ``data: [DONE]``,
    after which everything else is ignored."""

    def __init__(self) -> None:
        self._lines = SseLineSplitter()
        self._events = SseEventDecoder()
        self.done = False

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._chunks(self._lines.feed(data), end=False)

    def close(self) -> list[dict[str, Any]]:
        """Chunks still pending when the body ends (a last event without its blank line)."""
        return self._chunks(self._lines.flush(), end=True)

    def _chunks(self, lines: list[str], *, end: bool) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        pending = [self._events.feed_line(line) for line in lines]
        if end:
            pending.append(self._events.flush())
        for data in pending:
            if data is None or self.done:
                continue
            chunk = parse_event_data(data)
            if chunk is None:
                self.done = True
            else:
                chunks.append(chunk)
        return chunks


def parse_sse_lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Chunk dicts from already-split SSE lines, stopping at ``[DONE]``."""
    events = SseEventDecoder()
    datas = (events.feed_line(line) for line in chain(lines, [""]))
    for data in datas:
        if data is None:
            continue
        chunk = parse_event_data(data)
        if chunk is None:
            return
        yield chunk


# --- assembling a message ---------------------------------------------------------------


def parse_usage(value: Any) -> Usage | None:
    """A :class:`Usage` from a ``usage`` object; None when it is missing or unreadable."""
    if not isinstance(value, Mapping):
        return None
    try:
        prompt = int(value.get("prompt_tokens") or 0)
        completion = int(value.get("completion_tokens") or 0)
        total_raw = value.get("total_tokens")
        total = int(total_raw) if total_raw is not None else prompt + completion
    except (TypeError, ValueError):
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


def reasoning_text(value: Any) -> str:
    """Reasoning text from a ``reasoning``/``reasoning_content`` field: a string, or an object
    carrying it under ``thinking``, ``text`` or ``content`` (Heroku documents an object)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("thinking", "text", "content"):
            text = value.get(key)
            if isinstance(text, str):
                return text
    return ""


def _reasoning_of(part: Mapping[str, Any]) -> str:
    return reasoning_text(part.get("reasoning")) + reasoning_text(part.get("reasoning_content"))


def _arguments_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _first_choice(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    choices = document.get("choices")
    if not isinstance(choices, list):
        return None
    for choice in choices:
        if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
            return choice
    return None


@dataclass
class _ToolCallParts:
    wire_index: int = 0  # the index the server gave it (calls are returned in its order)
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class StreamAssembler:
    """Folds ``chat.completion.chunk`` dicts (choice 0 only) into an :class:`AssembledMessage`.

    Tool calls arrive as deltas keyed by ``index``; their ``arguments`` fragments are
    concatenated. A delta that brings a new ``id`` at an index already in use starts a new
    call (some gateways number each call 0). A delta without ``index`` continues the call with
    the same ``id``, or else the latest call. A name is taken from the first delta that has one
    (some servers repeat it in every delta). ``usage`` may come in several chunks, each with
    some of the fields: they are merged field by field, a later value replacing an earlier one.
    """

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, _ToolCallParts] = {}  # by position of arrival
        self._positions: dict[int, int] = {}  # wire index -> position of the call it continues
        self._last_index: int | None = None
        self._finish_reason: str | None = None
        self._usage_fields: dict[str, int] = {}
        self.chunks = 0

    def add(self, chunk: Mapping[str, Any]) -> str:
        """Take one chunk; returns the content text it added ("" if none).

        Raises :class:`StreamErrorEvent` for an ``{"error": ...}`` chunk.
        """
        error = chunk.get("error")
        if error is not None:
            raise StreamErrorEvent(error if isinstance(error, Mapping) else {"message": str(error)})
        self.chunks += 1
        self._merge_usage(chunk.get("usage"))
        choice = _first_choice(chunk)
        if choice is None:
            return ""
        if choice.get("finish_reason"):
            self._finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta")
        if not isinstance(delta, Mapping):
            return ""
        self._reasoning.append(_reasoning_of(delta))
        for call_delta in delta.get("tool_calls") or []:
            if isinstance(call_delta, Mapping):
                self._add_tool_call_delta(call_delta)
        text = delta.get("content")
        if isinstance(text, str) and text:
            self._content.append(text)
            return text
        return ""

    def _merge_usage(self, value: Any) -> None:
        if not isinstance(value, Mapping):
            return
        for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
            raw = value.get(name)
            if raw is None:
                continue
            try:
                self._usage_fields[name] = int(raw)
            except (TypeError, ValueError):
                continue

    @property
    def usage(self) -> Usage | None:
        """The usage merged so far; None when no chunk reported any."""
        fields = self._usage_fields
        if not fields:
            return None
        prompt, completion = fields.get("prompt_tokens", 0), fields.get("completion_tokens", 0)
        total = max(fields.get("total_tokens", 0), prompt + completion)
        return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)

    def _add_tool_call_delta(self, call_delta: Mapping[str, Any]) -> None:
        index = self._index_for(call_delta)
        wire_index = call_delta.get("index")
        parts = self._calls.setdefault(index, _ToolCallParts(wire_index if isinstance(wire_index, int) else index))
        self._last_index = index
        call_id = call_delta.get("id")
        if isinstance(call_id, str) and call_id and not parts.id:
            parts.id = call_id
        function = call_delta.get("function")
        if not isinstance(function, Mapping):
            return
        name = function.get("name")
        if isinstance(name, str) and name and not parts.name:
            parts.name = name
        parts.arguments.append(_arguments_text(function.get("arguments")))

    def _index_for(self, call_delta: Mapping[str, Any]) -> int:
        """The position of the call this delta belongs to (a new one when it starts a call)."""
        index = call_delta.get("index")
        call_id = call_delta.get("id")
        if isinstance(index, int):
            position = self._positions.get(index)
            current = self._calls.get(position) if position is not None else None
            if current is None or (isinstance(call_id, str) and call_id and current.id and call_id != current.id):
                position = max(self._calls, default=-1) + 1
                self._positions[index] = position
            return position
        if call_id:
            for known, parts in self._calls.items():
                if parts.id == call_id:
                    return known
            return max(self._calls, default=-1) + 1
        if self._last_index is not None:
            return self._last_index
        return 0

    def result(self) -> AssembledMessage:
        tool_calls = [
            ToolCallOut(
                id=parts.id or f"call_{index}",
                name=parts.name,
                arguments="".join(parts.arguments) or "{}",
            )
            for index, parts in sorted(self._calls.items(), key=lambda item: (item[1].wire_index, item[0]))
        ]
        reasoning = "".join(self._reasoning)
        return AssembledMessage(
            content="".join(self._content),
            tool_calls=tool_calls,
            finish_reason=self._finish_reason,
            usage=self.usage,
            reasoning=reasoning or None,
        )


def assemble_chunks(chunks: Iterable[Mapping[str, Any]]) -> AssembledMessage:
    """All of ``chunks`` folded into one message."""
    assembler = StreamAssembler()
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.result()


def message_from_completion(document: Any) -> AssembledMessage:
    """The assistant message of a non-streaming ``chat.completion`` document."""
    if not isinstance(document, Mapping):
        raise MalformedResponseError("completion is not a JSON object")
    error = document.get("error")
    if error is not None:
        raise StreamErrorEvent(error if isinstance(error, Mapping) else {"message": str(error)})
    choice = _first_choice(document)
    if choice is None:
        raise MalformedResponseError("completion has no choices")
    message = choice.get("message")
    if not isinstance(message, Mapping):
        raise MalformedResponseError("completion choice has no message")
    content = message.get("content")
    if isinstance(content, list):  # content parts; keep the text ones
        texts = [part for part in content if isinstance(part, Mapping) and part.get("type") == "text"]
        content = "".join(str(part.get("text") or "") for part in texts)
    tool_calls: list[ToolCallOut] = []
    for position, call in enumerate(message.get("tool_calls") or []):
        if not isinstance(call, Mapping):
            continue
        function = call.get("function") if isinstance(call.get("function"), Mapping) else {}
        tool_calls.append(
            ToolCallOut(
                id=str(call.get("id") or f"call_{position}"),
                name=str(function.get("name") or ""),
                arguments=_arguments_text(function.get("arguments")) or "{}",
            )
        )
    reasoning = _reasoning_of(message)
    finish_reason = choice.get("finish_reason")
    return AssembledMessage(
        content=content if isinstance(content, str) else "",
        tool_calls=tool_calls,
        finish_reason=str(finish_reason) if finish_reason else None,
        usage=parse_usage(document.get("usage")),
        reasoning=reasoning or None,
    )


__all__ = [
    "DONE_MARKER",
    "AssembledMessage",
    "MalformedResponseError",
    "SseChunkReader",
    "SseEventDecoder",
    "SseLineSplitter",
    "StreamAssembler",
    "StreamErrorEvent",
    "ToolCallOut",
    "Usage",
    "assemble_chunks",
    "message_from_completion",
    "parse_event_data",
    "parse_sse_lines",
    "parse_usage",
    "reasoning_text",
]
