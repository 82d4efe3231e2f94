"""The limiter's database side: bookings serialized in one locked row per attachment, slots,
answers, pauses that move booked calls, the pool (bot.limits.admission)."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
from sqlalchemy import event, select

from bot.limits.admission import AdmissionStopped, RateLimiter, RequestTooLarge, record_usage
from bot.limits.models import RateReservation, TokenUsage
from bot.limits.slots import RateLimits, View


def _max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _answer(limiter: RateLimiter, booking, used: int = 10) -> None:
    limiter.settle(booking, used=used, prompt_tokens=used)


def test_beyond_the_request_limit_a_call_is_booked_a_window_later(sessions):
    limiter = RateLimiter(sessions, RateLimits(max_requests=3, max_tokens=1000, window_seconds=30))
    first = limiter.acquire(["inference"], 10)
    _answer(limiter, first)  # answered: no longer the window's first call
    for _ in range(2):
        _answer(limiter, limiter.acquire(["inference"], 10))
    booking = limiter.book(["inference"], 10)
    assert booking.sent_at is None
    assert 29.9 < booking.slot - first.sent_at <= 30.01  # when the first call leaves the window


def test_a_call_booked_a_window_ahead_goes_as_soon_as_an_answer_frees_room(sessions):
    # Two calls fill the window; a third is booked a window later. One of the two is refused (the
    # provider did not count it): the sleeping call looks early and goes, not 30 s later.
    limiter = RateLimiter(sessions, RateLimits(max_requests=2, max_tokens=1000, window_seconds=30))
    first = limiter.acquire(["inference"], 10)
    _answer(limiter, first)
    second = limiter.acquire(["inference"], 10)
    went: list = []
    third = threading.Thread(target=lambda: went.append(limiter.acquire(["inference"], 10)), daemon=True)
    third.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not _booked(sessions):
        time.sleep(0.05)
    assert _booked(sessions), "the third call was not booked"
    assert not went  # its slot is a window away
    limiter.settle(second, refused=True)
    third.join(10)
    assert went and went[0].sent_at is not None
    assert went[0].sent_at - first.sent_at < 15  # well before the first call leaves the window


def _booked(sessions) -> bool:
    with sessions() as session:
        return session.execute(select(RateReservation.id).where(RateReservation.sent_at.is_(None))).first() is not None


def test_the_first_call_goes_alone_after_a_quiet_window_and_a_new_wave_does_not(sessions):
    limiter = RateLimiter(sessions, RateLimits(max_requests=100, max_tokens=10**6, window_seconds=4.0))
    pool = ["inference"]
    first = limiter.acquire(pool, 1)  # a cold start: it goes, and brings the provider's view
    waiting = limiter.book(pool, 1)
    assert waiting.slot >= first.sent_at + 0.2  # the others look again until it is answered
    limiter.forget(waiting)
    time.sleep(2.0)
    _answer(limiter, first)
    time.sleep(2.4)  # the first call has left the window; its answer is younger than one
    out = limiter.acquire(pool, 1)
    booked = limiter.book(pool, 1)
    assert booked.slot <= time.time()  # a new wave goes at once while ``out`` is out
    limiter.forget(booked)
    _answer(limiter, out)
    time.sleep(4.3)  # a quiet window: no answer in the last one
    alone = limiter.acquire(pool, 1)
    assert limiter.book(pool, 1).slot >= alone.sent_at + 0.2


def test_an_answer_shrinks_a_call_to_its_ceiling_and_frees_the_rest(sessions):
    limiter = RateLimiter(sessions, RateLimits(max_requests=100, max_tokens=1000, window_seconds=30))
    booking = limiter.acquire(["inference"], 900, prompt_tokens=800)  # 100 of it is the output cap
    waiting = limiter.book(["inference"], 200)
    assert waiting.slot > booking.sent_at + 29  # no room while it counts 900
    limiter.forget(waiting)
    limiter.settle(booking, used=150, prompt_tokens=120)  # ceiling: 120 + 100
    later = limiter.acquire(["inference"], 200)
    assert later.sent_at is not None and later.waited_seconds < 5
    requests, tokens = limiter.usage()
    assert (requests, tokens) == (2, 220 + 200)  # the ceiling, not the usage: refunds were never seen


def test_a_pause_stops_everyone_and_the_booked_calls_wait_it_out(sessions):
    limiter = RateLimiter(sessions, RateLimits(max_requests=100, max_tokens=1000, window_seconds=30))
    _answer(limiter, limiter.acquire(["inference"], 1))
    limiter.pause("inference", 0.6)
    other_process = RateLimiter(sessions, limiter.limits)
    booking = other_process.acquire(["inference"], 1)
    assert booking.waited_seconds >= 0.4


def test_a_request_larger_than_the_window_is_refused_explicitly(sessions):
    limiter = RateLimiter(sessions, RateLimits(max_requests=10, max_tokens=100, window_seconds=30))
    with pytest.raises(RequestTooLarge):
        limiter.acquire(["inference"], 101)


def test_a_stop_while_waiting_frees_the_slot(sessions):
    limiter = RateLimiter(sessions, RateLimits(max_requests=1, max_tokens=1000, window_seconds=30))
    _answer(limiter, limiter.acquire(["inference"], 1))
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(AdmissionStopped):
        limiter.acquire(["inference"], 1, should_stop=stop.is_set)
    with sessions() as session:
        assert len(session.execute(select(RateReservation)).all()) == 1  # only the answered call


def test_concurrent_bookings_never_exceed_the_window(sessions):
    window = 1.0
    limiter = RateLimiter(sessions, RateLimits(max_requests=15, max_tokens=10**6, window_seconds=window))
    _answer(limiter, limiter.acquire(["inference"], 1))
    errors: list[BaseException] = []
    sent: list[float] = []

    def caller():
        try:
            for _ in range(5):
                booking = limiter.acquire(["inference"], 1)
                sent.append(booking.sent_at)
                _answer(limiter, booking)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(sent) == 40
    assert _max_in_any_window(sent, window) <= 15
    assert time.monotonic() - started >= 2 * window * 0.9  # 41 requests at 15 per window


def test_threads_booking_at_once_hold_one_connection_not_one_each(sessions):
    # A worker runs WORKER_CONCURRENCY job threads; if each waited for the state row's lock
    # holding a pooled connection, 2 workers x 40 would use most of a database's connections.
    from sqlalchemy import event

    engine = sessions.kw["bind"]
    held, peak, guard = 0, 0, threading.Lock()

    def checkout(*_):
        nonlocal held, peak
        with guard:
            held += 1
            peak = max(peak, held)

    def checkin(*_):
        nonlocal held
        with guard:
            held -= 1

    limiter = RateLimiter(sessions, RateLimits(max_requests=1000, max_tokens=10**7, window_seconds=30))
    _answer(limiter, limiter.acquire(["inference"], 1))  # answered: later calls need not wait for a first
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    start, errors = threading.Barrier(12), []

    def caller():
        try:
            start.wait(timeout=10)
            for _ in range(3):
                limiter.book(["inference"], 1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    event.remove(engine, "checkout", checkout)
    event.remove(engine, "checkin", checkin)
    assert not errors
    assert peak == 1


def _acquire_in_process(url: str, count: int, queue) -> None:
    from bot.db.engine import make_engine, make_session_factory

    engine = make_engine(url)
    limiter = RateLimiter(
        make_session_factory(engine), RateLimits(max_requests=10, max_tokens=10**6, window_seconds=1.0)
    )
    for _ in range(count):
        booking = limiter.acquire(["inference"], 1)
        queue.put(booking.sent_at)  # when it went, on the database clock the limiter spaces
        limiter.settle(booking, used=1, prompt_tokens=1)
    engine.dispose()


def test_two_processes_share_one_window(postgres_url):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=_acquire_in_process, args=(postgres_url, 15, queue)) for _ in range(2)]
    for process in processes:
        process.start()
    times = [queue.get(timeout=60) for _ in range(30)]
    for process in processes:
        process.join(timeout=30)
    # Send times are the bookings' own (the database clock, read as each goes); the slack is kept.
    assert _max_in_any_window(times, 1.0 - 0.05) <= 10


def test_a_call_with_room_goes_in_the_transaction_that_books_it(sessions):
    limiter = RateLimiter(sessions, RateLimits(max_requests=10, max_tokens=1000, window_seconds=30))
    commits: list[int] = []
    event.listen(sessions, "after_commit", lambda _session: commits.append(1))
    booking = limiter.acquire(["inference"], 10)
    assert booking.sent_at is not None
    assert len(commits) == 1  # booked and marked sent at once, not booked and then placed again


def test_calls_asked_for_while_a_booking_runs_are_placed_together_within_the_limit(sessions):
    # While one thread's booking transaction runs (slowed here), the others' calls wait for it and
    # are then placed in one transaction together, each counting the ones placed before it.
    limiter = RateLimiter(sessions, RateLimits(max_requests=5, max_tokens=10**6, window_seconds=30))
    answered = limiter.acquire(["inference"], 1)
    _answer(limiter, answered)  # answered: later calls need not wait for a first
    commits: list[int] = []
    slow_first = threading.Event()

    def on_commit(_session):
        commits.append(1)
        if not slow_first.is_set():
            slow_first.set()
            time.sleep(0.5)

    event.listen(sessions, "after_commit", on_commit)
    bookings: list = []
    errors: list[BaseException] = []

    def caller():
        try:
            bookings.append(limiter.book(["inference"], 1))
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=caller)
    first.start()
    assert slow_first.wait(10)
    others = [threading.Thread(target=caller) for _ in range(11)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(timeout=30)
    event.remove(sessions, "after_commit", on_commit)
    assert not errors
    assert len(commits) == 2  # the first booking, then the eleven others in one transaction
    assert len({b.reservation_id for b in bookings}) == 12
    # 13 calls at 5 a window: the last two windows later than the first.
    times = sorted([answered.sent_at, *(b.slot for b in bookings)])
    assert _max_in_any_window(times, 29.9) <= 5
    assert times[-1] - times[0] >= 59.9


def test_a_thread_whose_call_was_placed_returns_without_waiting_for_the_next_batch(sessions):
    # Five calls are placed together (batch 2); a sixth asks meanwhile and its own batch (3) is
    # held open. The five return at once: they wait for their call, not for whoever books next.
    limiter = RateLimiter(sessions, RateLimits(max_requests=1000, max_tokens=10**7, window_seconds=30))
    _answer(limiter, limiter.acquire(["inference"], 1))
    gates = [threading.Event() for _ in range(3)]
    commits: list[int] = []

    def on_commit(_session):
        commits.append(1)
        if len(commits) <= len(gates):
            assert gates[len(commits) - 1].wait(20)

    def asked(count: int) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with limiter._asked:
                if len(limiter._pending) == count:
                    return True
            time.sleep(0.01)
        return False

    first = threading.Thread(target=lambda: limiter.book(["inference"], 1))
    sixth = threading.Thread(target=lambda: limiter.book(["inference"], 1))
    event.listen(sessions, "after_commit", on_commit)
    try:
        first.start()  # batch 1, held open
        five = [threading.Thread(target=lambda: limiter.book(["inference"], 1)) for _ in range(5)]
        for thread in five:
            thread.start()
        assert asked(5)
        gates[0].set()  # batch 1 ends; the five are placed together in batch 2, held open
        assert asked(0)
        sixth.start()
        assert asked(1)
        gates[1].set()  # batch 2 ends; the sixth's batch 3 starts and is held open
        deadline = time.monotonic() + 10
        while len(commits) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(commits) == 3 and sixth.is_alive()  # batch 3 is at its commit, held
        for thread in five:
            thread.join(timeout=5)
        assert not any(thread.is_alive() for thread in five)
    finally:
        for gate in gates:
            gate.set()
        for thread in (first, sixth):
            if thread.ident is not None:
                thread.join(timeout=10)
        event.remove(sessions, "after_commit", on_commit)  # after its last commit has run through it
    assert len(commits) == 3


def test_a_call_counts_from_when_its_request_left_not_from_when_it_was_marked_sent(sessions):
    limiter = RateLimiter(sessions, RateLimits(max_requests=1, max_tokens=1000, window_seconds=30))
    booking = limiter.acquire(["inference"], 10)
    time.sleep(0.3)  # its thread was slow to send it
    leaving = limiter.departing(booking)
    assert leaving.departed_at - booking.sent_at >= 0.29
    _answer(limiter, leaving)
    with sessions() as session:
        assert session.get(RateReservation, booking.reservation_id).sent_at == leaving.departed_at
    later = limiter.book(["inference"], 10)
    assert later.slot - leaving.departed_at >= 29.99  # a window after it left


def test_among_attachments_where_a_call_starts_at_once_the_least_used_takes_it(sessions):
    limits = RateLimits(max_requests=10, max_tokens=10**6, window_seconds=30)
    limiter = RateLimiter(sessions, {"inference": limits, "inference_2": limits})
    _answer(limiter, limiter.acquire(["inference"], 1))  # one call on the first attachment
    assert limiter.acquire(["inference", "inference_2"], 1).name == "inference_2"


def test_a_pool_books_the_attachment_where_a_call_starts_first_and_moves_calls_off_a_paused_one(sessions):
    limits = RateLimits(max_requests=2, max_tokens=10**6, window_seconds=30)
    limiter = RateLimiter(sessions, {"inference": limits, "inference_2": limits})
    pool = ["inference", "inference_2"]
    names = []
    for _ in range(4):
        booking = limiter.acquire(pool, 1)
        names.append(booking.name)
        _answer(limiter, booking)
    assert sorted(names) == ["inference", "inference", "inference_2", "inference_2"]  # both filled, none waited
    booked = limiter.book(pool, 1)
    assert booked.slot > time.time() + 25  # both windows are full for half a minute
    with sessions() as session:
        paused_before = session.execute(
            select(RateReservation.limiter).where(RateReservation.id == booked.reservation_id)
        ).scalar_one()
    limiter.pause(paused_before, 60)
    limiter.forget(booked)
    moved = limiter.book(pool, 1)
    assert moved.name != paused_before  # the paused attachment cannot take it sooner


def test_a_view_showing_another_app_delays_our_next_call(sessions):
    limiter = RateLimiter(sessions, RateLimits(max_requests=10, max_tokens=10**6, window_seconds=30))
    first = limiter.acquire(["inference"], 1)
    # The provider counted 9 requests when ours arrived: ours and 8 of another app's.
    limiter.settle(first, used=1, prompt_tokens=1, view=View(remaining_requests=1, remaining_tokens=None))
    second = limiter.acquire(["inference"], 1)
    _answer(limiter, second)
    assert limiter.usage()[0] == 10  # our 2 and the other app's 8
    assert limiter.book(["inference"], 1).slot > time.time() + 25


def test_usage_is_recorded_per_team_user_and_day(sessions):
    with sessions.begin() as session:
        record_usage(session, team_id="T1", user_id="U1", prompt_tokens=100, completion_tokens=20)
    with sessions.begin() as session:
        record_usage(session, team_id="T1", user_id="U1", prompt_tokens=50, completion_tokens=5)
        record_usage(session, team_id="T2", user_id="U1", prompt_tokens=7, completion_tokens=1)
    with sessions() as session:
        rows = {(r.team_id, r.user_id): r for r in session.execute(select(TokenUsage)).scalars()}
    assert (rows["T1", "U1"].requests, rows["T1", "U1"].prompt_tokens, rows["T1", "U1"].completion_tokens) == (
        2,
        150,
        25,
    )
    assert rows["T2", "U1"].prompt_tokens == 7
