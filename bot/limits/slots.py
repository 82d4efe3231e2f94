"""The next free slot in one attachment's sliding window (pure: no clock, no database).

The provider counts every request it admitted in the last ``window_seconds`` against
``max_requests`` and its tokens against ``max_tokens``. We keep the same log of our own calls,
past and booked, and give a new call the earliest moment from which it fits every window it
will be part of (:func:`next_slot`). A call counts for ``window + margin`` from when it went
out (or from its booked slot, until then); the margin absorbs the delay between our clock and
the provider's. docs/limiter.md explains the model with a diagram.

What a call counts (:func:`charge`): its estimate until it is answered; then the most either
documented accounting can charge for it (its *ceiling*: the prompt tokens the provider reported
plus ``max_tokens``), or what it used when the provider has been seen to refund unused output
(:func:`refunds_seen`). Other users of the same attachment (another app, a CLI call) show only in
the ``x-ratelimit-remaining-*`` headers: :func:`others_from_views` turns the views of the last
window into what they use, held for a window after each view.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Views read per decision. Each view is weighed against every call of its window, so reading all
# of them costs (views x calls): 20 ms a booking at 200 requests a window, inside the lock every
# booking of the attachment waits for. Fewer views only over-state what others use, the safe side.
VIEWS_READ = 16
# How far back the log given to these functions reaches, in spans. A view weighs the calls of the
# window before it, and a chain of calls still held (others_from_views) can begin a window before
# now: its views' windows reach back two spans.
LOG_SPANS = 3
# How far what others use may swing between two figures (a share of the limit) before the later
# one refutes the earlier: a steady app's count moves by a call or two as its calls come and go.
SWING_SHARE = 0.05


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
    def span(self) -> float:
        """How long one call counts against the window."""
        return self.window_seconds + self.margin_seconds


@dataclass(frozen=True)
class View:
    """What one response's x-ratelimit-* headers said (None: not said)."""

    remaining_requests: int | None = None
    remaining_tokens: int | None = None


@dataclass(frozen=True)
class Call:
    """One call in the log. Times are on the database clock (epoch seconds)."""

    slot: float  # when it may go
    estimate: int  # tokens counted until it is answered
    sent_at: float | None = None  # when it went out
    ceiling: int | None = None  # reported prompt tokens + max_tokens, once answered
    used: int | None = None  # reported prompt + completion tokens, once answered
    answered_at: float | None = None
    refused: bool = False  # answered 429: the provider did not count it
    view: View | None = None  # the headers of its answer

    def start(self, now: float, window: float) -> float:
        """When it counts from: when it went out; a booked call from its slot, or from now once
        the slot has passed (it is about to go), but never later than a window after the slot
        (its process died)."""
        if self.sent_at is not None:
            return self.sent_at
        return max(self.slot, min(now, self.slot + window))


def charge(call: Call, refunds: bool) -> int:
    """Tokens a call counts: 0 if refused; its estimate until answered (or if it failed); then
    its ceiling, or what it used when the provider refunds unused output."""
    if call.refused:
        return 0
    if call.used is None:
        return call.estimate
    if call.ceiling is None:  # the usage was our own estimate (none reported): the most it can be
        return max(call.used, call.estimate)
    return call.used if refunds else call.ceiling


@dataclass(frozen=True)
class Others:
    """Requests and tokens others use on the attachment, held until ``until``; several of these
    make a staircase (each held for a window after its view)."""

    requests: int
    tokens: int
    until: float


def _counted_at(call: Call, moment: float, refunds: bool, margin: float) -> int:
    """The least the provider can have charged ``call`` when a view sent at ``moment`` arrived:
    under refunds, a call answered more than two margins after it was still charged its ceiling
    (prompt + max_tokens, as Anthropic documents; the provider corrects it when the answer ends,
    up to a margin before we record the answer, and the view arrived up to a margin after
    ``moment``)."""
    if refunds and call.answered_at is not None and call.answered_at > moment + 2 * margin and call.ceiling:
        return call.ceiling
    return charge(call, refunds)


@dataclass(frozen=True)
class _Sent:
    """The calls that went out, in send order, to find a window's calls by bisection."""

    calls: list[Call]
    times: list[float]
    counted: list[int]  # counted[i]: calls before the i-th that were not refused
    ceilings: list[int]  # ceilings[i]: the ceilings of those of them that were answered

    @classmethod
    def of(cls, calls: Iterable[Call]) -> _Sent:
        ordered = sorted((c for c in calls if c.sent_at is not None), key=lambda c: c.sent_at or 0.0)
        counted, ceilings = [0], [0]
        for call in ordered:
            counted.append(counted[-1] + (not call.refused))
            ceilings.append(ceilings[-1] + (0 if call.refused else call.ceiling or 0))
        return cls(ordered, [c.sent_at or 0.0 for c in ordered], counted, ceilings)

    def between(self, low: float, high: float) -> list[Call]:
        """Sent in (low, high]."""
        return self.calls[bisect_right(self.times, low) : bisect_right(self.times, high)]


def _surely_held(log: _Sent, at: float, limits: RateLimits, viewed: Call) -> tuple[int, int]:
    """How many of our calls the provider surely counted when ``viewed`` (sent at ``at``) arrived
    (len(_ours_at(...))), and the ceilings of those answered, by bisection: the calls sent more than
    a margin before the view are counted from running sums, only those within a margin of it are
    looked at one by one."""
    margin = limits.margin_seconds
    low = bisect_right(log.times, at - limits.window_seconds + margin)
    middle = max(low, bisect_right(log.times, at - margin))
    high = bisect_right(log.times, at)
    near = [
        c
        for c in log.calls[middle:high]
        if c is not viewed and not c.refused and c.answered_at is not None and c.answered_at <= at
    ]
    requests = log.counted[middle] - log.counted[low] + len(near)
    ceilings = log.ceilings[middle] - log.ceilings[low] + sum(c.ceiling or 0 for c in near)
    if margin <= 0 and not viewed.refused:  # with no margin the view's own call is in those sums
        requests -= 1
        ceilings -= viewed.ceiling or 0
    if not viewed.refused:
        requests += 1
        ceilings += viewed.ceiling or 0
    return requests, ceilings


def _ours_at(log: _Sent, at: float, limits: RateLimits, viewed: Call) -> list[Call]:
    """Our calls the provider surely counted when ``viewed`` (sent at ``at``) arrived: ``viewed``
    itself unless refused, and those sent in the window before it that were answered before it
    went out or sent more than ``margin`` before it (the others may have reached the provider
    after it); none within ``margin`` of the window's far edge (it may have let them go)."""
    margin = limits.margin_seconds
    ours = [
        c
        for c in log.between(at - limits.window_seconds + margin, at)
        if c is not viewed
        and not c.refused
        and ((c.sent_at or 0.0) <= at - margin or (c.answered_at is not None and c.answered_at <= at))
    ]
    return ours if viewed.refused else [*ours, viewed]


def refunds_seen(calls: Sequence[Call], limits: RateLimits, now: float) -> bool:
    """True when a view whose window the log holds showed the provider counting less than the
    ceilings of answered calls it surely held (it refunds unused output: Anthropic's accounting),
    and views are still coming (one in the last window). Otherwise we assume it keeps charging
    prompt + max_tokens for the whole window, which is safe under either accounting. A view
    counting fewer requests than ours it surely held proves nothing: some reached the provider
    later than a margin after we sent them (an overloaded process), so it did not hold them all.

    Every such view counts, not only the newest: few views can prove it (a view must hold many
    answered calls of ours, and another app's tokens in the count hide our refunds), and a burst's
    views, each sent among calls still in flight, prove nothing. Reading only the newest 16, a
    proof was pushed out by the next burst within a second, and beside another app at 20 % the
    limiter counted ceilings most of the time: 24-26 of our 32 calls a window (bench/load_bench.py)."""
    log = _Sent.of(calls)
    horizon = now - (LOG_SPANS - 1) * limits.span  # older views' windows reach past the log
    viewed = [c for c in log.calls if c.view is not None and (c.sent_at or 0.0) > horizon]
    if not any((c.sent_at or 0.0) > now - limits.span for c in viewed):
        return False
    for call in reversed(viewed):
        view = call.view or View()
        if view.remaining_tokens is None:
            continue
        requests, ceilings = _surely_held(log, call.sent_at or 0.0, limits, call)
        if view.remaining_requests is not None and limits.max_requests - view.remaining_requests < requests:
            continue
        if limits.max_tokens - view.remaining_tokens < ceilings:
            return True
    return False


def others_from_views(calls: Sequence[Call], limits: RateLimits, now: float, refunds: bool) -> list[Others]:
    """What others use, from the views of the last window: the provider's count at a view minus
    ours it surely counted, held for a window after it. Calls sent within ``margin`` of the
    previous one form a cluster (a chain: any of them may have reached the provider before the
    next), so every call a view cannot place is in its own cluster: each view counts at least
    what others use, over-stating it by our calls of the cluster that arrived before it (and
    those near its window's far edge), and the cluster's smallest figure is kept once every
    member has been answered (until then the first to arrive may be missing: an incomplete
    cluster is not used, but its answered views already refute older figures: _refuted). Each
    figure holds for a window after its cluster: another app's use
    dips and rises as its calls leave the window and new ones come, and the largest of the last
    window's figures is what it may use again. The newest figure holds until a window after the
    newest view, or while no answer has come back without one (we may not have sent anything)."""
    log = _Sent.of(c for c in calls if not c.refused or c.view is not None)
    clusters: list[list[Call]] = []
    for call in log.calls:
        if clusters and (call.sent_at or 0.0) - (clusters[-1][-1].sent_at or 0.0) <= limits.margin_seconds:
            clusters[-1].append(call)
        else:
            clusters.append([call])
    # Newest first: a figure held less than a window is used; older ones only until the newest
    # complete one is found (it holds while views keep coming).
    result: list[Others] = []
    partial: list[Others] = []  # incomplete clusters' answered views: each is already an upper bound
    for cluster in reversed(clusters):
        until = (cluster[-1].sent_at or 0.0) + limits.span
        if until <= now and result:
            break
        figure = _cluster_others(cluster, log, limits, now, refunds)
        if figure is not None:
            result.append(Others(figure[0], figure[1], until))
            if until <= now:
                break
        elif (so_far := _cluster_others(cluster, log, limits, now, refunds, complete=False)) is not None:
            partial.append(Others(so_far[0], so_far[1], until))
    result = _refuted(list(reversed(result)), limits, partial)
    viewed = [c for c in log.calls if c.view is not None]
    newest = max((c.sent_at or 0.0 for c in viewed), default=-math.inf)
    until = newest + limits.span
    if not _views_stopped(log.calls, viewed):
        # No answer has come back without a view since the newest one: nothing says the others
        # left (we may simply have sent nothing for a window, the window being full), so their
        # figure holds a window from now.
        until = max(until, now + limits.span)
    if result and until > result[-1].until:
        # The newest complete figure holds while views keep coming: the next cluster's is not
        # complete until its members are answered.
        result[-1] = Others(result[-1].requests, result[-1].tokens, until)
    return [o for o in result if o.until > now]


def _refuted(figures: list[Others], limits: RateLimits, partial: Sequence[Others] = ()) -> list[Others]:
    """Each figure capped at the smallest later one (``partial``: of clusters not yet complete,
    whose answered views are upper bounds already) plus a swing. A later view that saw others use
    less, by more than a steady app's count swings, shows the earlier figure was mostly our own
    calls near its window's edges, counted as others': a burst of ours sent together sits within
    a margin of a later view's far edge (in bench/load_bench.py with two attachments, a cluster
    of 4 views counted 11-14 others where there were none, 0.3 s before one counting 1; with one,
    a lone view counted 24, 0.3 s before a cluster whose first answers counted 5). Uncapped, it
    held a whole window, or until the next cluster was complete."""
    swing_requests = max(1, math.ceil(SWING_SHARE * limits.max_requests))
    swing_tokens = math.ceil(SWING_SHARE * limits.max_tokens)
    later = sorted([*figures, *partial], key=lambda o: o.until, reverse=True)
    capped: dict[int, Others] = {}
    low_requests = low_tokens = math.inf  # the smallest figures held after the one being capped
    seen = 0
    for index in sorted(range(len(figures)), key=lambda i: figures[i].until, reverse=True):
        figure = figures[index]
        while seen < len(later) and later[seen].until > figure.until:
            low_requests = min(low_requests, later[seen].requests)
            low_tokens = min(low_tokens, later[seen].tokens)
            seen += 1
        capped[index] = Others(
            int(min(figure.requests, low_requests + swing_requests)),
            int(min(figure.tokens, low_tokens + swing_tokens)),
            figure.until,
        )
    return [capped[i] for i in range(len(figures))]


def _views_stopped(calls: Sequence[Call], viewed: Sequence[Call]) -> bool:
    """An answer came back without a view after the newest answer that had one (headers that
    stopped coming, or come only on 429s)."""
    last_view = max((c.answered_at or 0.0 for c in viewed), default=-math.inf)
    return any(c.view is None and c.answered_at is not None and c.answered_at > last_view for c in calls)


def awaiting_first_answer(calls: Sequence[Call], limits: RateLimits, now: float, patience: float) -> bool:
    """True while no answer has come back in the last window (a cold start, or after an idle
    spell) and a call sent less than ``patience`` ago is still out: the others wait for its answer,
    which brings the provider's view of what others use now. An answer younger than a window
    already tells it (its view holds for a window)."""
    if any(c.answered_at is not None and c.answered_at > now - limits.span for c in calls):
        return False
    return any(c.answered_at is None and c.sent_at is not None and c.sent_at > now - patience for c in calls)


def _view_tokens(call: Call, log: _Sent, limits: RateLimits, refunds: bool) -> int:
    """The tokens others use by one view (its request figure: _view_requests)."""
    view = call.view or View()
    if view.remaining_tokens is None:
        return 0
    at = call.sent_at or 0.0
    ours = _ours_at(log, at, limits, call)
    used = limits.max_tokens - view.remaining_tokens
    margin = limits.margin_seconds
    tokens = max(0, used - sum(_counted_at(c, at, refunds, margin) for c in ours))
    if tokens > 0 and not refunds and _someone_else(call, log, limits):
        # Someone else surely uses the attachment; whether the provider refunded our answered
        # calls is not known yet, so the others' part is counted as if it had (the most).
        tokens = max(0, used - sum(_counted_at(c, at, True, margin) for c in ours))
    return tokens


def _someone_else(viewed: Call, log: _Sent, limits: RateLimits) -> bool:
    """The view counts more requests than ours the provider can have held at its arrival (any
    sent within a margin of the window around it); fewer may be our own calls near its edges."""
    view = viewed.view or View()
    if view.remaining_requests is None:
        return True  # no request count to tell: assume someone else (the safe side)
    at = viewed.sent_at or 0.0
    window = log.between(at - limits.window_seconds - limits.margin_seconds, at + limits.margin_seconds)
    possible = sum(1 for c in window if not c.refused)
    return limits.max_requests - view.remaining_requests > possible


def _cluster_others(
    cluster: list[Call], log: _Sent, limits: RateLimits, now: float, refunds: bool, complete: bool = True
) -> tuple[int, int] | None:
    """The cluster's figure (requests, tokens), once complete (every member answered); with
    ``complete=False``, that of the members answered so far."""
    if complete and any(c.answered_at is None for c in cluster):
        return None
    # Only views whose window the log holds (an older one would miss our calls before it and
    # count them as others').
    horizon = now - (LOG_SPANS - 1) * limits.span
    viewed = [c for c in cluster if c.view is not None and (c.sent_at or 0.0) > horizon]
    if not viewed:
        return None
    # Every view's request figure (cheap: by bisection); the token figures of a sample (each
    # weighs every call of its window).
    requests = min(_view_requests(c, log, limits) for c in viewed)
    tokens = min(_view_tokens(c, log, limits, refunds) for c in _sample(viewed, VIEWS_READ))
    return requests, tokens


def _view_requests(call: Call, log: _Sent, limits: RateLimits) -> int:
    view = call.view or View()
    if view.remaining_requests is None:
        return 0
    ours, _ = _surely_held(log, call.sent_at or 0.0, limits, call)
    return max(0, limits.max_requests - view.remaining_requests - ours)


def _sample(viewed: list[Call], most: int) -> list[Call]:
    """At most ``most`` views of a cluster: the first sent (the likeliest first arrivals), then
    views spread over the rest (their figures differ by our calls near each one's edges)."""
    if len(viewed) <= most:
        return viewed
    head = most // 4
    rest = viewed[head:]
    step = len(rest) / (most - head)
    return viewed[:head] + [rest[int(i * step)] for i in range(most - head)]


def _staircase(others: Iterable[Others]) -> list[tuple[float, int, int]]:
    """(until, requests, tokens) steps: the most any view still held says, falling at each until."""
    steps = sorted(others, key=lambda o: o.until, reverse=True)
    out: list[tuple[float, int, int]] = []
    requests = tokens = 0
    for o in steps:
        requests, tokens = max(requests, o.requests), max(tokens, o.tokens)
        out.append((o.until, requests, tokens))
    out.reverse()  # by until ascending; before steps[i].until the value is out[i]
    return out


def _refund_at(call: Call, refunds: bool, limits: RateLimits) -> float | None:
    """When a refunded call starts counting what it used: a margin after its answer (the provider
    corrects the charge when the answer ends, which we see at about the same moment)."""
    if not refunds or call.used is None or call.answered_at is None or call.refused:
        return None
    return call.answered_at + limits.margin_seconds


def usage_at(
    calls: Sequence[Call], limits: RateLimits, now: float, refunds: bool, others: Sequence[Others] = ()
) -> tuple[int, int]:
    """(requests, tokens) counted in the window at ``now``."""
    requests = tokens = 0
    for call in calls:
        start = call.start(now, limits.window_seconds)
        if start <= now < start + limits.span and not call.refused:
            refund_at = _refund_at(call, refunds, limits)
            requests += 1
            tokens += (
                call.ceiling if refund_at is not None and now < refund_at and call.ceiling else charge(call, refunds)
            )
    held = [o for o in others if o.until > now]
    return (
        requests + max((o.requests for o in held), default=0),
        tokens + max((o.tokens for o in held), default=0),
    )


def next_slot(
    calls: Sequence[Call],
    limits: RateLimits,
    now: float,
    tokens: int,
    *,
    refunds: bool = False,
    others: Sequence[Others] = (),
    not_before: float | None = None,
) -> float:
    """The earliest moment >= max(now, not_before) from which a call of ``tokens`` fits every
    window it will count in (``limits.span`` from its start), beside every call already in the
    log, booked ones included, and what others use. ``inf`` if it can never fit."""
    if tokens > limits.max_tokens:
        return math.inf
    events: list[tuple[float, int, int]] = []  # (time, requests delta, tokens delta)
    for call in calls:
        if call.refused:
            continue
        start = call.start(now, limits.window_seconds)
        if start + limits.span <= now:
            continue
        amount = charge(call, refunds)
        refund_at = _refund_at(call, refunds, limits)
        if refund_at is not None and call.ceiling is not None and refund_at < start + limits.span:
            # Charged its ceiling until the provider corrects it, about when the answer ends.
            events.append((start, 1, call.ceiling))
            events.append((max(start, refund_at), 0, amount - call.ceiling))
        else:
            events.append((start, 1, amount))
        events.append((start + limits.span, -1, -amount))
    steps = _staircase(o for o in others if o.until > now)
    if steps:  # before the first until, the most any held view says; then each step down
        events.append((-math.inf, steps[0][1], steps[0][2]))
        for (until, r, t), following in zip(steps, [*steps[1:], (math.inf, 0, 0)], strict=True):
            events.append((until, following[1] - r, following[2] - t))
    events.sort(key=lambda e: e[0])
    # Sweep the step function of usage; a segment is "full" when the new call would not fit in it.
    full: list[tuple[float, float]] = []
    requests = used = 0
    index = 0
    while index < len(events):
        moment = events[index][0]
        while index < len(events) and events[index][0] == moment:
            requests += events[index][1]
            used += events[index][2]
            index += 1
        end = events[index][0] if index < len(events) else math.inf
        if end > moment and (requests + 1 > limits.max_requests or used + tokens > limits.max_tokens):
            if full and full[-1][1] == moment:
                full[-1] = (full[-1][0], end)
            else:
                full.append((moment, end))
    start = max(now, not_before if not_before is not None else now)
    for begin, end in full:
        if end <= start:
            continue
        if begin >= start + limits.span:
            break
        start = end
    return start


__all__ = [
    "LOG_SPANS",
    "Call",
    "Others",
    "RateLimits",
    "View",
    "awaiting_first_answer",
    "charge",
    "next_slot",
    "others_from_views",
    "refunds_seen",
    "usage_at",
]
