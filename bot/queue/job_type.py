"""A job type is one declared object: its kind, lane, attempts policy, typed payload, handler
and a way to enqueue it (after procrastinate's tasks: name, queue, retry and defer together).

Declare one next to its handler::

    @dataclass(frozen=True)
    class GreetPayload(Payload):
        channel: str

    class GreetJob(JobHandler):
        def __init__(self, slack):
            self.slack = slack  # what it uses, passed by the composition root

        def run(self, ctx):
            payload: GreetPayload = ctx.payload  # typed: the worker loads it with GREET.payload
            self.slack.for_team(ctx.job.team_id).chat_postMessage(channel=payload.channel, text="hi")

    GREET = JobType("greet", GreetPayload, GreetJob, lane=INTERACTIVE, max_attempts=3)

build its handler in the list of job types of ``bot.runtime`` (one line:
``(GREET, lambda s: GreetJob(s.slack))``), and enqueue it where the event arrives:
``GREET.enqueue(session, GreetPayload(channel), team_id=team)``. Nothing here or in the job's
module imports the composition root: it builds the handlers, they do not reach back for parts.

The worker calls the handler's ``run`` and, around it, the hooks below, all with one
signature ``(ctx, event)`` and no-ops unless a handler overrides them. What a failure means
is declared by its exception (bot.failures) and decided by bot.queue.retry.decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from sqlalchemy.orm import Session

from bot.failures import Permanent
from bot.queue import store
from bot.queue.models import BACKGROUND, INTERACTIVE
from bot.queue.store import ClaimedJob

if TYPE_CHECKING:
    from bot.queue.context import JobContext


class Payload:
    """Base of job payloads: frozen dataclasses stored as JSON dicts. ``from_dict`` ignores keys
    it does not know and lets fields with defaults be missing, so jobs enqueued by an older or
    newer release still load."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{name: value for name, value in data.items() if name in known})


@dataclass(frozen=True)
class JobEvent:
    """What a hook is told: ``error`` (the failure, if any), ``delay`` (seconds until the
    retry, for on_retry), ``position`` (jobs ahead in the fair order, for on_waiting),
    ``update`` (on_waiting: the job was told before; this is a new position) and ``waited``
    (on_waiting, once: the job has waited LONG_WAIT_SECONDS in the queue, this many seconds)."""

    error: BaseException | None = None
    delay: float = 0.0
    position: int | None = None
    update: bool = False
    waited: float | None = None


class JobHandler:
    """Runs one kind of job. Subclasses take what they use in their constructor and implement
    ``run``; ``ctx.payload`` is the job's typed payload. The hooks are no-ops unless overridden.
    A hook must not raise to matter: the worker logs and ignores hook failures."""

    def run(self, ctx: JobContext) -> None:
        raise NotImplementedError

    def on_waiting(self, ctx: JobContext, event: JobEvent) -> None:
        """Called when an interactive job still waits to start after QUEUED_NOTICE_SECONDS, and
        again (``event.update``) when its position in the fair order changed, at most every few
        seconds (the user may be told it is queued). The job is not leased: do not save progress."""

    def on_retry(self, ctx: JobContext, event: JobEvent) -> None:
        """Called after a failed attempt, before the job is rescheduled (the lease is still ours)."""

    def on_dead(self, ctx: JobContext, event: JobEvent) -> None:
        """Called once when the job gives up (permanent failure, attempts spent, or its worker
        died on the last attempt). The lease is gone: progress saved here is not kept."""


P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class JobType(Generic[P]):
    """One kind of job. ``max_attempts`` None means the JOB_MAX_ATTEMPTS setting."""

    kind: str
    payload: type[P]
    handler: type[JobHandler]
    lane: str = INTERACTIVE
    max_attempts: int | None = None

    LANES: ClassVar[tuple[str, ...]] = (INTERACTIVE, BACKGROUND)

    def __post_init__(self) -> None:
        if self.lane not in self.LANES:
            raise ValueError(f"unknown lane {self.lane!r}")

    def attempts(self, settings: Any | None) -> int:
        if self.max_attempts is not None:
            return self.max_attempts
        if settings is None:
            raise ValueError(f"job kind {self.kind!r} takes its attempts from the settings: pass settings")
        return settings.job_max_attempts

    def enqueue(
        self,
        session: Session,
        payload: P,
        *,
        team_id: str,
        user_id: str = "",
        settings: Any | None = None,
        delay_seconds: float = 0.0,
    ) -> int:
        """Add a job of this kind inside the caller's transaction; returns its id."""
        if not isinstance(payload, self.payload):
            raise TypeError(f"job kind {self.kind!r} takes a {self.payload.__name__}, not {type(payload).__name__}")
        return store.enqueue(
            session,
            kind=self.kind,
            payload=payload.to_dict(),
            team_id=team_id,
            user_id=user_id,
            lane=self.lane,
            max_attempts=self.attempts(settings),
            delay_seconds=delay_seconds,
        )

    def payload_of(self, job: ClaimedJob) -> P:
        """The job's payload as this kind's dataclass; BadPayload when the stored dict cannot be one."""
        try:
            return self.payload.from_dict(job.payload)
        except (TypeError, ValueError) as exc:
            raise BadPayload(f"job kind {self.kind!r}: the payload is not a {self.payload.__name__}") from exc


class BadPayload(Permanent):
    """A stored payload that its kind's dataclass cannot load (a required key is missing):
    retrying cannot help."""


def handler_table(handlers: Iterable[tuple[JobType, JobHandler]]) -> dict[str, JobHandler]:
    """The worker's table {kind: handler}; each kind once, with a handler of its declared class."""
    table: dict[str, JobHandler] = {}
    for job_type, handler in handlers:
        if job_type.kind in table:
            raise ValueError(f"job kind {job_type.kind!r} is declared twice")
        if not isinstance(handler, job_type.handler):
            raise TypeError(f"job kind {job_type.kind!r} is run by a {job_type.handler.__name__}")
        table[job_type.kind] = handler
    return table


__all__ = ["BadPayload", "JobEvent", "JobHandler", "JobType", "Payload", "handler_table"]
