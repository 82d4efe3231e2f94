"""Retry arithmetic and the failure decision for jobs (pure: randomness and the clock are
passed in).

`decide` is the whole failure contract of the queue: what a failed attempt turns into, from
the exception's declared meaning (bot.failures), the attempts made and the attempts allowed.

Backoff uses "equal jitter": half of the exponential step is fixed and half is random, so
a retry never comes back immediately to a server that just failed, yet retries from many
jobs still spread out instead of arriving together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from bot.failures import AwaitingPerson, Cancelled, JobStopped, LeaseLost, Permanent, RetryLater

# Past this many doublings every sensible cap has been reached; avoids float overflow.
_MAX_DOUBLINGS = 64

# A plain reset value this large is a unix time, not a number of seconds.
_UNIX_TIME_THRESHOLD = 1_000_000_000

_SECONDS_PER_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN_NUMBER = re.compile(_NUMBER)
_DURATION = re.compile(rf"(?:{_NUMBER}(?:h|ms|m|s|us|µs|ns))+")
_DURATION_PART = re.compile(rf"({_NUMBER})(h|ms|m|s|us|µs|ns)")


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


def parse_duration(text: str) -> float | None:
    """Seconds in a duration such as "51s", "1m30s", "200ms", "0.5s" or "2"; None if unreadable."""
    value = text.strip().lower()
    if _PLAIN_NUMBER.fullmatch(value):
        seconds = float(value)
    elif _DURATION.fullmatch(value):
        parts = _DURATION_PART.findall(value)
        seconds = sum(float(number) * _SECONDS_PER_UNIT[unit] for number, unit in parts)
    else:
        return None
    return seconds if math.isfinite(seconds) else None


def _retry_after_header(value: str, now: float) -> float | None:
    seconds = parse_duration(value)
    if seconds is not None:
        return seconds
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # an HTTP date is always GMT
        return None
    return max(0.0, moment.timestamp() - now)


def _reset_header(value: str, now: float) -> float | None:
    seconds = parse_duration(value)
    if seconds is not None and seconds >= _UNIX_TIME_THRESHOLD:
        return max(0.0, seconds - now)
    return seconds


def retry_after_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """How long the server asks us to wait, from ``Retry-After`` (seconds or an HTTP date),
    ``retry-after-ms`` and ``x-ratelimit-reset-requests`` / ``-tokens``: the largest usable
    value, or None when none is. ``now`` is the current unix time."""
    lowered = {name.lower(): value for name, value in headers.items()}
    candidates: list[float | None] = []
    if "retry-after" in lowered:
        candidates.append(_retry_after_header(lowered["retry-after"], now))
    if "retry-after-ms" in lowered:
        value = lowered["retry-after-ms"].strip()
        milliseconds = parse_duration(value) if _PLAIN_NUMBER.fullmatch(value) else None
        candidates.append(None if milliseconds is None else milliseconds / 1000.0)
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        if name in lowered:
            candidates.append(_reset_header(lowered[name], now))
    usable = [seconds for seconds in candidates if seconds is not None]
    return max(usable) if usable else None


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
    "parse_duration",
    "retry_after_seconds",
    "retry_delay",
    "should_retry",
]
