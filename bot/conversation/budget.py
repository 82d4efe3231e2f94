"""Fit a thread into the model's context budget (pure).

The thread is cut into turns: one user entry, one plain assistant entry, or an assistant
entry with tool calls together with all of its tool results (they are kept or dropped as one,
because Claude rejects a tool call without its result and a result without its call).
Oldest turns go first, except two that always stay: the thread's first turn (usually the
question that started it) and the turn of the newest user message (the one being answered).

Estimates use :mod:`bot.limits.tokens` on the very messages :mod:`bot.history.messages`
builds, so ``estimated_tokens`` is an upper bound of what the limiter will count for the
request: ``fixed_tokens + estimate_messages_tokens(thread_to_messages(entries)[1:])`` never
exceeds it (merging turns and the image cap only make messages cheaper, and the placeholders
those rules may add are counted in advance).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from bot.failures import Permanent
from bot.history.estimates import stored_tokens
from bot.history.messages import (
    IMAGE_LEFT_OUT_NOTE,
    MISSING_REPLY_PLACEHOLDER,
    THREAD_START_PLACEHOLDER,
    attribution,
    image_label,
    missing_tool_result,
    sendable_entries,
)
from bot.history.thread import ThreadEntry
from bot.limits.tokens import estimate_image_tokens, estimate_messages_tokens, estimate_text_tokens

TRUNCATION_MARK = "[…truncated]"
OMITTED_NOTE = "({count} earlier message{s} of this thread left out here to fit the model's context.)"


class ThreadTooLong(Permanent):
    """Even the turns that must stay do not fit the context budget: the thread cannot be
    answered. (A request larger than the rate window is bot.limits.admission.RequestTooLarge.)"""

    reason = "context_too_long"


# An image past the image cap is sent as a one-line note instead: count whichever costs more.
_IMAGE_NOTE_TOKENS = estimate_text_tokens("\n" + IMAGE_LEFT_OUT_NOTE)
_THREAD_START_TOKENS = estimate_messages_tokens([{"role": "user", "content": THREAD_START_PLACEHOLDER}])
_MISSING_REPLY_TOKENS = estimate_messages_tokens([{"role": "assistant", "content": MISSING_REPLY_PLACEHOLDER}])
# Merged into a neighbouring user message, or a message of its own: count the larger.
_OMITTED_NOTE_TOKENS = estimate_messages_tokens([{"role": "user", "content": OMITTED_NOTE.format(count=10**12, s="s")}])


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
    left_out: int = 0  # dropped here plus not loaded: the count the note in ``entries`` gives


@lru_cache(maxsize=4096)
def _attribution_tokens(text: str) -> int:
    return estimate_text_tokens(text)


def estimate_entry_tokens(entry: ThreadEntry) -> int:
    """Tokens for one entry as :func:`~bot.history.messages.thread_to_messages` sends it;
    uses the stored estimate (``entry.tokens``, :func:`bot.history.estimates.stored_tokens`)
    when there is one, and adds what is not stored: attribution and images."""
    base = entry.tokens if entry.tokens is not None else stored_tokens(entry)
    if entry.role != "user":
        return base
    who = _attribution_tokens(attribution(entry))
    image_tokens = sum(
        max(
            estimate_image_tokens(image.width, image.height) + estimate_text_tokens(image_label(image, entry)),
            _IMAGE_NOTE_TOKENS,
        )
        for image in entry.images
    )
    return base + who + image_tokens + _IMAGE_NOTE_TOKENS * entry.images_left_out


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
    return replace(entry, text=f"{head}\n{TRUNCATION_MARK}" if head else TRUNCATION_MARK, tokens=None)


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


def omitted_marker(ts: str, count: int) -> ThreadEntry:
    """Stands for ``count`` entries that were not even loaded (older than what the budget can
    hold); :func:`fit_to_budget` turns it, with what it drops itself, into one visible note."""
    return ThreadEntry(ts=ts, role="user", text="", extra={"omitted": count})


def omitted_note(count: int) -> str:
    return OMITTED_NOTE.format(count=count, s="" if count == 1 else "s")


def fit_to_budget(entries: Sequence[ThreadEntry], *, budget_tokens: int, fixed_tokens: int) -> BudgetResult:
    """Keep as much of the thread as fits in ``budget_tokens``, ``fixed_tokens`` being already spent.

    ``fixed_tokens`` is everything outside the thread: the system prompt, tool schemas, the
    output cap (``max_tokens``) and request overhead. Rules: see the module docstring; if the
    first and newest turns alone do not fit, the first entry's text is cut (ending in
    ``[…truncated]``), and if that is not enough the result has ``fits=False``.

    Nothing goes silently: when entries are left out (here, or before loading, as
    :func:`omitted_marker` entries), a note saying how many follows the first turn.
    """
    not_loaded = sum(int(entry.extra.get("omitted") or 0) for entry in entries)
    kept = sendable_entries([entry for entry in entries if "omitted" not in entry.extra])
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
    # newest end, so a 10,000-message thread is not estimated in full. While older turns remain
    # to be dropped, room is kept for the note saying how many were left out.
    droppable = [position for position in range(len(turns) - 1, 0, -1) if position not in pinned]
    kept_turns = set(pinned)
    for position in droppable:
        turn_cost = cost(position)
        last = position == droppable[-1] and not not_loaded
        if total + turn_cost + (0 if last else _OMITTED_NOTE_TOKENS) > budget_tokens:
            break
        total += turn_cost
        kept_turns.add(position)

    dropped_indexes = {index for position, turn in enumerate(turns) if position not in kept_turns for index in turn}
    left_out = not_loaded + len(dropped_indexes)
    if left_out:
        total += _OMITTED_NOTE_TOKENS

    if total > budget_tokens:  # only pinned turns are left
        others = total - pinned_costs[0]
        first_turn = [kept[index] for index in turns[0]]
        fitted = _truncate_to_fit(first_turn, budget_tokens - others)
        if fitted is None:  # cannot fit: still report the smallest size it could have
            smallest = _truncated(first_turn[0], 0)
            fitted = (smallest, _turn_tokens([smallest, *first_turn[1:]], is_first=True))
        kept[turns[0][0]], first_cost = fitted
        total = others + first_cost

    result = [entry for index, entry in enumerate(kept) if index not in dropped_indexes]
    if left_out:
        after_first = len(turns[0])  # the first turn is always kept, and comes first
        note = ThreadEntry(ts=kept[turns[0][0]].ts, role="user", text=omitted_note(left_out), extra={"note": True})
        result.insert(after_first, note)
    return BudgetResult(
        entries=result,
        dropped=len(dropped_indexes),
        estimated_tokens=total,
        fits=total <= budget_tokens,
        left_out=left_out,
    )


__all__ = [
    "OMITTED_NOTE",
    "TRUNCATION_MARK",
    "BudgetResult",
    "estimate_entry_tokens",
    "fit_to_budget",
    "omitted_marker",
    "omitted_note",
    "stored_tokens",
]
