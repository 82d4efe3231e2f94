"""Message search, the pure half: query words, who may see what, snippets and the answer's text.

Who may see what (the rule `searchable_channels` implements):
- Only this workspace's messages, and only channels the asker can see. Membership is judged from
  the stored history, without a Slack call per channel: a channel (or DM) counts when the asker
  has a message stored in it, and the conversation the search is made from counts too (Slack only
  lets people run commands where they are). Someone who left a channel can therefore still find
  what was stored from it while they were there.
- The answer's audience narrows that: a model answer in a channel thread is read by the whole
  channel, so there only that channel is searched; a slash command (answered only to the asker)
  and the asker's DM with the bot search every channel of the asker. Public answers of slash
  commands never get these results (see `bot.tools.audience`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

MAX_TERMS = 8
SNIPPET_CHARS = 160
_WORD = re.compile(r"[^\W_]+")
# <!channel>, <!here|here>, <!subteam^S1|@team>: pings when posted again; shown as plain words.
_BROADCAST = re.compile(r"<!(?:subteam\^)?([^>|]+)(?:\|([^>]*))?>")


@dataclass(frozen=True)
class SearchHit:
    channel_id: str
    thread_ts: str
    ts: str
    user_id: str | None
    role: str
    text: str
    created_at: datetime


def search_terms(query: str) -> list[str]:
    """The words to look for: letters and digits only, lowercased, first MAX_TERMS distinct ones."""
    terms: list[str] = []
    for word in _WORD.findall(query.casefold()):
        if word not in terms:
            terms.append(word)
    return terms[:MAX_TERMS]


def like_pattern(term: str) -> str:
    """`%term%` for LIKE … ESCAPE '\\', with LIKE's wildcards in `term` taken literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def prefix_tsquery(terms: Sequence[str]) -> str:
    """A to_tsquery text matching every term as a word prefix: `deploy:* & friday:*`.
    Safe to pass as is: `search_terms` leaves only letters and digits."""
    return " & ".join(f"{term}:*" for term in terms)


def is_direct_message(channel_id: str | None) -> bool:
    return bool(channel_id) and channel_id.startswith("D")


def searchable_channels(
    current_channel: str | None, thread_ts: str | None, asker_channels: Iterable[str]
) -> frozenset[str]:
    """The channels a search may read (see the module docstring). `thread_ts` is None for slash
    commands; the model always works inside a thread."""
    here = {current_channel} if current_channel else set()
    if thread_ts is None or is_direct_message(current_channel):
        return frozenset(here | set(asker_channels))
    return frozenset(here)


def quiet_broadcasts(text: str) -> str:
    """`<!channel>` → `@channel`, so quoting a message does not ping a channel again."""
    return _BROADCAST.sub(lambda m: "`@" + (m.group(2) or m.group(1)).lstrip("@") + "`", text)


def snippet(text: str, terms: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """About `width` characters of `text` around the first term found, on one line."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    folded = flat.casefold()
    if len(folded) != len(flat):  # a few letters fold to two ("ß"): positions would drift
        folded = flat.lower() if len(flat.lower()) == len(flat) else flat
    positions = [folded.find(term) for term in terms if folded.find(term) >= 0]
    first = min(positions) if positions else 0
    start = max(0, min(first - width // 3, len(flat) - width))
    end = start + width
    if start > 0:
        space = flat.find(" ", start, first) if first > start else -1
        start = space + 1 if space >= 0 else start
    if end < len(flat):
        space = flat.rfind(" ", max(first, start), end)
        end = space if space > start else end
    return ("…" if start > 0 else "") + flat[start:end].strip() + ("…" if end < len(flat) else "")


def permalink(workspace_url: str, channel_id: str, ts: str, thread_ts: str | None = None) -> str | None:
    """A message's Slack link from the workspace's URL (auth.test's ``url``), as Slack builds
    them: ``https://team.slack.com/archives/C1/p1700000000000100`` (with ``thread_ts`` and ``cid``
    for a reply). None when the URL is not an https Slack one."""
    if not re.fullmatch(r"https://[a-z0-9-]+(\.enterprise)?\.slack\.com/?", workspace_url or ""):
        return None
    if not re.fullmatch(r"\d+\.\d+", ts or ""):
        return None
    link = f"{workspace_url.rstrip('/')}/archives/{channel_id}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts and re.fullmatch(r"\d+\.\d+", thread_ts):
        link += f"?thread_ts={thread_ts}&cid={channel_id}"
    return link


def format_hits(
    query: str,
    hits: Sequence[SearchHit],
    terms: Sequence[str],
    link: Callable[[SearchHit], str | None] | None = None,
) -> str:
    """The answer: one line per message, newest relevant first, with where it was said (and its
    link, when `link` gives one)."""
    shown = " ".join(query.split())
    if not hits:
        return f'No stored messages match "{shown}" in the conversations you can see.'
    noun = "message" if len(hits) == 1 else "messages"
    lines = [f'{len(hits)} {noun} matching "{shown}":']
    for hit in hits:
        who = f"<@{hit.user_id}>" if hit.role == "user" and hit.user_id else "the assistant"
        when = hit.created_at.strftime("%Y-%m-%d")
        url = link(hit) if link is not None else None
        where = f"<#{hit.channel_id}> {when}" + (f" (<{url}|link>)" if url else "")
        lines.append(f"• {where}, {who}: {quiet_broadcasts(snippet(hit.text, terms))}")
    return "\n".join(lines)
