"""The failure contract: (declared failure, attempts, max_attempts, stopping) → what the worker does."""

from __future__ import annotations

import pytest

from bot.conversation.budget import ThreadTooLong
from bot.failures import (
    MODEL_UNAVAILABLE,
    Cancelled,
    JobStopped,
    LeaseLost,
    Permanent,
    RetryLater,
    user_sentence,
)
from bot.inference.errors import RateLimitedError, RejectedError, RetryableError
from bot.inference.gateway import OverBudget
from bot.limits.admission import AdmissionStopped, RequestTooLarge
from bot.queue.retry import BURY, DROP, FINISH, RELEASE, RETRY, Decision, backoff_delay, decide

JITTER = 0.5
BACKOFF_1 = backoff_delay(1, jitter=JITTER)
BACKOFF_2 = backoff_delay(2, jitter=JITTER)


@pytest.mark.parametrize(
    ("exc", "attempts", "max_attempts", "stopping", "expected"),
    [
        # Undeclared failures: backoff, an attempt used, buried when none is left.
        (ValueError("bug"), 1, 5, False, Decision(RETRY, BACKOFF_1, True)),
        (ValueError("bug"), 2, 5, False, Decision(RETRY, BACKOFF_2, True)),
        (ValueError("bug"), 5, 5, False, Decision(BURY)),
        (ValueError("bug"), 1, 5, True, Decision(RELEASE, counts_attempt=False)),  # our shutdown's fault
        (ValueError("bug"), 5, 5, True, Decision(BURY)),  # its last attempt anyway
        # Retryable inference failures behave the same; their own delay wins when they give one.
        (RetryableError("HTTP 503"), 1, 5, False, Decision(RETRY, BACKOFF_1, True)),
        (RetryableError("HTTP 503"), 5, 5, False, Decision(BURY)),
        (RetryLater("later", delay=7.0), 1, 5, False, Decision(RETRY, 7.0, True)),
        (RetryLater("later", delay=7.0), 3, 3, False, Decision(BURY)),
        # 429: the server's wait, and never an attempt, even past max_attempts.
        (RateLimitedError("429", retry_after=30.0), 1, 5, False, Decision(RETRY, 30.0, False)),
        (RateLimitedError("429", retry_after=30.0), 5, 5, False, Decision(RETRY, 30.0, False)),
        (RateLimitedError("429", retry_after=30.0), 9, 5, False, Decision(RETRY, 30.0, False)),
        (RateLimitedError("429", retry_after=None), 2, 5, False, Decision(RETRY, BACKOFF_2, False)),
        (RateLimitedError("429", retry_after=30.0), 1, 5, True, Decision(RELEASE, counts_attempt=False)),
        (RetryLater("not ours", delay=1.0, counts_attempt=False), 5, 5, False, Decision(RETRY, 1.0, False)),
        # Permanent: buried at once, whatever the attempts, even while stopping.
        (RejectedError("HTTP 400"), 1, 5, False, Decision(BURY)),
        (OverBudget("spent"), 1, 5, True, Decision(BURY)),
        (RequestTooLarge("window"), 1, 5, False, Decision(BURY)),
        (ThreadTooLong("context"), 1, 5, False, Decision(BURY)),
        (Permanent("bad payload"), 1, 5, False, Decision(BURY)),
        # Stopped, cancelled, lease lost.
        (JobStopped(), 1, 5, False, Decision(RELEASE, counts_attempt=False)),
        (JobStopped(), 5, 5, False, Decision(RELEASE, counts_attempt=False)),
        (AdmissionStopped(), 1, 5, True, Decision(RELEASE, counts_attempt=False)),
        (Cancelled(), 1, 5, False, Decision(FINISH)),
        (LeaseLost(), 1, 5, False, Decision(DROP)),
        (LeaseLost(), 5, 5, True, Decision(DROP)),
    ],
)
def test_decide(exc, attempts, max_attempts, stopping, expected):
    assert decide(exc, attempts=attempts, max_attempts=max_attempts, stopping=stopping, jitter=JITTER) == expected


@pytest.mark.parametrize(
    ("exc", "sentence"),
    [
        (OverBudget("You have used today's token budget."), "You have used today's token budget."),
        (RejectedError("prompt is too long"), "Sorry, the model could not answer this: prompt is too long"),
        (ThreadTooLong("x"), "Sorry, this conversation is too long for the model. Please start a new thread."),
        (RequestTooLarge("x"), "per-minute token limit"),
        (Permanent("internal detail"), MODEL_UNAVAILABLE),  # no sentence declared: the fallback
        (RetryableError("HTTP 503 internal detail"), MODEL_UNAVAILABLE),
        (ValueError("traceback text"), MODEL_UNAVAILABLE),
        (None, MODEL_UNAVAILABLE),
    ],
)
def test_user_sentence(exc, sentence):
    said = user_sentence(exc)
    assert sentence in said
    assert "internal detail" not in said and "traceback" not in said


def test_user_sentence_takes_the_jobs_own_fallback():
    assert user_sentence(ValueError(), "Sorry, that command failed.") == "Sorry, that command failed."
