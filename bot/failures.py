"""What a failure means for the job that hit it, declared by the exception itself.

Every layer raises its own exceptions (inference, limits, Slack, tools); the ones the queue
must treat specially say so by deriving from one of these. This module imports nothing from
``bot``, so the lowest layers can use it::

    JobFailure                 root of the declared meanings
    ├── RetryLater             the same job may succeed later. ``delay``: seconds to wait
    │                          (None: the queue's backoff); ``counts_attempt``: whether this
    │                          try uses up one of the job's attempts (a 429 does not)
    ├── Permanent              retrying cannot help: the job is buried at once. ``reason``
    │                          and ``detail`` pick the sentence its user is told
    │                          (`user_sentence`, the one place those sentences live)
    ├── JobStopped              our own shutdown interrupted it: released for another worker,
    │                          the attempt not counted
    ├── Cancelled              a person stopped it: finished as it is, no retry, no notice
    ├── AwaitingPerson         it waits for a person's answer (an approval) until ``until``:
    │                          parked (bot.queue.parking), no thread, no lease, no attempt used
    └── LeaseLost              another worker owns the job now: touch nothing

Any other exception is unexpected and counts as ``RetryLater`` with backoff that uses an
attempt. `bot.queue.retry.decide` turns (failure, attempts, max_attempts) into what the
worker does; it is pure and table-tested.
"""

from __future__ import annotations


class JobFailure(Exception):
    """Root: an exception that declares what the queue should do with its job."""


class RetryLater(JobFailure):
    """Try again later. Subclasses may override ``delay`` and ``counts_attempt`` (as class
    attributes or properties); the constructor sets them for a direct raise."""

    delay: float | None = None
    counts_attempt: bool = True

    def __init__(self, message: str = "", *, delay: float | None = None, counts_attempt: bool | None = None):
        super().__init__(message)
        if delay is not None:
            self.delay = delay
        if counts_attempt is not None:
            self.counts_attempt = counts_attempt


class Permanent(JobFailure):
    """Retrying cannot help (a rejected request, a spent budget, a bad payload).

    ``reason`` is a key of SENTENCES (anything else gets the job's fallback sentence);
    ``detail`` is text safe to show the user, used by some sentences."""

    reason: str = "permanent"
    detail: str = ""


class JobStopped(JobFailure):
    """The worker is shutting down (or the job was asked to stop waiting); release it."""


class Cancelled(JobFailure):
    """Somebody stopped the job on purpose; it ends now, without retry and without a notice."""


class AwaitingPerson(JobFailure):
    """The job waits for a person (an approval card) until ``until`` (an aware datetime).

    ``answered(session)``, when given, tells whether the person has answered already; the queue
    asks it in the transaction that parks the job, so an answer that came before the job was
    parked queues it again at once instead of leaving it parked until ``until``."""

    def __init__(self, message: str = "", *, until, answered=None):
        super().__init__(message)
        self.until = until
        self.answered = answered


class LeaseLost(JobFailure):
    """Another worker took this job over (our lease expired); stop without side effects."""


# The sentences a user sees when a job gives up on a permanent failure, by ``reason``.
SENTENCES = {
    "over_budget": "{detail}",
    "rejected": "Sorry, the model could not answer this: {detail}",
    "context_too_long": "Sorry, this conversation is too long for the model. Please start a new thread.",
    "payload_too_large": (
        "Sorry, this conversation is too large for the model to read, even with fewer images and older "
        "messages left out. Please start a new thread, or send fewer or smaller files."
    ),
    "request_too_large": (
        "Sorry, this request is larger than the model's per-minute token limit, so it can never be sent. "
        "Please start a new thread."
    ),
}
# Said when the model kept failing (retries ran out) or failed in a way nobody declared.
MODEL_UNAVAILABLE = "Sorry, I couldn't get an answer from the model this time. Please try again in a few minutes."


def user_sentence(exc: BaseException | None, fallback: str = MODEL_UNAVAILABLE) -> str:
    """The one short plain sentence a person is told about ``exc``; never a stack trace."""
    if isinstance(exc, Permanent) and exc.reason in SENTENCES:
        return SENTENCES[exc.reason].format(detail=exc.detail)
    return fallback


__all__ = [
    "SENTENCES",
    "Cancelled",
    "JobFailure",
    "JobStopped",
    "LeaseLost",
    "Permanent",
    "RetryLater",
    "user_sentence",
]
