"""The global limiter's database side: one short transaction per admission.

Admissions are serialized by locking the limiter's state row (FOR UPDATE on Postgres,
BEGIN IMMEDIATE on SQLite), the clock is read after the lock is held, and the reservation
is written in the same transaction, so no two processes can admit against the same view
of the window.

Calls that must wait stand in one line shared by every process (``rate_waiters``), served
in fair order (:func:`bot.limits.window.schedule`): each sleeps until its predicted slot
instead of polling. The server's view from every response's ``x-ratelimit-*`` headers is
kept on the state row as a correction (:mod:`bot.limits.server_view`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.db.clock import db_epoch
from bot.db.dialect import insert as dialect_insert
from bot.db.dialect import notify
from bot.failures import JobStopped, Permanent
from bot.limits.calibration import counted_tokens, prompt_scale
from bot.limits.models import RateLimiterState, RateReservation, RateWaiter, TokenUsage
from bot.limits.server_view import ServerView, capped_pause, correction_from_view, merge_views
from bot.limits.window import (
    INTERACTIVE_LANE,
    NO_CORRECTION,
    Admission,
    Correction,
    RateLimits,
    Reservation,
    Slot,
    Waiter,
    admission_order,
    schedule,
    window_usage,
)

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "bot_limiter"  # a reconciliation freed capacity (or the server's view changed)
ADMITTED_CHANNEL = "bot_limiter_admitted"  # a call left the line: everyone behind it moved up
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
    estimated_tokens: int  # as counted against the window (its prompt part calibrated)
    waited_seconds: float
    admitted_at: float  # database clock, epoch seconds
    admitted_monotonic: float = 0.0  # time.monotonic() when admitted_at was read

    def sent_at(self) -> float:
        """Now on the database clock, as near as this process can tell: call it as the request goes out."""
        return self.admitted_at + max(0.0, time.monotonic() - self.admitted_monotonic)


@dataclass(frozen=True)
class Attempt:
    """One admission transaction's outcome; ``slot`` is our place in the line when refused."""

    decision: Admission
    reservation_id: int | None
    now: float
    waiter_id: int | None
    slot: Slot | None
    counted_tokens: int = 0  # the call's estimate as counted (its prompt part calibrated)
    monotonic: float = 0.0  # time.monotonic() when `now` was read


# A waiter refreshes its row at least this often; a row not refreshed for WAITER_TTL_SECONDS
# (its process died) no longer holds up the line.
WAITER_TTL_SECONDS = 30.0
# correction_seen_at when answers came but none carried x-ratelimit-* headers.
SILENT = 0.0
# A background call that has waited this long in line is served like an interactive one.
BACKGROUND_AGING_SECONDS = 30.0
# How often a sleeping waiter checks whether its caller wants it to stop.
STOP_CHECK_SECONDS = 0.5


class GlobalRateLimiter:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        limits: RateLimits,
        *,
        name: str = LIMITER_NAME,
        expects_server_view: bool = False,
    ):
        """`expects_server_view`: the server is expected to send x-ratelimit-* headers, so until
        its first response (or after an idle spell) only half the window is admitted."""
        self.sessions = sessions
        self.limits = limits
        self.name = name
        self.expects_server_view = expects_server_view
        # Reconciliations in this process wake waiters at once; other processes' arrive by NOTIFY.
        self._capacity_changed = threading.Condition()
        # One admission transaction at a time per process: waiting threads queue here, not on a
        # database connection blocked behind the limiter row's lock.
        self._admitting = threading.Lock()
        # Admissions seen (from every process, by NOTIFY on ADMITTED_CHANNEL when `listening`,
        # else this process's own): a sleeping waiter whose place ahead has emptied wakes.
        self._admissions = 0
        self.listening = False

    # -- one transaction each ---------------------------------------------------------

    def try_admit(
        self, tokens: int, *, prompt_tokens: int = 0, lane: str = INTERACTIVE_LANE
    ) -> tuple[Admission, int | None, float]:
        """Admit now (behind whoever waits in line) or refuse. Returns (decision, reservation id,
        database time). ``prompt_tokens``: the part of ``tokens`` that is the prompt estimate."""
        attempt = self._attempt(
            tokens, prompt_tokens=prompt_tokens, lane=lane, waiter_id=None, since=None, register=False
        )
        return attempt.decision, attempt.reservation_id, attempt.now

    def _attempt(
        self,
        tokens: int,
        *,
        prompt_tokens: int = 0,
        lane: str,
        waiter_id: int | None,
        since: float | None,
        register: bool,
    ) -> Attempt:
        """Lock the limiter row, place this call in the fair line, admit it if its slot is now.
        Refused with ``register``: the call's waiter row is written (or refreshed) in the same
        transaction, so waiting costs one commit per wake-up and none in between.

        Every estimate in line counts its prompt part scaled by what the server reported for
        the last window's calls (bot.limits.calibration)."""
        with self._admitting, self.sessions.begin() as session:
            state = self._lock_state(session)
            now = db_epoch(session)
            read_at = time.monotonic()
            horizon = now - self.limits.occupancy_seconds
            reservations, samples = self._reservations_and_samples(session, horizon)
            scale = prompt_scale(samples)
            counted = counted_tokens(tokens, prompt_tokens, scale)
            if counted > self.limits.max_tokens:
                if waiter_id is not None:
                    session.execute(delete(RateWaiter).where(RateWaiter.id == waiter_id))
                return Attempt(Admission(False, "oversized", None), None, now, None, None, counted)
            waiters = session.execute(
                select(
                    RateWaiter.id,
                    RateWaiter.tokens,
                    RateWaiter.prompt_tokens,
                    RateWaiter.lane,
                    RateWaiter.since,
                    RateWaiter.expires_at,
                ).where(RateWaiter.limiter == self.name)
            ).all()
            line = [
                Waiter(w, counted_tokens(t, p or 0, scale), ln, since_)
                for w, t, p, ln, since_, exp in waiters
                if exp > now and w != waiter_id
            ]
            me = Waiter(waiter_id if waiter_id is not None else -1, counted, lane, since if since is not None else now)
            order = admission_order([*line, me], now, aging_seconds=BACKGROUND_AGING_SECONDS)
            limits = self._limits_for(state, now, max(w.tokens for w in order))
            slots = schedule(reservations, order, limits, now, state.paused_until, state.correction)
            slot = next(s for s in slots if s.key == me.key)
            if any(exp <= now for *_, exp in waiters):
                session.execute(delete(RateWaiter).where(RateWaiter.limiter == self.name, RateWaiter.expires_at <= now))
            if slot.at <= now:
                reservation = RateReservation(
                    limiter=self.name,
                    admitted_at=now,
                    tokens=counted,
                    reconciled=False,
                    prompt_estimate=prompt_tokens or None,
                    output_cap=(tokens - prompt_tokens) if prompt_tokens else None,
                )
                session.add(reservation)
                if waiter_id is not None:
                    session.execute(delete(RateWaiter).where(RateWaiter.id == waiter_id))
                self._notify(session, ADMITTED_CHANNEL)
                if not self.listening:
                    self._count_admission()
                # Rows older than two windows are no longer needed (a server view compares the
                # window before its call's admission); deleting them here keeps the table tiny.
                session.execute(
                    delete(RateReservation).where(
                        RateReservation.limiter == self.name,
                        RateReservation.admitted_at <= horizon - self.limits.window_seconds,
                    )
                )
                session.flush()
                return Attempt(Admission(True, "ok", None), reservation.id, now, None, slot, counted, read_at)
            decision = Admission(False, slot.reason if slot.reason != "ok" else "requests", slot.at)
            if not register:
                return Attempt(decision, None, now, waiter_id, slot, counted)
            expires = now + WAITER_TTL_SECONDS
            refreshed = waiter_id is not None and bool(
                session.execute(
                    update(RateWaiter).where(RateWaiter.id == waiter_id).values(expires_at=expires)
                ).rowcount
            )
            if not refreshed:  # new in line, or our row expired and was removed: take our old place
                row = RateWaiter(
                    limiter=self.name,
                    lane=lane,
                    tokens=tokens,
                    prompt_tokens=prompt_tokens,
                    since=me.since,
                    expires_at=expires,
                )
                session.add(row)
                session.flush()
                waiter_id = row.id
            return Attempt(decision, None, now, waiter_id, slot, counted)

    def _limits_for(self, state: _State, now: float, largest: int) -> RateLimits:
        """The limits to admit against. A server that sends its view, but whose last view has
        expired (the pool was idle) or that has not answered yet, may be busy with another app's
        calls we cannot see: until the first response brings a fresh view, admit at most half of
        the window. A server whose answers carry no view (SILENT) gets the whole window."""
        if state.correction.active(now) or state.seen_at == SILENT:
            return self.limits
        if state.seen_at is None and not self.expects_server_view:
            return self.limits
        return replace(
            self.limits,
            max_requests=max(1, self.limits.max_requests // 2),
            max_tokens=min(self.limits.max_tokens, max(1, self.limits.max_tokens // 2, largest)),
        )

    def _reservations(self, session: Session, after: float) -> list[Reservation]:
        return self._reservations_and_samples(session, after)[0]

    def _reservations_and_samples(
        self, session: Session, after: float
    ) -> tuple[list[Reservation], list[tuple[int, int]]]:
        """The reservations admitted after ``after``, and the (estimated, reported) prompt tokens
        of the calls answered in the window before that too (rows are kept for two windows), so a
        window that emptied at once still has answers to calibrate from."""
        rows = session.execute(
            select(*_RESERVATION_COLUMNS).where(
                RateReservation.limiter == self.name,
                RateReservation.admitted_at > after - self.limits.window_seconds,
            )
        ).all()
        reservations = [_reservation(row) for row in rows if row.admitted_at > after]
        samples = [(row.prompt_estimate, row.prompt_used) for row in rows]
        return reservations, [(est, used) for est, used in samples if est is not None and used is not None]

    def _lock_state(self, session: Session) -> _State:
        row = session.execute(
            select(RateLimiterState.paused_until, *_CORRECTION_COLUMNS)
            .where(RateLimiterState.name == self.name)
            .with_for_update()
        ).one_or_none()
        if row is None:
            session.add(RateLimiterState(name=self.name, paused_until=None, correction_requests=0, correction_tokens=0))
            session.flush()
            return _State(None, NO_CORRECTION, None)
        return _State(row[0], _correction(row[1:]), row.correction_seen_at)

    def _remove_waiter(self, waiter_id: int | None) -> None:
        if waiter_id is None:
            return
        try:
            with self.sessions.begin() as session:
                session.execute(delete(RateWaiter).where(RateWaiter.id == waiter_id))
        except SQLAlchemyError as exc:  # the row expires on its own
            log.warning("limiter waiter_cleanup_failed error=%s", type(exc).__name__)

    def reconcile(
        self,
        reservation_id: int,
        actual_tokens: int,
        *,
        also: Callable[[Session], None] | None = None,
        view: ServerView | None = None,
        admitted_at: float | None = None,
        refused: bool = False,
        prompt_tokens: int | None = None,
        sent_at: float | None = None,
    ) -> None:
        """Record what the model reported beside the estimate. `view`: the server's window from
        the response's headers (taken when the call admitted at `admitted_at` arrived; `refused`:
        a 429, which the server did not count), kept as the correction while it is the newest.
        `prompt_tokens`: the prompt tokens the server reported, which calibrate later estimates.
        `sent_at`: when the request went out (database clock, :meth:`Ticket.sent_at`): the server's
        view is compared with our calls by the order they reached it.
        `also` runs in the same transaction (recording usage costs no extra commit)."""
        values: dict[str, object] = {"used_tokens": max(0, int(actual_tokens)), "reconciled": True, "refused": refused}
        if sent_at is not None:
            values["sent_at"] = sent_at
        with self.sessions.begin() as session:
            if prompt_tokens is not None and not refused:
                values["prompt_used"] = max(0, int(prompt_tokens))
                values["answered_at"] = db_epoch(session)
            session.execute(update(RateReservation).where(RateReservation.id == reservation_id).values(**values))
            if view is not None and not view.empty and admitted_at is not None:
                self._take_view(session, view, admitted_at, sent_at)
            elif admitted_at is not None:  # an answer without a view: the server may send none
                session.execute(
                    update(RateLimiterState)
                    .where(RateLimiterState.name == self.name, RateLimiterState.correction_seen_at.is_(None))
                    .values(correction_seen_at=SILENT)
                )
            if also:
                also(session)
            self._notify(session)
        self._wake_local()

    def _take_view(self, session: Session, view: ServerView, admitted_at: float, sent_at: float | None) -> None:
        state = self._lock_state(session)
        if state.seen_at is not None and admitted_at < state.seen_at:
            return  # a newer view is already held
        now = db_epoch(session)
        if now - admitted_at > self.limits.window_seconds:
            return  # a call longer than a window: its view is older than anything it could correct
        # Calls the server refused with a 429 keep their slot in our window, but the server never
        # counted them: counting them here would hide one of another app's calls.
        reference = admitted_at if sent_at is None else max(admitted_at, sent_at)
        rows = session.execute(
            select(*_RESERVATION_COLUMNS).where(
                RateReservation.limiter == self.name,
                RateReservation.admitted_at > reference - self.limits.occupancy_seconds - self.limits.window_seconds,
                RateReservation.admitted_at <= reference,
                RateReservation.refused.is_(False),
            )
        ).all()
        seen = [_reservation(row) for row in rows]
        fresh = correction_from_view(view, seen, self.limits, admitted_at=admitted_at, now=now, sent_at=sent_at)
        if fresh is None:
            return
        correction = merge_views(state.correction, fresh, now)
        session.execute(
            update(RateLimiterState)
            .where(RateLimiterState.name == self.name)
            .values(
                correction_requests=correction.requests,
                correction_tokens=correction.tokens,
                correction_until=correction.until,
                correction_seen_at=admitted_at,
                correction_seen_tokens=correction.seen_tokens,
                correction_taken_at=correction.taken_at,
                correction_external_tokens=correction.external_tokens,
                correction_held_requests=correction.held_requests,
                correction_held_until=correction.held_until,
            )
        )
        if correction.requests or correction.tokens > 0:
            log.debug(
                "limiter server_correction requests=%d tokens=%d for_s=%.1f",
                correction.requests,
                correction.tokens,
                correction.until - now,
            )

    def pause(self, seconds: float) -> None:
        """After a 429: nobody, in any process, is admitted for `seconds` (at most MAX_PAUSE_SECONDS)."""
        seconds = capped_pause(seconds, default=0.0)
        with self.sessions.begin() as session:
            current = self._lock_state(session).paused_until
            until = db_epoch(session) + seconds
            if current is None or until > current:
                session.execute(
                    update(RateLimiterState).where(RateLimiterState.name == self.name).values(paused_until=until)
                )
        log.warning("inference paused_seconds=%.1f", seconds)

    def usage(self) -> tuple[int, int]:
        """(requests, tokens) in the window now, as admission counts them."""
        with self.sessions() as session:
            now = db_epoch(session)
            reservations = self._reservations(session, now - self.limits.occupancy_seconds)
            row = session.execute(select(*_CORRECTION_COLUMNS).where(RateLimiterState.name == self.name)).one_or_none()
        correction = NO_CORRECTION if row is None else _correction(row)
        return window_usage(reservations, self.limits, now, correction)

    def line_length(self) -> int:
        """Calls waiting in line for admission now, in every process."""
        with self.sessions() as session:
            now = db_epoch(session)
            return int(
                session.execute(
                    select(func.count()).where(RateWaiter.limiter == self.name, RateWaiter.expires_at > now)
                ).scalar_one()
            )

    def _notify(self, session: Session, channel: str = NOTIFY_CHANNEL) -> None:
        notify(session, channel)

    # -- waiting ----------------------------------------------------------------------

    def capacity_changed(self) -> None:
        """Called by the worker's listener when another process freed capacity."""
        self._wake_local()

    def admitted(self) -> None:
        """Called by the worker's listener for every admission, in any process (ADMITTED_CHANNEL)."""
        self._count_admission()

    def _count_admission(self) -> None:
        with self._capacity_changed:
            self._admissions += 1
            self._capacity_changed.notify_all()

    def _wake_local(self) -> None:
        with self._capacity_changed:
            self._capacity_changed.notify_all()

    def admit(
        self,
        tokens: int,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_wait: Callable[[float, str], None] | None = None,
        on_line: Callable[[int, float], None] | None = None,
        lane: str = INTERACTIVE_LANE,
        prompt_tokens: int = 0,
    ) -> Ticket:
        """Block until the call is admitted, in fair order (see window.schedule). ``prompt_tokens``:
        the part of ``tokens`` that is the prompt estimate, counted as calibrated.

        Between attempts the caller sleeps until its predicted slot (or until woken, when at the
        head of the line waiting for tokens a reconciliation may free), never polling.
        `on_wait(seconds_until_slot, reason)` and `on_line(calls_ahead, seconds_until_slot)` are
        told after every refused attempt, so the caller can tell the user where it stands."""
        started = time.monotonic()
        waiter_id: int | None = None
        since: float | None = None
        try:
            while True:
                admissions_before = self._admissions
                attempt = self._attempt(
                    tokens, prompt_tokens=prompt_tokens, lane=lane, waiter_id=waiter_id, since=since, register=True
                )
                since = since if since is not None else attempt.now
                decision = attempt.decision
                if decision.admitted and attempt.reservation_id is not None:
                    waiter_id = None  # removed in the admitting transaction
                    return Ticket(
                        attempt.reservation_id,
                        attempt.counted_tokens,
                        time.monotonic() - started,
                        attempt.now,
                        attempt.monotonic,
                    )
                waiter_id = attempt.waiter_id
                if decision.reason == "oversized":
                    raise RequestTooLarge(
                        f"the request needs about {attempt.counted_tokens or tokens} tokens"
                        f" but the limit is {self.limits.max_tokens} per window"
                    )
                if should_stop():
                    raise AdmissionStopped()
                wait = max(0.0, (decision.retry_at or attempt.now) - attempt.now)
                if on_wait:
                    on_wait(wait, decision.reason)
                if on_line and attempt.slot is not None:
                    on_line(attempt.slot.position, wait)
                self._wait(
                    min(wait, WAITER_TTL_SECONDS / 3),
                    position=attempt.slot.position if attempt.slot is not None else 0,
                    admissions_seen=admissions_before,
                    tokens_bound=decision.reason == "tokens",
                    should_stop=should_stop,
                )
        finally:
            self._remove_waiter(waiter_id)

    def _wait(
        self,
        seconds: float,
        *,
        position: int,
        admissions_seen: int,
        tokens_bound: bool,
        should_stop: Callable[[], bool],
    ) -> None:
        """Sleep until the predicted slot, or until this call heads the line (as many admissions
        as calls were ahead of it) when capacity may have freed early: a reconciliation (tokens the
        server confirmed unused) or the admission of the call just ahead. Nobody else wakes, so
        a wake-up costs a database round trip only for the call that may now go."""
        deadline = time.monotonic() + seconds
        with self._capacity_changed:
            while (remaining := deadline - time.monotonic()) > 0:
                if self._capacity_changed.wait(timeout=min(remaining, STOP_CHECK_SECONDS)):
                    moved_up = self._admissions - admissions_seen
                    if position - moved_up <= 0 and (tokens_bound or moved_up > 0):
                        return
                elif should_stop():
                    return


_RESERVATION_COLUMNS = (
    RateReservation.admitted_at,
    RateReservation.tokens,
    RateReservation.used_tokens,
    RateReservation.prompt_estimate,
    RateReservation.prompt_used,
    RateReservation.output_cap,
    RateReservation.answered_at,
    RateReservation.sent_at,
)


def _reservation(row) -> Reservation:
    """A reservation row (the columns of _RESERVATION_COLUMNS, in order) for the window arithmetic."""
    admitted_at, tokens, used, _estimate, prompt_used, output_cap, answered_at, sent_at = row
    ceiling = prompt_used + output_cap if prompt_used is not None and output_cap is not None else None
    return Reservation(admitted_at, tokens, used, ceiling, answered_at if ceiling is not None else None, sent_at)


_CORRECTION_COLUMNS = (
    RateLimiterState.correction_requests,
    RateLimiterState.correction_tokens,
    RateLimiterState.correction_until,
    RateLimiterState.correction_held_requests,
    RateLimiterState.correction_held_until,
    RateLimiterState.correction_seen_at,
    RateLimiterState.correction_seen_tokens,
    RateLimiterState.correction_taken_at,
    RateLimiterState.correction_external_tokens,
)


def _finite_or_never(value: float | None) -> float:
    return value if value is not None else -math.inf


def _correction(row) -> Correction:
    """The correction held on the state row (the columns of _CORRECTION_COLUMNS, in order)."""
    requests, tokens, until, held, held_until, seen_at, seen_tokens, taken_at, external = row
    return Correction(
        requests or 0,
        tokens or 0,
        _finite_or_never(until),
        held or 0,
        _finite_or_never(held_until),
        _finite_or_never(seen_at),
        seen_tokens or 0,
        _finite_or_never(taken_at),
        external or 0,
    )


@dataclass(frozen=True)
class _State:
    paused_until: float | None
    correction: Correction
    seen_at: float | None


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
