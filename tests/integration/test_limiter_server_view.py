"""The limiter trusts the server's view and serves its line fairly, on PostgreSQL.

Each test runs real HTTP calls through the gateway against the fake inference server, whose
rate limit can charge like Anthropic documents ("corrected"), keep charging prompt + max_tokens
("reserved"), or be shared with another app (external usage): none may end in a 429.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, select

from bot.db.engine import make_engine, make_session_factory
from bot.inference.client import InferenceClient
from bot.inference.gateway import CallContext, ModelGateway
from bot.limits.admission import GlobalRateLimiter
from bot.limits.models import RateLimiterState, RateWaiter
from bot.limits.server_view import ServerView
from bot.limits.window import RateLimits
from tests.fakes.inference import FakeInference

KEY = "server-view-key"


@pytest.fixture
def pg_sessions(postgres_url):
    engine = make_engine(postgres_url, pool_size=12)
    yield make_session_factory(engine), engine
    engine.dispose()


def body(text: str, max_tokens: int) -> dict:
    return {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}


def run_calls(gateway: ModelGateway, bodies: list[dict], threads: int, deadline_s: float = 60.0) -> list:
    deadline = time.monotonic() + deadline_s

    def one(b: dict):
        assert time.monotonic() < deadline, "calls did not finish in time"
        return gateway.call(b, CallContext(team_id="T", user_id="U", should_stop=lambda: time.monotonic() > deadline))

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, bodies))


@pytest.mark.parametrize("accounting", ["corrected", "reserved"])
def test_no_429_under_either_token_accounting(pg_sessions, accounting):
    sessions, _ = pg_sessions
    # Each call reserves prompt + 400 tokens; answers are a few tokens. 2,000 tokens a window holds
    # about four reservations: under "reserved" the unused output stays charged for the whole window.
    with FakeInference(
        api_key=KEY, max_requests=100, max_tokens=2000, window=1.5, latency_min=0.1, latency_max=0.3,
        accounting=accounting,
    ) as fake, InferenceClient(fake.url, KEY, "claude-4-5-haiku") as client:  # fmt: skip
        limiter = GlobalRateLimiter(sessions, RateLimits(100, 2000, 1.5, 0.1))
        gateway = ModelGateway(client, limiter, sessions)
        completions = run_calls(gateway, [body(f"question {i}", 400) for i in range(16)], threads=8)
        assert len(completions) == 16
        assert fake.rejected_429 == 0
        charges = fake.limit.charges()
        assert charges  # the fake's own view of what it counted
    if accounting == "reserved":
        # The server's view was held: while a charge stayed at prompt + max_tokens, the limiter did
        # not hand the unused output out again (it would have been a 429).
        with sessions() as session:
            state = session.execute(select(RateLimiterState)).scalar_one()
        assert state.correction_seen_at is not None


CODE = "def f(x):\n    return [i*i for i in range(x)]  # squares\n" * 20


def peak_in_window(arrivals: list[float], window: float) -> int:
    arrivals = sorted(arrivals)
    return max((sum(1 for b in arrivals[i:] if b - a < window) for i, a in enumerate(arrivals)), default=0)


def test_estimates_are_calibrated_by_what_the_server_counted(pg_sessions):
    """Under "reserved" the server keeps charging prompt + max_tokens, and our prompt estimate
    for code is about twice what it counts: the raw estimates (676 tokens) let five calls share
    4,000 tokens. Scaled by the reported prompt tokens, the window holds the nine the server allows
    (399 each), still without a 429."""
    sessions, _ = pg_sessions
    with FakeInference(
        api_key=KEY, max_requests=100, max_tokens=4000, window=2.0, latency_min=0.1, latency_max=0.2,
        accounting="reserved",
    ) as fake, InferenceClient(fake.url, KEY, "claude-4-5-haiku") as client:  # fmt: skip
        limiter = GlobalRateLimiter(sessions, RateLimits(100, 4000, 2.0, 0.1))
        counted: list[int] = []
        admit = limiter.admit

        def counting_admit(*args, **kwargs):
            ticket = admit(*args, **kwargs)
            counted.append(ticket.estimated_tokens)
            return ticket

        limiter.admit = counting_admit  # type: ignore[method-assign]
        gateway = ModelGateway(client, limiter, sessions)
        run_calls(gateway, [body(CODE, 100) for _ in range(3)], threads=1)  # three answers to learn from
        run_calls(gateway, [body(CODE, 100) for _ in range(30)], threads=12)
        assert fake.rejected_429 == 0
        charged = {tokens for _, tokens, _ in fake.limit.charges()}
        arrivals = [request.arrival for request in fake.requests]
    raw = 676
    assert charged == {399}  # what the server charges each call
    assert counted[:3] == [raw] * 3  # before any answer: the raw estimate
    assert max(counted[3:]) < 0.7 * raw  # then calibrated
    assert len(arrivals) == 33
    assert peak_in_window(arrivals, 2.0) >= 8 > 4000 // raw


def test_another_app_on_the_same_add_on_loses_nothing(pg_sessions):
    sessions, _ = pg_sessions
    with FakeInference(
        api_key=KEY, max_requests=6, max_tokens=10**6, window=1.5, latency_min=0.05, latency_max=0.1
    ) as fake, InferenceClient(fake.url, KEY, "claude-4-5-haiku") as client:  # fmt: skip
        limiter = GlobalRateLimiter(sessions, RateLimits(6, 10**6, 1.5, 0.1))
        gateway = ModelGateway(client, limiter, sessions)
        stop = threading.Event()

        def other_app():  # three requests a window, all the time
            while not stop.is_set():
                fake.use_external(requests=1, tokens=10)
                stop.wait(0.5)

        app = threading.Thread(target=other_app)
        app.start()
        try:
            time.sleep(1.6)  # the other app is in full swing
            run_calls(gateway, [body("warm up", 50)], threads=1)  # the server's view arrives with it
            run_calls(gateway, [body(f"q{i}", 50) for i in range(10)], threads=5)
        finally:
            stop.set()
            app.join()
        # The other app's calls are seen only in the x-ratelimit-* views: the largest difference
        # of recent views is held until its reset, so its next call finds room kept for it.
        assert fake.rejected_429 == 0
        assert fake.admitted == 11


def test_a_429_pause_is_capped_whatever_the_headers_say(pg_sessions):
    sessions, _ = pg_sessions
    with FakeInference(api_key=KEY) as fake, InferenceClient(fake.url, KEY, "claude-4-5-haiku") as client:
        limiter = GlobalRateLimiter(sessions, RateLimits(100, 10**6, 30))
        # A millisecond epoch a year ahead, read as seconds, would stop the pool for millennia.
        year_ahead_ms = str(int((time.time() + 365 * 86400) * 1000))
        fake.fail_next(
            429,
            headers={
                "Retry-After": "1",
                "x-ratelimit-reset-requests": year_ahead_ms,
                "x-ratelimit-remaining-requests": "0",
            },
        )
        paused: list[float] = []
        original = limiter.pause
        limiter.pause = lambda seconds: (paused.append(seconds), original(min(seconds, 0.2)))  # type: ignore[method-assign]
        ModelGateway(client, limiter, sessions).call(body("hi", 20), CallContext(team_id="T", user_id="U"))
        assert paused and paused[0] <= 120.0


def test_a_large_request_is_admitted_before_small_ones_that_came_later(pg_sessions):
    sessions, _ = pg_sessions
    limiter = GlobalRateLimiter(sessions, RateLimits(max_requests=100, max_tokens=100, window_seconds=1.0))
    first = limiter.admit(80)
    order: list[tuple[str, float]] = []
    lock = threading.Lock()

    def call(name: str, tokens: int):
        ticket = limiter.admit(tokens)
        with lock:
            order.append((name, ticket.admitted_at))

    large = threading.Thread(target=call, args=("large", 60))
    large.start()
    deadline = time.monotonic() + 10
    while True:  # the large call is in line before the small ones arrive
        with sessions() as session:
            if session.execute(select(RateWaiter)).first():
                break
        assert time.monotonic() < deadline
        time.sleep(0.01)
    smalls = [threading.Thread(target=call, args=(f"small{i}", 15)) for i in range(4)]
    for thread in smalls:
        thread.start()
    for thread in [large, *smalls]:
        thread.join(timeout=15)
        assert not thread.is_alive()
    admitted = dict(order)
    expiry = first.admitted_at + 1.0
    # The small ones would have fitted beside the first 80 tokens at once; they waited their turn
    # behind the large one, which was admitted as soon as the 80 expired, not after a stream of smalls.
    assert all(admitted[f"small{i}"] >= expiry for i in range(4)), order
    assert expiry <= admitted["large"] < expiry + 0.5, order
    with sessions() as session:
        assert session.execute(select(RateWaiter)).first() is None  # the line is empty again


def test_waiting_sleeps_instead_of_polling(pg_sessions):
    sessions, engine = pg_sessions
    limiter = GlobalRateLimiter(sessions, RateLimits(max_requests=1, max_tokens=1000, window_seconds=2.0))
    limiter.admit(1)
    commits = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    started = time.monotonic()
    ticket = limiter.admit(1)  # waits about two seconds for the first to expire
    waited = time.monotonic() - started
    assert 1.5 <= waited < 5
    assert ticket.waited_seconds >= 1.5
    # The old loop retried every second or sooner; now: register in line, then be admitted.
    assert len(commits) <= 3, commits


def test_until_the_server_has_answered_only_half_the_window_is_admitted(pg_sessions):
    """Another app may be using the add-on: a fresh pool (or one idle past its last view) keeps
    half the window until the first response says how much room there is; a server whose answers
    carry no view gets the whole window once it has answered."""
    sessions, _ = pg_sessions
    limiter = GlobalRateLimiter(sessions, RateLimits(4, 10**6, 30), expects_server_view=True)
    first = limiter.admit(1)
    limiter.try_admit(1)
    assert limiter.try_admit(1)[0].reason == "requests"  # half of four
    limiter.reconcile(first.reservation_id, 1, view=None, admitted_at=first.admitted_at)  # no headers
    assert limiter.try_admit(1)[0].admitted


def test_a_call_refused_with_a_429_does_not_hide_another_apps_call(pg_sessions):
    """The server never counted a refused call: a later view that counts two calls (ours and the
    other app's) must read one of them as the other app's, not as the refused one."""
    sessions, _ = pg_sessions
    limiter = GlobalRateLimiter(sessions, RateLimits(10, 10**6, 30))
    refused = limiter.admit(1)
    limiter.reconcile(refused.reservation_id, 0, admitted_at=refused.admitted_at, refused=True)
    answered = limiter.admit(1)
    view = ServerView(remaining_requests=8, limit_requests=10)  # the server counts two
    limiter.reconcile(answered.reservation_id, 1, view=view, admitted_at=answered.admitted_at, prompt_tokens=1)
    with sessions() as session:
        state = session.execute(select(RateLimiterState)).scalar_one()
    assert state.correction_requests == 1
    # The refused call still keeps its own slot in our window: 2 of ours + 1 of the other app's.
    assert limiter.usage()[0] == 3
