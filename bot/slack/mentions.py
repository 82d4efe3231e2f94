"""Broadcast and user-group mentions the bot did not mean, made harmless before posting.

Model output can carry `<!channel>`, `<!here>`, `<!everyone>` (and the legacy `<!group>`), or
`<!subteam^S123|@team>`: posted as they are, they ping a whole channel or group, getting
around the workspace's own @channel restrictions. A person can plant them in a message the
model reads. `neutralize_mentions` turns each into plain text, `@channel` with an invisible
word joiner (U+2060) after the `@`, so neither Slack's `<!…>` parsing nor bare-word
`@here` parsing (`link_names`, markdown) sees a mention. User mentions (`<@U…>`) and
channel links (`<#C…>`) stay: they notify one person at most, as a quoted name would.

`neutralize_payload` applies it to every string of a Web API or response_url payload; the
Slack writer boundary (bot.slack.clients.SafeWebClient, bot.slack.response_url) calls it,
so stream chunks, updates, split messages, notes and reports are all covered.
"""

from __future__ import annotations

import re
from typing import Any

WORD_JOINER = "\u2060"
_BROADCAST = re.compile(r"<!(channel|here|everyone|group)(?:\|([^>]*))?>", re.IGNORECASE)
_SUBTEAM = re.compile(r"<!subteam\^([^>|]*)(?:\|([^>]*))?>", re.IGNORECASE)
_BARE = re.compile(r"(?<![\w@])@(channel|here|everyone)\b", re.IGNORECASE)


def _as_text(label: str) -> str:
    return "@" + WORD_JOINER + label.lstrip("@").strip()


def neutralize_mentions(text: str) -> str:
    """`text` with broadcast and user-group mentions shown as words, not mentions."""
    if "<!" not in text and "@" not in text:
        return text
    text = _BROADCAST.sub(lambda m: _as_text(m.group(1).lower()), text)
    text = _SUBTEAM.sub(lambda m: _as_text(m.group(2) or "group"), text)
    return _BARE.sub(lambda m: _as_text(m.group(1)), text)


def neutralize_payload(value: Any) -> Any:
    """Every string inside `value` (dicts, lists, tuples) neutralized; other values unchanged."""
    if isinstance(value, str):
        return neutralize_mentions(value)
    if isinstance(value, dict):
        return {k: neutralize_payload(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(neutralize_payload(v) for v in value)
    return value
