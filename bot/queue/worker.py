"""The worker: claims jobs, runs them on a thread pool, renews leases, drains on SIGTERM.

Threads, not asyncio: job handlers are blocking I/O (httpx, slack_sdk, SQLAlchemy), and a
model call spends its time waiting on the network, so a pool of WORKER_CONCURRENCY threads
keeps that many calls in flight (see BENCHMARKS.md for the measured figures).
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.failures import LeaseLost, Permanent
from bot.queue import store
from bot.queue.job_type import JobEvent, JobHandler
from bot.queue.retry import BURY, DROP, FINISH, PARK, RELEASE, decide
from bot.queue.store import ClaimedJob

log = logging.getLogger(__name__)

# Interactive jobs still unclaimed after this long get a "queued" note (once).
QUEUED_NOTICE_SECONDS = 5.0


class UnknownJobKind(Permanent):
    """No handler is registered for the job's kind (bot.runtime.JOB_TYPES)."""


@dataclass
class JobContext:
    job: ClaimedJob
    sessions: sessionmaker[Session]
    stopping: threading.Event
    progress: dict = field(default_factory=dict)
    lease_lost: threading.Event = field(default_factory=threading.Event)

    def should_stop(self) -> bool:
        return self.stopping.is_set() or self.lease_lost.is_set()

    def checkpoint(self) -> None:
        """Call before a visible side effect (posting to Slack)."""
        if self.lease_lost.is_set():
            raise LeaseLost()

    def save_progress(self, **updates) -> None:
        """Persist what a re-run must not repeat; raises LeaseLost if the job is no longer ours."""
        self.progress.update(updates)
        with self.sessions.begin() as session:
            if not store.save_progress(session, self.job.id, self.job.lease_token, dict(self.progress)):
                self.lease_lost.set()
                raise LeaseLost()


class Worker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        handlers: dict[str, JobHandler],
        *,
        concurrency: int = 16,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        drain_seconds: float = 25.0,
        housekeeping: list[Callable[[], None]] | None = None,
        queued_notice_seconds: float = QUEUED_NOTICE_SECONDS,
        on_settled: Callable[[ClaimedJob], None] | None = None,
    ):
        """``on_settled(job)`` is told when a job is done or dead (`bot chat` waits on it)."""
        self.sessions = sessions
        self.handlers = handlers
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.drain_seconds = drain_seconds
        self.housekeeping = housekeeping or []
        self.queued_notice_seconds = queued_notice_seconds
        self.on_settled = on_settled
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[int, tuple[JobContext, Future]] = {}
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
        self.stopped = threading.Event()

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
        last_housekeeping = last_heartbeat = 0.0
        try:
            while not self.stopping.is_set():
                self._wake.clear()
                claimed = self._claim_pass()
                now = time.monotonic()
                if now - last_heartbeat >= self.lease_seconds / 3:
                    self._renew_leases()
                    last_heartbeat = now
                if now - last_housekeeping >= 1.0:
                    self._housekeeping()
                    last_housekeeping = now
                if not claimed or self._free_slots() == 0:
                    self._wake.wait(self.poll_seconds)
        finally:
            self._drain()
            self.stopped.set()

    def _free_slots(self) -> int:
        with self._lock:
            return self.concurrency - len(self._inflight)

    def _claim_pass(self) -> int:
        free = self._free_slots()
        if free <= 0:
            return 0
        try:
            with self.sessions.begin() as session:
                jobs = store.claim(session, lease_seconds=self.lease_seconds, limit=free)
        except (OperationalError, SQLAlchemyError) as exc:
            log.warning("claim failed error=%s", type(exc).__name__)
            self.stopping.wait(min(self.poll_seconds, 1.0))
            return 0
        for job in jobs:
            ctx = JobContext(job=job, sessions=self.sessions, stopping=self.stopping, progress=dict(job.progress))
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

            self._finish(ctx, lambda s: parking.park(s, job.id, job.lease_token, until=exc.until))
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

    # -- leases and housekeeping --------------------------------------------------------

    def _renew_leases(self) -> None:
        with self._lock:
            contexts = [ctx for ctx, _ in self._inflight.values()]
        if not contexts:
            return
        try:
            with self.sessions.begin() as session:
                for ctx in contexts:
                    if not store.renew(session, ctx.job.id, ctx.job.lease_token, lease_seconds=self.lease_seconds):
                        ctx.lease_lost.set()
        except SQLAlchemyError as exc:
            log.warning("renew failed error=%s", type(exc).__name__)

    def _housekeeping(self) -> None:
        try:
            with self.sessions.begin() as session:
                requeued, dead = store.recover_expired(session)
            if requeued:
                log.warning("jobs requeued_after_lease_expiry=%d", requeued)
            for job in dead:
                self._call_hook(
                    job,
                    "on_dead",
                    self._context(job),
                    JobEvent(error=RuntimeError("the worker running it stopped responding")),
                )
                self._settled(job)
            with self.sessions.begin() as session:
                waiting = store.jobs_waiting_since(session, older_than_seconds=self.queued_notice_seconds)
            for job in waiting:
                with self.sessions.begin() as session:
                    if not store.mark_notified(session, job.id):
                        continue
                self._call_hook(job, "on_waiting", self._context(job), JobEvent())
        except SQLAlchemyError as exc:
            log.warning("housekeeping failed error=%s", type(exc).__name__)
        for task in self.housekeeping:
            try:
                task()
            except Exception as exc:
                log.warning("housekeeping task_failed error=%s", type(exc).__name__)

    def _context(self, job: ClaimedJob) -> JobContext:
        """A context for a hook on a job this worker does not hold a lease on."""
        return JobContext(job, self.sessions, self.stopping, dict(job.progress))

    def _drain(self) -> None:
        """Stop claiming, give running jobs `drain_seconds`, then release what is left."""
        deadline = time.monotonic() + self.drain_seconds
        while time.monotonic() < deadline:
            with self._lock:
                if not self._inflight:
                    break
            self._renew_leases()
            time.sleep(0.05)
        with self._lock:
            leftovers = [ctx for ctx, _ in self._inflight.values()]
        for ctx in leftovers:
            ctx.lease_lost.set()  # its thread must not post after this
            self._finish(ctx, lambda s, c=ctx: store.release(s, c.job.id, c.job.lease_token))
            log.warning("job released_at_shutdown id=%d", ctx.job.id)
        self._pool.shutdown(wait=False, cancel_futures=True)
        log.info("worker stopped released=%d", len(leftovers))
