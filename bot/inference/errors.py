"""The ways a chat-completions call can fail, as one small tree.

::

    InferenceError                 root: catch this to handle every inference failure
    ├── RetryableError             no usable answer, try again later: timeout, connection
    │   │                          refused or reset, a truncated or garbled stream, HTTP 5xx
    │   └── RateLimitedError       HTTP 429; ``retry_after`` says when capacity frees
    └── RejectedError              any other HTTP 4xx (bad key, context too long, invalid
        │                          request): retrying the same request cannot help; the
        │                          user (or the operator) must hear about it
        ├── UnknownArgumentError   a 400 naming an argument the server does not recognize
        │                          (``argument``): the gateway drops it and sends again at once
        └── PayloadTooLargeError   HTTP 413: the request must become smaller before it is sent again

Classification goes by HTTP status first (DESIGN-NOTES, "Errors": a 400 is never fixed by
retrying, whether it arrives before or inside a stream); the body only adds detail. Bodies come
in three shapes and plain text, and all are read (:func:`error_fields`): OpenAI's
``{"error": {"message", "type", "code"}}``, Heroku's ``{"error": "<that object as a JSON
string>"}`` (seen in 2025), and the top-level ``{"code", "message", "type"}`` of Heroku's API
reference.

What each branch means for a job is declared by deriving from bot.failures:
RetryableError is a ``RetryLater`` that uses an attempt, RateLimitedError one that does not
(rate limits never burn the retry budget) and waits ``retry_after``, RejectedError is
``Permanent`` (reason "rejected": the user hears the message).

Every error carries ``status`` (the HTTP status, or None when there was no answer),
``message`` (short, safe to show a user: never the API key, never the prompt), and, when
the server sent a JSON error body, its ``error_type`` and ``code``; ``reason`` is the
``provider_reason`` is the provider's own words alone, for the person (one plain sentence).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

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
        provider_reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.code = code
        self.provider_reason = provider_reason or message


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
        provider_reason: str | None = None,
    ) -> None:
        super().__init__(message, status=status, error_type=error_type, code=code, provider_reason=provider_reason)
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    @property
    def delay(self) -> float | None:  # type: ignore[override]
        return self.retry_after


class RejectedError(InferenceError, Permanent):
    """HTTP 4xx other than 429 (or a client misconfiguration): sending the same request again cannot help."""

    reason = "rejected"  # bot.failures picks the user's sentence by this key

    @property
    def detail(self) -> str:  # type: ignore[override]
        return plain_sentence(self.provider_reason)


class UnknownArgumentError(RejectedError):
    """HTTP 400 saying an argument we sent is not recognized (Heroku answered
    "unrecognized request argument supplied: stream_options" in 2025, DESIGN-NOTES). The
    request is fine without it: drop ``argument`` and send again, without using an attempt."""

    def __init__(self, message: str, *, argument: str, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.argument = argument


class PayloadTooLargeError(RejectedError):
    """HTTP 413: the body is over the provider's size limit (Bedrock documents 20 MB,
    DESIGN-NOTES "Request size"). Send less: fewer or smaller images, then fewer turns."""

    reason = "payload_too_large"


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


class ErrorFields(NamedTuple):
    message: str | None = None
    type: str | None = None
    code: str | None = None


def _as_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def error_fields(value: Any, *, depth: int = 0) -> ErrorFields:
    """(message, type, code) from an error body or error event, whatever its shape (pure).

    ``value`` is a response text, a parsed document, or the value of an ``error`` field:
    ``{"error": {"message", "type", "code"}}`` (OpenAI), ``{"error": "<that object as JSON
    text>"}`` (Heroku, 2025), ``{"code", "message", "type"}`` at the top (Heroku's API
    reference), ``{"error": "plain words"}``, or plain text (a proxy's page): then the text
    itself is the message.
    """
    if isinstance(value, str | bytes):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        stripped = text.strip()
        if depth < 3 and stripped[:1] in ("{", "["):
            try:
                return error_fields(json.loads(stripped), depth=depth + 1)
            except ValueError:
                pass
        return ErrorFields(message=_as_text(stripped))
    if not isinstance(value, Mapping):
        return ErrorFields()
    inner = value.get("error")
    if isinstance(inner, str | Mapping) and depth < 3:
        found = error_fields(inner, depth=depth + 1)
        # Fields beside a string error (e.g. a top-level code) still count.
        return ErrorFields(
            found.message or _as_text(value.get("message")),
            found.type or _as_text(value.get("type")),
            found.code if found.code is not None else _code_text(value.get("code")),
        )
    message = _as_text(value.get("message"))
    if message and message.lstrip()[:1] == "{" and depth < 3:
        # A string error wrapped once more on the way (an event's error kept as {"message": text}).
        found = error_fields(message, depth=depth + 1)
        if found.type or found.code:
            return ErrorFields(
                found.message,
                found.type or _as_text(value.get("type")),
                found.code if found.code is not None else _code_text(value.get("code")),
            )
    return ErrorFields(message, _as_text(value.get("type")), _code_text(value.get("code")))


def _code_text(code: Any) -> str | None:
    return None if code is None or isinstance(code, Mapping | list) else str(code)


# "unrecognized request argument supplied: stream_options" (Heroku, 2025, DESIGN-NOTES) and the
# same refusal in the words other OpenAI-compatible servers use.
_REFUSED_ARGUMENT = (
    re.compile(
        r"(?:unrecognized|unknown|unsupported|unexpected|invalid|extra)\s+(?:request\s+)?"
        r"(?:argument|parameter|field|key|input)s?(?:\s+supplied)?\s*[:=]?\s*['\"`]?([A-Za-z_][\w.]*)",
        re.IGNORECASE,
    ),
    re.compile(
        r"['\"`]?([A-Za-z_][\w.]*)['\"`]?\s*:?\s+extra (?:inputs|fields) (?:are|is) not permitted", re.IGNORECASE
    ),
    re.compile(r"['\"`]?([A-Za-z_][\w.]*)['\"`]?\s*:?\s+(?:is )?not (?:supported|recognized|permitted)", re.IGNORECASE),
)


def refused_argument(message: str | None, sent: set[str] | frozenset[str] = frozenset()) -> str | None:
    """The request argument a 400 ``message`` says the server does not recognize, or None (pure).

    With ``sent`` (the body's top-level keys), only an argument we actually sent counts, so a
    message about something else never drops a field.
    """
    if not message:
        return None
    for pattern in _REFUSED_ARGUMENT:
        for match in pattern.finditer(message):
            name = match.group(1).split(".")[0]
            if not sent or name in sent:
                return name
    return None


def plain_sentence(text: str | None) -> str:
    """``text`` as one plain sentence for a person: one line, no markup, a full stop at the end."""
    words = " ".join((text or "").replace("`", "'").replace("*", "").split())
    if not words:
        return "it gave no reason."
    return words if words[-1] in ".!?" else words + "."


def error_for_status(
    status: int,
    headers: Mapping[str, str],
    body: str,
    *,
    now: float,
    secrets: tuple[str, ...] = (),
    sent: set[str] | frozenset[str] = frozenset(),
) -> InferenceError:
    """The error for an HTTP answer with a non-2xx ``status``.

    ``body`` is the response text (any shape :func:`error_fields` reads, or anything else, e.g.
    a proxy's HTML page); ``now`` is the current unix time, for a Retry-After given as an HTTP
    date; ``secrets`` are blanked out of the message; ``sent``: the request's top-level keys (a
    400 that names one of them as unrecognized is an :class:`UnknownArgumentError`). The
    status decides the class; the body only adds detail.
    """
    server_message, error_type, code = error_fields(body or "")
    reason = safe_message(server_message or "no details", secrets=secrets)
    message = f"inference service answered HTTP {status}: {reason}"
    fields: dict[str, Any] = {"status": status, "error_type": error_type, "code": code, "provider_reason": reason}
    if status == 429:
        return RateLimitedError(
            message, retry_after=retry_after_seconds(headers, now), headers=rate_limit_headers(headers), **fields
        )
    if status == 408 or status >= 500:
        return RetryableError(message, **fields)
    if status == 413:
        return PayloadTooLargeError(message, **fields)
    if status == 400:
        argument = refused_argument(server_message, sent) if sent else None
        if argument is not None:
            return UnknownArgumentError(message, argument=argument, **fields)
    return RejectedError(message, **fields)


def error_for_stream_event(error: Any, *, secrets: tuple[str, ...] = ()) -> InferenceError:
    """The error for an ``error`` event sent inside a 200 stream (e.g. the model overloaded).

    ``error`` is the event's ``error`` value in any shape :func:`error_fields` reads. The HTTP
    status is long gone, so a numeric ``status``/``code`` field decides first (a 4xx other than
    408/429 is never retried), then an error ``type`` that names a bad request; otherwise the
    failure counts as retryable, since the request itself was accepted.
    """
    fields = error_fields(error)
    raw_status = error.get("status") if isinstance(error, Mapping) else None
    status = _status_number(raw_status) or _status_number(fields.code)
    error_type = fields.type
    reason = safe_message(fields.message or "no details", secrets=secrets)
    message = f"inference stream failed: {reason}"
    extra: dict[str, Any] = {"status": status, "error_type": error_type, "code": fields.code, "provider_reason": reason}
    if status == 429 or (error_type is not None and "rate_limit" in error_type):
        return RateLimitedError(message, retry_after=None, **extra)
    if status == 413 or error_type == "request_too_large":
        return PayloadTooLargeError(message, **extra)
    if (status is not None and 400 <= status < 500 and status != 408) or error_type in REJECTED_EVENT_TYPES:
        return RejectedError(message, **extra)
    return RetryableError(message, **extra)


def _status_number(value: Any) -> int | None:
    try:
        number = int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and 100 <= number <= 599 else None


__all__ = [
    "ErrorFields",
    "InferenceError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "RejectedError",
    "RetryableError",
    "UnknownArgumentError",
    "error_fields",
    "error_for_status",
    "error_for_stream_event",
    "plain_sentence",
    "rate_limit_headers",
    "refused_argument",
    "safe_message",
]
