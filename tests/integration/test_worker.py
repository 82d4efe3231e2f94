"""The worker loop in-process: runs jobs concurrently, retries, buries, drains."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from bot.failures import JobStopped, Permanent, RetryLater
from bot.inference.errors import RateLimitedError
from bot.queue import store
from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler
from bot.queue.models import DEAD, DONE, QUEUED, Job
from bot.queue.worker import Worker


def wait_until(predicate, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def statuses(sessions) -> dict[int, str]:
    with sessions() as session:
        return dict(session.execute(select(Job.id, Job.status)).all())


class Recorder(JobHandler):
    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.runs: list[tuple[int, int]] = []
        self.dead: list[int] = []
        self.retries: list[float] = []
        self.lock = threading.Lock()

    def run(self, ctx: JobContext) -> None:
        with self.lock:
            self.runs.append((ctx.job.id, ctx.job.attempts))
        self.behaviour(ctx)

    def on_dead(self, ctx, event):
        self.dead.append(ctx.job.id)

    def on_retry(self, ctx, event):
        self.retries.append(event.delay)


def start_worker(sessions, handler, **kw) -> tuple[Worker, threading.Thread]:
    worker = Worker(sessions, {"test": handler}, poll_seconds=0.05, **kw)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return worker, thread


def enqueue(sessions, n=1, **kw) -> list[int]:
    with sessions.begin() as session:
        return [store.enqueue(session, kind="test", payload={}, team_id="T1", user_id=f"U{i}", **kw) for i in range(n)]


def test_jobs_run_concurrently_up_to_the_concurrency(sessions):
    barrier = threading.Barrier(4, timeout=10)
    handler = Recorder(lambda ctx: barrier.wait())  # only passes if 4 run at once
    ids = enqueue(sessions, 8)
    worker, thread = start_worker(sessions, handler, concurrency=4)
    try:
        assert wait_until(lambda: all(statuses(sessions)[i] == DONE for i in ids))
    finally:
        worker.stop()
        thread.join(10)
    assert sorted(job_id for job_id, _ in handler.runs) == sorted(ids)


def test_failures_retry_then_succeed(sessions):
    failures = {"left": 2}

    def flaky(ctx):
        if failures["left"]:
            failures["left"] -= 1
            raise RetryLater("flaky", delay=0.05)

    handler = Recorder(flaky)
    [job_id] = enqueue(sessions)
    worker, thread = start_worker(sessions, handler)
    try:
        assert wait_until(lambda: statuses(sessions)[job_id] == DONE)
    finally:
        worker.stop()
        thread.join(10)
    assert [attempt for _, attempt in handler.runs] == [1, 2, 3]
    assert handler.retries == [0.05, 0.05]


def test_out_of_attempts_the_job_is_kept_dead_and_the_hook_runs(sessions):
    handler = Recorder(lambda ctx: (_ for _ in ()).throw(RetryLater("always", delay=0.01)))
    [job_id] = enqueue(sessions, max_attempts=3)
    worker, thread = start_worker(sessions, handler)
    try:
        assert wait_until(lambda: statuses(sessions)[job_id] == DEAD)
        assert wait_until(lambda: handler.dead == [job_id])
    finally:
        worker.stop()
        thread.join(10)
    assert len(handler.runs) == 3
    with sessions() as session:
        assert "always" in session.get(Job, job_id).last_error


def test_permanent_errors_are_not_retried(sessions):
    def reject(ctx):
        raise Permanent("bad payload")

    handler = Recorder(reject)
    [job_id] = enqueue(sessions)
    worker, thread = start_worker(sessions, handler)
    try:
        assert wait_until(lambda: statuses(sessions)[job_id] == DEAD)
    finally:
        worker.stop()
        thread.join(10)
    assert len(handler.runs) == 1


def test_rate_limited_retries_do_not_spend_attempts(sessions):
    calls = {"n": 0}

    def limited(ctx):
        calls["n"] += 1
        if calls["n"] <= 3:
            raise RetryLater("429", delay=0.01, counts_attempt=False)

    handler = Recorder(limited)
    [job_id] = enqueue(sessions, max_attempts=2)
    worker, thread = start_worker(sessions, handler)
    try:
        assert wait_until(lambda: statuses(sessions)[job_id] == DONE)
    finally:
        worker.stop()
        thread.join(10)
    assert [attempt for _, attempt in handler.runs] == [1, 1, 1, 1]


def test_stop_drains_finishing_jobs_and_releases_stuck_ones(sessions):
    release = threading.Event()
    started = threading.Event()

    def slow(ctx):
        started.set()
        if ctx.payload_kind == "stuck":
            while not ctx.should_stop():
                time.sleep(0.01)
            raise JobStopped()
        release.wait(5)

    class Handler(Recorder):
        def run(self, ctx):
            ctx.payload_kind = ctx.job.payload.get("mode")
            super().run(ctx)

    handler = Handler(slow)
    with sessions.begin() as session:
        finishing = store.enqueue(session, kind="test", payload={"mode": "finish"}, team_id="T1", user_id="A")
        stuck = store.enqueue(session, kind="test", payload={"mode": "stuck"}, team_id="T1", user_id="B")
    worker, thread = start_worker(sessions, handler, drain_seconds=2.0)
    assert wait_until(lambda: len(handler.runs) == 2)
    worker.stop()
    release.set()
    thread.join(10)
    assert worker.stopped.is_set()
    final = statuses(sessions)
    assert final[finishing] == DONE
    assert final[stuck] == QUEUED  # given back for another worker, attempt not counted
    with sessions() as session:
        assert session.get(Job, stuck).attempts == 0


def test_a_model_that_keeps_answering_429_never_spends_the_attempts(sessions):
    """What the gateway raises after MAX_RATE_LIMITED_TRIES refusals reschedules without an attempt."""
    calls = {"n": 0}

    def limited(ctx):
        calls["n"] += 1
        if calls["n"] <= 3:
            raise RateLimitedError("the model kept answering 429", retry_after=0.01)

    handler = Recorder(limited)
    [job_id] = enqueue(sessions, max_attempts=1)
    worker, thread = start_worker(sessions, handler)
    try:
        assert wait_until(lambda: statuses(sessions)[job_id] == DONE)
    finally:
        worker.stop()
        thread.join(10)
    assert [attempt for _, attempt in handler.runs] == [1, 1, 1, 1]
    assert handler.dead == []


def test_handlers_get_their_typed_payload_and_a_payload_that_cannot_load_is_buried(sessions):
    from dataclasses import dataclass

    from bot.queue.job_type import JobType, Payload

    @dataclass(frozen=True)
    class Greeting(Payload):
        channel: str

    seen = []
    handler = Recorder(lambda ctx: seen.append(ctx.payload))
    declared = JobType("test", Greeting, Recorder, max_attempts=3)
    with sessions.begin() as session:
        good = declared.enqueue(session, Greeting("C1"), team_id="T1")
        bad = store.enqueue(session, kind="test", payload={"other": 1}, team_id="T1", max_attempts=3)
    worker, thread = start_worker(sessions, handler, job_types=[declared])
    try:
        assert wait_until(lambda: statuses(sessions) == {good: DONE, bad: DEAD})
    finally:
        worker.stop()
        thread.join(10)
    assert seen == [Greeting("C1")]  # the bad one never reached run, and was not retried
    assert [job_id for job_id, _ in handler.runs] == [good] and handler.dead == [bad]
