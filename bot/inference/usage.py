"""Usage when the server reports none (pure).

Heroku documents no ``usage`` in streamed answers unless ``stream_options`` is accepted, and
``stream_options`` may be refused (DESIGN-NOTES, "Streaming"): then a response may carry no
usage at all. Budgets, ``/usage``, ``bot stats`` and the limiter still count the call, with an
estimate built from the prompt estimate and the output actually received (text, reasoning and
tool calls), marked ``estimated``.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.inference.sse import ToolCallOut, Usage
from bot.limits.tokens import TOOL_CALL_OVERHEAD_TOKENS, estimate_text_tokens


def output_tokens_estimate(content: str, tool_calls: Sequence[ToolCallOut] = (), reasoning: str | None = None) -> int:
    """An upper estimate of the completion tokens of an answer we received."""
    total = estimate_text_tokens(content or "") + estimate_text_tokens(reasoning or "")
    for call in tool_calls:
        total += TOOL_CALL_OVERHEAD_TOKENS + estimate_text_tokens(call.name) + estimate_text_tokens(call.arguments)
    return total


def estimated_usage(
    prompt_tokens: int, content: str, tool_calls: Sequence[ToolCallOut] = (), reasoning: str | None = None
) -> Usage:
    """The usage to count for a call the server reported none for, marked ``estimated``."""
    completion = output_tokens_estimate(content, tool_calls, reasoning)
    prompt = max(0, int(prompt_tokens))
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion, estimated=True)


__all__ = ["estimated_usage", "output_tokens_estimate"]
