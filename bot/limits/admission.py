"""The global limiter's database side: one short transaction per admission.

Admissions are serialized by locking the limiter's state row (FOR UPDATE on Postgres,
BEGIN IMMEDIATE on SQLite), the clock is read after the lock is held, and the reservation
is written in the same transaction, so no two processes can admit against the same view
of the window.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db.clock import db_epoch
from bot.db.dialect import insert as dialect_insert
from bot.db.dialect import notify
from bot.failures import JobStopped, Permanent
from bot.limits.models import RateLimiterState, RateReservation, TokenUsage
from bot.limits.window import Admission, RateLimits, Reservation, decide, window_usage

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "bot_limiter"
LIMITER_NAME = "inference"


def rate_limits(settings) -> RateLimits:
    """The window every process shares, from the INFERENCE_* settings."""
    return RateLimits(
        max_requests=settings.inference_max_requests_per_minute,
        max_tokens=settings.inference_max_tokens_per_minute,
        window_seconds=settings.inference_rate_window_seconds,
        margin_seconds=settings.inference_rate_margin_seconds,
    )


class RequestTooLarge(Permanent):
    """The request needs more tokens than the whole rate window holds; it can never be sent.
    (A thread too long for the model's context is bot.conversation.budget.ThreadTooLong.)"""

    reason = "request_too_large"


class AdmissionStopped(JobStopped):
    """The caller asked to stop (shutdown) while waiting for capacity."""


@dataclass(frozen=True)
class Ticket:
    """An admitted call: reconcile it with the response's usage when it returns."""

    reservation_id: int
    estimated_tokens: int
    waited_seconds: float
    admitted_at: float  # database clock, epoch seconds


class GlobalRateLimiter:
    def __init__(self, sessions: sessionmaker[Session], limits: RateLimits, *, name: str = LIMITER_NAME):
        self.sessions = sessions
        self.limits = limits
        self.name = name
        # Reconciliations in this process wake waiters at once; other processes' arrive by NOTIFY.
        self._capacity_changed = threading.Condition()
        # One admission transaction at a time per process: waiting threads queue here, not on a
        # database connection blocked behind the limiter row's lock.
        self._admitting = threading.Lock()

    # -- one transaction each ---------------------------------------------------------

    def try_admit(self, tokens: int) -> tuple[Admission, int | None, float]:
        """Admit now or refuse. Returns (decision, reservation id, database time)."""
        with self._admitting, self.sessions.begin() as session:
            paused_until = self._lock_state(session)
            now = db_epoch(session)
            horizon = now - self.limits.occupancy_seconds
            rows = session.execute(
                select(RateReservation.admitted_at, RateReservation.tokens).where(
                    RateReservation.limiter == self.name, RateReservation.admitted_at > horizon
                )
            ).all()
            decision = decide([Reservation(at, tok) for at, tok in rows], self.limits, now, tokens, paused_until)
            if not decision.admitted:
                return decision, None, now
            reservation = RateReservation(limiter=self.name, admitted_at=now, tokens=tokens, reconciled=False)
            session.add(reservation)
            # Expired rows are no longer needed; deleting them here keeps the table tiny.
            session.execute(
                delete(RateReservation).where(
                    RateReservation.limiter == self.name, RateReservation.admitted_at <= horizon
                )
            )
            session.flush()
            return decision, reservation.id, now

    def _lock_state(self, session: Session) -> float | None:
        state = session.execute(
            select(RateLimiterState.paused_until).where(RateLimiterState.name == self.name).with_for_update()
        ).one_or_none()
        if state is None:
            session.add(RateLimiterState(name=self.name, paused_until=None))
            session.flush()
            return None
        return state[0]

    def reconcile(
        self, reservation_id: int, actual_tokens: int, *, also: Callable[[Session], None] | None = None
    ) -> None:
        """Replace the estimate with what the model reported, freeing any excess. `also` runs in
        the same transaction (recording usage costs no extra commit)."""
        with self.sessions.begin() as session:
            session.execute(
                update(RateReservation)
                .where(RateReservation.id == reservation_id)
                .values(tokens=max(0, int(actual_tokens)), reconciled=True)
            )
            if also:
                also(session)
            self._notify(session)
        self._wake_local()

    def pause(self, seconds: float) -> None:
        """After a 429: nobody, in any process, is admitted for `seconds`."""
        with self.sessions.begin() as session:
            current = self._lock_state(session)
            until = db_epoch(session) + max(0.0, seconds)
            if current is None or until > current:
                session.execute(
                    update(RateLimiterState).where(RateLimiterState.name == self.name).values(paused_until=until)
                )
        log.warning("inference paused_seconds=%.1f", seconds)

    def usage(self) -> tuple[int, int]:
        """(requests, tokens) in the window now."""
        with self.sessions() as session:
            now = db_epoch(session)
            rows = session.execute(
                select(RateReservation.admitted_at, RateReservation.tokens).where(
                    RateReservation.limiter == self.name,
                    RateReservation.admitted_at > now - self.limits.occupancy_seconds,
                )
            ).all()
        return window_usage([Reservation(a, t) for a, t in rows], self.limits, now)

    def _notify(self, session: Session) -> None:
        notify(session, NOTIFY_CHANNEL)

    # -- waiting ----------------------------------------------------------------------

    def capacity_changed(self) -> None:
        """Called by the worker's listener when another process freed capacity."""
        self._wake_local()

    def _wake_local(self) -> None:
        with self._capacity_changed:
            self._capacity_changed.notify_all()

    def admit(
        self,
        tokens: int,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_wait: Callable[[float, str], None] | None = None,
    ) -> Ticket:
        """Block until the call is admitted. `on_wait(seconds_until_retry, reason)` is told
        about every refusal, so the caller can tell the user it is queued."""
        started = time.monotonic()
        while True:
            decision, reservation_id, now = self.try_admit(tokens)
            if decision.admitted and reservation_id is not None:
                return Ticket(reservation_id, tokens, time.monotonic() - started, now)
            if decision.reason == "oversized":
                raise RequestTooLarge(
                    f"the request needs about {tokens} tokens but the limit is {self.limits.max_tokens} per window"
                )
            if should_stop():
                raise AdmissionStopped()
            wait = max(0.0, (decision.retry_at or now) - now)
            if on_wait:
                on_wait(wait, decision.reason)
            self._wait(min(wait + random.uniform(0, 0.01), 1.0), woken_by_reconciliation=decision.reason == "tokens")

    def _wait(self, seconds: float, *, woken_by_reconciliation: bool) -> None:
        """Sleep until capacity may be free. Only a token shortage can end early (a reconciliation
        frees tokens); requests and pauses free up only with time, so those waiters ignore wake-ups."""
        deadline = time.monotonic() + seconds
        with self._capacity_changed:
            while (remaining := deadline - time.monotonic()) > 0:
                if self._capacity_changed.wait(timeout=remaining) and woken_by_reconciliation:
                    return


def record_usage(session: Session, *, team_id: str, user_id: str, prompt_tokens: int, completion_tokens: int) -> None:
    """Add one call's usage to the per-team, per-user, per-day totals (caller commits)."""
    statement = dialect_insert(session)(TokenUsage).values(
        team_id=team_id,
        user_id=user_id or "",
        day=datetime.now(UTC).date(),
        requests=1,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[TokenUsage.team_id, TokenUsage.user_id, TokenUsage.day],
            set_={
                "requests": TokenUsage.requests + 1,
                "prompt_tokens": TokenUsage.prompt_tokens + statement.excluded.prompt_tokens,
                "completion_tokens": TokenUsage.completion_tokens + statement.excluded.completion_tokens,
            },
        )
    )
