"""The server's own view of the rate window, from its ``x-ratelimit-*`` headers (pure).

Every response, success or 429, may carry ``x-ratelimit-remaining-requests`` /
``-tokens`` (room left in the server's window, counting the request just answered),
``x-ratelimit-limit-*`` and ``x-ratelimit-reset-requests`` / ``-tokens`` (how long until the
window is fully replenished, e.g. ``"51s"``, ``"1m30s"``, ``"120ms"``, plain seconds, or a
unix time). :func:`correction_from_view` compares that view with ours at the moment the
request was admitted and returns the difference the limiter holds until it expires.

Nothing here trusts a header blindly: unreadable values are ignored, a reset is never
longer than ``MAX_RESET_SECONDS`` (a millisecond epoch read as seconds would otherwise stop
the pool for years), and a pause after a 429 is capped at ``MAX_PAUSE_SECONDS``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from bot.limits.window import Correction, RateLimits, Reservation

MAX_PAUSE_SECONDS = 120.0
MAX_RESET_SECONDS = 3600.0
# A plain reset at least this large is a unix time: in seconds up to here, beyond in milliseconds.
_UNIX_SECONDS_FROM = 1_000_000_000
_UNIX_MILLISECONDS_FROM = 100_000_000_000

_SECONDS_PER_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN = re.compile(_NUMBER)
_DURATION = re.compile(rf"(?:{_NUMBER}(?:h|ms|m|s|us|µs|ns))+")
_PART = re.compile(rf"({_NUMBER})(h|ms|m|s|us|µs|ns)")


def parse_reset(value: str | None, now: float) -> float | None:
    """Seconds until a reset given as a duration ("51s", "1m30s", "120ms", "2.5"), a unix time
    in seconds or milliseconds, or None when unreadable. ``now``: the current unix time.
    The result is within [0, MAX_RESET_SECONDS]."""
    if value is None:
        return None
    text = value.strip().lower()
    if _PLAIN.fullmatch(text):
        seconds = float(text)
        if seconds >= _UNIX_MILLISECONDS_FROM:
            seconds = seconds / 1000.0 - now
        elif seconds >= _UNIX_SECONDS_FROM:
            seconds = seconds - now
    elif _DURATION.fullmatch(text):
        seconds = sum(float(number) * _SECONDS_PER_UNIT[unit] for number, unit in _PART.findall(text))
    else:
        return None
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RESET_SECONDS)


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit():
        return None
    return int(text)


@dataclass(frozen=True)
class ServerView:
    """What one response said about the server's window (None: not said)."""

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    limit_requests: int | None = None
    limit_tokens: int | None = None
    reset_requests: float | None = None  # seconds from the response
    reset_tokens: float | None = None

    @property
    def empty(self) -> bool:
        return self.remaining_requests is None and self.remaining_tokens is None


def server_view(headers: Mapping[str, str], now: float) -> ServerView:
    """The view in a response's headers (any case); ``now``: the current unix time."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return ServerView(
        remaining_requests=_count(lowered.get("x-ratelimit-remaining-requests")),
        remaining_tokens=_count(lowered.get("x-ratelimit-remaining-tokens")),
        limit_requests=_count(lowered.get("x-ratelimit-limit-requests")),
        limit_tokens=_count(lowered.get("x-ratelimit-limit-tokens")),
        reset_requests=parse_reset(lowered.get("x-ratelimit-reset-requests"), now),
        reset_tokens=parse_reset(lowered.get("x-ratelimit-reset-tokens"), now),
    )


def capped_pause(seconds: float | None, default: float) -> float:
    """How long the pool pauses after a 429: the server's wait, or ``default``, at most MAX_PAUSE_SECONDS."""
    if seconds is None or not math.isfinite(seconds):
        seconds = default
    return min(max(0.0, seconds), MAX_PAUSE_SECONDS)


def merge_views(held: Correction, new: Correction, now: float) -> Correction:
    """The newest view replaces the held one, except that the largest request difference is
    kept until its own reset: another app's calls come and go between two views, and the
    newest view may have caught a moment with one fewer of them.

    A view above the held difference means the other app is busier than it was: its calls
    keep arriving while our next admissions wait for the next view, so the rise is assumed to
    repeat once (held: the new difference plus the rise)."""
    if held.held_until > now and held.held_requests > new.requests:
        return replace(new, held_requests=held.held_requests, held_until=held.held_until)
    rise = new.requests - held.held_requests if held.held_until > now else 0
    return replace(new, held_requests=new.requests + max(0, rise), held_until=new.until)


def _seen_by_server(
    reservations: Iterable[Reservation], limits: RateLimits, admitted_at: float, sent_at: float | None
) -> list[Reservation]:
    """Our calls the server counted when the call admitted at ``admitted_at`` (and sent at
    ``sent_at``, when known) arrived: those that reached it within the window before, ordered by
    when they went out (a call still in flight, by its admission). Without send times, by admission."""
    if sent_at is None:
        return [r for r in reservations if admitted_at - limits.window_seconds < r.admitted_at <= admitted_at]
    reference = max(admitted_at, sent_at)

    def went_out(r: Reservation) -> float:
        return r.sent_at if r.sent_at is not None else r.admitted_at

    return [r for r in reservations if reference - limits.window_seconds < went_out(r) <= reference]


def correction_from_view(
    view: ServerView,
    reservations: Iterable[Reservation],
    limits: RateLimits,
    *,
    admitted_at: float,
    now: float,
    sent_at: float | None = None,
) -> Correction | None:
    """The difference between the server's window and ours, or None if the view says nothing.

    The server took its view when the request admitted at ``admitted_at`` arrived, so it is
    compared with our reservations admitted in the window ending then (each counts its estimate,
    or its ceiling once answered: :meth:`Reservation.counted_in_view`). Positive: the server
    counts more than we do (held until the server's reset, at most a window after that
    admission, when every charge it then counted has expired).
    Negative tokens: a credit (the server charged less than our estimates), which
    :func:`bot.limits.window.decide` bounds by what reconciled reservations over-estimated.
    """
    if view.empty:
        return None
    seen = _seen_by_server(reservations, limits, admitted_at, sent_at)
    taken = Correction(seen_at=admitted_at, taken_at=now)
    counted = sum(r.counted_in_view(taken) for r in seen)  # an answered call counts its ceiling
    latest = admitted_at + limits.occupancy_seconds
    until = latest
    requests = tokens = 0
    if view.remaining_requests is not None:
        limit = view.limit_requests or limits.max_requests
        # What the server counts beyond what we count; a server limit below ours shrinks our room.
        requests = max(0, (limit - view.remaining_requests) - len(seen) + max(0, limits.max_requests - limit))
    if view.remaining_tokens is not None:
        limit = view.limit_tokens or limits.max_tokens
        tokens = (limit - view.remaining_tokens) - counted + max(0, limits.max_tokens - limit)
    resets = [s for s in (view.reset_requests, view.reset_tokens) if s is not None]
    if resets:
        until = min(latest, now + max(resets))
    # Another app seen in the requests may hide its tokens behind our credit: under Anthropic's
    # accounting the server charged our answered calls what they used, so up to their whole
    # over-estimate of it is ours and the rest is the other app's, held until the view expires.
    external = max(0, tokens)
    if requests > 0:
        over_estimated = sum(max(0, r.counted_in_view(taken) - r.used) for r in seen if r.used is not None)
        external = max(0, tokens + over_estimated)
    return Correction(
        requests=requests,
        tokens=tokens,
        until=until,
        seen_at=admitted_at,
        seen_tokens=counted,
        taken_at=now,
        external_tokens=external,
    )


__all__ = [
    "MAX_PAUSE_SECONDS",
    "ServerView",
    "capped_pause",
    "correction_from_view",
    "merge_views",
    "parse_reset",
    "server_view",
]
