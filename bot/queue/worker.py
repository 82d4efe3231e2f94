"""The worker: claims jobs, runs them on a thread pool, renews leases, drains on SIGTERM.

Threads, not asyncio: job handlers are blocking I/O (httpx, slack_sdk, SQLAlchemy), and a
model call spends its time waiting on the network, so a pool of WORKER_CONCURRENCY threads
keeps that many calls in flight (see BENCHMARKS.md for the measured figures).

The control plane never waits on the network. Claiming (the main loop), lease renewal (its
own thread, every quarter lease) and shutdown each run on their own; whatever talks to Slack
or does housekeeping (queue feedback, notices for jobs whose worker died, the retention purge)
runs on a small bounded pool of hook threads, started by the upkeep thread. A job writes to
Slack or stores its turn only while its lease is provably ours: :meth:`JobContext.checkpoint`
refuses when the last successful renewal is older than half the lease, unless renewing in the
database right then succeeds.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.failures import Permanent
from bot.queue import store
from bot.queue.context import JobContext
from bot.queue.job_type import BadPayload, JobEvent, JobHandler, JobType
from bot.queue.retry import BURY, DROP, FINISH, PARK, RELEASE, decide
from bot.queue.store import ClaimedJob
from bot.queue.waiting import FEEDBACK_INTERVAL_SECONDS, QUEUED_NOTICE_SECONDS, QueueFeedback

log = logging.getLogger(__name__)

HOOK_THREADS = 2
MAX_PENDING_HOOKS = 64  # beyond this, queue feedback waits for the next round (notices never wait)


class UnknownJobKind(Permanent):
    """No handler is registered for the job's kind (the handler table bot.runtime builds)."""


class Worker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        handlers: dict[str, JobHandler],
        *,
        job_types: Iterable[JobType] = (),
        concurrency: int = 16,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        drain_seconds: float = 20.0,  # SIGTERM to exit stays under 25 s (Heroku kills at 30)
        housekeeping: list[Callable[[], None]] | None = None,
        queued_notice_seconds: float = QUEUED_NOTICE_SECONDS,
        on_settled: Callable[[ClaimedJob], None] | None = None,
        line_length: Callable[[], int] = lambda: 0,
    ):
        """``job_types``: the declarations whose payloads handlers get typed (``ctx.payload``).
        ``on_settled(job)`` is told when a job is done or dead (`bot chat` waits on it).
        ``line_length()``: calls waiting in the rate limiter's line, ahead of every queued job."""
        self.sessions = sessions
        self.handlers = handlers
        self.job_types = {job_type.kind: job_type for job_type in job_types}
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.drain_seconds = drain_seconds
        self.housekeeping = housekeeping or []
        self.on_settled = on_settled
        # Queued jobs told where they stand (bot.queue.waiting), through their on_waiting hooks.
        self.feedback = QueueFeedback(sessions, older_than_seconds=queued_notice_seconds, line_length=line_length)
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[int, tuple[JobContext, Future]] = {}
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
        self._hooks = ThreadPoolExecutor(max_workers=HOOK_THREADS, thread_name_prefix="hook")
        self._pending_hooks = 0
        self._running_tasks: set[int] = set()  # housekeeping tasks (by index) still running
        self._control_stop = threading.Event()  # ends the lease and upkeep threads
        self._idle = threading.Condition(self._lock)
        self.stopped = threading.Event()
        self.abandoned = 0  # job threads still running when the worker stopped (their jobs released)

    # -- signals and wake-ups -----------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self.stopping.set()
        self._wake.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    # -- main loop ----------------------------------------------------------------------

    def run(self) -> None:
        log.info("worker started concurrency=%d lease_seconds=%.0f", self.concurrency, self.lease_seconds)
        control = [
            threading.Thread(target=self._lease_loop, name="lease", daemon=True),
            threading.Thread(target=self._upkeep_loop, name="upkeep", daemon=True),
        ]
        for thread in control:
            thread.start()
        try:
            while not self.stopping.is_set():
                self._wake.clear()
                claimed = self._claim_pass()
                if not claimed or self._free_slots() == 0:
                    self._wake.wait(self.poll_seconds)
        finally:
            try:
                self._drain()
            finally:
                self._control_stop.set()
                for thread in control:
                    thread.join(timeout=2)
                self._hooks.shutdown(wait=False, cancel_futures=True)
                self.stopped.set()

    def _free_slots(self) -> int:
        with self._lock:
            return self.concurrency - len(self._inflight)

    def _claim_pass(self) -> int:
        free = self._free_slots()
        if free <= 0:
            return 0
        claimed_at = time.monotonic()
        try:
            with self.sessions.begin() as session:
                jobs = store.claim(session, lease_seconds=self.lease_seconds, limit=free)
        except (OperationalError, SQLAlchemyError) as exc:
            log.warning("claim failed error=%s", type(exc).__name__)
            self.stopping.wait(min(self.poll_seconds, 1.0))
            return 0
        for job in jobs:
            ctx = JobContext(
                job=job,
                sessions=self.sessions,
                stopping=self.stopping,
                progress=dict(job.progress),
                lease_seconds=self.lease_seconds,
                renewed_at=claimed_at,
            )
            with self._lock:
                future = self._pool.submit(self._execute, ctx)
                self._inflight[job.id] = (ctx, future)
        return len(jobs)

    def _execute(self, ctx: JobContext) -> None:
        job = ctx.job
        started = time.monotonic()
        try:
            handler = self.handlers.get(job.kind)
            if handler is None:
                raise UnknownJobKind(f"no handler for job kind {job.kind!r}")
            ctx.payload = self._payload(job)
            handler.run(ctx)
            self._finish(ctx, lambda s: store.complete(s, job.id, job.lease_token))
            log.info(
                "job done id=%d kind=%s attempt=%d duration_ms=%d",
                job.id,
                job.kind,
                job.attempts,
                (time.monotonic() - started) * 1000,
            )
            self._settled(job)
        except Exception as exc:  # every failure is recorded on the job; none is silent
            self._fail(ctx, exc, started)
        finally:
            with self._lock:
                self._inflight.pop(job.id, None)
                self._idle.notify_all()
            self._wake.set()

    def _fail(self, ctx: JobContext, exc: Exception, started: float) -> None:
        """Do what bot.queue.retry.decide says for this failure (the whole contract is there)."""
        job = ctx.job
        error = f"{type(exc).__name__}: {exc}"[:2000]
        decision = decide(
            exc,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            stopping=ctx.stopping.is_set(),
            jitter=random.random(),
        )
        if decision.action == DROP:
            log.warning("job lease_lost id=%d kind=%s", job.id, job.kind)
            return
        if decision.action == FINISH:
            self._finish(ctx, lambda s: store.complete(s, job.id, job.lease_token))
            log.info("job cancelled id=%d kind=%s attempt=%d", job.id, job.kind, job.attempts)
            self._settled(job)
            return
        if decision.action == RELEASE:
            self._finish(ctx, lambda s: store.release(s, job.id, job.lease_token))
            log.info("job released id=%d kind=%s", job.id, job.kind)
            return
        if decision.action == PARK:
            from bot.queue import parking

            self._finish(
                ctx, lambda s: parking.park(s, job.id, job.lease_token, until=exc.until, answered=exc.answered)
            )
            log.info("job parked id=%d kind=%s until=%s", job.id, job.kind, exc.until.isoformat())
            return
        if decision.action == BURY:
            self._finish(ctx, lambda s: store.bury(s, job.id, job.lease_token, error=error))
            log.error("job dead id=%d kind=%s attempt=%d error=%s", job.id, job.kind, job.attempts, type(exc).__name__)
            self._call_hook(job, "on_dead", ctx, JobEvent(error=exc))
            self._settled(job)
            return
        # RETRY: tell the handler before rescheduling, while the lease is still ours.
        self._call_hook(job, "on_retry", ctx, JobEvent(error=exc, delay=decision.delay))
        self._finish(
            ctx,
            lambda s: store.retry_later(
                s,
                job.id,
                job.lease_token,
                error=error,
                delay_seconds=decision.delay,
                counts_attempt=decision.counts_attempt,
            ),
        )
        log.warning(
            "job retry id=%d kind=%s attempt=%d delay_s=%.1f counts_attempt=%s error=%s duration_ms=%d",
            job.id,
            job.kind,
            job.attempts,
            decision.delay,
            decision.counts_attempt,
            type(exc).__name__,
            (time.monotonic() - started) * 1000,
        )

    def _settled(self, job: ClaimedJob) -> None:
        if self.on_settled is None:
            return
        try:
            self.on_settled(job)
        except Exception as exc:
            log.warning("job settled_callback_failed id=%d error=%s", job.id, type(exc).__name__)

    def _finish(self, ctx: JobContext, action: Callable[[Session], bool]) -> None:
        """Run a fenced state change, retrying briefly if the database blips."""
        for attempt in range(5):
            try:
                with self.sessions.begin() as session:
                    if not action(session):
                        log.warning("job fence_rejected id=%d", ctx.job.id)
                return
            except OperationalError:
                time.sleep(min(0.2 * 2**attempt, 2.0))
        log.error("job state_lost id=%d (database unavailable; the lease will expire and it reruns)", ctx.job.id)

    def _call_hook(self, job: ClaimedJob, name: str, ctx: JobContext, event: JobEvent) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            return
        hooks = {"on_waiting": handler.on_waiting, "on_retry": handler.on_retry, "on_dead": handler.on_dead}
        try:
            hooks[name](ctx, event)
        except Exception as exc:
            log.warning("job hook_failed id=%d hook=%s error=%s", job.id, name, type(exc).__name__)

    # -- leases (their own thread) -------------------------------------------------------

    def _lease_loop(self) -> None:
        every = max(0.05, self.lease_seconds / 4)
        while not self._control_stop.wait(every):
            self._renew_leases()

    def _renew_leases(self) -> None:
        with self._lock:
            contexts = [ctx for ctx, _ in self._inflight.values() if not ctx.lease_lost.is_set()]
        if not contexts:
            return
        started = time.monotonic()
        try:
            with self.sessions.begin() as session:
                renewed = [
                    (ctx, store.renew(session, ctx.job.id, ctx.job.lease_token, lease_seconds=self.lease_seconds))
                    for ctx in contexts
                ]
        except SQLAlchemyError as exc:
            log.warning("renew failed error=%s", type(exc).__name__)
            return
        for ctx, ours in renewed:
            if ours:
                ctx.renewed_at = max(ctx.renewed_at, started)
            else:
                ctx.lease_lost.set()

    # -- upkeep (its own thread; anything that talks to Slack goes to the hook pool) -------

    def _upkeep_loop(self) -> None:
        last_feedback = last_housekeeping = 0.0
        # Expired leases are looked for a few times per lease (at most every 5 s): a dead worker's
        # jobs come back within about one lease; more often would only cost commits.
        housekeeping_every = min(5.0, max(0.5, self.lease_seconds / 4))
        while not self._control_stop.wait(0.5):
            if self.stopping.is_set():
                continue  # shutting down: nothing new is started
            now = time.monotonic()
            if now - last_housekeeping >= housekeeping_every:
                last_housekeeping = now
                self._housekeeping()
            if now - last_feedback >= FEEDBACK_INTERVAL_SECONDS:
                last_feedback = now
                self._queue_feedback()

    def _submit_hook(self, function: Callable[[], None], *, optional: bool = False) -> bool:
        with self._lock:
            if optional and self._pending_hooks >= MAX_PENDING_HOOKS:
                return False
            self._pending_hooks += 1

        def run() -> None:
            try:
                function()
            finally:
                with self._lock:
                    self._pending_hooks -= 1

        try:
            self._hooks.submit(run)
        except RuntimeError:  # the pool is shut down
            with self._lock:
                self._pending_hooks -= 1
            return False
        return True

    def _housekeeping(self) -> None:
        try:
            with self.sessions.begin() as session:
                requeued, dead = store.recover_expired(session)
            if requeued:
                log.warning("jobs requeued_after_lease_expiry=%d", requeued)
            for job in dead:

                def notice(job=job) -> None:
                    self._call_hook(
                        job,
                        "on_dead",
                        self._context(job),
                        JobEvent(error=RuntimeError("the worker running it stopped responding")),
                    )
                    self._settled(job)

                self._submit_hook(notice)
        except SQLAlchemyError as exc:
            log.warning("housekeeping failed error=%s", type(exc).__name__)
        for index, task in enumerate(self.housekeeping):
            with self._lock:
                if index in self._running_tasks:
                    continue  # the last run (e.g. a retention purge) is still going
                self._running_tasks.add(index)

            def run(index=index, task=task) -> None:
                try:
                    task()
                except Exception as exc:
                    log.warning("housekeeping task_failed error=%s", type(exc).__name__)
                finally:
                    with self._lock:
                        self._running_tasks.discard(index)

            if not self._submit_hook(run, optional=True):
                with self._lock:
                    self._running_tasks.discard(index)

    def _queue_feedback(self) -> None:
        """Hand each queued job that should hear where it stands (bot.queue.waiting) to its
        handler's on_waiting hook, on the hook pool."""
        for job, event in self.feedback.due():
            self._submit_hook(
                lambda job=job, event=event: self._call_hook(job, "on_waiting", self._context(job), event),
                optional=True,
            )

    def _context(self, job: ClaimedJob) -> JobContext:
        """A context for a hook on a job this worker does not hold a lease on."""
        try:
            payload = self._payload(job)
        except BadPayload:
            payload = None  # the hook fails on it alone, logged; the job's fate is already decided
        return JobContext(job, self.sessions, self.stopping, dict(job.progress), payload=payload)

    def _payload(self, job: ClaimedJob):
        """The job's typed payload (BadPayload if its dict cannot load), or the dict of an undeclared kind."""
        job_type = self.job_types.get(job.kind)
        return job_type.payload_of(job) if job_type is not None else job.payload

    def _drain(self) -> None:
        """Stop claiming; jobs still waiting for admission give up at once (the limiter sees
        `stopping`) and are released by their own threads; running ones get until
        `drain_seconds` after the signal; then whatever is left is released, fenced, and its
        thread may no longer write. Every release NOTIFYs, so another worker claims at once."""
        deadline = time.monotonic() + self.drain_seconds
        with self._lock:
            while self._inflight and (remaining := deadline - time.monotonic()) > 0:
                self._idle.wait(min(remaining, 0.5))
            leftovers = [ctx for ctx, _ in self._inflight.values()]
        for ctx in leftovers:
            ctx.lease_lost.set()  # its thread must not post after this
            self._finish(ctx, lambda s, c=ctx: store.release(s, c.job.id, c.job.lease_token))
            log.warning("job released_at_shutdown id=%d", ctx.job.id)
        self.abandoned = len(leftovers)
        self._pool.shutdown(wait=False, cancel_futures=True)
        log.info("worker stopped released=%d", len(leftovers))
