"""What a server's rate-limit headers say about waiting (pure: the clock is passed in).

``Retry-After`` (seconds or an HTTP date), ``retry-after-ms`` and the ``x-ratelimit-reset-*``
durations ("51s", "1m30s", "200ms") or unix times, as the inference service and Slack send them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

# A plain reset value this large is a unix time, not a number of seconds.
_UNIX_TIME_THRESHOLD = 1_000_000_000
_UNIX_MILLISECONDS_THRESHOLD = 100_000_000_000  # beyond this a plain reset is a unix time in milliseconds

_SECONDS_PER_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN_NUMBER = re.compile(_NUMBER)
_DURATION = re.compile(rf"(?:{_NUMBER}(?:h|ms|m|s|us|µs|ns))+")
_DURATION_PART = re.compile(rf"({_NUMBER})(h|ms|m|s|us|µs|ns)")


def parse_duration(text: str) -> float | None:
    """Seconds in a duration such as "51s", "1m30s", "200ms", "0.5s" or "2"; None if unreadable."""
    value = text.strip().lower()
    if _PLAIN_NUMBER.fullmatch(value):
        seconds = float(value)
    elif _DURATION.fullmatch(value):
        parts = _DURATION_PART.findall(value)
        seconds = sum(float(number) * _SECONDS_PER_UNIT[unit] for number, unit in parts)
    else:
        return None
    return seconds if math.isfinite(seconds) else None


def _retry_after_header(value: str, now: float) -> float | None:
    seconds = parse_duration(value)
    if seconds is not None:
        return seconds
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # an HTTP date is always GMT
        return None
    return max(0.0, moment.timestamp() - now)


def _reset_header(value: str, now: float) -> float | None:
    seconds = parse_duration(value)
    if seconds is not None and seconds >= _UNIX_MILLISECONDS_THRESHOLD:  # a unix time in ms
        return max(0.0, seconds / 1000.0 - now)
    if seconds is not None and seconds >= _UNIX_TIME_THRESHOLD:
        return max(0.0, seconds - now)
    return seconds


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """How long the server asks us to wait, from ``Retry-After`` (seconds or an HTTP date),
    ``retry-after-ms`` and ``x-ratelimit-reset-requests`` / ``-tokens``: the largest usable
    value, or None when none is. ``now`` is the current unix time."""
    lowered = {name.lower(): value for name, value in headers.items()}
    candidates: list[float | None] = []
    if "retry-after" in lowered:
        candidates.append(_retry_after_header(lowered["retry-after"], now))
    if "retry-after-ms" in lowered:
        value = lowered["retry-after-ms"].strip()
        milliseconds = parse_duration(value) if _PLAIN_NUMBER.fullmatch(value) else None
        candidates.append(None if milliseconds is None else milliseconds / 1000.0)
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        if name in lowered:
            candidates.append(_reset_header(lowered[name], now))
    usable = [seconds for seconds in candidates if seconds is not None]
    return max(usable) if usable else None


def _count(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isdigit() else None


def remaining(headers: Mapping[str, str]) -> tuple[int | None, int | None]:
    """``x-ratelimit-remaining-requests`` and ``-tokens`` (None: absent or unreadable). Heroku
    documents them on its API reference ("Remaining requests permitted before reaching rate
    limit"); whether every answer carries them is not said, so callers must do without."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return _count(lowered.get("x-ratelimit-remaining-requests")), _count(lowered.get("x-ratelimit-remaining-tokens"))


__all__ = ["parse_duration", "remaining", "retry_after_seconds"]
