"""HTTP client for Heroku Managed Inference ``/v1/chat/completions`` (plain or SSE streaming).

One :class:`InferenceClient` holds one ``httpx.Client`` (a thread-safe connection pool), so
worker threads share it. Every failure leaves as an :mod:`bot.inference.errors` exception;
httpx exceptions never escape. Nothing here retries: the job queue decides when to try again.

``stream_options`` (asking for usage in the stream) is sent but never depended on: it is not
in Heroku's chat-completions parameter table, and Heroku has refused it with 400
"unrecognized request argument supplied: stream_options" (DESIGN-NOTES). An argument the
server refused that way is left out of every later request (:meth:`InferenceClient.refuse_argument`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.http import tls_context
from bot.inference.errors import (
    RATE_LIMIT_HEADER_PREFIX,
    InferenceError,
    RejectedError,
    RetryableError,
    error_for_status,
    error_for_stream_event,
    safe_message,
)
from bot.inference.sse import (
    AssembledMessage,
    MalformedResponseError,
    SseChunkReader,
    StreamAssembler,
    StreamErrorEvent,
    ToolCallOut,
    Usage,
    message_from_completion,
)

logger = logging.getLogger(__name__)

COMPLETIONS_PATH = "/v1/chat/completions"
PROMPT_CACHING_HEADER = "X-Heroku-Prompt-Caching"
# Never dropped, whatever a refusal says: without them there is no request.
REQUIRED_ARGUMENTS = frozenset({"model", "messages", "stream"})


@dataclass(frozen=True)
class Completion:
    """The assistant's answer. ``rate_limit_headers`` holds the x-ratelimit-* headers of the response."""

    content: str
    tool_calls: list[ToolCallOut] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    reasoning: str | None = None
    rate_limit_headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_message(cls, message: AssembledMessage, headers: Mapping[str, str]) -> Completion:
        return cls(
            content=message.content,
            tool_calls=list(message.tool_calls),
            finish_reason=message.finish_reason,
            usage=message.usage,
            reasoning=message.reasoning,
            rate_limit_headers={
                name.lower(): value
                for name, value in headers.items()
                if name.lower().startswith(RATE_LIMIT_HEADER_PREFIX)
            },
        )


def completions_url(base_url: str) -> str:
    """``base_url`` + ``/v1/chat/completions``; a base that already ends in ``/v1`` is accepted too."""
    base = base_url.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return base + COMPLETIONS_PATH


class InferenceClient:
    """Chat completions against one inference endpoint with one API key.

    ``timeout`` bounds each wait for the server (connect aside): for a stream, the wait
    between two chunks, so a stream that stops moving fails instead of hanging a worker.
    Pass ``http`` to share a pool; the client then leaves closing it to you.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = completions_url(base_url)
        self.model = model
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=self._timeout, verify=tls_context())
        self._refused: set[str] = set()  # arguments this server said it does not recognize
        self._refused_lock = threading.Lock()

    def __repr__(self) -> str:  # keeps the key out of tracebacks and debug dumps
        return f"InferenceClient(url={self.url!r}, model={self.model!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> InferenceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- arguments the server refused ----------------------------------------------------

    def refuse_argument(self, name: str) -> bool:
        """Leave ``name`` out of every later request; False if it was already left out (or may
        never be, like ``messages``)."""
        if name in REQUIRED_ARGUMENTS:
            return False
        with self._refused_lock:
            if name in self._refused:
                return False
            self._refused.add(name)
            return True

    @property
    def refused_arguments(self) -> frozenset[str]:
        with self._refused_lock:
            return frozenset(self._refused)

    # --- public calls ------------------------------------------------------------------

    def complete(self, body: Mapping[str, Any], *, prompt_caching: bool = True) -> Completion:
        """One non-streaming completion for ``body`` (an OpenAI-format request)."""
        payload = self._payload(body, stream=False)
        started = time.monotonic()
        try:
            response = self._http.post(
                self.url, json=payload, headers=self._headers(prompt_caching, stream=False), timeout=self._timeout
            )
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise self._transport_error(error) from error
        if not response.is_success:
            raise self._status_error(response, payload)
        try:
            document = response.json()
        except ValueError as error:
            raise RetryableError(
                "inference service answered with something that is not JSON", status=response.status_code
            ) from error
        message = self._message_or_error(document, response.status_code)
        self._log_done("complete", started, len(response.content), message)
        return Completion.from_message(message, response.headers)

    def stream(
        self,
        body: Mapping[str, Any],
        *,
        on_text: Callable[[str], None] | None = None,
        prompt_caching: bool = True,
    ) -> Completion:
        """One streaming completion; ``on_text`` gets each piece of content as it arrives.

        An exception raised by ``on_text`` stops the stream and propagates unchanged.
        """
        payload = self._payload(body, stream=True)
        started = time.monotonic()
        try:
            with self._http.stream(
                "POST",
                self.url,
                json=payload,
                headers=self._headers(prompt_caching, stream=True),
                timeout=self._timeout,
            ) as response:
                if not response.is_success:
                    response.read()
                    raise self._status_error(response, payload)
                if response.headers.get("content-type", "").startswith("application/json"):
                    # The server ignored ``stream``: a whole completion in one document.
                    response.read()
                    message = self._message_or_error(_json_or_none(response.content), response.status_code)
                    if on_text is not None and message.content:
                        on_text(message.content)
                    received = len(response.content)
                else:
                    message, received = self._read_stream(response, on_text)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise self._transport_error(error) from error
        self._log_done("stream", started, received, message)
        return Completion.from_message(message, response.headers)

    # --- helpers -------------------------------------------------------------------------

    def _payload(self, body: Mapping[str, Any], *, stream: bool) -> dict[str, Any]:
        refused = self.refused_arguments
        payload = {name: value for name, value in body.items() if name not in refused}
        if not payload.get("model"):
            payload["model"] = self.model
        payload["stream"] = stream
        if stream and "stream_options" not in refused:
            options = payload.get("stream_options")
            payload["stream_options"] = {**(options if isinstance(options, Mapping) else {}), "include_usage": True}
        elif not stream:
            payload.pop("stream_options", None)
        return payload

    def _headers(self, prompt_caching: bool, *, stream: bool) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        if not prompt_caching:
            headers[PROMPT_CACHING_HEADER] = "false"
        return headers

    def _read_stream(
        self, response: httpx.Response, on_text: Callable[[str], None] | None
    ) -> tuple[AssembledMessage, int]:
        reader = SseChunkReader()
        assembler = StreamAssembler()
        received = 0

        def take(chunks: list[dict[str, Any]]) -> None:
            for chunk in chunks:
                try:
                    text = assembler.add(chunk)
                except StreamErrorEvent as event:
                    raise error_for_stream_event(event.error, secrets=(self._api_key,)) from event
                if text and on_text is not None:
                    on_text(text)

        try:
            for data in response.iter_bytes():
                received += len(data)
                take(reader.feed(data))
                if reader.done:
                    break
            if not reader.done:
                take(reader.close())
        except MalformedResponseError as error:
            raise RetryableError(f"inference stream is garbled: {error}", status=response.status_code) from error
        message = assembler.result()
        if not reader.done and message.finish_reason is None:
            raise RetryableError(
                f"inference stream ended early after {assembler.chunks} chunks", status=response.status_code
            )
        return message, received

    def _message_or_error(self, document: Any, status: int) -> AssembledMessage:
        try:
            return message_from_completion(document)
        except StreamErrorEvent as event:
            raise error_for_stream_event(event.error, secrets=(self._api_key,)) from event
        except MalformedResponseError as error:
            raise RetryableError(f"inference answer is malformed: {error}", status=status) from error

    def _status_error(self, response: httpx.Response, payload: Mapping[str, Any]) -> InferenceError:
        error = error_for_status(
            response.status_code,
            response.headers,
            response.text,
            now=time.time(),
            secrets=(self._api_key,),
            sent=frozenset(payload) - REQUIRED_ARGUMENTS,
        )
        logger.debug("inference HTTP %s (%s)", response.status_code, type(error).__name__)
        return error

    def _transport_error(self, error: httpx.HTTPError | httpx.InvalidURL) -> InferenceError:
        kind = type(error).__name__
        detail = safe_message(str(error), secrets=(self._api_key,))
        if isinstance(error, httpx.TimeoutException):
            message = f"inference service timed out ({kind})"
        elif isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL):
            # A configuration mistake: retrying cannot help.
            return RejectedError(f"inference URL is unusable: {detail}")
        else:
            message = f"inference service unreachable ({kind}: {detail})"
        logger.debug("inference transport failure: %s", kind)
        return RetryableError(message)

    def _log_done(self, mode: str, started: float, received: int, message: AssembledMessage) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            usage = message.usage
            logger.debug(
                "inference %s done in %.3fs: %d bytes, %d characters, %d tool calls, finish=%s, tokens=%s",
                mode,
                time.monotonic() - started,
                received,
                len(message.content),
                len(message.tool_calls),
                message.finish_reason,
                usage.total_tokens if usage else None,
            )


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


__all__ = ["COMPLETIONS_PATH", "PROMPT_CACHING_HEADER", "Completion", "InferenceClient", "ToolCallOut", "Usage"]
