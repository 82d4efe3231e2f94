"""The next free slot, what a call counts, refunds and others from the provider's views (pure)."""

from __future__ import annotations

import math
import random

import pytest

from bot.limits import slots
from bot.limits.slots import (
    Call,
    Others,
    RateLimits,
    View,
    awaiting_first_answer,
    charge,
    next_slot,
    others_from_views,
    refunds_seen,
    usage_at,
)

LIMITS = RateLimits(max_requests=3, max_tokens=1000, window_seconds=10.0, margin_seconds=0.5)


def sent(at: float, estimate: int = 100, **answer) -> Call:
    return Call(slot=at, estimate=estimate, sent_at=at, **answer)


def answered(at: float, *, ceiling: int, used: int, after: float = 1.0, view: View | None = None) -> Call:
    return sent(at, estimate=ceiling + 50, ceiling=ceiling, used=used, answered_at=at + after, view=view)


@pytest.mark.parametrize(
    ("calls", "tokens", "expected"),
    [
        ([], 100, 100.0),  # an empty log: now
        ([sent(95), sent(96)], 100, 100.0),  # room for a third request
        ([sent(95), sent(96), sent(97)], 100, 105.5),  # the oldest leaves after window + margin
        ([sent(91), sent(92), sent(99)], 100, 101.5),  # the first two left already; the third at 92 + 10.5
        ([sent(95, 900)], 200, 105.5),  # tokens: 900 + 200 > 1000 until the big call leaves
        ([sent(95, 900)], 100, 100.0),  # 900 + 100 fits exactly
        ([sent(95), sent(96)], 1001, math.inf),  # larger than the whole window: never
        # A booked call at 104 (not yet sent) leaves room before it only if the new call's own
        # window (100 .. 110.5) stays within the limits with it.
        ([sent(95), sent(96), Call(slot=104, estimate=100)], 100, 105.5),
    ],
)
def test_next_slot(calls, tokens, expected):
    assert next_slot(calls, LIMITS, 100.0, tokens) == pytest.approx(expected)


def test_a_booked_call_counts_from_its_slot_and_a_late_one_from_now():
    booked = Call(slot=104, estimate=100)
    assert booked.start(100.0, 10.0) == 104
    assert booked.start(106.0, 10.0) == 106  # its slot passed: it is about to go
    assert booked.start(130.0, 10.0) == 114  # its process died: it stops counting a window on


def test_a_pause_delays_the_slot():
    assert next_slot([], LIMITS, 100.0, 10, not_before=103.0) == 103.0


@pytest.mark.parametrize(
    ("call", "refunds", "expected"),
    [
        (sent(1, 500), False, 500),  # in flight: its estimate
        (answered(1, ceiling=300, used=120), False, 300),  # answered: the ceiling, both accountings' most
        (answered(1, ceiling=300, used=120), True, 120),  # refunds seen: what it used
        (Call(slot=1, estimate=500, sent_at=1, answered_at=2), True, 500),  # failed: the estimate stays
        (Call(slot=1, estimate=500, sent_at=1, answered_at=2, refused=True), False, 0),  # a 429 is not counted
    ],
)
def test_charge(call, refunds, expected):
    assert charge(call, refunds) == expected


def test_refunds_are_seen_only_when_the_provider_counts_less_than_the_ceilings_it_held():
    limits = RateLimits(max_requests=100, max_tokens=10_000, window_seconds=10.0, margin_seconds=0.1)
    earlier = [answered(t, ceiling=1000, used=200, after=0.5) for t in (1.0, 2.0, 3.0)]
    # At 5.0 the provider held three answered calls and this one: 4000 under (b), 1600 under (a).
    refunding = [*earlier, sent(5.0, 1100, view=View(None, 10_000 - 1600))]
    keeping = [*earlier, sent(5.0, 1100, view=View(None, 10_000 - 4000))]
    assert refunds_seen(refunding, limits, 6.0)
    assert not refunds_seen(keeping, limits, 6.0)
    assert not refunds_seen(refunding, limits, 16.0)  # no view in the last window: headers stopped
    # The provider counted 3 requests where we surely had 4 there: one of ours reached it late (an
    # overloaded process), so the low token count proves nothing.
    late = [*earlier, sent(5.0, 1100, view=View(100 - 3, 10_000 - 1600))]
    assert not refunds_seen(late, limits, 6.0)
    assert refunds_seen([*earlier, sent(5.0, 1100, view=View(100 - 4, 10_000 - 1600))], limits, 6.0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (7.0, True),  # the proof is older than the burst's 20 views, but the log holds its window
        (5.0 + 2 * 10.1 + 0.5, False),  # its window is past what the log holds: no longer a proof
    ],
)
def test_a_proof_of_refunds_holds_while_the_log_holds_its_view_not_only_among_the_newest(now, expected):
    limits = RateLimits(max_requests=100, max_tokens=100_000, window_seconds=10.0, margin_seconds=0.1)
    earlier = [answered(t, ceiling=1000, used=200, after=0.5) for t in (1.0, 2.0, 3.0)]
    proof = sent(5.0, 1100, ceiling=1000, used=200, answered_at=5.5, view=View(None, 100_000 - 1600))
    # Then a burst sent together, each view among calls in flight (it proves nothing); the last
    # of them is recent, so views are still coming.
    burst = [sent(6.0 + i / 100, 1100, view=View(None, 100_000 - 30_000)) for i in range(20)]
    late = [sent(now - 0.5, 1100, view=View(None, 100_000 - 30_000))]
    assert refunds_seen([*earlier, proof, *burst, *late], limits, now) is expected


def test_others_come_from_a_view_and_hold_a_window_after_the_newest_view_once_views_stop():
    limits = RateLimits(max_requests=40, max_tokens=10**6, window_seconds=6.0, margin_seconds=0.1)
    calls = [answered(1.0, ceiling=10, used=10), answered(2.0, ceiling=10, used=10, view=View(40 - 2 - 8, None))]
    # No answer has come back since without a view: we may just not have sent anything (the
    # window was full), so the others are still there: their figure holds a window from now.
    [others] = others_from_views(calls, limits, 3.0, refunds=False)
    assert (others.requests, others.until) == (8, 3.0 + 6.1)
    [others] = others_from_views(calls, limits, 8.2, refunds=False)
    assert others.until == 8.2 + 6.1
    # An answer without a view after it (the headers stopped): a window after the newest view.
    stopped = [*calls, answered(2.5, ceiling=10, used=10)]
    [others] = others_from_views(stopped, limits, 3.0, refunds=False)
    assert (others.requests, others.until) == (8, 2.0 + 6.1)
    assert others_from_views(stopped, limits, 8.2, refunds=False) == []  # a window after the view
    assert usage_at(calls, limits, 3.0, False, [others]) == (10, 20)


def test_views_of_calls_sent_together_count_only_themselves_and_the_smallest_is_kept():
    limits = RateLimits(max_requests=40, max_tokens=10**6, window_seconds=6.0, margin_seconds=0.1)
    # Three calls sent within 10 ms reached the provider in the order b, c, a; 5 others were there.
    a = answered(1.000, ceiling=10, used=10, view=View(40 - 5 - 3, None))
    b = answered(1.005, ceiling=10, used=10, view=View(40 - 5 - 1, None))
    c = answered(1.010, ceiling=10, used=10, view=View(40 - 5 - 2, None))
    [others] = others_from_views([a, b, c], limits, 3.0, refunds=False)
    assert others.requests == 5
    # While one of them is still out, the cluster is not used (its first arrival may be missing).
    unanswered = Call(slot=1.007, estimate=10, sent_at=1.007)
    assert others_from_views([a, c, unanswered], limits, 3.0, refunds=False) == []


def test_others_are_added_to_the_window_until_their_view_expires():
    limits = RateLimits(max_requests=10, max_tokens=10**6, window_seconds=10.0)
    held = [Others(requests=9, tokens=0, until=105.0)]
    assert next_slot([], limits, 100.0, 1, others=held) == 100.0  # 9 + 1 fits
    assert next_slot([sent(99.0)], limits, 100.0, 1, others=held) == 105.0  # until the view expires


def test_views_of_a_chain_of_calls_each_within_a_margin_of_the_previous_form_one_cluster():
    limits = RateLimits(max_requests=40, max_tokens=10**6, window_seconds=6.0, margin_seconds=0.1)
    # Sent 80 ms apart (the chain spans 160 ms), they reached the provider in the order a, b, c,
    # with 5 others there. c cannot place b (sent within a margin before it): on its own c's view
    # says 6 others; one cluster with a and b, the smallest figure is the true one.
    a = answered(1.00, ceiling=10, used=10, view=View(40 - 5 - 1, None))
    b = answered(1.08, ceiling=10, used=10, view=View(40 - 5 - 2, None))
    c = answered(1.16, ceiling=10, used=10, view=View(40 - 5 - 3, None))
    [others] = others_from_views([a, b, c], limits, 3.0, refunds=False)
    assert (others.requests, others.until) == (5, 3.0 + 6.1)  # no answer since without a view
    # A call sent more than a margin after the previous one starts a new cluster.
    d = answered(1.30, ceiling=10, used=10, view=View(40 - 5 - 4, None))
    assert [o.requests for o in others_from_views([a, b, c, d], limits, 3.0, refunds=False)] == [5, 5]


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        ([11, 1], [3, 1]),  # a later cluster saw 1: the 11 before it were mostly ours at its edges
        ([8, 7, 9], [8, 7, 9]),  # a steady app's count swings by a call or two: nothing refuted
        ([0, 5, 8], [0, 5, 8]),  # an app starting: later figures are higher, nothing changes
        ([14, 12, 2, 6], [4, 4, 2, 6]),  # each capped at the smallest later figure plus the swing
    ],
)
def test_a_figure_of_others_is_capped_by_later_smaller_ones_plus_a_swing(figures, expected):
    limits = RateLimits(max_requests=40, max_tokens=10**6, window_seconds=6.0, margin_seconds=0.1)
    # Clusters 1 s apart, 4 our calls each, every one answered with a view counting `figure` others.
    calls = []
    for number, figure in enumerate(figures):
        for k in range(4):
            at = 1.0 + number + k * 0.01
            calls.append(answered(at, ceiling=10, used=10, view=View(40 - figure - (k + 1) - 4 * number, None)))
    others = others_from_views(calls, limits, 1.0 + len(figures), refunds=False)
    assert [o.requests for o in others] == expected


def test_the_answered_views_of_a_cluster_still_out_already_refute_an_older_figure():
    limits = RateLimits(max_requests=40, max_tokens=10**6, window_seconds=6.0, margin_seconds=0.1)
    lone = answered(1.0, ceiling=10, used=10, view=View(40 - 24 - 1, None))  # counted 24 others
    # 0.3 s later a cluster: its first answer counts 5 others (lone and itself are ours), one call still out.
    first = answered(1.3, ceiling=10, used=10, view=View(40 - 5 - 2, None))
    still_out = Call(slot=1.31, estimate=10, sent_at=1.31)
    [others] = others_from_views([lone, first, still_out], limits, 2.0, refunds=False)
    assert others.requests == 5 + 2  # the 24 capped at the later 5 plus the swing (2 of 40)


@pytest.mark.parametrize(
    ("answered_after_view", "others_tokens"),
    [
        (0.05, 800),  # answered within two margins of the view: the provider may have refunded it
        (0.15, 800),
        (0.25, 0),  # answered later: the provider still charged its ceiling at the view
    ],
)
def test_under_refunds_a_call_answered_around_a_view_counts_the_least_it_can_have_been_charged(
    answered_after_view, others_tokens
):
    limits = RateLimits(max_requests=40, max_tokens=10_000, window_seconds=6.0, margin_seconds=0.1)
    at = 5.0
    earlier = sent(1.0, 1000, ceiling=1000, used=200, answered_at=at + answered_after_view)
    # The provider counted 1,100 tokens: the earlier call at its ceiling and the viewed call (100).
    viewed = sent(at, 100, ceiling=100, used=100, answered_at=at + 1.0, view=View(None, 10_000 - 1100))
    [others] = others_from_views([earlier, viewed], limits, at + 2.0, refunds=True)
    assert others.tokens == others_tokens


@pytest.mark.parametrize(
    ("edge_call", "expected_tokens"),
    [
        # One request more than ours surely held, and one of ours sent right at the window's far
        # edge: it may be ours, still held, so the tokens beyond our ceilings are all it counts.
        (True, 1000),
        # One request more than ours can have been: someone else surely uses the attachment; with
        # refunds not seen, its tokens count as if ours had been refunded (the most they can be).
        (False, 1000 + 2 * (1000 - 200)),
    ],
)
def test_tokens_count_as_if_refunded_only_when_someone_else_surely_shows(edge_call, expected_tokens):
    limits = RateLimits(max_requests=40, max_tokens=100_000, window_seconds=6.0, margin_seconds=0.1)
    at = 10.0
    calls = [answered(t, ceiling=1000, used=200, after=0.5) for t in (8.0, 9.0)]
    if edge_call:  # sent 5.95 s before the view: the provider may or may not still hold it
        calls.append(answered(at - 5.95, ceiling=1000, used=200, after=0.5))
    # The viewed call (1,000) and our two answered ones at their ceilings, and one more request of 1,000.
    viewed = answered(at, ceiling=1000, used=200, after=1.0, view=View(40 - 4, 100_000 - 4000))
    figures = others_from_views([*calls, viewed], limits, at + 2.0, refunds=False)
    assert (figures[-1].requests, figures[-1].tokens) == (1, expected_tokens)


@pytest.mark.parametrize(
    ("calls", "now", "expected"),
    [
        ([], 10.0, False),  # nothing out
        ([sent(9.5)], 10.0, True),  # a cold start: the first call is out, nothing answered yet
        ([sent(2.0)], 10.0, False),  # out for longer than the patience (5 s): its process may be dead
        # An answer came back within the last window: the next wave goes at once.
        ([answered(1.0, ceiling=10, used=10, after=3.0), sent(9.5)], 10.0, False),
        # The last answer is older than a window (an idle spell): the first call goes alone again.
        ([answered(1.0, ceiling=10, used=10, after=0.5), sent(9.5)], 10.0, True),
    ],
)
def test_the_first_call_goes_alone_only_when_no_answer_came_back_in_the_last_window(calls, now, expected):
    limits = RateLimits(max_requests=40, max_tokens=10**6, window_seconds=6.0, margin_seconds=0.1)
    assert awaiting_first_answer(calls, limits, now, patience=5.0) is expected


def test_the_counts_by_bisection_are_those_of_the_calls_themselves():
    # Every view's request figure, and the ceilings a proof of refunds weighs, are computed by
    # bisection (slots._surely_held); they must be exactly those of the calls _ours_at lists,
    # whatever the log holds.
    chance = random.Random(24)
    for _ in range(300):
        margin = chance.choice([0.0, 0.1, 0.25])
        limits = RateLimits(max_requests=40, max_tokens=10**6, window_seconds=6.0, margin_seconds=margin)
        calls = []
        for _ in range(chance.randint(1, 60)):
            sent = round(chance.uniform(0.0, 20.0), 1)  # ties too
            latency = chance.choice([None, 0.1, 0.3, 1.0, 3.0])
            answered = None if latency is None else sent + latency
            calls.append(
                Call(
                    slot=sent,
                    estimate=10,
                    sent_at=sent,
                    answered_at=answered,
                    ceiling=None if answered is None else chance.randint(1, 500),
                    refused=chance.random() < 0.1,
                    view=View(chance.randint(0, 40), None) if answered is not None else None,
                )
            )
        log = slots._Sent.of(calls)
        for call in log.calls:
            at = call.sent_at or 0.0
            ours = slots._ours_at(log, at, limits, call)
            assert slots._surely_held(log, at, limits, call) == (len(ours), sum(c.ceiling or 0 for c in ours))
