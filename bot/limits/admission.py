"""The limiter's database side: every call books the next free slot of its pool, sleeps until it,
and goes (docs/limiter.md).

One short transaction books a call: it locks the state rows of the pool's attachments (in name
order, FOR UPDATE on Postgres, BEGIN IMMEDIATE on SQLite), reads the database clock, computes each
attachment's next free slot from its log (:mod:`bot.limits.slots`) and writes the call into the
log of the attachment where it can start first. Whoever books first goes first: no waiting line
is kept. At its slot the call marks itself sent (another short transaction) unless its attachment
was paused meanwhile (a 429, a 5xx, no answer): then it books again, on another attachment if the
pool has one. Its answer settles the row: reported usage, the response's x-ratelimit-* view.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db.clock import db_epoch
from bot.db.dialect import insert as dialect_insert
from bot.db.dialect import notify
from bot.failures import JobStopped, Permanent
from bot.limits.calibration import counted_tokens, prompt_scale
from bot.limits.models import RateLimiterState, RateReservation, TokenUsage
from bot.limits.slots import (
    LOG_SPANS,
    Call,
    RateLimits,
    View,
    awaiting_first_answer,
    next_slot,
    others_from_views,
    refunds_seen,
    usage_at,
)

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "bot_limiter"  # an attachment was paused: calls booked on it may move
MAX_PAUSE_SECONDS = 120.0
# While no answer has come back in the last window (a cold start, or after an idle spell), one
# call goes first: its answer brings the provider's view of what others use now (another app may
# be using the attachment).
# The others look again this often, for at most PROBE_WAIT_SECONDS (its process may have died).
PROBE_RECHECK_SECONDS = 0.25
PROBE_WAIT_SECONDS = 5.0
# How often a sleeping call checks whether its caller wants it to stop.
STOP_CHECK_SECONDS = 0.25
# How often the sleeping call with the earliest slot of this process is placed again before its
# slot: answers free room a booking could not count on (a refund seen, usage below the estimate),
# and a call moved far ahead would otherwise sleep through it. One call per process looks; when it
# goes early, the next one looks at once. Each look is a transaction: every 0.25 s they added 1.2-2
# commits per reply in bench/load_bench.py; once a second about a quarter of that.
EARLY_LOOK_SECONDS = 1.0


def rate_limits(settings) -> RateLimits:
    """The INFERENCE attachment's window, from the INFERENCE_* settings."""
    return RateLimits(
        max_requests=settings.inference_max_requests_per_minute,
        max_tokens=settings.inference_max_tokens_per_minute,
        window_seconds=settings.inference_rate_window_seconds,
        margin_seconds=settings.inference_rate_margin_seconds,
    )


def attachment_limits(settings) -> dict[str, RateLimits]:
    """Every attachment's window by limiter name (bot.attachments.Attachment.name)."""
    return {
        a.name: RateLimits(a.max_requests, a.max_tokens, a.window_seconds, settings.inference_rate_margin_seconds)
        for a in settings.attachments
    } or {"inference": rate_limits(settings)}


class RequestTooLarge(Permanent):
    """The request needs more tokens than the whole rate window holds; it can never be sent.
    (A thread too long for the model's context is bot.conversation.budget.ThreadTooLong.)"""

    reason = "request_too_large"


class AdmissionStopped(JobStopped):
    """The caller asked to stop (shutdown) while waiting for its slot."""


@dataclass(frozen=True)
class Booking:
    """A call's place in one attachment's log; ``slot`` and ``sent_at`` on the database clock."""

    reservation_id: int
    name: str  # the attachment
    slot: float
    estimate: int  # tokens counted until answered (its prompt part calibrated)
    output_cap: int
    waited_seconds: float = 0.0
    sent_at: float | None = None


@dataclass(frozen=True)
class _Option:
    name: str
    slot: float
    counted: int
    load: float = 0.0  # the share of its request limit already counted now (spreads ties)


class RateLimiter:
    """The slots of every attachment, shared by all processes through the database."""

    def __init__(self, sessions: sessionmaker[Session], limits: dict[str, RateLimits] | RateLimits):
        self.sessions = sessions
        self.limits = limits if isinstance(limits, dict) else {"inference": limits}
        self._paused = threading.Condition()
        # One thread of this process at a time books: the others wait here, not for the state
        # row's lock while each holds a pooled connection (40 job threads would hold 40).
        self._booking = threading.Lock()
        self._pauses = 0  # pauses seen (this process's, and others' by NOTIFY)
        self._sleepers: set[tuple[float, int]] = set()  # this process's sleeping calls: (slot, reservation id)
        self._offset: tuple[float, float] | None = None

    # -- booking ------------------------------------------------------------------------

    def book(self, names: Sequence[str], tokens: int, prompt_tokens: int = 0) -> Booking:
        """Book the earliest slot among ``names``' attachments (while they wait for the first answer
        after a quiet window, a slot a moment away, to look again). Raises RequestTooLarge when no
        window can ever hold the call."""
        return self._place(names, tokens, prompt_tokens, None)

    def _place(
        self, names: Sequence[str], tokens: int, prompt_tokens: int, booking: Booking | None, go_now: bool = False
    ) -> Booking:
        """One locked transaction: the call's earliest slot across the pool, counting the calls
        sent and those booked ahead of it. A new call is written into the log there, marked sent
        at once if ``go_now`` and its slot is now (one transaction instead of two); a booked one
        (``booking``) whose slot has come is marked sent if it still fits now, else moved to its
        new slot (on another attachment, if that one is paused or full)."""
        names = sorted(set(names))
        with self._booking, self.sessions.begin() as session:
            paused = self._lock(session, names)
            now = db_epoch(session)
            options = []
            for name in names:
                rows = self._calls(session, name, now)
                if booking is not None:  # itself and the calls booked behind it do not count
                    rows = [r for r in rows if r.id != booking.reservation_id and r.ahead_of(booking)]
                options.append(
                    self._option(name, rows, now, tokens, prompt_tokens, paused.get(name), pooled=len(names) > 1)
                )
            # Where it can start first; among attachments that can start it at once, the least used
            # (the first by name took every tie: a burst filled it and left the other's windows
            # to the calls it could not take).
            best = min(options, key=lambda o: (max(o.slot, now), o.load))
            if math.isinf(best.slot):
                raise RequestTooLarge(
                    f"the request needs about {min(o.counted for o in options)} tokens"
                    f" but the limit is {max(self.limits[n].max_tokens for n in names)} per window"
                )
            go = (booking is not None or go_now) and best.slot <= now
            # A call counts from when it goes: read the clock again after the arithmetic above
            # (under load it takes a while, and the request leaves only after this commit).
            sent_at = db_epoch(session) if go else None
            values = {
                "limiter": best.name,
                "slot": sent_at if go else best.slot,
                "tokens": best.counted,
                "sent_at": sent_at,
            }
            if booking is None:
                row = RateReservation(
                    admitted_at=now,
                    reconciled=False,
                    prompt_estimate=prompt_tokens or None,
                    output_cap=tokens - prompt_tokens,
                    **values,
                )
                session.add(row)
                # Rows older than the log read here are no longer needed: deleting them keeps it short.
                session.execute(
                    delete(RateReservation).where(
                        RateReservation.limiter == best.name,
                        RateReservation.slot <= now - LOG_SPANS * self.limits[best.name].span - 60.0,
                    )
                )
                session.flush()
                reservation_id = row.id
            else:
                reservation_id = booking.reservation_id
                session.execute(update(RateReservation).where(RateReservation.id == reservation_id).values(**values))
            return Booking(
                reservation_id, best.name, float(values["slot"]), best.counted, tokens - prompt_tokens,
                sent_at=sent_at,
            )  # fmt: skip

    def _option(
        self,
        name: str,
        rows: list[_Row],
        now: float,
        tokens: int,
        prompt_tokens: int,
        paused_until: float | None,
        *,
        pooled: bool,
    ) -> _Option:
        limits = self.limits[name]
        scale = prompt_scale(
            [(r.prompt_estimate, r.prompt_used) for r in rows if r.prompt_estimate and r.prompt_used is not None]
        )
        counted = counted_tokens(tokens, prompt_tokens, scale)
        calls = [r.with_scale(scale) for r in rows]
        refunds = refunds_seen(calls, limits, now)
        others = others_from_views(calls, limits, now, refunds)
        not_before = paused_until if paused_until is not None and paused_until > now else None
        slot = next_slot(calls, limits, now, counted, refunds=refunds, others=others, not_before=not_before)
        if awaiting_first_answer(calls, limits, now, PROBE_WAIT_SECONDS):
            # The first call is out: its answer tells whether another app is busy here.
            return _Option(name, max(slot, now + PROBE_RECHECK_SECONDS), counted)
        if not pooled:
            return _Option(name, slot, counted)
        requests, _ = usage_at(calls, limits, now, refunds, others)  # only a pool's ties need it
        return _Option(name, slot, counted, requests / limits.max_requests)

    def _lock(self, session: Session, names: list[str]) -> dict[str, float | None]:
        """Lock the attachments' state rows (in name order: no deadlock), creating missing ones."""
        query = (
            select(RateLimiterState.name, RateLimiterState.paused_until)
            .where(RateLimiterState.name.in_(names))
            .order_by(RateLimiterState.name)
            .with_for_update()
        )
        rows = dict(session.execute(query).all())
        missing = [n for n in names if n not in rows]
        if missing:  # two processes may create one at once: the second does nothing
            statement = dialect_insert(session)(RateLimiterState).values([{"name": n} for n in missing])
            session.execute(statement.on_conflict_do_nothing(index_elements=[RateLimiterState.name]))
            rows = dict(session.execute(query).all())
        return rows

    def _calls(self, session: Session, name: str, now: float) -> list[_Row]:
        span = self.limits[name].span
        rows = session.execute(
            select(*_COLUMNS).where(RateReservation.limiter == name, RateReservation.slot > now - LOG_SPANS * span)
        ).all()
        return [_row(r) for r in rows]

    # -- waiting and going --------------------------------------------------------------

    def acquire(
        self,
        names: Sequence[str],
        tokens: int,
        *,
        prompt_tokens: int = 0,
        should_stop: Callable[[], bool] = lambda: False,
        on_wait: Callable[[float, str], None] | None = None,
        on_line: Callable[[int, float], None] | None = None,
    ) -> Booking:
        """Book, sleep until the slot, and go: the booking comes back marked sent, and the caller
        sends the call at once. At its slot a call is placed again with what is known by then
        (answers, views, pauses): if it no longer fits it moves to its new slot, on another
        attachment of the pool if that one can take it sooner. ``on_wait(seconds, reason)`` and
        ``on_line(calls booked ahead, seconds)`` hear each wait."""
        started = time.monotonic()
        booking = self._place(names, tokens, prompt_tokens, None, go_now=True)
        told = False
        try:
            while booking.sent_at is None:
                wait = self._until(booking.slot)
                if wait > 0 and not told:
                    told = True
                    if on_wait:
                        on_wait(wait, "rate_limit")
                    if on_line:
                        on_line(self._booked_ahead(booking), wait)
                self._sleep_until_slot(booking, should_stop)
                if should_stop():
                    raise AdmissionStopped()
                booking = self._place(names, tokens, prompt_tokens, booking)
        except BaseException:
            self.forget(booking)
            raise
        return replace(booking, waited_seconds=time.monotonic() - started)

    def _until(self, slot: float) -> float:
        return slot - time.time() - self._clock_offset()

    def _clock_offset(self) -> float:
        """Database clock minus ours (0 on SQLite), measured once a minute per process."""
        cached = self._offset
        if cached is not None and time.monotonic() - cached[1] < 60.0:
            return cached[0]
        with self.sessions() as session:
            before = time.time()
            database = db_epoch(session)
            after = time.time()
        offset = database - (before + after) / 2
        self._offset = (offset, time.monotonic())
        return offset

    def _sleep_until_slot(self, booking: Booking, should_stop: Callable[[], bool]) -> None:
        """Until the slot, a stop, a pause of the call's attachment (anywhere: NOTIFY), or its turn
        to look early (the earliest sleeper of this process, every EARLY_LOOK_SECONDS)."""
        pauses = self._pauses
        slept = 0.0
        with self._paused:
            me = (booking.slot, booking.reservation_id)
            self._sleepers.add(me)
            try:
                while (remaining := self._until(booking.slot)) > 0 and not should_stop() and self._pauses == pauses:
                    if slept >= EARLY_LOOK_SECONDS and min(self._sleepers) == me:
                        return
                    step = min(remaining, STOP_CHECK_SECONDS, EARLY_LOOK_SECONDS)
                    self._paused.wait(timeout=step)
                    slept += step
            finally:
                self._sleepers.discard(me)

    def _booked_ahead(self, booking: Booking) -> int:
        with self.sessions() as session:
            return len(
                session.execute(
                    select(RateReservation.id).where(
                        RateReservation.sent_at.is_(None),
                        RateReservation.slot < booking.slot,
                        RateReservation.limiter.in_(list(self.limits)),
                    )
                ).all()
            )

    def forget(self, booking: Booking) -> None:
        """The call will not be sent: free its slot."""
        with self.sessions.begin() as session:
            session.execute(delete(RateReservation).where(RateReservation.id == booking.reservation_id))

    # -- answers ------------------------------------------------------------------------

    def settle(
        self,
        booking: Booking,
        *,
        used: int | None = None,
        prompt_tokens: int | None = None,
        view: View | None = None,
        refused: bool = False,
        also: Callable[[Session], None] | None = None,
    ) -> None:
        """Record the answer: ``used`` (prompt + completion tokens, None: unknown, the estimate
        stays), ``prompt_tokens`` the provider counted (its ceiling and calibration), ``view`` of
        its headers, ``refused`` (a 429). A call that failed is settled with nothing: answered,
        its estimate kept. ``also`` runs in the same transaction."""
        values: dict[str, object] = {"reconciled": True, "refused": refused}
        if used is not None:
            values["used_tokens"] = max(0, int(used))
        if prompt_tokens is not None:
            values["prompt_used"] = max(0, int(prompt_tokens))
        if view is not None:
            values["view_requests"] = view.remaining_requests
            values["view_tokens"] = view.remaining_tokens
        with self.sessions.begin() as session:
            values["answered_at"] = db_epoch(session)
            session.execute(
                update(RateReservation).where(RateReservation.id == booking.reservation_id).values(**values)
            )
            if also:
                also(session)

    def pause(self, name: str, seconds: float) -> None:
        """Nobody, in any process, sends to attachment ``name`` for ``seconds`` (at most
        MAX_PAUSE_SECONDS); calls booked on it move."""
        seconds = min(max(0.0, seconds), MAX_PAUSE_SECONDS)
        with self.sessions.begin() as session:
            paused = self._lock(session, [name]).get(name)
            until = db_epoch(session) + seconds
            if paused is None or until > paused:
                session.execute(
                    update(RateLimiterState).where(RateLimiterState.name == name).values(paused_until=until)
                )
            notify(session, NOTIFY_CHANNEL)
        self.paused_elsewhere()
        log.warning("inference paused attachment=%s seconds=%.1f", name, seconds)

    def paused_elsewhere(self) -> None:
        """An attachment was paused (here, or in another process: NOTIFY): sleepers look."""
        with self._paused:
            self._pauses += 1
            self._paused.notify_all()

    # -- reporting ----------------------------------------------------------------------

    def usage(self, name: str | None = None) -> tuple[int, int]:
        """(requests, tokens) counted in attachment ``name``'s window now (default: the first)."""
        name = name or next(iter(self.limits))
        limits = self.limits[name]
        with self.sessions() as session:
            now = db_epoch(session)
            calls = [c.call for c in self._calls(session, name, now)]
        refunds = refunds_seen(calls, limits, now)
        return usage_at(calls, limits, now, refunds, others_from_views(calls, limits, now, refunds))

    def line_length(self) -> int:
        """Calls booked but not yet sent, in every process."""
        with self.sessions() as session:
            now = db_epoch(session)
            return len(
                session.execute(
                    select(RateReservation.id).where(
                        RateReservation.sent_at.is_(None),
                        RateReservation.slot > now,
                        RateReservation.limiter.in_(list(self.limits)),
                    )
                ).all()
            )


_COLUMNS = (
    RateReservation.id,
    RateReservation.slot,
    RateReservation.tokens,
    RateReservation.sent_at,
    RateReservation.prompt_used,
    RateReservation.output_cap,
    RateReservation.used_tokens,
    RateReservation.answered_at,
    RateReservation.refused,
    RateReservation.view_requests,
    RateReservation.view_tokens,
    RateReservation.prompt_estimate,
)


@dataclass(frozen=True)
class _Row:
    id: int
    call: Call
    prompt_estimate: int | None
    prompt_used: int | None
    output_cap: int | None

    def ahead_of(self, booking: Booking) -> bool:
        """Sent, or booked before ``booking``'s slot (the calls booked behind it made room for it)."""
        return self.call.sent_at is not None or (self.call.slot, self.id) < (booking.slot, booking.reservation_id)

    def with_scale(self, scale: float) -> Call:
        """The call, an unanswered one counting its prompt estimate as calibrated now."""
        if self.call.answered_at is not None or self.prompt_estimate is None or self.output_cap is None:
            return self.call
        return replace(
            self.call, estimate=counted_tokens(self.prompt_estimate + self.output_cap, self.prompt_estimate, scale)
        )


def _row(row) -> _Row:
    id_, slot, tokens, sent_at, prompt_used, output_cap, used, answered_at, refused, view_r, view_t, prompt_est = row
    ceiling = prompt_used + output_cap if prompt_used is not None and output_cap is not None else None
    view = View(view_r, view_t) if view_r is not None or view_t is not None else None
    call = Call(slot, tokens, sent_at, ceiling, used, answered_at, bool(refused), view)
    return _Row(id_, call, prompt_est, prompt_used, output_cap)


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
