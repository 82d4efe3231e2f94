"""The worker's control plane never waits on the network (PostgreSQL, real leases).

Claiming, lease renewal and shutdown run on their own; slow Slack calls and housekeeping run
off the main loop; a write happens only while the lease is provably ours; SIGTERM hands jobs
back at once. Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, update

from bot.db.engine import make_engine, make_session_factory
from bot.failures import LeaseLost
from bot.limits.admission import RateLimiter
from bot.limits.models import RateReservation
from bot.limits.slots import RateLimits
from bot.queue import store
from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler
from bot.queue.models import DONE, QUEUED, RUNNING, Job
from bot.queue.waiting import MAX_FEEDBACK_UPDATES
from bot.queue.worker import Worker


@pytest.fixture
def pg(postgres_url):
    engine = make_engine(postgres_url, pool_size=20)
    yield make_session_factory(engine)
    engine.dispose()


def wait_until(predicate, timeout=15.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def enqueue(sessions, n=1, kind="test") -> list[int]:
    with sessions.begin() as session:
        return [store.enqueue(session, kind=kind, payload={}, team_id="T1", user_id=f"U{i}") for i in range(n)]


def job_row(sessions, job_id) -> Job:
    with sessions() as session:
        return session.execute(select(Job).where(Job.id == job_id)).scalar_one()


class Handler(JobHandler):
    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.runs: list[tuple[int, str]] = []
        self.waiting: list[tuple[int, int | None, bool]] = []
        self.lock = threading.Lock()

    def run(self, ctx: JobContext) -> None:
        with self.lock:
            self.runs.append((ctx.job.id, threading.current_thread().name))
        self.behaviour(ctx)

    def on_waiting(self, ctx, event):
        with self.lock:
            self.waiting.append((ctx.job.id, event.position, event.update))


def start(sessions, handler, **kw) -> tuple[Worker, threading.Thread]:
    worker = Worker(sessions, {"test": handler}, poll_seconds=0.05, **kw)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return worker, thread


def stop(*pairs):
    for worker, _ in pairs:
        worker.stop()
    for _, thread in pairs:
        thread.join(30)
        assert not thread.is_alive()


class SlowSlack(Handler):
    """Every Slack call takes 2.5 s: the queue notice (on_waiting) and the reply's write."""

    def on_waiting(self, ctx, event):
        super().on_waiting(ctx, event)
        time.sleep(2.5)


def test_slow_slack_never_makes_a_job_run_twice(pg):
    """With Slack slower than the lease, queue notices and writes stall nothing: renewal runs on
    its own thread, so neither worker takes over a job the other still runs."""
    writes: list[int] = []

    def reply(ctx: JobContext):
        time.sleep(1.5)  # the model
        time.sleep(2.5)  # the Slack write
        ctx.checkpoint()
        writes.append(ctx.job.id)

    slow, fast = SlowSlack(reply), Handler(reply)
    fast.runs = slow.runs  # one record of every run, whichever worker made it
    ids = enqueue(pg, 4)
    # Only worker a tells waiting users (and so calls Slack from its upkeep); b would take over
    # any job whose lease a let expire.
    a = start(pg, slow, concurrency=1, lease_seconds=1.0, queued_notice_seconds=0.0)
    b = start(pg, fast, concurrency=1, lease_seconds=1.0, queued_notice_seconds=3600.0)
    try:
        assert wait_until(lambda: all(job_row(pg, i).status == DONE for i in ids), timeout=40)
    finally:
        stop(a, b)
    assert sorted(run for run, _ in slow.runs) == sorted(ids)  # each ran once: one model call each
    assert sorted(writes) == sorted(ids)
    assert slow.waiting  # the notices were sent meanwhile


def test_slow_housekeeping_never_delays_claiming(pg):
    """A retention purge or a Slack notice that takes seconds runs on the hook pool."""
    purging = threading.Event()

    def slow_purge():
        purging.set()
        time.sleep(3.0)

    handler = Handler(lambda ctx: None)
    worker = start(pg, handler, concurrency=2, lease_seconds=2.0, housekeeping=[slow_purge])
    try:
        assert purging.wait(5)
        enqueued = time.monotonic()
        [job_id] = enqueue(pg)
        assert wait_until(lambda: job_row(pg, job_id).status == DONE, timeout=10)
        assert time.monotonic() - enqueued < 1.5  # not after the purge's 3 s
    finally:
        stop(worker)


def test_checkpoint_refuses_a_write_once_the_lease_is_not_provably_ours(pg):
    [job_id] = enqueue(pg)
    with pg.begin() as session:
        [job] = store.claim(session, lease_seconds=5.0)
    ctx = JobContext(job, pg, threading.Event(), lease_seconds=5.0, renewed_at=time.monotonic() - 4.0)
    assert not ctx.lease_is_fresh()
    ctx.checkpoint()  # stale: renewed in the database first, then allowed
    assert ctx.lease_is_fresh()
    with pg.begin() as session:  # another worker took it over
        session.execute(update(Job).where(Job.id == job_id).values(lease_token="someone-else"))
    ctx.renewed_at = time.monotonic() - 4.0
    with pytest.raises(LeaseLost):
        ctx.checkpoint()
    assert ctx.lease_lost.is_set()


def test_sigterm_hands_back_a_job_waiting_for_the_model_at_once(pg):
    limiter = RateLimiter(pg, RateLimits(max_requests=1, max_tokens=10**6, window_seconds=60))
    limiter.acquire(["inference"], 1)  # the window is full for a minute

    def wait_for_admission(ctx: JobContext):
        try:
            limiter.acquire(["inference"], 1, should_stop=ctx.should_stop)
        except Exception:
            if ctx.stopping.is_set():
                from bot.failures import JobStopped

                raise JobStopped() from None
            raise

    handler = Handler(wait_for_admission)
    [job_id] = enqueue(pg)
    worker = start(pg, handler, concurrency=2, lease_seconds=30.0, drain_seconds=20.0)
    assert wait_until(lambda: job_row(pg, job_id).status == RUNNING)

    def sleeping_until_its_slot():
        with pg() as session:
            return session.execute(select(RateReservation).where(RateReservation.sent_at.is_(None))).first() is not None

    assert wait_until(sleeping_until_its_slot)
    signalled = time.monotonic()
    stop(worker)
    assert time.monotonic() - signalled < 3.0  # not the 20 s drain, nor the lease
    row = job_row(pg, job_id)
    assert row.status == QUEUED and row.attempts == 0 and row.lease_token is None
    # Another worker picks it up at once (it is ready now, not after a lease expiry).
    other = Handler(lambda ctx: None)
    b = start(pg, other, concurrency=1, lease_seconds=30.0)
    try:
        assert wait_until(lambda: job_row(pg, job_id).status == DONE, timeout=5)
    finally:
        stop(b)


def test_sigterm_releases_a_stuck_call_at_the_deadline_and_exits(pg):
    release = threading.Event()

    def stuck(ctx: JobContext):
        release.wait(30)  # a model call that ignores the shutdown
        ctx.checkpoint()  # must refuse: the job was handed back

    handler = Handler(stuck)
    [job_id] = enqueue(pg)
    worker = start(pg, handler, concurrency=1, lease_seconds=30.0, drain_seconds=1.0)
    assert wait_until(lambda: job_row(pg, job_id).status == RUNNING)
    signalled = time.monotonic()
    stop(worker)
    assert time.monotonic() - signalled < 5.0
    assert worker[0].abandoned == 1
    row = job_row(pg, job_id)
    assert row.status == QUEUED and row.lease_token is None
    release.set()


def test_queued_jobs_hear_their_real_position_a_bounded_number_of_times(pg):
    gate = threading.Event()
    handler = Handler(lambda ctx: gate.wait(30))
    ids = enqueue(pg, 4)
    worker = start(pg, handler, concurrency=1, lease_seconds=30.0, queued_notice_seconds=0.0)
    try:
        # One runs; the other three wait, and hear how many are ahead of them in the fair order.
        assert wait_until(lambda: {j for j, _, _ in handler.waiting} >= set(ids[1:]), timeout=15)
        first = {}
        for job_id, position, _ in handler.waiting:
            first.setdefault(job_id, position)
        assert [first[i] for i in ids[1:]] == [0, 1, 2]
    finally:
        gate.set()
        stop(worker)
    per_job = {}
    for job_id, _, _ in handler.waiting:
        per_job[job_id] = per_job.get(job_id, 0) + 1
    assert max(per_job.values()) <= MAX_FEEDBACK_UPDATES
