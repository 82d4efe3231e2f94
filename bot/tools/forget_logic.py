"""Forgetting a thread, the pure half: reading Slack message links and the answers.

A slash command never runs inside a thread (Slack gives it a channel, not a thread), so `/forget`
takes a link to the thread: Slack's "Copy link" on the thread's first message or on any reply,
e.g. `https://team.slack.com/archives/C0123/p1700000000000100?thread_ts=1700000000.000050`.
Asked through the model inside a thread, no link is needed: it forgets that thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

_ARCHIVES_PATH = re.compile(r"^/archives/([A-Z0-9]+)/p(\d{7,})/?$")
_TS = re.compile(r"^\d+\.\d{6}$")

HOW_TO_FORGET = (
    "Slash commands don't run inside threads, so tell me which thread: `/forget <link>` with the link "
    "from \u201cCopy link\u201d on the thread's first message or any reply. Or mention me in the thread "
    "and ask me to forget it."
)
NOT_A_LINK = (
    "That doesn't look like a link to a Slack message. Use \u201cCopy link\u201d on a message of the "
    "thread; it looks like https://your-team.slack.com/archives/C0123ABC/p1700000000000100."
)
NOT_YOURS = "You can only make me forget threads you wrote in, unless you are a workspace admin."


@dataclass(frozen=True)
class MessageLink:
    channel_id: str
    ts: str  # the linked message
    thread_ts: str | None  # its thread, when the link says (links to replies do)


def ts_from_permalink_digits(digits: str) -> str:
    """`p1700000000000100` digits → the ts `1700000000.000100`."""
    return f"{digits[:-6]}.{digits[-6:]}"


def parse_message_link(text: str) -> MessageLink | None:
    """The channel and ts a Slack message link points at, or None. Accepts Slack's `<url|label>` form."""
    raw = text.strip()
    if raw.startswith("<") and raw.endswith(">"):
        raw = raw[1:-1].split("|", 1)[0]
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not (parts.hostname or "").endswith("slack.com"):
        return None
    match = _ARCHIVES_PATH.match(parts.path)
    if not match:
        return None
    thread_ts = (parse_qs(parts.query).get("thread_ts") or [None])[0]
    if thread_ts is not None and not _TS.match(thread_ts):
        return None
    return MessageLink(match.group(1), ts_from_permalink_digits(match.group(2)), thread_ts)


def forgotten_message(count: int) -> str:
    if count == 0:
        return "I had nothing stored from that thread."
    noun = "message" if count == 1 else "messages"
    return (
        f"Done: I deleted the {count} {noun} I had stored from that thread and stopped following it. "
        "They are still in Slack: mention me there again and I'll read the thread afresh."
    )
