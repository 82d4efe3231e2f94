"""Keep a request under the provider's size limit before it is sent (pure).

Heroku serves Claude from Amazon Bedrock, whose documented request payload limit is 20 MB
(DESIGN-NOTES, "Request size"; INFERENCE_MAX_REQUEST_BYTES), and a thread may hold many images
of up to 5 MB of base64 each, re-sent on every tool round. A request that would be too large is
trimmed first, never sent to fail: the oldest
images become the note "(an earlier image was left out)" one by one, then the oldest history
entries go; the newest history entry (the message being answered) and the entries of the turn
in progress always stay.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bot.history.thread import ThreadEntry

MAX_REQUEST_BYTES = 20_000_000
# Room for what the client adds (model, stream options).
REQUEST_HEADROOM_BYTES = 64 * 1024
REQUEST_BYTES_LIMIT = MAX_REQUEST_BYTES - REQUEST_HEADROOM_BYTES
# After a 413 the request is sent once more, fitted to this share of the size that was refused.
AFTER_413_SHARE = 0.5


def bytes_limit(max_request_bytes: int) -> int:
    """What the messages may take of a request capped at ``max_request_bytes``."""
    return max(1, max_request_bytes - REQUEST_HEADROOM_BYTES)


def limit_after_413(refused_bytes: int, limit: int) -> int:
    """The smaller limit for the one resend after a 413 of a ``refused_bytes`` request."""
    return max(1, min(limit, int(refused_bytes * AFTER_413_SHARE)))


class RequestTooBig(Exception):
    """Even the turn in progress alone, without images, is over the size limit."""


def request_bytes(body: Mapping[str, Any]) -> int:
    """The body's size as JSON. ``ensure_ascii`` and spaces: never less than what httpx sends."""
    return len(json.dumps(body).encode("ascii"))


def fit_request_size(
    history: Sequence[ThreadEntry],
    turn: Sequence[ThreadEntry],
    *,
    max_images: int,
    build: Callable[[list[ThreadEntry], int], dict[str, Any]],
    limit: int = REQUEST_BYTES_LIMIT,
) -> tuple[dict[str, Any], int]:
    """(the first body ``build(entries, max_images)`` makes that fits ``limit``, images left out).

    Tries the entries with ``max_images``, then with one image fewer at a time (the oldest go
    first), then without the oldest history entries, one at a time. Raises RequestTooBig when
    nothing fits.
    """
    entries = [*history, *turn]
    images = min(max_images, sum(len(entry.images) for entry in entries))
    body = build(entries, images)
    if request_bytes(body) <= limit:
        return body, 0
    for fewer in range(images - 1, -1, -1):
        body = build(entries, fewer)
        if request_bytes(body) <= limit:
            return body, images - fewer
    kept = list(history)
    while len(kept) > 1:  # the newest history entry is the message being answered: it stays
        kept.pop(0)
        body = build([*kept, *turn], 0)
        if request_bytes(body) <= limit:
            return body, images
    raise RequestTooBig("the request is over the provider's size limit even without images and history")


__all__ = [
    "MAX_REQUEST_BYTES",
    "REQUEST_BYTES_LIMIT",
    "RequestTooBig",
    "bytes_limit",
    "fit_request_size",
    "limit_after_413",
    "request_bytes",
]
