"""Feedback on answers (pure): what an answer's 👍/👎 buttons carry, and reading a click back.

Each button's value holds the rating and the answer's trace (model, tokens, tools called,
latency, attempts) as compact JSON, so a click can be stored with the trace without
looking anything up. Slack signs the click and sends back the value we posted; a value we
cannot read is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

POSITIVE, NEGATIVE = "positive", "negative"
FEEDBACK_ACTION_ID = "answer_feedback"
VALUE_MAX_CHARS = 2000  # Slack's limit for a feedback button's value
_RATING_CODES = {POSITIVE: "+", NEGATIVE: "-"}
_RATINGS = {code: rating for rating, code in _RATING_CODES.items()}
MAX_TOOLS_KEPT = 20
MAX_MODEL_CHARS = 100


@dataclass(frozen=True)
class Trace:
    """What produced an answer."""

    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tools: tuple[str, ...] = field(default_factory=tuple)
    latency_ms: int = 0
    attempts: int = 1
    thread_ts: str = ""


def encode_value(rating: str, trace: Trace) -> str:
    """The button value for `rating`; the tool list is shortened if the value would be too long."""
    tools = list(trace.tools[:MAX_TOOLS_KEPT])
    while True:
        value = _RATING_CODES[rating] + json.dumps(
            {
                "m": trace.model[:MAX_MODEL_CHARS],
                "p": int(trace.prompt_tokens),
                "c": int(trace.completion_tokens),
                "t": tools,
                "l": int(trace.latency_ms),
                "a": int(trace.attempts),
                "th": trace.thread_ts,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )
        if len(value) <= VALUE_MAX_CHARS or not tools:
            return value[:VALUE_MAX_CHARS]
        tools.pop()


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    return max(int(value), 0)


def decode_value(value: str | None) -> tuple[str, Trace] | None:
    """(rating, trace) from a clicked button's value, or None when it is not one of ours."""
    if not value or value[:1] not in _RATINGS:
        return None
    try:
        data = json.loads(value[1:])
        if not isinstance(data, dict):
            return None
        tools = data.get("t") or []
        if not isinstance(tools, list) or not all(isinstance(tool, str) for tool in tools):
            return None
        trace = Trace(
            model=str(data.get("m") or "")[:MAX_MODEL_CHARS],
            prompt_tokens=_int(data.get("p", 0)),
            completion_tokens=_int(data.get("c", 0)),
            tools=tuple(tools[:MAX_TOOLS_KEPT]),
            latency_ms=_int(data.get("l", 0)),
            attempts=_int(data.get("a", 1)),
            thread_ts=str(data.get("th") or ""),
        )
    except (ValueError, TypeError):
        return None
    return _RATINGS[value[0]], trace


def positive_share(positive: int, negative: int) -> float | None:
    """The share of 👍 among the clicks, or None without any."""
    total = positive + negative
    return positive / total if total else None
