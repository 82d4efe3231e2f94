import heapq
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.limits.window import (
    Admission,
    Correction,
    RateLimits,
    Reservation,
    decide,
    expires_at,
    live_reservations,
    window_usage,
)

HAIKU = RateLimits(max_requests=200, max_tokens=800_000, window_seconds=60.0)
SMALL = RateLimits(max_requests=3, max_tokens=100, window_seconds=10.0)
SMALL_WITH_MARGIN = RateLimits(max_requests=3, max_tokens=100, window_seconds=10.0, margin_seconds=2.0)


def r(admitted_at: float, tokens: int) -> Reservation:
    return Reservation(admitted_at=admitted_at, tokens=tokens)


@pytest.mark.parametrize(
    ("limits", "reservations", "now", "tokens", "paused_until", "expected"),
    [
        # Empty window: anything up to the whole budget fits.
        (SMALL, [], 0.0, 100, None, Admission(True, "ok", None)),
        (SMALL, [], 0.0, 0, None, Admission(True, "ok", None)),
        # More tokens than the window ever holds: an explicit outcome, no retry time.
        (SMALL, [], 0.0, 101, None, Admission(False, "oversized", None)),
        (SMALL, [r(1.0, 10)] * 3, 2.0, 101, 50.0, Admission(False, "oversized", None)),
        # Request limit: the oldest of three must expire (1 + 10 = 11).
        (SMALL, [r(1.0, 1), r(2.0, 1), r(3.0, 1)], 5.0, 1, None, Admission(False, "requests", 11.0)),
        # Unordered input is fine.
        (SMALL, [r(3.0, 1), r(1.0, 1), r(2.0, 1)], 5.0, 1, None, Admission(False, "requests", 11.0)),
        # Five live, limit three: three must expire, the third-soonest at 13.
        (
            SMALL,
            [r(4.0, 1), r(1.0, 1), r(5.0, 1), r(2.0, 1), r(3.0, 1)],
            5.0,
            1,
            None,
            Admission(False, "requests", 13.0),
        ),
        # Expiry is exclusive: at exactly admitted_at + window the reservation no longer counts.
        (SMALL, [r(1.0, 1), r(2.0, 1), r(3.0, 1)], 11.0, 1, None, Admission(True, "ok", None)),
        # Margin lengthens occupancy.
        (
            SMALL_WITH_MARGIN,
            [r(1.0, 1), r(2.0, 1), r(3.0, 1)],
            11.0,
            1,
            None,
            Admission(False, "requests", 13.0),
        ),
        # Token limit: 90 used, 20 wanted, need 10 freed -> the 30-token one at 2.0 expiring at 12.
        (SMALL, [r(2.0, 30), r(3.0, 60)], 4.0, 20, None, Admission(False, "tokens", 12.0)),
        # A zero-token reservation frees a request slot at 11 but no tokens: still 12.
        (SMALL, [r(1.0, 0), r(2.0, 30), r(3.0, 60)], 4.0, 20, None, Admission(False, "tokens", 12.0)),
        # Needs both to expire: 90 used, 100 wanted -> all 90 must go, at 13.
        (SMALL, [r(2.0, 30), r(3.0, 60)], 4.0, 100, None, Admission(False, "tokens", 13.0)),
        # Exactly full is allowed.
        (SMALL, [r(2.0, 30), r(3.0, 60)], 4.0, 10, None, Admission(True, "ok", None)),
        # Both limits bind: the later time wins (requests free at 11, tokens at 13).
        (
            SMALL,
            [r(1.0, 5), r(2.0, 5), r(3.0, 85)],
            4.0,
            20,
            None,
            Admission(False, "tokens", 13.0),
        ),
        # ...and when requests are the later constraint.
        (
            SMALL,
            [r(1.0, 85), r(2.0, 5), r(3.0, 5)],
            4.0,
            20,
            None,
            Admission(False, "requests", 11.0),
        ),
        (
            SMALL,
            [r(1.0, 5), r(2.0, 85), r(3.0, 5), r(3.5, 1)],
            4.0,
            20,
            None,
            Admission(False, "requests", 12.0),
        ),
        # Expired reservations are ignored.
        (SMALL, [r(-100.0, 100)] * 10, 0.0, 100, None, Admission(True, "ok", None)),
        # A pause refuses until its end...
        (SMALL, [], 0.0, 1, 30.0, Admission(False, "paused", 30.0)),
        # ...or until capacity frees, if that is later.
        (SMALL, [r(1.0, 1), r(2.0, 1), r(3.0, 1)], 5.0, 1, 7.0, Admission(False, "paused", 11.0)),
        # A pause that has ended is no pause.
        (SMALL, [], 30.0, 1, 30.0, Admission(True, "ok", None)),
        # Production figures.
        (HAIKU, [r(float(i) * 0.1, 4000) for i in range(199)], 20.0, 4000, None, Admission(True, "ok", None)),
        (
            HAIKU,
            [r(float(i) * 0.1, 4000) for i in range(200)],
            20.0,
            4000,
            None,
            Admission(False, "requests", 60.0),
        ),
        (HAIKU, [r(0.0, 799_000), r(1.0, 1000)], 2.0, 1001, None, Admission(False, "tokens", 60.0)),
    ],
)
def test_decide(limits, reservations, now, tokens, paused_until, expected):
    assert decide(reservations, limits, now, tokens, paused_until) == expected


@pytest.mark.parametrize(
    ("reservations", "now", "expected"),
    [
        ([], 0.0, (0, 0)),
        ([r(1.0, 10), r(2.0, 20)], 5.0, (2, 30)),
        ([r(1.0, 10), r(2.0, 20)], 11.0, (1, 20)),
        ([r(1.0, 10), r(2.0, 20)], 12.0, (0, 0)),
    ],
)
def test_window_usage(reservations, now, expected):
    assert window_usage(reservations, SMALL, now) == expected


def test_window_usage_includes_the_margin():
    assert window_usage([r(1.0, 10)], SMALL_WITH_MARGIN, 12.5) == (1, 10)
    assert window_usage([r(1.0, 10)], SMALL_WITH_MARGIN, 13.0) == (0, 0)


def test_live_reservations_are_sorted_by_expiry():
    live = live_reservations([r(3.0, 1), r(-20.0, 1), r(1.0, 1)], SMALL, 2.0)
    assert [x.admitted_at for x in live] == [1.0, 3.0]
    assert expires_at(live[0], SMALL) == 11.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_requests": 0, "max_tokens": 1, "window_seconds": 1.0},
        {"max_requests": 1, "max_tokens": 0, "window_seconds": 1.0},
        {"max_requests": 1, "max_tokens": 1, "window_seconds": 0.0},
        {"max_requests": 1, "max_tokens": 1, "window_seconds": 1.0, "margin_seconds": -0.5},
        {"max_requests": 1, "max_tokens": 1, "window_seconds": float("nan")},
    ],
)
def test_invalid_limits_are_rejected(kwargs):
    with pytest.raises(ValueError):
        RateLimits(**kwargs)


def test_negative_tokens_are_rejected():
    with pytest.raises(ValueError):
        decide([], SMALL, 0.0, -1)


# --- property: callers that retry at retry_at never overfill any window ------------------------

limits_strategy = st.builds(
    RateLimits,
    max_requests=st.integers(1, 6),
    max_tokens=st.integers(1, 300),
    window_seconds=st.floats(0.05, 20.0, allow_nan=False, allow_infinity=False),
    margin_seconds=st.sampled_from([0.0, 0.01, 0.5, 1.7]),
)

request_strategy = st.tuples(
    st.floats(0.0, 60.0, allow_nan=False, allow_infinity=False),  # arrival
    st.integers(0, 320),  # estimate (sometimes more than max_tokens)
    st.floats(0.0, 1.0),  # actual / estimate, reconciled after the call
    st.floats(0.0, 5.0, allow_nan=False),  # call duration before reconciliation
)

pause_strategy = st.none() | st.tuples(st.floats(0.0, 60.0, allow_nan=False), st.floats(0.0, 10.0, allow_nan=False))


def assert_tight(reservations, limits, now, tokens, paused_until, refusal):
    """retry_at admits the same request, and any earlier moment would still refuse it."""
    retry_at = refusal.retry_at
    assert retry_at is not None and retry_at > now
    assert decide(reservations, limits, retry_at, tokens, paused_until).admitted
    just_before = math.nextafter(retry_at, -math.inf)
    assert not decide(reservations, limits, just_before, tokens, paused_until).admitted


def assert_no_window_overfilled(admitted, limits, interval):
    """Every interval [t, t + interval) holds at most the limits (checking t at each admission is enough)."""
    admitted = sorted(admitted)
    for i, (start, _) in enumerate(admitted):
        inside = [tokens for at, tokens in admitted[i:] if at < start + interval]
        assert len(inside) <= limits.max_requests
        assert sum(inside) <= limits.max_tokens


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(limits_strategy, st.lists(request_strategy, max_size=25), pause_strategy)
def test_retrying_at_retry_at_respects_every_sliding_window(limits, requests, pause):
    paused_until = None
    pause_starts = math.inf
    if pause is not None:
        pause_starts, pause_length = pause
    # Events: (time, order, kind, index). Kinds: "try" an admission, "reconcile" a finished call,
    # "pause" a 429 that pauses the pool.
    events: list[tuple[float, int, str, int]] = []
    order = 0
    for index, (arrival, *_rest) in enumerate(requests):
        events.append((arrival, order, "try", index))
        order += 1
    if pause is not None:
        events.append((pause_starts, order, "pause", -1))
        order += 1
    heapq.heapify(events)

    reservations: dict[int, Reservation] = {}  # by request index; the database's rows
    admitted_actual: list[tuple[float, int]] = []
    oversized = 0
    steps = 0
    while events:
        steps += 1
        assert steps < 10_000, "simulation did not finish"
        now, _, kind, index = heapq.heappop(events)
        if kind == "pause":
            paused_until = now + pause_length
            continue
        arrival, estimate, actual_share, duration = requests[index]
        if kind == "reconcile":
            actual = math.floor(estimate * actual_share)
            reservations[index] = Reservation(reservations[index].admitted_at, actual)
            admitted_actual.append((reservations[index].admitted_at, actual))
            continue

        current = list(reservations.values())
        verdict = decide(current, limits, now, estimate, paused_until)
        if verdict.admitted:
            assert verdict.reason == "ok" and verdict.retry_at is None
            requests_in_window, tokens_in_window = window_usage(current, limits, now)
            assert requests_in_window + 1 <= limits.max_requests
            assert tokens_in_window + estimate <= limits.max_tokens
            reservations[index] = Reservation(now, estimate)
            heapq.heappush(events, (now + duration, order, "reconcile", index))
        elif verdict.reason == "oversized":
            assert estimate > limits.max_tokens and verdict.retry_at is None
            oversized += 1
        else:
            assert_tight(current, limits, now, estimate, paused_until, verdict)
            heapq.heappush(events, (verdict.retry_at, order, "try", index))
        order += 1

    # Everyone who could fit got in, and the reconciled (actual) figures never overfilled a window;
    # the estimates were within the limits at each admission (checked above).
    assert len(reservations) + oversized == len(requests)
    assert len(admitted_actual) == len(reservations)
    assert_no_window_overfilled(admitted_actual, limits, limits.window_seconds)
    # The margin is honoured too: no interval of window + margin holds more than the limits.
    assert_no_window_overfilled(admitted_actual, limits, limits.window_seconds + limits.margin_seconds)


@settings(max_examples=300, deadline=None)
@given(
    limits_strategy,
    st.lists(st.tuples(st.floats(-30.0, 30.0, allow_nan=False), st.integers(0, 300)), max_size=12),
    st.floats(0.0, 30.0, allow_nan=False),
    st.integers(0, 300),
    st.none() | st.floats(-5.0, 40.0, allow_nan=False),
)
def test_any_refusal_has_a_tight_retry_at(limits, rows, now, tokens, paused_until):
    reservations = [Reservation(at, t) for at, t in rows]
    verdict = decide(reservations, limits, now, tokens, paused_until)
    if tokens > limits.max_tokens:
        assert verdict == Admission(False, "oversized", None)
    elif verdict.admitted:
        assert verdict == Admission(True, "ok", None)
        used_requests, used_tokens = window_usage(reservations, limits, now)
        assert used_requests < limits.max_requests
        assert used_tokens + tokens <= limits.max_tokens
        assert paused_until is None or paused_until <= now
    else:
        assert verdict.reason in {"requests", "tokens", "paused"}
        assert_tight(reservations, limits, now, tokens, paused_until, verdict)


# -- a credit from the server's view leaves with the reservations it covered -------------------

CREDIT_LIMITS = RateLimits(max_requests=100, max_tokens=1000, window_seconds=6.0, margin_seconds=0.25)
# Three answered calls estimated at 100 each, which the server counted at 50 each: a credit of 150.
SEEN = [Reservation(100.0, 100, 0), Reservation(101.0, 100, 0), Reservation(102.0, 100, 0)]
CREDIT = Correction(tokens=-150, until=200.0, seen_at=102.0, seen_tokens=300)


@pytest.mark.parametrize(
    ("reservations", "now", "expected_tokens"),
    [
        (SEEN, 103.0, 150),  # all three live: the whole credit
        (SEEN, 106.5, 100),  # the first expired: two thirds of the credit are left
        (SEEN, 108.5, 0),  # all expired: nothing
        # A later call the view never saw counts its whole estimate: the expired call's share of
        # the credit is not handed to it.
        ([*SEEN, Reservation(103.0, 100)], 106.5, 200),
        ([*SEEN, Reservation(103.0, 100)], 108.5, 100),
    ],
)
def test_a_credit_leaves_the_window_with_the_calls_it_covered(reservations, now, expected_tokens):
    assert window_usage(reservations, CREDIT_LIMITS, now, CREDIT)[1] == expected_tokens
    room = CREDIT_LIMITS.max_tokens - expected_tokens
    # Admission agrees with the count: exactly the room left fits, one token more waits.
    assert decide(reservations, CREDIT_LIMITS, now, room, correction=CREDIT).admitted
    assert not decide(reservations, CREDIT_LIMITS, now, room + 1, correction=CREDIT).admitted


def test_a_positive_difference_stays_whole_until_it_expires():
    more = Correction(tokens=300, until=107.0, seen_at=102.0, seen_tokens=300)
    assert window_usage(SEEN, CREDIT_LIMITS, 106.5, more)[1] == 200 + 300


# -- an answered call counts its ceiling beside the server's view ------------------------------

VIEW = Correction(tokens=0, until=200.0, seen_at=102.0, seen_tokens=0, taken_at=103.0)


@pytest.mark.parametrize(
    ("reservation", "expected"),
    [
        (Reservation(101.0, 300), 300),  # not answered: its estimate
        (Reservation(101.0, 300, used=120, ceiling=250, answered_at=102.5), 250),  # answered before the view
        # Seen in flight, answered after the view: the view's difference was taken against the
        # estimate, which it keeps counting until a newer view.
        (Reservation(101.0, 300, used=120, ceiling=250, answered_at=103.5), 300),
        (Reservation(102.5, 300, used=120, ceiling=250, answered_at=103.5), 250),  # the view never saw it
        (Reservation(101.0, 300, used=120, ceiling=340, answered_at=102.5), 340),  # prompt under-estimated
    ],
)
def test_counted_in_view(reservation, expected):
    assert reservation.counted_in_view(VIEW) == expected


def test_answered_calls_count_their_ceiling_so_the_window_holds_what_the_server_allows():
    # Five answered calls estimated at 300 the server charges 250 each (prompt + output cap):
    # counted at their ceilings, a sixth of 250 fits in 1,500 with no credit needed.
    answered = [Reservation(100.0 + i / 10, 300, used=120, ceiling=250, answered_at=101.0) for i in range(5)]
    view = Correction(tokens=0, until=200.0, seen_at=100.4, seen_tokens=1250, taken_at=101.0)
    limits = RateLimits(max_requests=100, max_tokens=1500, window_seconds=6.0)
    assert window_usage(answered, limits, 101.5, view)[1] == 1250
    assert decide(answered, limits, 101.5, 250, correction=view).admitted
    assert not decide(answered, limits, 101.5, 251, correction=view).admitted
