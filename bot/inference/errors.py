"""The ways a chat-completions call can fail, as one small tree.

::

    InferenceError                 root: catch this to handle every inference failure
    ├── RetryableError             no usable answer, try again later: timeout, connection
    │   │                          refused or reset, a truncated or garbled stream, HTTP 5xx
    │   └── RateLimitedError       HTTP 429; ``retry_after`` says when capacity frees
    └── RejectedError              any other HTTP 4xx (bad key, context too long, invalid
                                   request): retrying the same request cannot help; the
                                   user (or the operator) must hear about it

What each branch means for a job is declared by deriving from bot.failures:
RetryableError is a ``RetryLater`` that uses an attempt, RateLimitedError one that does not
(rate limits never burn the retry budget) and waits ``retry_after``, RejectedError is
``Permanent`` (reason "rejected": the user hears the message).

Every error carries ``status`` (the HTTP status, or None when there was no answer),
``message`` (short, safe to show a user: never the API key, never the prompt), and, when
the server sent a JSON error body, its ``error_type`` and ``code``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.failures import Permanent, RetryLater
from bot.limits.headers import retry_after_seconds

# Long enough for "prompt is too long: 210000 tokens > 200000 maximum", short enough for Slack.
MAX_MESSAGE_CHARS = 300

# Response headers that say something about rate limits; kept on RateLimitedError.
RATE_LIMIT_HEADER_PREFIX = "x-ratelimit-"
RETRY_HEADERS = ("retry-after", "retry-after-ms")

# Error types (OpenAI's and Anthropic's names) that mean "this request will never work".
REJECTED_EVENT_TYPES = frozenset(
    {"invalid_request_error", "authentication_error", "permission_error", "not_found_error", "request_too_large"}
)


class InferenceError(Exception):
    """Root of every inference failure."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.code = code


class RetryableError(InferenceError, RetryLater):
    """No usable answer (timeout, connection failure, broken stream, 5xx): the same request may
    succeed later."""


class RateLimitedError(RetryableError):
    """HTTP 429. ``retry_after`` is the server's wait in seconds (None if its headers gave none);
    ``headers`` holds the Retry-After and x-ratelimit-* headers it sent (lower-case names).
    A job that hits it is retried after ``retry_after`` without using an attempt."""

    counts_attempt = False

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None,
        headers: Mapping[str, str] | None = None,
        status: int | None = 429,
        error_type: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, status=status, error_type=error_type, code=code)
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    @property
    def delay(self) -> float | None:  # type: ignore[override]
        return self.retry_after


class RejectedError(InferenceError, Permanent):
    """HTTP 4xx other than 429 (or a client misconfiguration): sending the same request again cannot help."""

    reason = "rejected"

    @property
    def detail(self) -> str:  # type: ignore[override]
        return self.message


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The Retry-After and x-ratelimit-* headers among ``headers``, with lower-case names."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(RATE_LIMIT_HEADER_PREFIX) or lowered in RETRY_HEADERS:
            kept[lowered] = value
    return kept


def safe_message(text: str, *, secrets: tuple[str, ...] = ()) -> str:
    """``text`` shortened to one line of MAX_MESSAGE_CHARS with every secret blanked out."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = " ".join(text.split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return text


def _error_fields(body: str) -> tuple[str | None, str | None, str | None]:
    """(message, type, code) from a JSON ``{"error": {...}}`` body; all None when it is not one."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        return None, None, None
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, str):
        return error, None, None
    if not isinstance(error, dict):
        message = document.get("message") if isinstance(document, dict) else None
        return (message if isinstance(message, str) else None), None, None
    message, error_type, code = error.get("message"), error.get("type"), error.get("code")
    return (
        message if isinstance(message, str) else None,
        error_type if isinstance(error_type, str) else None,
        None if code is None else str(code),
    )


def error_for_status(
    status: int,
    headers: Mapping[str, str],
    body: str,
    *,
    now: float,
    secrets: tuple[str, ...] = (),
) -> InferenceError:
    """The error for an HTTP answer with a non-2xx ``status``.

    ``body`` is the response text (a JSON error or anything else, e.g. a proxy's HTML page);
    ``now`` is the current unix time, for a Retry-After given as an HTTP date; ``secrets``
    are blanked out of the message.
    """
    server_message, error_type, code = _error_fields(body)
    detail = safe_message(server_message or body or "no details", secrets=secrets)
    message = f"inference service answered HTTP {status}: {detail}"
    if status == 429:
        return RateLimitedError(
            message,
            retry_after=retry_after_seconds(headers, now),
            headers=rate_limit_headers(headers),
            status=status,
            error_type=error_type,
            code=code,
        )
    if status == 408 or status >= 500:
        return RetryableError(message, status=status, error_type=error_type, code=code)
    return RejectedError(message, status=status, error_type=error_type, code=code)


def error_for_stream_event(error: Mapping[str, Any], *, secrets: tuple[str, ...] = ()) -> InferenceError:
    """The error for an ``{"error": {...}}`` event sent inside a 200 stream (e.g. the model overloaded).

    The HTTP status is long gone, so a numeric ``code``/``status`` field decides, or an error
    ``type`` that names a bad request; otherwise the failure counts as retryable, since the
    request itself was accepted.
    """
    raw_status = error.get("status", error.get("code"))
    try:
        status = int(raw_status) if raw_status is not None else None
    except (TypeError, ValueError):
        status = None
    error_type = error.get("type") if isinstance(error.get("type"), str) else None
    code = None if error.get("code") is None else str(error.get("code"))
    detail = safe_message(str(error.get("message") or "no details"), secrets=secrets)
    message = f"inference stream failed: {detail}"
    if status == 429 or (error_type is not None and "rate_limit" in error_type):
        return RateLimitedError(message, retry_after=None, status=status, error_type=error_type, code=code)
    if (status is not None and 400 <= status < 500 and status != 408) or error_type in REJECTED_EVENT_TYPES:
        return RejectedError(message, status=status, error_type=error_type, code=code)
    return RetryableError(message, status=status, error_type=error_type, code=code)


__all__ = [
    "InferenceError",
    "RateLimitedError",
    "RejectedError",
    "RetryableError",
    "error_for_status",
    "error_for_stream_event",
    "rate_limit_headers",
    "safe_message",
]
