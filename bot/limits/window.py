"""Sliding-window admission arithmetic (pure: no clock, no database).

Every model call, from any process, is admitted against one global window: at most
``max_requests`` requests and ``max_tokens`` tokens may be admitted within any interval of
``window_seconds``. The database side loads the reservations under a row lock and asks
:func:`decide` (or, with callers waiting in line, :func:`schedule`); on "ok" it records a new
:class:`Reservation` in the same transaction.

A reservation occupies the window from ``admitted_at`` until
``admitted_at + window_seconds + margin_seconds`` (exclusive); the margin absorbs the
delay between our admission and the server counting the request. Times are float
seconds on one clock (the database's), passed in.

**Tokens.** A reservation keeps its estimate (``tokens``) and, once the call returned, the
usage the server reported (``used``). Without a :class:`Correction` from the server a
reconciled reservation counts its ``used`` tokens (the provider corrects its charge to the
actual usage, as Anthropic documents). With one, the server's own view decides: the window
counts every estimate plus ``correction.tokens``, which is positive when the server saw less
room than we did (another app on the same add-on, or a provider that keeps charging
``prompt + max_tokens``) and negative (a credit) when it saw more. A credit belongs to the
reservations the view covered and leaves the window with them, in proportion to their estimates
(a stale credit handed to later calls would be a 429 under an accounting that keeps charging
``prompt + max_tokens``), and it is never larger than what the reconciled reservations still in
the window over-estimated. ``correction.requests`` adds requests the server counted and we did not.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

AdmissionReason = Literal["ok", "requests", "tokens", "paused", "oversized"]

INTERACTIVE_LANE = "interactive"


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
    tokens: int  # the estimate reserved at admission
    used: int | None = None  # the usage the server reported, once the call returned
    # Once answered: the most the server can be charging for it under either accounting, the
    # prompt tokens it reported plus the output cap; and when the answer came (database clock).
    ceiling: int | None = None
    answered_at: float | None = None
    sent_at: float | None = None  # when the request went out (known once answered)

    def counted_in_view(self, correction: Correction) -> int:
        """What the window counts for this call beside the server's view: its ceiling once
        answered, but its estimate if the view saw it before it was answered (the view's
        difference was taken against the estimate; counting the ceiling too would count the
        same difference twice)."""
        if self.ceiling is None or self.answered_at is None:
            return self.tokens
        if self.admitted_at <= correction.seen_at and self.answered_at > correction.taken_at:
            return self.tokens
        return self.ceiling


@dataclass(frozen=True)
class Correction:
    """The server's newest view, as a difference to ours, valid while ``now < until``; and the
    largest request difference seen since ``held_until - window`` (``held_requests``, held until
    ``held_until``), so another app's requests arriving between two views find room kept for them."""

    requests: int = 0  # >= 0: requests the server counts that we do not
    tokens: int = 0  # > 0: less room than we think; < 0: a credit (bounded, see the module doc)
    until: float = -math.inf
    held_requests: int = 0
    held_until: float = -math.inf
    # The reservations the view covered: admitted at or before seen_at, seen_tokens of estimates
    # between them. A credit belongs to them and leaves the window with them.
    seen_at: float = -math.inf
    seen_tokens: int = 0
    taken_at: float = -math.inf  # when the view was compared with ours (database clock)
    # The part of ``tokens`` that is another app's, held whole until ``until``; the rest (a
    # credit) belongs to the seen reservations.
    external_tokens: int = 0

    def active(self, now: float) -> bool:
        """A view of zero difference is active too: it says "count the estimates, no credit"."""
        return now < self.until

    def credit_share(self, seen_live_tokens: int) -> float:
        """The part of a credit still owed when ``seen_live_tokens`` of the seen estimates are live."""
        if self.seen_tokens <= 0:
            return 1.0
        return min(1.0, max(0, seen_live_tokens) / self.seen_tokens)

    def extra_requests(self, now: float) -> int:
        newest = self.requests if now < self.until else 0
        return max(newest, self.held_requests if now < self.held_until else 0)


NO_CORRECTION = Correction()


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


def _counted(reservation: Reservation) -> int:
    return reservation.tokens if reservation.used is None else reservation.used


def window_usage(
    reservations: Iterable[Reservation], limits: RateLimits, now: float, correction: Correction = NO_CORRECTION
) -> tuple[int, int]:
    """(requests, tokens) currently counted in the window, for health reporting and admission."""
    live = live_reservations(reservations, limits, now)
    requests = len(live) + correction.extra_requests(now)
    if not correction.active(now):
        return requests, sum(_counted(r) for r in live)
    counted = [r.counted_in_view(correction) for r in live]
    reclaimable = sum(v - r.used for r, v in zip(live, counted, strict=True) if r.used is not None and r.used < v)
    estimates = sum(counted)
    seen_live = sum(v for r, v in zip(live, counted, strict=True) if r.admitted_at <= correction.seen_at)
    return requests, max(0, estimates + _difference(correction, seen_live, reclaimable))


def _difference(correction: Correction, seen_live_tokens: int, reclaimable: int) -> int:
    """What the server's view adds to our estimates: another app's part whole; a credit only for
    the seen reservations still in the window, and never more than what reconciled ones
    over-estimated."""
    external = max(0, correction.external_tokens)
    rest = correction.tokens - external
    if rest >= 0:
        return external + rest
    credit = math.ceil(rest * correction.credit_share(seen_live_tokens))
    return external + max(credit, -reclaimable)


class _Window:
    """The live reservations sorted by expiry with suffix sums, to find when a request fits."""

    def __init__(self, live: Sequence[Reservation], limits: RateLimits, correction: Correction):
        self.limits = limits
        self.correction = correction
        self.expiry = [expires_at(r, limits) for r in live]
        # Expiry follows admission, so the reservations the view saw are the first `seen` of them.
        self.seen = bisect.bisect_right([r.admitted_at for r in live], correction.seen_at)
        n = len(live)
        self.estimates = [0] * (n + 1)  # sum of what live[k:] count beside the view
        self.counted = [0] * (n + 1)  # sum of counted tokens of live[k:]
        self.reclaimable = [0] * (n + 1)
        for k in range(n - 1, -1, -1):
            r = live[k]
            value = r.counted_in_view(correction)
            self.estimates[k] = self.estimates[k + 1] + value
            self.counted[k] = self.counted[k + 1] + _counted(r)
            over = value - r.used if r.used is not None and r.used < value else 0
            self.reclaimable[k] = self.reclaimable[k + 1] + over

    def usage(self, k: int, t: float) -> tuple[int, int]:
        """(requests, tokens) at time t, when the first k reservations have expired."""
        n = len(self.expiry)
        c = self.correction
        requests = n - k + c.extra_requests(t)
        if c.active(t):
            seen_live = self.estimates[k] - self.estimates[self.seen] if k < self.seen else 0
            return requests, self.estimates[k] + _difference(c, seen_live, self.reclaimable[k])
        return requests, self.counted[k]

    def times(self, start: float) -> list[tuple[float, int]]:
        """Candidate moments >= start where usage can drop, each with how many reservations
        have expired by then, in time order."""
        moments = [(start, bisect.bisect_right(self.expiry, start))]
        moments += [(e, i + 1) for i, e in enumerate(self.expiry) if e > start]
        for until in (self.correction.until, self.correction.held_until):
            if until > start and math.isfinite(until):
                moments.append((until, bisect.bisect_right(self.expiry, until)))
        moments.sort()
        return moments

    def first_fit(self, start: float, tokens: int) -> tuple[float, float, float]:
        """(fits both, requests alone, tokens alone): earliest moments >= start."""
        both = req = tok = math.inf
        for t, k in self.times(start):
            requests, used = self.usage(k, t)
            r_ok = requests + 1 <= self.limits.max_requests
            t_ok = used + tokens <= self.limits.max_tokens
            if r_ok and req == math.inf:
                req = t
            if t_ok and tok == math.inf:
                tok = t
            if r_ok and t_ok:
                both = t
                break
        return both, req, tok


def decide(
    reservations: Sequence[Reservation],
    limits: RateLimits,
    now: float,
    tokens: int,
    paused_until: float | None = None,
    correction: Correction = NO_CORRECTION,
) -> Admission:
    """Admit a request of ``tokens`` at ``now``, or say why not and when to try again."""
    if tokens < 0:
        raise ValueError("tokens must not be negative")
    if tokens > limits.max_tokens:
        return Admission(False, "oversized", None)
    paused = paused_until is not None and paused_until > now
    start = paused_until if paused else now
    window = _Window(live_reservations(reservations, limits, now), limits, correction)
    both, requests_at, tokens_at = window.first_fit(start, tokens)  # type: ignore[arg-type]
    if both <= now:
        return Admission(True, "ok", None)
    if paused:
        reason: AdmissionReason = "paused"
    elif requests_at >= tokens_at:
        reason = "requests"
    else:
        reason = "tokens"
    return Admission(False, reason, both)


# -- waiting in line ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiter:
    """A call waiting for admission. ``since``: when it started waiting (database clock)."""

    key: int
    tokens: int
    lane: str = INTERACTIVE_LANE
    since: float = 0.0


def admission_order(waiters: Iterable[Waiter], now: float, *, aging_seconds: float) -> list[Waiter]:
    """The fair order: interactive calls first, a background call once it has waited
    ``aging_seconds`` like an interactive one; within that, whoever waited longest."""

    def key(w: Waiter) -> tuple[int, float, int]:
        urgent = w.lane == INTERACTIVE_LANE or now - w.since >= aging_seconds
        return (0 if urgent else 1, w.since, w.key)

    return sorted(waiters, key=key)


@dataclass(frozen=True)
class Slot:
    """When a waiter will be admitted if everyone ahead is admitted as soon as they fit."""

    key: int
    at: float  # inf: never (oversized)
    position: int  # calls ahead of it in line
    reason: AdmissionReason = "ok"


def schedule(
    reservations: Sequence[Reservation],
    waiters_in_order: Sequence[Waiter],
    limits: RateLimits,
    now: float,
    paused_until: float | None = None,
    correction: Correction = NO_CORRECTION,
) -> list[Slot]:
    """Predict, for waiters in line (already in :func:`admission_order`), when each is admitted.

    Strict order: nobody is admitted before the calls ahead of it, so a large request is never
    starved by a stream of small ones. Each waiter is assumed admitted at its slot, with its
    estimate, so the next one's slot accounts for it. A waiter too large for any window gets
    ``at = inf`` and does not hold up the line.
    """
    live = live_reservations(reservations, limits, now)
    slots: list[Slot] = []
    earliest = max(now, paused_until) if paused_until is not None else now
    position = 0
    for waiter in waiters_in_order:
        if waiter.tokens > limits.max_tokens:
            slots.append(Slot(waiter.key, math.inf, position, "oversized"))
            continue
        window = _Window([r for r in live if expires_at(r, limits) > earliest], limits, correction)
        both, requests_at, tokens_at = window.first_fit(earliest, waiter.tokens)
        if both <= now:
            reason: AdmissionReason = "ok"
        elif paused_until is not None and both <= paused_until:
            reason = "paused"
        else:
            reason = "requests" if requests_at >= tokens_at else "tokens"
        slots.append(Slot(waiter.key, both, position, reason))
        live.append(Reservation(both, waiter.tokens))  # expires after every earlier one: stays sorted
        earliest = both
        position += 1
    return slots


__all__ = [
    "NO_CORRECTION",
    "Admission",
    "AdmissionReason",
    "Correction",
    "RateLimits",
    "Reservation",
    "Slot",
    "Waiter",
    "admission_order",
    "decide",
    "expires_at",
    "live_reservations",
    "schedule",
    "window_usage",
]
