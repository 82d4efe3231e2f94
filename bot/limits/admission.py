"""The limiter's database side: every call books the next free slot of its pool, sleeps until it,
and goes (docs/limiter.md).

One short transaction books a call: it locks the state rows of the pool's attachments (in name
order, FOR UPDATE on Postgres, BEGIN IMMEDIATE on SQLite), reads the database clock, computes each
attachment's next free slot from its log (:mod:`bot.limits.slots`) and writes the call into the
log of the attachment where it can start first. Whoever books first goes first: no waiting line
is kept. At its slot the call marks itself sent (another short transaction) unless its attachment
was paused meanwhile (a 429, a 5xx, no answer): then it books again, on another attachment if the
pool has one. Its answer settles the row: reported usage, the response's x-ratelimit-* view, and
when its request really left. The threads of a process book together: one transaction places
every call its threads asked for meanwhile.
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
    Others,
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
    departed_at: float | None = None  # when its request left (database clock, as near as known)


@dataclass
class _Request:
    """One call to place (new, or ``booking`` whose slot has come), and what came of it."""

    names: list[str]
    tokens: int
    prompt_tokens: int
    booking: Booking | None
    go_now: bool
    done: bool = False
    result: Booking | None = None
    error: BaseException | None = None


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
        # One thread of this process at a time books (``_placing``), for every call asked for
        # meanwhile (``_pending``): the others wait here for their call to be placed, not for the
        # state row's lock while each holds a pooled connection (40 job threads would hold 40).
        self._asked = threading.Condition()
        self._pending: list[_Request] = []
        self._placing = False
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
        """The call's earliest slot across the pool, counting the calls sent and those booked ahead
        of it. A new call is written into the log there, marked sent at once if ``go_now`` and its
        slot is now; a booked one (``booking``) whose slot has come is marked sent if it still fits
        now, else moved to its new slot (on another attachment, if that one is paused or full).

        The threads of a process place their calls together: one of them places every call asked
        for meanwhile in one transaction, and wakes the others when it is done (each waits for its
        own call, not for a lock: a thread whose call was placed could otherwise wait through
        several more transactions before it learned so, and its call went seconds after it was
        marked sent). Placing them one by one, each waited for every other one's transaction:
        under a pool's load 0.23 s median, 1.6 s p90, and calls whose slot had come sat idle."""
        request = _Request(sorted(set(names)), tokens, prompt_tokens, booking, go_now)
        with self._asked:
            self._pending.append(request)
            while self._placing and not request.done:
                self._asked.wait()
            if request.done:
                batch: list[_Request] = []
            else:
                self._placing = True
                batch, self._pending = self._pending, []
        if batch:
            try:
                self._place_all(batch)
            finally:
                with self._asked:
                    self._placing = False
                    self._asked.notify_all()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _place_all(self, batch: list[_Request]) -> None:
        """One locked transaction for ``batch``: calls whose slot has come first (in slot order),
        then new ones in the order they asked. Each sees the calls placed before it."""
        batch.sort(key=lambda r: (r.booking is None, r.booking.slot if r.booking else 0.0))
        try:
            with self.sessions.begin() as session:
                names = sorted({n for r in batch for n in r.names})
                logs = _Logs(self, session, self._lock(session, names), db_epoch(session))
                for request in batch:
                    try:
                        self._place_one(request, logs)
                    except RequestTooLarge as error:
                        request.error = error
                logs.write()
        except BaseException as error:
            for request in batch:
                request.result, request.error = None, request.error or error
            raise
        finally:
            for request in batch:
                request.done = True

    def _place_one(self, request: _Request, logs: _Logs) -> None:
        now, booking, pooled = logs.now, request.booking, len(request.names) > 1
        options = []
        for name in request.names:
            log_ = logs.of(name)
            rows = log_.rows
            if booking is not None:  # itself and the calls booked behind it do not count
                rows = [r for r in rows if r.id != booking.reservation_id and r.ahead_of(booking)]
            options.append(self._option(name, log_, rows, now, request, logs.paused.get(name), pooled=pooled))
        # Where it can start first; among attachments that can start it at once, the least used
        # (the first by name took every tie: a burst filled it and left the other's windows
        # to the calls it could not take).
        best = min(options, key=lambda o: (max(o.slot, now), o.load))
        if math.isinf(best.slot):
            raise RequestTooLarge(
                f"the request needs about {min(o.counted for o in options)} tokens"
                f" but the limit is {max(self.limits[n].max_tokens for n in request.names)} per window"
            )
        go = (booking is not None or request.go_now) and best.slot <= now
        logs.place(request, best.name, best.slot, best.counted, go)

    def _option(
        self,
        name: str,
        log_: _Log,
        rows: list[_Row],
        now: float,
        request: _Request,
        paused_until: float | None,
        *,
        pooled: bool,
    ) -> _Option:
        limits = self.limits[name]
        counted = counted_tokens(request.tokens, request.prompt_tokens, log_.scale)
        calls = [r.with_scale(log_.scale) for r in rows]
        not_before = paused_until if paused_until is not None and paused_until > now else None
        slot = next_slot(calls, limits, now, counted, refunds=log_.refunds, others=log_.others, not_before=not_before)
        if awaiting_first_answer(calls, limits, now, PROBE_WAIT_SECONDS):
            # The first call is out: its answer tells whether another app is busy here.
            return _Option(name, max(slot, now + PROBE_RECHECK_SECONDS), counted)
        if not pooled:
            return _Option(name, slot, counted)
        requests, _ = usage_at(calls, limits, now, log_.refunds, log_.others)  # only a pool's ties need it
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

    def departing(self, booking: Booking) -> Booking:
        """The booking, its request leaving now. It leaves after it was marked sent (the commit, its
        thread waking, building the request: 0.06 s median and 0.33 s p99 in bench/load_bench.py
        with two attachments under load), and the provider counts it from when it arrives, so its
        answer moves ``sent_at`` to this moment (settle), well before its window ends."""
        return replace(booking, departed_at=time.time() + self._clock_offset())

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
        its estimate kept. A booking from :meth:`departing` counts from when its request left.
        ``also`` runs in the same transaction."""
        values: dict[str, object] = {"reconciled": True, "refused": refused}
        if booking.departed_at is not None and booking.sent_at is not None and booking.departed_at > booking.sent_at:
            values["sent_at"] = booking.departed_at
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


@dataclass
class _Log:
    """One attachment's log as a batch reads it, with what its answers tell (computed once per
    batch: they depend on the calls sent and answered, which a batch does not change)."""

    rows: list[_Row]
    scale: float
    refunds: bool
    others: list[Others]

    @classmethod
    def of(cls, rows: list[_Row], limits: RateLimits, now: float) -> _Log:
        scale = prompt_scale(
            [(r.prompt_estimate, r.prompt_used) for r in rows if r.prompt_estimate and r.prompt_used is not None]
        )
        calls = [r.with_scale(scale) for r in rows]
        refunds = refunds_seen(calls, limits, now)
        return cls(rows, scale, refunds, others_from_views(calls, limits, now, refunds))


class _Logs:
    """The logs a batch reads (each once), the calls it places, and their writes."""

    def __init__(self, limiter: RateLimiter, session: Session, paused: dict[str, float | None], now: float):
        self.limiter, self.session, self.paused, self.now = limiter, session, paused, now
        self._logs: dict[str, _Log] = {}
        self._placed: list[tuple[_Request, str, float, int, bool]] = []

    def of(self, name: str) -> _Log:
        if name not in self._logs:
            rows = self.limiter._calls(self.session, name, self.now)
            self._logs[name] = _Log.of(rows, self.limiter.limits[name], self.now)
        return self._logs[name]

    def place(self, request: _Request, name: str, slot: float, counted: int, go: bool) -> None:
        """Record the call's new place; the next calls of the batch count it there."""
        booking = request.booking
        if booking is not None:
            for log_ in self._logs.values():
                log_.rows = [r for r in log_.rows if r.id != booking.reservation_id]
        call = Call(self.now if go else slot, counted, self.now if go else None)
        output_cap = request.tokens - request.prompt_tokens
        row_id = booking.reservation_id if booking is not None else 0  # a new one's id is not known yet
        self.of(name).rows.append(_Row(row_id, call, request.prompt_tokens or None, None, output_cap))
        self._placed.append((request, name, slot, counted, go))

    def write(self) -> None:
        """Write every placed call and give each request its booking. A call that goes counts from
        when it goes: the clock is read again after the arithmetic (under load it takes a while,
        and the requests leave only after this commit)."""
        session, limits = self.session, self.limiter.limits
        sent_at = db_epoch(session) if any(go for *_, go in self._placed) else None
        added: list[tuple[_Request, RateReservation]] = []
        for request, name, slot, counted, go in self._placed:
            values = {
                "limiter": name,
                "slot": sent_at if go else slot,
                "tokens": counted,
                "sent_at": sent_at if go else None,
            }
            if request.booking is None:
                row = RateReservation(
                    admitted_at=self.now,
                    reconciled=False,
                    prompt_estimate=request.prompt_tokens or None,
                    output_cap=request.tokens - request.prompt_tokens,
                    **values,
                )
                session.add(row)
                added.append((request, row))
            else:
                session.execute(
                    update(RateReservation).where(RateReservation.id == request.booking.reservation_id).values(**values)
                )
                request.result = _booking_of(request, request.booking.reservation_id, values)
        for name in {row.limiter for _, row in added}:
            # Rows older than the log read here are no longer needed: deleting them keeps it short.
            session.execute(
                delete(RateReservation).where(
                    RateReservation.limiter == name,
                    RateReservation.slot <= self.now - LOG_SPANS * limits[name].span - 60.0,
                )
            )
        session.flush()
        for request, row in added:
            values = {"limiter": row.limiter, "slot": row.slot, "tokens": row.tokens, "sent_at": row.sent_at}
            request.result = _booking_of(request, row.id, values)


def _booking_of(request: _Request, reservation_id: int, values: dict) -> Booking:
    return Booking(
        reservation_id, values["limiter"], float(values["slot"]), values["tokens"],
        request.tokens - request.prompt_tokens, sent_at=values["sent_at"],
    )  # fmt: skip


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
