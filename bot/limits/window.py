"""Sliding-window admission arithmetic (pure: no clock, no database).

Every model call, from any process, is admitted against one global window: at most
``max_requests`` requests and ``max_tokens`` tokens may be admitted within any interval of
``window_seconds``. The database side loads the reservations under a row lock and asks
:func:`decide`; on "ok" it records a new :class:`Reservation` in the same transaction.

A reservation occupies the window from ``admitted_at`` until
``admitted_at + window_seconds + margin_seconds`` (exclusive); the margin absorbs the
delay between our admission and the server counting the request. Times are float
seconds on one clock (the database's), passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

AdmissionReason = Literal["ok", "requests", "tokens", "paused", "oversized"]


@dataclass(frozen=True)
class RateLimits:
    max_requests: int
    max_tokens: int
    window_seconds: float
    margin_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.max_tokens < 1:
            raise ValueError("max_requests and max_tokens must be at least 1")
        if not self.window_seconds > 0:
            raise ValueError("window_seconds must be positive")
        if not self.margin_seconds >= 0:
            raise ValueError("margin_seconds must not be negative")

    @property
    def occupancy_seconds(self) -> float:
        """How long one reservation counts against the window."""
        return self.window_seconds + self.margin_seconds


@dataclass(frozen=True)
class Reservation:
    admitted_at: float
    tokens: int  # the estimate until reconciled with the response's usage, then the actual


@dataclass(frozen=True)
class Admission:
    """The verdict on one request.

    ``retry_at`` is the earliest time the same request would be admitted if nothing else
    were admitted meanwhile (or the end of a pause, if that is later); None when admitted
    and when "oversized" (more tokens than the whole window holds: it can never fit).
    """

    admitted: bool
    reason: AdmissionReason
    retry_at: float | None


def expires_at(reservation: Reservation, limits: RateLimits) -> float:
    """When ``reservation`` stops counting (it counts while ``now < expires_at``)."""
    return reservation.admitted_at + limits.occupancy_seconds


def live_reservations(reservations: Iterable[Reservation], limits: RateLimits, now: float) -> list[Reservation]:
    """The reservations still in the window at ``now``, soonest to expire first."""
    live = [r for r in reservations if expires_at(r, limits) > now]
    live.sort(key=lambda r: expires_at(r, limits))
    return live


def window_usage(reservations: Iterable[Reservation], limits: RateLimits, now: float) -> tuple[int, int]:
    """(requests, tokens) currently counted in the window, for health reporting."""
    live = live_reservations(reservations, limits, now)
    return len(live), sum(r.tokens for r in live)


def _requests_free_at(live: Sequence[Reservation], limits: RateLimits, now: float) -> float:
    """Earliest time one more request fits (``now`` if it already does)."""
    must_expire = len(live) - limits.max_requests + 1
    if must_expire <= 0:
        return now
    return expires_at(live[must_expire - 1], limits)


def _tokens_free_at(live: Sequence[Reservation], limits: RateLimits, now: float, tokens: int) -> float:
    """Earliest time ``tokens`` more fit (``now`` if they already do); needs tokens <= max_tokens."""
    excess = sum(r.tokens for r in live) + tokens - limits.max_tokens
    if excess <= 0:
        return now
    for reservation in live:  # soonest to expire first
        excess -= reservation.tokens
        if excess <= 0:
            return expires_at(reservation, limits)
    raise AssertionError("unreachable: an empty window holds any request up to max_tokens")


def decide(
    reservations: Sequence[Reservation],
    limits: RateLimits,
    now: float,
    tokens: int,
    paused_until: float | None = None,
) -> Admission:
    """Admit a request of ``tokens`` at ``now``, or say why not and when to try again."""
    if tokens < 0:
        raise ValueError("tokens must not be negative")
    if tokens > limits.max_tokens:
        return Admission(False, "oversized", None)

    live = live_reservations(reservations, limits, now)
    requests_at = _requests_free_at(live, limits, now)
    tokens_at = _tokens_free_at(live, limits, now, tokens)
    paused = paused_until is not None and paused_until > now

    retry_at = max(requests_at, tokens_at, paused_until if paused else now)
    if retry_at <= now:
        return Admission(True, "ok", None)
    if paused:
        reason: AdmissionReason = "paused"
    elif requests_at >= tokens_at:
        reason = "requests"
    else:
        reason = "tokens"
    return Admission(False, reason, retry_at)


__all__ = [
    "Admission",
    "AdmissionReason",
    "RateLimits",
    "Reservation",
    "decide",
    "expires_at",
    "live_reservations",
    "window_usage",
]
