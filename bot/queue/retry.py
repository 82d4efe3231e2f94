"""Retry arithmetic and the failure decision for jobs (pure: randomness and the clock are
passed in).

`decide` is the whole failure contract of the queue: what a failed attempt turns into, from
the exception's declared meaning (bot.failures), the attempts made and the attempts allowed.

Backoff uses "equal jitter": half of the exponential step is fixed and half is random, so
a retry never comes back immediately to a server that just failed, yet retries from many
jobs still spread out instead of arriving together.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.failures import AwaitingPerson, Cancelled, JobStopped, LeaseLost, Permanent, RetryLater

# Past this many doublings every sensible cap has been reached; avoids float overflow.
_MAX_DOUBLINGS = 64


def backoff_delay(attempt: int, *, base: float = 2.0, cap: float = 300.0, jitter: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first failure).

    The step is ``min(cap, base * 2 ** (attempt - 1))``; the delay is half the step plus
    ``jitter`` (a random number in [0, 1)) times the other half.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter must be in [0, 1)")
    doublings = attempt - 1
    step = cap if doublings > _MAX_DOUBLINGS else min(cap, base * 2.0**doublings)
    half = step / 2.0
    return half + jitter * half


def should_retry(attempts: int, max_attempts: int) -> bool:
    """Whether a job that has made ``attempts`` attempts may make another."""
    return attempts < max_attempts


def retry_delay(
    attempt: int, *, jitter: float, retry_after: float | None = None, base: float = 2.0, cap: float = 300.0
) -> float:
    """The wait before the next attempt: the server's ``retry_after`` when it gave one
    (it knows when capacity frees), otherwise :func:`backoff_delay`."""
    if retry_after is not None:
        return retry_after
    return backoff_delay(attempt, base=base, cap=cap, jitter=jitter)


# What the worker does with a job whose attempt failed.
DROP = "drop"  # lease lost: the job is another worker's now; change nothing
FINISH = "finish"  # cancelled on purpose: mark it done, no retry, no notice
RELEASE = "release"  # our shutdown: back to the queue now, the attempt not counted
BURY = "bury"  # permanent, or out of attempts: mark it dead and tell its user (on_dead)
RETRY = "retry"  # back to the queue after `delay` seconds; `counts_attempt` or not
PARK = "park"  # waits for a person (bot.queue.parking): no lease, no thread, no attempt used


@dataclass(frozen=True)
class Decision:
    action: str
    delay: float = 0.0
    counts_attempt: bool = True


def decide(
    exc: BaseException,
    *,
    attempts: int,
    max_attempts: int,
    stopping: bool,
    jitter: float,
    base: float = 2.0,
    cap: float = 300.0,
) -> Decision:
    """What to do after attempt number ``attempts`` (of ``max_attempts``) raised ``exc``.

    ``stopping``: this worker is shutting down (failures caused by that are not the job's).
    ``jitter``: a random number in [0, 1) for the backoff. Undeclared exceptions are retried
    with backoff and use an attempt; a retry that does not count an attempt (a 429) never
    runs out of attempts.
    """
    if isinstance(exc, LeaseLost):
        return Decision(DROP)
    if isinstance(exc, Cancelled):
        return Decision(FINISH)
    if isinstance(exc, AwaitingPerson):
        return Decision(PARK, counts_attempt=False)
    if isinstance(exc, JobStopped):
        return Decision(RELEASE, counts_attempt=False)
    if isinstance(exc, Permanent):
        return Decision(BURY)
    declared = exc if isinstance(exc, RetryLater) else None
    counts = declared.counts_attempt if declared is not None else True
    if counts and not should_retry(attempts, max_attempts):
        return Decision(BURY)
    if stopping:
        return Decision(RELEASE, counts_attempt=False)
    hint = declared.delay if declared is not None else None
    delay = retry_delay(attempts, jitter=jitter, retry_after=hint, base=base, cap=cap)
    return Decision(RETRY, delay=delay, counts_attempt=counts)


__all__ = [
    "BURY",
    "DROP",
    "FINISH",
    "PARK",
    "RELEASE",
    "RETRY",
    "Decision",
    "backoff_delay",
    "decide",
    "retry_delay",
    "should_retry",
]
