"""The native Stop button, across processes.

The web process receives `agent_session_stopped` and records a StopRequest for the thread
(and cancels the thread's reply jobs still queued) in one transaction, with a NOTIFY on
STOP_CHANNEL. A worker running an answer for that thread finds the request through its
process's StopWatch (woken by the NOTIFY on Postgres; polling the table otherwise) and
abandons the answer: `StoppableGateway` gives up on the running model call (its thread is
left to finish in the background; its text is dropped) and refuses further calls, and
the reply writer refuses further tool steps.

A request applies to work created before it: a question asked after pressing Stop is
answered normally.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.agent.models import StopRequest
from bot.db.clock import db_now
from bot.failures import Cancelled

log = logging.getLogger(__name__)

STOP_CHANNEL = "bot_stops"
# Without NOTIFY (SQLite, or a listener that is reconnecting) the table is read this often.
POLL_SECONDS = 0.5
# With NOTIFY the table is still read now and then, in case a notification was lost.
NOTIFIED_POLL_SECONDS = 2.0
# Slack ends an app's streams in the thread when Stop is pressed, a moment before the event
# reaches us: a stream that ends under an answer waits this long for the Stop to arrive.
STREAM_ENDED_GRACE_SECONDS = 2.0
# Stop requests matter only to work begun before them; after this long none is left.
KEEP_STOP_REQUESTS = timedelta(days=1)


class AnswerStopped(Cancelled):
    """The person pressed Stop: the answer ends now, without retry (bot.failures.Cancelled)."""


# --- the database side (web and worker) ---------------------------------------------------------


def request_stop(session: Session, *, team_id: str, channel_id: str, thread_ts: str, user_id: str = "") -> datetime:
    """Record a Stop for the thread and wake the workers when the transaction commits."""
    now = db_now(session)
    session.add(
        StopRequest(team_id=team_id, channel_id=channel_id, thread_ts=thread_ts, user_id=user_id, requested_at=now)
    )
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": STOP_CHANNEL})
    return now


def stop_requested(session: Session, *, team_id: str, channel_id: str, thread_ts: str, since: datetime) -> bool:
    """Whether someone pressed Stop on the thread at or after `since`."""
    return bool(
        session.execute(
            select(
                exists().where(
                    StopRequest.team_id == team_id,
                    StopRequest.channel_id == channel_id,
                    StopRequest.thread_ts == thread_ts,
                    StopRequest.requested_at >= since,
                )
            )
        ).scalar()
    )


# --- the worker side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StopKey:
    team_id: str
    channel_id: str
    thread_ts: str
    since: datetime  # the job's creation (database clock)


class StopWatch:
    """One per worker process. `notify()` is the STOP_CHANNEL listener's callback."""

    def __init__(self, sessions: sessionmaker[Session], *, notified: bool = False):
        self.sessions = sessions
        self.poll_seconds = NOTIFIED_POLL_SECONDS if notified else POLL_SECONDS
        self._generation = 0
        self._lock = threading.Lock()

    def notify(self) -> None:
        with self._lock:
            self._generation += 1

    @property
    def generation(self) -> int:
        with self._lock:
            return self._generation

    def is_stopped(self, key: StopKey) -> bool:
        try:
            with self.sessions() as session:
                return stop_requested(
                    session,
                    team_id=key.team_id,
                    channel_id=key.channel_id,
                    thread_ts=key.thread_ts,
                    since=key.since,
                )
        except Exception as exc:  # a database blip must not end the answer
            log.warning("stop check_failed error=%s", type(exc).__name__)
            return False


@dataclass
class StopFlag:
    """The stop state of one answer: set once, read by the job's threads."""

    watch: StopWatch | None
    key: StopKey | None
    _stopped: threading.Event = field(default_factory=threading.Event)
    _checked_at: float = float("-inf")
    _seen_generation: int = -1

    def set(self) -> None:
        self._stopped.set()

    def is_set(self, *, fresh: bool = False) -> bool:
        """Stopped? Reads the table when woken by a NOTIFY, when the poll interval passed, or
        when `fresh` is asked for; otherwise answers from memory."""
        if self._stopped.is_set():
            return True
        if self.watch is None or self.key is None:
            return False
        generation, now = self.watch.generation, time.monotonic()
        if fresh or generation != self._seen_generation or now - self._checked_at >= self.watch.poll_seconds:
            self._seen_generation, self._checked_at = generation, now
            if self.watch.is_stopped(self.key):
                self._stopped.set()
        return self._stopped.is_set()

    def check(self) -> None:
        if self.is_set():
            raise AnswerStopped()

    def wait(self, seconds: float, *, tick: float = 0.1) -> bool:
        """Whether a Stop arrives within `seconds` (reading the table each `tick`)."""
        deadline = time.monotonic() + seconds
        while True:
            if self.is_set(fresh=True):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(tick)


class StoppableGateway:
    """Wraps the model gateway for one answer: each call runs in its own thread and is given
    up as soon as the answer is stopped; no call starts after that. Also sums the usage of
    the calls it made, for the answer's trace."""

    def __init__(self, gateway: Any, flag: StopFlag, *, tick: float = 0.05):
        self.gateway = gateway
        self.flag = flag
        self.tick = tick
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._lock = threading.Lock()  # held while text is written, so none is written after a stop

    def call(self, body: Mapping[str, Any], ctx: Any, *, on_text: Callable[[str], None] | None = None, **kwargs):
        if self.flag.is_set(fresh=True):
            raise AnswerStopped()
        done = threading.Event()
        outcome: dict[str, Any] = {}
        if dataclasses.is_dataclass(ctx) and hasattr(ctx, "should_stop"):
            # A call still waiting for the rate limiter gives up too: it never reaches the model.
            keep_going = ctx.should_stop
            ctx = dataclasses.replace(ctx, should_stop=lambda: keep_going() or self.flag.is_set())

        def guarded(delta: str) -> None:
            with self._lock:
                if not self.flag.is_set() and on_text is not None:
                    on_text(delta)

        def run() -> None:
            try:
                outcome["completion"] = self.gateway.call(
                    body, ctx, on_text=guarded if on_text is not None else None, **kwargs
                )
            except BaseException as exc:  # handed to the waiting thread
                outcome["error"] = exc
            finally:
                done.set()

        self.calls += 1
        threading.Thread(target=run, name="model-call", daemon=True).start()
        while not done.wait(self.tick):
            if self.flag.is_set():
                with self._lock:  # no text is being written now, and none will be
                    pass
                log.info("answer stopped during_model_call=true")
                raise AnswerStopped()
        if self.flag.is_set():  # whatever the call did, it was stopped (a failure it met then is moot)
            raise AnswerStopped()
        if "error" in outcome:
            raise outcome["error"]
        completion = outcome["completion"]
        usage = getattr(completion, "usage", None)
        if usage is not None:
            self.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
            self.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)
        return completion
