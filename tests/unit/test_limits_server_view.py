"""The server's view from x-ratelimit-* headers, and the correction it becomes (pure)."""

import math

import pytest

from bot.limits.server_view import (
    MAX_PAUSE_SECONDS,
    MAX_RESET_SECONDS,
    ServerView,
    capped_pause,
    correction_from_view,
    merge_views,
    parse_reset,
    server_view,
)
from bot.limits.window import (
    Correction,
    RateLimits,
    Reservation,
    Waiter,
    admission_order,
    decide,
    schedule,
    window_usage,
)

NOW = 1_780_000_000.0  # a unix time in 2026
LIMITS = RateLimits(max_requests=10, max_tokens=1000, window_seconds=6.0, margin_seconds=0.25)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("51s", 51.0),
        ("1m30s", 90.0),
        ("120ms", 0.12),
        ("1h2m3s", 3723.0 if 3723.0 <= MAX_RESET_SECONDS else MAX_RESET_SECONDS),
        ("0.5s", 0.5),
        ("2", 2.0),
        ("2.5", 2.5),
        (" 7S ", 7.0),
        ("0", 0.0),
        (str(int(NOW + 30)), 30.0),  # unix time in seconds
        (str(int((NOW + 30) * 1000)), 30.0),  # unix time in milliseconds: not years
        (str(int(NOW - 30)), 0.0),  # a reset in the past
        ("999999999999999999", 0.0),  # absurdly far in ms epoch terms is in the past for us? no: capped
        ("soon", None),
        ("", None),
        ("-5s", None),
        (None, None),
        ("100000h", MAX_RESET_SECONDS),
    ],
)
def test_parse_reset(value, expected):
    got = parse_reset(value, NOW)
    if value == "999999999999999999":
        assert got == MAX_RESET_SECONDS  # ms epoch far in the future: capped, never years
        return
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_server_view_reads_any_case_and_ignores_garbage():
    view = server_view(
        {
            "X-RateLimit-Remaining-Requests": "12",
            "x-ratelimit-remaining-tokens": "5000",
            "x-ratelimit-limit-requests": "40",
            "x-ratelimit-limit-tokens": "oops",
            "x-ratelimit-reset-requests": "1m",
            "x-ratelimit-reset-tokens": "250ms",
            "content-type": "text/event-stream",
        },
        NOW,
    )
    assert view == ServerView(12, 5000, 40, None, 60.0, 0.25)
    assert server_view({}, NOW).empty
    assert server_view({"x-ratelimit-remaining-tokens": "-3"}, NOW).empty


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(5.0, 5.0), (None, 3.0), (-1.0, 0.0), (10_000.0, MAX_PAUSE_SECONDS), (math.inf, 3.0), (math.nan, 3.0)],
)
def test_capped_pause(seconds, expected):
    assert capped_pause(seconds, default=3.0) == expected


def r(at, tokens, used=None):
    return Reservation(at, tokens, used)


@pytest.mark.parametrize(
    ("view", "reservations", "expected"),
    [
        # The server agrees with us: no correction, tokens even show the estimates' excess as a credit.
        (ServerView(remaining_requests=8, remaining_tokens=800), [r(99, 100), r(100, 100)], Correction(0, 0, 106.25)),
        # Another app used 3 requests and 300 tokens.
        (ServerView(remaining_requests=5, remaining_tokens=500), [r(99, 100), r(100, 100)], Correction(3, 300, 106.25)),
        # The server charged less than our estimates (it corrected to the usage): a credit.
        (ServerView(remaining_tokens=950), [r(99, 100, 20), r(100, 100)], Correction(0, -150, 106.25)),
        # A reservation admitted after this call is not in the server's view yet.
        (ServerView(remaining_requests=9), [r(100, 100), r(100.5, 100)], Correction(0, 0, 106.25)),
        # Reservations older than a window before the admission are not in it either.
        (ServerView(remaining_requests=9), [r(93.0, 100), r(100, 100)], Correction(0, 0, 106.25)),
        # The reset shortens the hold, never lengthens it beyond a window after the admission.
        (
            ServerView(remaining_requests=0, reset_requests=2.0, reset_tokens=1.0),
            [r(100, 100)],
            Correction(9, 0, 103.0),
        ),
        (ServerView(remaining_requests=0, reset_requests=60.0), [r(100, 100)], Correction(9, 0, 106.25)),
        # A server limit below ours shrinks our room; one above ours does not grow it.
        (ServerView(remaining_requests=4, limit_requests=5), [r(100, 1)], Correction(5, 0, 106.25)),
        (ServerView(remaining_requests=99, limit_requests=100), [r(100, 1)], Correction(0, 0, 106.25)),
        # Nothing said: nothing to correct.
        (ServerView(), [r(100, 1)], None),
    ],
)
def test_correction_from_view(view, reservations, expected):
    got = correction_from_view(view, reservations, LIMITS, admitted_at=100.0, now=101.0)
    if expected is None:
        assert got is None
        return
    assert (got.requests, got.tokens, got.until) == (expected.requests, expected.tokens, expected.until)
    # The view covers what we admitted in the window up to the call it answered.
    assert got.seen_at == 100.0
    assert got.seen_tokens == sum(r.tokens for r in reservations if 94.0 < r.admitted_at <= 100.0)


def test_a_correction_holds_room_the_server_does_not_have_until_it_expires():
    live = [r(100.0, 100)]
    correction = Correction(requests=9, tokens=0, until=103.0)
    refused = decide(live, LIMITS, 101.0, 10, correction=correction)
    assert not refused.admitted and refused.reason == "requests" and refused.retry_at == 103.0
    assert decide(live, LIMITS, 103.0, 10, correction=correction).admitted


def test_a_credit_never_exceeds_what_reconciled_reservations_over_estimated():
    # Nine calls of 100 estimated, one reconciled at 10: at most 90 tokens of credit.
    live = [r(100.0, 100, 10)] + [r(100.0 + i / 10, 100) for i in range(1, 9)]
    huge_credit = Correction(tokens=-10_000, until=200.0)
    assert decide(live, LIMITS, 101.0, 190, correction=huge_credit).admitted
    assert not decide(live, LIMITS, 101.0, 191, correction=huge_credit).admitted
    # Under "prompt + max_tokens for the whole window" the server sees no credit at all.
    no_credit = Correction(tokens=0, until=200.0)
    assert not decide(live, LIMITS, 101.0, 101, correction=no_credit).admitted
    # Without any server view, reconciled usage counts (the documented accounting).
    assert decide(live, LIMITS, 101.0, 190, correction=Correction()).admitted


def test_the_line_is_strict_a_large_request_is_not_starved():
    live = [r(100.0, 900)]
    line = admission_order(
        [Waiter(1, 500, since=10.0), Waiter(2, 50, since=11.0), Waiter(3, 50, since=12.0)], 101.0, aging_seconds=30
    )
    slots = schedule(live, line, LIMITS, 101.0)
    # The 500-token call waits for the 900 to expire; the small ones, though they would fit now, go after it.
    assert [s.key for s in slots] == [1, 2, 3]
    assert slots[0].at == 106.25 and slots[0].position == 0 and slots[0].reason == "tokens"
    assert slots[1].at == 106.25 and slots[2].at == 106.25
    assert [s.position for s in slots] == [0, 1, 2]


def test_background_waits_behind_interactive_until_it_has_aged():
    waiters = [
        Waiter(1, 10, lane="background", since=0.0),
        Waiter(2, 10, lane="interactive", since=5.0),
        Waiter(3, 10, lane="background", since=40.0),
    ]
    assert [w.key for w in admission_order(waiters, 20.0, aging_seconds=30)] == [2, 1, 3]
    assert [w.key for w in admission_order(waiters, 31.0, aging_seconds=30)] == [1, 2, 3]


def test_an_oversized_waiter_does_not_hold_up_the_line():
    slots = schedule([], [Waiter(1, 5000), Waiter(2, 10)], LIMITS, 0.0)
    assert slots[0].at == math.inf and slots[0].reason == "oversized"
    assert slots[1].at == 0.0 and slots[1].position == 0


def test_the_largest_request_difference_is_held_until_its_reset():
    held = merge_views(Correction(), Correction(requests=3, tokens=50, until=110.0), 100.0)
    assert held.held_requests == 3 and held.held_until == 110.0
    # A newer view caught a moment with one call of the other app fewer: 3 stay held.
    newer = merge_views(held, Correction(requests=2, tokens=-20, until=111.0), 101.0)
    assert (newer.requests, newer.tokens, newer.until) == (2, -20, 111.0)
    assert newer.extra_requests(105.0) == 3
    assert newer.extra_requests(110.5) == 2  # the held one reset; the newest still counts
    # An equal difference is held again, from its own view.
    again = merge_views(newer, Correction(requests=3, until=112.0), 102.0)
    assert (again.held_requests, again.held_until) == (3, 112.0)
    # A larger one: the other app is getting busier, and its rise is assumed to repeat once.
    larger = merge_views(again, Correction(requests=5, until=112.5), 102.5)
    assert (larger.requests, larger.held_requests, larger.held_until) == (5, 7, 112.5)
    # Once the held one has expired the newest view is all there is, and no rise is read into it.
    assert merge_views(newer, Correction(requests=1, until=120.0), 111.0).held_requests == 1
    assert merge_views(newer, Correction(requests=6, until=120.0), 111.0).held_requests == 6


@pytest.mark.parametrize(
    ("held", "new", "expected"),
    [
        (0, 1, 2),  # a first call of another app: room for one more
        (2, 3, 4),
        (2, 8, 14),
        (3, 3, 3),  # no rise
        (3, 0, 3),  # our own calls again: the held difference stays until its reset
    ],
)
def test_a_rising_difference_is_assumed_to_rise_once_more(held, new, expected):
    active = Correction(requests=held, until=110.0, held_requests=held, held_until=110.0)
    assert merge_views(active, Correction(requests=new, until=111.0), 100.0).held_requests == expected


def test_a_view_counts_our_calls_in_the_order_they_reached_the_server():
    """The view's call went out at 100.05. The server then counted three of ours beside it and
    one of another app's: the difference must say one, whatever the admission times say."""
    reservations = [
        # admitted inside the window, but sent (so counted by the server) only after it had expired there
        Reservation(94.02, 10, 10, sent_at=94.03),
        Reservation(96.0, 10, 10, sent_at=96.01),
        Reservation(98.0, 10, 10, sent_at=98.01),
        # admitted before the view's call, sent after it: not counted yet
        Reservation(100.0, 10, 10, sent_at=100.09),
        Reservation(100.01, 10, 10, sent_at=100.05),  # the view's own call
        Reservation(100.06, 10),  # in flight, admitted after the view's call went out
    ]
    view = ServerView(remaining_requests=LIMITS.max_requests - 4)
    by_admission = correction_from_view(view, reservations, LIMITS, admitted_at=100.01, now=101.0)
    by_sending = correction_from_view(view, reservations, LIMITS, admitted_at=100.01, now=101.0, sent_at=100.05)
    assert by_admission.requests == 0  # the other app's call hidden behind two of ours
    assert by_sending.requests == 1


def test_another_apps_tokens_are_not_netted_against_our_credit():
    """Two answered calls of ours, counted at 100 each, used 20 each: the server (correcting to
    the usage) charged 40 for them, plus another app's call of 100 tokens. The difference nets to
    -60, but once our calls leave the window the other app's 100 must still be counted."""
    answered = [
        Reservation(99.0, 100, 20, ceiling=100, answered_at=99.5, sent_at=99.0),
        Reservation(100.0, 100, 20, ceiling=100, answered_at=100.5, sent_at=100.0),
    ]
    view = ServerView(remaining_requests=LIMITS.max_requests - 3, remaining_tokens=LIMITS.max_tokens - 140)
    got = correction_from_view(view, answered, LIMITS, admitted_at=100.0, now=101.0, sent_at=100.0)
    assert (got.requests, got.tokens, got.external_tokens) == (1, -60, 100)
    assert window_usage(answered, LIMITS, 101.0, got)[1] == 140  # all live: exactly what the server counts
    # The first has left the window and a new call is in flight: the second (20 used, half of the
    # credit), the new one at its estimate, and the other app's 100, whole.
    later = [Reservation(105.0, 50)]
    assert window_usage(answered + later, LIMITS, 105.5, got)[1] == 100 - 80 + 50 + 100
    # Without another app in the requests, the same difference is all our credit.
    alone = correction_from_view(
        ServerView(remaining_requests=LIMITS.max_requests - 2, remaining_tokens=LIMITS.max_tokens - 40),
        answered, LIMITS, admitted_at=100.0, now=101.0, sent_at=100.0,
    )  # fmt: skip
    assert (alone.tokens, alone.external_tokens) == (-160, 0)
