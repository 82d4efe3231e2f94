"""Long threads keep their start: a running summary of the older part of a thread (pure).

When a thread's history no longer fits the context budget, a background job asks the model
(the same gateway: limiter, budgets) to summarize the older messages; the summary is stored
with the point it covers up to, and extended the same way as the thread grows. Replies send it,
clearly marked as a summary, in place of the messages it covers; the messages after it stay
verbatim. Until it exists the reply keeps the first message and says how many were left out.

Everything here is pure: what to summarize, the transcript the model reads, the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.history.messages import attribution, file_note
from bot.history.thread import ThreadEntry

SUMMARY_HEADER = (
    "[Summary of the earlier part of this thread ({covered} messages), written by the bot in place of "
    "those messages; not their exact words]"
)
SUMMARIZER_PROMPT = (
    "You keep a running summary of a Slack thread, so that an assistant can later answer with the "
    "thread's whole context. Merge the existing summary (if any) and the new messages into one summary. "
    "Keep every fact, decision, number, name, code identifier, file mentioned, question asked and answer "
    "given, and who said what (keep the <@U…> mentions). Drop greetings and filler. Plain text, at most "
    "about 600 words, no preamble."
)
SUMMARY_MAX_TOKENS = 1024  # within Haiku's 4096
# Ask for a summary once the history after the current one fills this share of the budget, and
# keep this share verbatim when writing it: the thread has room to grow before the next one.
TRIGGER_SHARE = 0.9
KEEP_SHARE = 0.5
CHUNK_TOKENS = 50_000  # messages read per summary call at most
DOCUMENT_EXCERPT_CHARS = 2_000
TOOL_EXCERPT_CHARS = 500


@dataclass(frozen=True)
class Summary:
    text: str
    covers: tuple[str, int]  # (ts, seq) of the last message it covers
    covered: int  # how many messages it covers


def wants_summary(history_tokens: int, budget_tokens: int) -> bool:
    """The stored history after the summary (if any) is close to filling the budget."""
    return history_tokens > budget_tokens * TRIGGER_SHARE


def summary_entry(summary: Summary) -> ThreadEntry:
    """The summary as the first entry of a rebuilt thread (a user message, so the request starts right)."""
    header = SUMMARY_HEADER.format(covered=summary.covered)
    return ThreadEntry(
        ts=summary.covers[0], role="user", text=f"{header}\n{summary.text.strip()}", extra={"summary": True}
    )


def split_point(rows: Sequence[tuple[str, int, int]], budget_tokens: int) -> int:
    """How many of `rows` (ts, seq, tokens; oldest first) to summarize: all but the newest that
    add up to KEEP_SHARE of the budget, cut where a Slack message starts (seq 0) so a bot turn's
    tool call and its result stay together."""
    keep = budget_tokens * KEEP_SHARE
    kept_tokens, point = 0, len(rows)
    while point > 0 and kept_tokens + rows[point - 1][2] <= keep:
        point -= 1
        kept_tokens += rows[point][2]
    while 0 < point < len(rows) and rows[point][1] != 0:
        point -= 1
    return point


def chunks(tokens: Sequence[int], limit: int = CHUNK_TOKENS) -> list[tuple[int, int]]:
    """[start, end) ranges of consecutive items, each adding up to at most `limit` (one item at least)."""
    ranges, start, total = [], 0, 0
    for index, value in enumerate(tokens):
        if index > start and total + value > limit:
            ranges.append((start, index))
            start, total = index, 0
        total += value
    if start < len(tokens):
        ranges.append((start, len(tokens)))
    return ranges


def _excerpt(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit].rstrip() + " […]"


def transcript_line(entry: ThreadEntry) -> str:
    """One message as the summarizer reads it."""
    if entry.role == "user":
        parts = [(attribution(entry) or "[someone]: ") + entry.text.strip()]
        parts.extend(file_note(note) for note in entry.files)
        parts.extend(
            f'(file "{doc.name}", beginning: {_excerpt(doc.text, DOCUMENT_EXCERPT_CHARS)})' for doc in entry.documents
        )
        parts.extend(f'(image "{image.name or "unnamed"}")' for image in entry.images)
        return "\n".join(part for part in parts if part.strip())
    if entry.role == "assistant":
        calls = "".join(f" (called {call.name}({_excerpt(call.arguments, 200)}))" for call in entry.tool_calls)
        return f"[the bot]: {entry.text.strip()}{calls}".rstrip()
    return f"[tool result]: {_excerpt(entry.text, TOOL_EXCERPT_CHARS)}"


def summary_request(previous: str | None, entries: Sequence[ThreadEntry]) -> dict:
    """A chat-completions body: the summarizer's instructions, the summary so far and the new messages."""
    lines = [line for line in (transcript_line(entry) for entry in entries if not entry.deleted) if line.strip()]
    so_far = f"The summary so far:\n{previous.strip()}" if previous and previous.strip() else "There is no summary yet."
    content = (
        f"{so_far}\n\nNew messages, oldest first:\n"
        + ("\n\n".join(lines) or "(none)")
        + "\n\nWrite the updated summary."
    )
    return {
        "messages": [{"role": "system", "content": SUMMARIZER_PROMPT}, {"role": "user", "content": content}],
        "max_tokens": SUMMARY_MAX_TOKENS,
    }


__all__ = [
    "SUMMARIZER_PROMPT",
    "SUMMARY_HEADER",
    "SUMMARY_MAX_TOKENS",
    "Summary",
    "chunks",
    "split_point",
    "summary_entry",
    "summary_request",
    "transcript_line",
    "wants_summary",
]
