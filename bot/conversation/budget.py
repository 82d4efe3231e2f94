"""Fit a thread into the model's context budget (pure).

The thread is cut into turns: one user entry, one plain assistant entry, or an assistant
entry with tool calls together with all of its tool results (they are kept or dropped as one,
because Claude rejects a tool call without its result and a result without its call).
Oldest turns go first, except two that always stay: the thread's first turn (usually the
question that started it) and the turn of the newest user message (the one being answered).

Estimates use :mod:`bot.limits.tokens` on the very messages :mod:`bot.conversation.messages`
builds, so ``estimated_tokens`` is an upper bound of what the limiter will count for the
request: ``fixed_tokens + estimate_messages_tokens(thread_to_messages(entries)[1:])`` never
exceeds it (merging turns and the image cap only make messages cheaper, and the placeholders
those rules may add are counted in advance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.conversation.messages import (
    IMAGE_LEFT_OUT_NOTE,
    MISSING_REPLY_PLACEHOLDER,
    THREAD_START_PLACEHOLDER,
    assistant_message,
    missing_tool_result,
    sendable_entries,
    tool_message,
    user_text,
)
from bot.failures import Permanent
from bot.history.thread import ThreadEntry
from bot.limits.tokens import estimate_image_tokens, estimate_messages_tokens, estimate_text_tokens

TRUNCATION_MARK = "[…truncated]"


class ThreadTooLong(Permanent):
    """Even the turns that must stay do not fit the context budget: the thread cannot be
    answered. (A request larger than the rate window is bot.limits.admission.RequestTooLarge.)"""

    reason = "context_too_long"


# An image past the image cap is sent as a one-line note instead: count whichever costs more.
_IMAGE_NOTE_TOKENS = estimate_text_tokens("\n" + IMAGE_LEFT_OUT_NOTE)
_THREAD_START_TOKENS = estimate_messages_tokens([{"role": "user", "content": THREAD_START_PLACEHOLDER}])
_MISSING_REPLY_TOKENS = estimate_messages_tokens([{"role": "assistant", "content": MISSING_REPLY_PLACEHOLDER}])


@dataclass(frozen=True)
class BudgetResult:
    """What to send.

    ``entries``: the kept entries in thread order (the first one possibly truncated);
    ``dropped``: how many sendable entries were left out to fit (deleted, empty and orphaned
    entries are never sent and not counted); ``estimated_tokens``: ``fixed_tokens`` plus the
    kept messages; ``fits``: False when even the first and newest turns, with the first one
    cut down to nothing, exceed the budget: tell the user instead of calling the model.
    """

    entries: list[ThreadEntry]
    dropped: int
    estimated_tokens: int
    fits: bool


def estimate_entry_tokens(entry: ThreadEntry) -> int:
    """Tokens for one entry as :func:`~bot.conversation.messages.thread_to_messages` sends it."""
    if entry.role == "user":
        text_tokens = estimate_messages_tokens([{"role": "user", "content": user_text(entry)}])
        image_tokens = sum(
            max(estimate_image_tokens(image.width, image.height), _IMAGE_NOTE_TOKENS) for image in entry.images
        )
        return text_tokens + image_tokens
    if entry.role == "assistant":
        return estimate_messages_tokens([assistant_message(entry)])
    return estimate_messages_tokens([tool_message(entry)])


def _turns(entries: Sequence[ThreadEntry]) -> list[list[int]]:
    """Indexes of ``entries`` grouped into turns, in order of each turn's first (user/assistant) entry."""
    result_at = {entry.tool_call_id: index for index, entry in enumerate(entries) if entry.role == "tool"}
    turns = []
    for index, entry in enumerate(entries):
        if entry.role == "tool":
            continue
        turn = [index]
        turn.extend(result_at[call.id] for call in entry.tool_calls if call.id in result_at)
        turns.append(turn)
    return turns


def _turn_tokens(members: Sequence[ThreadEntry], *, is_first: bool) -> int:
    """Tokens for one turn (its head entry first), with the placeholders it may need."""
    head = members[0]
    tokens = sum(estimate_entry_tokens(entry) for entry in members)
    if head.tool_calls:
        answered = {entry.tool_call_id for entry in members[1:]}
        tokens += sum(
            estimate_messages_tokens([missing_tool_result(call.id)])
            for call in head.tool_calls
            if call.id not in answered
        )
        tokens += _MISSING_REPLY_TOKENS  # in case a user message ends up right after the results
    if is_first and head.role == "assistant":
        tokens += _THREAD_START_TOKENS
    return tokens


def _truncated(entry: ThreadEntry, keep_chars: int) -> ThreadEntry:
    head = entry.text[:keep_chars].rstrip()
    return replace(entry, text=f"{head}\n{TRUNCATION_MARK}" if head else TRUNCATION_MARK)


def _truncate_to_fit(members: Sequence[ThreadEntry], available: int) -> tuple[ThreadEntry, int] | None:
    """The turn's head entry cut to the longest text whose turn costs at most ``available``, or None."""
    head, rest = members[0], list(members[1:])

    def cost(keep_chars: int) -> int:
        return _turn_tokens([_truncated(head, keep_chars), *rest], is_first=True)

    if cost(0) > available:
        return None
    low, high = 0, len(head.text)  # cost never falls as keep_chars grows: find the largest that fits
    while low < high:
        middle = (low + high + 1) // 2
        if cost(middle) <= available:
            low = middle
        else:
            high = middle - 1
    return _truncated(head, low), cost(low)


def fit_to_budget(entries: Sequence[ThreadEntry], *, budget_tokens: int, fixed_tokens: int) -> BudgetResult:
    """Keep as much of the thread as fits in ``budget_tokens``, ``fixed_tokens`` being already spent.

    ``fixed_tokens`` is everything outside the thread: the system prompt, tool schemas, the
    output cap (``max_tokens``) and request overhead. Rules: see the module docstring; if the
    first and newest turns alone do not fit, the first entry's text is cut (ending in
    ``[…truncated]``), and if that is not enough the result has ``fits=False``.
    """
    kept = sendable_entries(entries)
    if not kept:
        return BudgetResult(entries=[], dropped=0, estimated_tokens=fixed_tokens, fits=fixed_tokens <= budget_tokens)
    turns = _turns(kept)

    def cost(position: int) -> int:
        return _turn_tokens([kept[index] for index in turns[position]], is_first=position == 0)

    user_turns = [position for position, turn in enumerate(turns) if kept[turn[0]].role == "user"]
    pinned = {0, user_turns[-1]} if user_turns else {0}
    pinned_costs = {position: cost(position) for position in pinned}
    total = fixed_tokens + sum(pinned_costs.values())
    # Dropping oldest first keeps the longest run of newest turns that fits: find it from the
    # newest end, so a 10,000-message thread is not estimated in full.
    kept_turns = set(pinned)
    for position in range(len(turns) - 1, 0, -1):
        if position in pinned:
            continue
        turn_cost = cost(position)
        if total + turn_cost > budget_tokens:
            break
        total += turn_cost
        kept_turns.add(position)

    if total > budget_tokens:  # only pinned turns are left
        others = total - pinned_costs[0]
        first_turn = [kept[index] for index in turns[0]]
        fitted = _truncate_to_fit(first_turn, budget_tokens - others)
        if fitted is None:  # cannot fit: still report the smallest size it could have
            smallest = _truncated(first_turn[0], 0)
            fitted = (smallest, _turn_tokens([smallest, *first_turn[1:]], is_first=True))
        kept[turns[0][0]], first_cost = fitted
        total = others + first_cost

    dropped_indexes = {index for position, turn in enumerate(turns) if position not in kept_turns for index in turn}
    return BudgetResult(
        entries=[entry for index, entry in enumerate(kept) if index not in dropped_indexes],
        dropped=len(dropped_indexes),
        estimated_tokens=total,
        fits=total <= budget_tokens,
    )


__all__ = ["TRUNCATION_MARK", "BudgetResult", "estimate_entry_tokens", "fit_to_budget"]
