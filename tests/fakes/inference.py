"""A fake Heroku Managed Inference server: real HTTP on 127.0.0.1, scripted answers, a real rate limit.

In a test::

    with FakeInference(max_requests=3, window=0.5) as fake:
        client = InferenceClient(fake.url, fake.api_key, "claude-4-5-haiku")
        ...

For benchmarks, as its own process (prints its URL, then serves until SIGINT/SIGTERM)::

    python -m tests.fakes.inference --port 0 --max-requests 200 --max-tokens 800000 --window 60 \
        --latency-min 0.5 --latency-max 2.0

``GET /_stats`` answers counts as JSON (requests, admitted, rejected_429, tokens_charged);
``POST /_external`` with ``{"requests": n, "tokens": t}`` charges another app's usage of the add-on.

Rate limit (tests/fakes/rate_limit.py, ``accounting=`` "actual", "corrected" or "reserved"): a
sliding window, checked when a request arrives. The request is refused with
429 when, counting itself, more than ``max_requests`` admitted requests arrived in the last
``window`` seconds, or when their tokens plus its own exceed ``max_tokens``. A refused
request is not charged. A request is charged ``prompt_tokens + completion_tokens`` of the
answer it is about to get. There is no tokenizer here: :func:`fake_prompt_tokens` stands
in for one with ``ceil(len(json.dumps(messages) + json.dumps(tools)) / 4)``, and the answer
costs ``ceil(len(text) / 4)`` of its content, reasoning and tool calls. ``usage`` reports
the same numbers. A request bigger than ``max_tokens`` on its own is refused forever
(429 with Retry-After of one window): the fake's stand-in for an answer that can never fit.

Check order for each request: record it, bearer key (401), injected failures
(:meth:`FakeInference.fail_next`), JSON validation (400), rate limit (429), injected hangs
(:meth:`FakeInference.hang_next`: the request is charged, then not answered), latency, answer.

Strict by default: every request is checked against the rules below before it is answered,
and a request that breaks one is refused the way Heroku refuses it (``{"error": {"message",
"type", "code"}}``, 400, or 413 for the size) and recorded in :attr:`FakeInference.rejections`
and in the process-wide :data:`REJECTIONS`. The test suite fails any test during which a fake
refused a request for validity, unless the test declares it with
``@pytest.mark.invalid_inference_requests`` (``tests/support/strict_inference.py``).

Rules enforced (:func:`request_problem`), each with the passage it comes from:

* max_tokens within the model's cap. Heroku, /v1/chat/completions: "max_tokens ... max value:
  4096 for Haiku models, 8192 for Sonnet models".
* temperature within 0..1. Heroku: "temperature ... Range: 0.0 to 1.0".
* tool_choice is one of none, auto, required. Heroku: '"none" - Model will not call any tools',
  '"auto" - Model can call zero or more tools', '"required" - Model must call at least one tool'
  (a named-function object is not among them).
* extended_thinking: budget_tokens >= 1024 and < max_tokens. Heroku: "budget_tokens (integer):
  Minimum 1024"; Anthropic, extended thinking: "budget_tokens must be set to a value less than
  max_tokens" (thinking tokens count toward max_tokens).
* No temperature, top_k or forced tool use with thinking. Anthropic: "Thinking isn't compatible
  with temperature or top_k modifications as well as forced tool use"; "tool_choice options that
  force tool use return an error with manual extended thinking". top_p only from 0.95 to 1.
* No thinking in the middle of a tool-use loop. Anthropic: "when you return a tool result, the
  thinking blocks from the assistant message must come back with it" and "Keep one thinking
  configuration per assistant turn". Heroku documents no field that carries a thinking block
  (with its signature) back in an assistant message, so a request with thinking enabled whose
  messages end in tool results cannot be valid: the follow-up must run with thinking off.
* Tools: function names match ``^[a-zA-Z0-9_-]{1,64}$`` (OpenAI's rule for function names), and
  parameters are an object schema without a root ``oneOf``/``allOf``/``anyOf``. Anthropic:
  "input_schema does not support oneOf, allOf, or anyOf at the top level" (its API's error for
  such tools) and the tool-use docs' object root.
* Roles are system, user, assistant, tool. Heroku: "Supported roles: system, user, assistant, tool".
* Content is never empty. Heroku: "Each message must have a role and content"; Anthropic rejects
  empty text blocks and assistant turns with tool calls but no text through gateways.
* Every tool call is answered by exactly one tool message, right after the assistant message
  that made it, and every tool message answers such a call. Anthropic, tool use: "tool_result
  blocks must immediately follow the tool_use blocks" / "Each tool_use block must have a
  corresponding tool_result block in the next message".
* Images only in user messages, as base64 data URLs of image/jpeg, png, gif or webp, at most
  5 MB of base64 each. Anthropic, vision: "The supported image formats are JPEG, PNG, GIF and
  WebP"; "maximum ... 5MB per image" (of the base64 text); images are user content.
* A final assistant message (a prefill) does not end in whitespace. Anthropic, messages: "final
  assistant content cannot end with trailing whitespace".
* The whole body at most 32 MB, else 413. Anthropic, vision: "there is a 32MB request size limit
  for standard endpoints".

Readings where the documentation is silent or the service was seen to differ (DESIGN-NOTES),
each a switch (all off by default, :meth:`FakeInference.reset_script` turns them off):

* ``refuse_stream_options``: ``stream_options`` is not in Heroku's chat-completions parameter
  table, and in 2025 Heroku answered it with 400 "unrecognized request argument supplied:
  stream_options". Those refusals are kept in :attr:`FakeInference.argument_refusals` (not
  validity rejections: the bot is expected to learn from them).
* ``report_usage = False``: no ``usage`` in any answer, streamed or not.
* ``error_shape``: how every error body and error event is written: "openai" (``{"error":
  {"message", "type", "code"}}``, the default), "string" (``{"error": "<that object as JSON
  text>"}``, as Heroku answered in 2025), "top_level" (``{"code", "message", "type"}``, Heroku's
  API reference) or "text" (plain text, as a proxy may send; error events inside a stream stay
  JSON, in OpenAI's shape).
* ``max_body_bytes = BEDROCK_MAX_BODY_BYTES``: Heroku serves Claude from Amazon Bedrock, whose
  documented payload limit is 20 MB (413 above it).
* Rate-limit headers, where Heroku's documentation is silent, one switch per reading: ``reset=``
  "oldest" (when the oldest entry expires, Heroku's words), "replenished" or "zero" (0 while there is
  room) (tests/fakes/rate_limit.py); ``headers=`` "always", "none" or "only_429" (which answers carry
  x-ratelimit-* headers), and :attr:`FakeInference.headers_stop_at` (none from that moment: headers
  that stop mid-run).

What the real API may send and the fake can too: usage split across two chunks
(:attr:`FakeInference.usage_split`) or only in the last one (the default), 429s with only
x-ratelimit-* headers and no Retry-After (:attr:`FakeInference.retry_after_header` False, or
``fail_next(429, headers=...)``), and an error event in the middle of a stream
(:meth:`FakeInference.error_mid_stream_next`). Reasoning is sent only when the request asked
for it (``extended_thinking`` with ``include_reasoning``).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import signal
import socket
import socketserver
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

from tests.fakes.rate_limit import DEFAULT_MAX_TOKENS, WindowLimit

COMPLETIONS_PATH = "/v1/chat/completions"
# Which answers carry x-ratelimit-* headers: Heroku documents them but not that every answer has them.
HEADER_MODES = ("always", "none", "only_429")
STATS_PATH = "/_stats"
EXTERNAL_PATH = "/_external"
CHARS_PER_TOKEN = 4

Responder = Callable[[dict[str, Any]], Mapping[str, Any]]


class RecordedRequest(NamedTuple):
    arrival: float  # time.monotonic() when the request line had been read
    headers: dict[str, str]  # as sent (names in the sender's case)
    body: Any  # the parsed JSON, or the raw text when it was not JSON


def fake_text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def fake_prompt_tokens(body: Mapping[str, Any]) -> int:
    """The fake's prompt size, standing in for the real tokenizer (see the module docstring)."""
    messages = body.get("messages") or []
    tools = body.get("tools") or []
    return fake_text_tokens(json.dumps(messages) + json.dumps(tools))


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments if arguments is not None else {})


def fake_answer_tokens(answer: Mapping[str, Any]) -> int:
    """Completion tokens of a responder's answer: its content, reasoning and tool calls."""
    text = str(answer.get("content") or "") + str(answer.get("reasoning") or "")
    for call in answer.get("tool_calls") or []:
        text += str(call.get("name") or "") + _arguments_text(call.get("arguments"))
    return fake_text_tokens(text)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text") or "") for part in content if isinstance(part, dict))
    return ""


def echo_responder(body: Mapping[str, Any]) -> dict[str, Any]:
    """The default model: a short answer quoting the last user message."""
    last_user = next(
        (m for m in reversed(body.get("messages") or []) if isinstance(m, dict) and m.get("role") == "user"),
        {},
    )
    said = " ".join(_text_of(last_user.get("content")).split())[:80]
    return {"content": f"You said: {said}" if said else "Hello! How can I help?"}


# --- the strict rules (see the module docstring for the passages) ---------------------------

MODEL_MAX_TOKENS = {"haiku": 4096, "sonnet": 8192}
DEFAULT_MODEL_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
TOOL_CHOICES = ("none", "auto", "required")
ROLES = ("system", "user", "assistant", "tool")
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_IMAGE_BASE64_BYTES = 5 * 1024 * 1024
MAX_BODY_BYTES = 32 * 1024 * 1024
BEDROCK_MAX_BODY_BYTES = 20_000_000  # Amazon Bedrock's documented request payload limit
ERROR_SHAPES = ("openai", "string", "top_level", "text")
STREAM_OPTIONS_REFUSAL = "unrecognized request argument supplied: stream_options"


class Problem(NamedTuple):
    status: int
    message: str
    type: str = "invalid_request_error"


class Rejection(NamedTuple):
    status: int
    message: str


# Every validity rejection of every fake in this process, in order (the suite's check reads it).
REJECTIONS: list[Rejection] = []
_REJECTIONS_LOCK = threading.Lock()


def model_max_tokens(model: str) -> int:
    for family, cap in MODEL_MAX_TOKENS.items():
        if family in model.lower():
            return cap
    return DEFAULT_MODEL_MAX_TOKENS


def _content_problem(where: str, content: Any, *, role: str) -> str | None:
    if isinstance(content, str):
        return None if content.strip() else f"{where}: content must not be empty"
    if not isinstance(content, list) or not content:
        return f"{where}: content must be a non-empty string or array of parts"
    for number, part in enumerate(content):
        here = f"{where}.content[{number}]"
        if not isinstance(part, dict):
            return f"{here}: a content part must be an object"
        kind = part.get("type")
        if kind == "text":
            if not isinstance(part.get("text"), str) or not part["text"].strip():
                return f"{here}: text content blocks must be non-empty"
        elif kind == "image_url":
            if role != "user":
                return f"{here}: images are only allowed in user messages"
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url.startswith("data:"):
                return f"{here}: an image must be a base64 data URL"
            header, comma, payload = url[len("data:") :].partition(",")
            media_type, _, encoding = header.partition(";")
            if not comma or encoding != "base64" or media_type not in IMAGE_MEDIA_TYPES:
                return f"{here}: an image must be a base64 data URL of {', '.join(IMAGE_MEDIA_TYPES)}"
            if len(payload) > MAX_IMAGE_BASE64_BYTES:
                return f"{here}: image exceeds 5 MB maximum: {len(payload)} bytes > {MAX_IMAGE_BASE64_BYTES} bytes"
        else:
            return f"{here}: unknown content part type {kind!r}"
    return None


def _messages_problem(messages: list[Any]) -> str | None:
    open_calls: list[str] = []  # calls of the last assistant message still waiting for their result
    answering = False  # inside the run of tool messages right after an assistant message with calls
    seen_ids: set[str] = set()
    for number, message in enumerate(messages):
        where = f"messages[{number}]"
        if not isinstance(message, dict):
            return f"{where}: a message must be an object"
        role = message.get("role")
        if role not in ROLES:
            return f"{where}: role must be one of {', '.join(ROLES)}"
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not answering or call_id not in open_calls:
                return f"{where}: tool message {call_id!r} does not answer a tool call right before it"
            open_calls.remove(call_id)
        else:
            if open_calls:
                return f"{where}: tool call ids {open_calls} were not answered by tool messages right after them"
            answering = False
        problem = _content_problem(where, message.get("content"), role=role)
        if problem:
            return problem
        if role == "assistant" and message.get("tool_calls") is not None:
            calls = message["tool_calls"]
            if not isinstance(calls, list) or not calls:
                return f"{where}: tool_calls must be a non-empty array"
            for call in calls:
                call_id = call.get("id") if isinstance(call, dict) else None
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(call_id, str) or not call_id or call_id in seen_ids:
                    return f"{where}: every tool call needs a unique id"
                if not isinstance(function, dict) or not function.get("name"):
                    return f"{where}: a tool call needs a function name"
                seen_ids.add(call_id)
                open_calls.append(call_id)
            answering = True
    if open_calls:
        return f"tool call ids {open_calls} were not answered by tool messages right after them"
    return None


TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _tools_problem(tools: Any) -> str | None:
    """Function tools: a name within OpenAI's rule and parameters Anthropic takes as input_schema."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "tools must be an array"
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            return f"tools.{index}: must be a function tool"
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            return f"tools.{index}.function.name: must match ^[a-zA-Z0-9_-]{{1,64}}$"
        parameters = function.get("parameters", {"type": "object"})
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            return f"tools.{index}.custom.input_schema.type: Input should be 'object'"
        if any(keyword in parameters for keyword in ("oneOf", "allOf", "anyOf")):
            return (
                f"tools.{index}.custom.input_schema: input_schema does not support oneOf, allOf, "
                "or anyOf at the top level"
            )
    return None


def request_problem(body: Any) -> Problem | None:
    """The first rule ``body`` breaks (see the module docstring), or None when it is valid."""
    if not isinstance(body, dict):
        return Problem(400, "request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return Problem(400, "model is required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return Problem(400, "messages must be a non-empty array")
    cap = model_max_tokens(model)
    max_tokens = body.get("max_tokens")
    if max_tokens is not None:
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            return Problem(400, "max_tokens must be a positive integer")
        if max_tokens > cap:
            return Problem(400, f"max_tokens: {max_tokens} > {cap}, which is the maximum allowed for {model}")
    temperature = body.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 1):
        return Problem(400, "temperature must be between 0.0 and 1.0")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and tool_choice not in TOOL_CHOICES:
        return Problem(400, f"tool_choice must be one of {', '.join(TOOL_CHOICES)}, got {json.dumps(tool_choice)}")
    thinking = body.get("extended_thinking")
    if thinking is not None:
        if not isinstance(thinking, dict):
            return Problem(400, "extended_thinking must be an object")
        if thinking.get("enabled"):
            budget = thinking.get("budget_tokens")
            effective_max = max_tokens if max_tokens is not None else cap
            if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
                return Problem(400, f"extended_thinking.budget_tokens: must be at least {MIN_THINKING_BUDGET}")
            if budget >= effective_max:
                return Problem(
                    400, f"max_tokens must be greater than thinking.budget_tokens ({budget} >= {effective_max})"
                )
            if temperature is not None or body.get("top_k") is not None:
                return Problem(400, "temperature and top_k may not be set when thinking is enabled")
            top_p = body.get("top_p")
            if top_p is not None and not (isinstance(top_p, int | float) and 0.95 <= top_p <= 1):
                return Problem(400, "top_p must be between 0.95 and 1 when thinking is enabled")
            if tool_choice == "required":
                return Problem(400, "thinking may not be enabled when tool_choice forces tool use")
            users = [n for n, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"]
            last_user = users[-1] if users else -1
            if any(isinstance(m, dict) and m.get("tool_calls") for m in messages[last_user + 1 :]):
                return Problem(
                    400,
                    "thinking is enabled but the assistant message with the tool calls carries no thinking block: "
                    "send the thinking back unmodified, or disable thinking for this request",
                )
    problem = _tools_problem(body.get("tools")) or _messages_problem(messages)
    if problem:
        return Problem(400, problem)
    last = messages[-1]
    if (
        last.get("role") == "assistant"
        and isinstance(last.get("content"), str)
        and last["content"] != last["content"].rstrip()
    ):
        return Problem(400, "final assistant content cannot end with trailing whitespace")
    return None


@dataclass
class _Failure:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class _StreamError:
    after_chunks: int
    error: dict[str, Any]


@dataclass
class _Hang:
    seconds: float
    after_chunks: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # hung handlers must not block stop()
    request_queue_size = 128  # the default 5 makes bursts of connections wait a second for a SYN retry

    def __init__(self, address: tuple[str, int], fake: FakeInference) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) we neither need nor want to wait for.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-answer is normal here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        self.server.fake._handle_post(self)

    def do_GET(self) -> None:
        if self.path == STATS_PATH:
            self.server.fake._send_json(self, 200, self.server.fake.stats())
        else:
            self.server.fake._send_error(self, 404, "not found", "not_found")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeInference:
    """A local ``/v1/chat/completions`` server; see the module docstring for its rules."""

    def __init__(
        self,
        *,
        api_key: str = "test-inference-key",
        max_requests: int | None = None,
        max_tokens: int | None = None,
        window: float = 60.0,
        latency_min: float = 0.0,
        latency_max: float = 0.0,
        responder: Responder | None = None,
        port: int = 0,
        strict: bool = True,
        accounting: str = "actual",
        reset: str = "oldest",
        headers: str = "always",
    ) -> None:
        if headers not in HEADER_MODES:
            raise ValueError(f"headers must be one of {HEADER_MODES}, got {headers!r}")
        if latency_max < latency_min:
            raise ValueError("latency_max must be at least latency_min")
        self.api_key = api_key
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self.window = window
        self.latency_min = latency_min
        self.latency_max = latency_max
        self.responder: Responder = responder or echo_responder
        self.requests: list[RecordedRequest] = []
        self.strict = strict
        self.rejections: list[Rejection] = []  # requests refused for validity (400/413), in order
        self.usage_split = False  # True: prompt_tokens in the first chunk, the rest in the last
        self.retry_after_header = True  # False: the fake's own 429s carry only x-ratelimit-* headers
        # The readings (module docstring): off by default.
        self.refuse_stream_options = False
        self.report_usage = True
        self.error_shape = "openai"
        self.max_body_bytes = MAX_BODY_BYTES
        self.argument_refusals: list[RecordedRequest] = []  # requests refused for stream_options
        self.limit = WindowLimit(
            max_requests=max_requests, max_tokens=max_tokens, window=window, accounting=accounting, reset=reset
        )
        # Which answers carry x-ratelimit-* headers (HEADER_MODES); headers_stop_at: a time.monotonic()
        # from which none does (headers that stop coming mid-run).
        self.headers_mode = headers
        self.headers_stop_at: float | None = None
        self._port = port
        self._lock = threading.RLock()  # re-entrant: wait_for predicates may call stats()
        self._changed = threading.Condition(self._lock)
        self._failures: deque[_Failure] = deque()
        self._hangs: deque[_Hang] = deque()
        self._hanging: set[threading.Event] = set()  # hangs in progress (end_hangs ends them)
        self._stream_errors: deque[_StreamError] = deque()
        self._stopping = threading.Event()
        self._server_lock = threading.Lock()  # serialises start/stop/set_down
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._id_counter = 0

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> FakeInference:
        with self._server_lock:
            self._stopping.clear()
            self._listen()
        return self

    def stop(self) -> None:
        with self._server_lock:
            self._stopping.set()  # wakes hung and slow handlers
            self.end_hangs()
            self._close_listener()

    def __enter__(self) -> FakeInference:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def set_down(self, down: bool) -> None:
        """Down: close the listening socket and every open connection, so new connections are
        refused. Up again: listen on the same port."""
        with self._server_lock:
            if down:
                self._close_listener()
            elif self._server is None:
                self._listen()

    def _listen(self) -> None:
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", self._port), self)
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-inference", daemon=True
        )
        self._thread.start()

    def _close_listener(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if thread is not None:
            thread.join(timeout=5)

    # --- scripting -----------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``times`` requests (after the key check) with ``status``.

        ``body`` may be a dict (sent as JSON), str or bytes; by default a JSON error. A 429
        without ``headers`` gets ``Retry-After: 1``. These are not counted in ``rejected_429``.
        """
        if headers is None:
            headers = {"Retry-After": "1"} if status == 429 else {}
        with self._lock:
            for _ in range(times):
                self._failures.append(_Failure(status, dict(headers), body))

    def hang_next(self, seconds: float, times: int = 1, *, after_chunks: int = 0) -> None:
        """Accept (and charge) the next ``times`` admitted requests, then send nothing for
        ``seconds`` (or until :meth:`end_hangs`) and close the connection. With ``after_chunks``,
        a streaming answer first sends that many chunks (a stream that stalls midway)."""
        with self._lock:
            for _ in range(times):
                self._hangs.append(_Hang(seconds, after_chunks))

    def end_hangs(self) -> int:
        """End the hangs in progress now, as if their seconds had passed (the connection is
        closed without the rest of the answer); how many there were. A test that stalls a call
        to act while it is in flight ends the stall when done, instead of waiting it out."""
        with self._lock:
            hanging = list(self._hanging)
        for ended in hanging:
            ended.set()
        return len(hanging)

    def reset_script(self) -> None:
        """Forget scripted behaviour (queued failures, hangs and stream errors, usage and 429
        options, the responder); recorded requests, rejections and the rate window stay."""
        with self._lock:
            self._failures.clear()
            self._hangs.clear()
            self._stream_errors.clear()
            self.usage_split = False
            self.retry_after_header = True
            self.responder = echo_responder
            self.refuse_stream_options = False
            self.report_usage = True
            self.error_shape = "openai"
            self.max_body_bytes = MAX_BODY_BYTES

    def error_mid_stream_next(
        self, after_chunks: int = 3, *, error: Mapping[str, Any] | None = None, times: int = 1
    ) -> None:
        """The next ``times`` streaming answers send ``after_chunks`` chunks, then a
        ``data: {"error": {...}}`` event, and end (no ``[DONE]``), as a real stream may when the
        model fails midway. The default error is Anthropic's ``overloaded_error``."""
        document = dict(error or {"message": "Overloaded", "type": "overloaded_error", "code": 529})
        with self._lock:
            for _ in range(times):
                self._stream_errors.append(_StreamError(after_chunks, document))

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block until ``predicate()`` is true (re-checked at every request); TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s")
                self._changed.wait(min(remaining, 0.05))

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "requests": len(self.requests),
                "admitted": self.admitted,
                "rejected_429": self.rejected_429,
                "tokens_charged": self.tokens_charged,
            }

    # --- the rate limit (tests/fakes/rate_limit.py) ------------------------------------

    @property
    def admitted(self) -> int:
        return self.limit.admitted

    @property
    def rejected_429(self) -> int:
        return self.limit.rejected_429

    @property
    def tokens_charged(self) -> int:
        return self.limit.tokens_charged

    def use_external(self, *, requests: int = 1, tokens: int = 0) -> None:
        """Another app uses the same add-on now."""
        self.limit.use_external(time.monotonic(), requests=requests, tokens=tokens)

    def _admit(self, now: float, tokens: int, reserved: int | None = None):
        """Charge the request to the window, or refuse it: (refusal, headers, charge)."""
        return self.limit.admit(now, actual_tokens=tokens, reserved_tokens=tokens if reserved is None else reserved)

    # --- answering -----------------------------------------------------------------------

    def _handle_post(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        arrival = time.monotonic()
        too_large = self.strict and length > self.max_body_bytes
        try:
            body: Any = None if too_large else (json.loads(raw) if raw else None)
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        with self._changed:
            self.requests.append(RecordedRequest(arrival, dict(handler.headers.items()), body))
            self._changed.notify_all()

        if handler.path == EXTERNAL_PATH and isinstance(body, dict):
            self.use_external(requests=int(body.get("requests", 1)), tokens=int(body.get("tokens", 0)))
            self._send_json(handler, 200, {"ok": True})
            return
        if handler.path != COMPLETIONS_PATH:
            self._send_error(handler, 404, f"no route for {handler.path}", "not_found")
            return
        if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            self._send_error(handler, 401, "invalid or missing API key", "authentication_error")
            return
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            self._send_failure(handler, failure)
            return
        if self.refuse_stream_options and isinstance(body, dict) and "stream_options" in body:
            with self._changed:
                self.argument_refusals.append(self.requests[-1])
                self._changed.notify_all()
            self._send_error(handler, 400, STREAM_OPTIONS_REFUSAL, "invalid_request_error")
            return
        if too_large:
            problem: Problem | None = Problem(
                413, f"request size {length} bytes exceeds the {self.max_body_bytes} bytes limit", "request_too_large"
            )
        else:
            problem = request_problem(body) if self.strict else self._lenient_problem(body)
        if problem:
            rejection = Rejection(problem.status, problem.message)
            with self._changed:
                self.rejections.append(rejection)
                self._changed.notify_all()
            with _REJECTIONS_LOCK:
                REJECTIONS.append(rejection)
            self._send_error(handler, problem.status, problem.message, problem.type)
            return
        try:
            answer = self._answer(body)
        except Exception as error:  # a broken test responder must show up as a 500, not a hang
            self._send_error(handler, 500, f"responder failed: {error!r}", "server_error")
            return
        usage = {
            "prompt_tokens": fake_prompt_tokens(body),
            "completion_tokens": fake_answer_tokens(answer),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        cap = body.get("max_tokens")
        reserved = usage["prompt_tokens"] + (cap if isinstance(cap, int) else DEFAULT_MAX_TOKENS)
        with self._changed:
            refusal, limit_headers, charge = self._admit(arrival, usage["total_tokens"], reserved)
            limit_headers = self._shown(limit_headers, refused=refusal is not None, now=arrival)
            hang = self._hangs.popleft() if refusal is None and self._hangs else None
            self._changed.notify_all()
        if refusal is not None:
            headers = dict(limit_headers)
            if self.retry_after_header:
                headers["Retry-After"] = str(refusal.retry_after)
            self._send_error(handler, 429, "rate limit exceeded", "rate_limit_error", headers=headers)
            return
        streaming = body.get("stream") is True
        if hang is not None and not (streaming and hang.after_chunks > 0):
            self._hang_up(handler, hang.seconds)
            return
        latency = random.uniform(self.latency_min, self.latency_max)
        if streaming:
            include_usage = self.report_usage and bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = self._chunks(body, answer, usage if include_usage else None)
            with self._lock:
                stream_error = self._stream_errors.popleft() if self._stream_errors else None
            if stream_error is not None:
                # An error event is always an "error" field of a JSON event ("text" is for HTTP bodies).
                event = self.error_document(stream_error.error) if self.error_shape != "text" else {}
                if "error" not in event:
                    event = {"error": stream_error.error}
                chunks = [*chunks[: stream_error.after_chunks], event]
            self._send_stream(handler, chunks, limit_headers, latency, hang, done=stream_error is None)
        else:
            if latency > 0 and self._stopping.wait(latency):
                return
            self._send_json(handler, 200, self._completion(body, answer, usage), limit_headers)
        self.limit.settle(charge, usage["total_tokens"])  # "corrected" accounting: the real usage from now on

    def _shown(self, headers: dict[str, str], *, refused: bool, now: float) -> dict[str, str]:
        """The x-ratelimit-* headers this answer carries, as ``headers_mode`` says."""
        if self.headers_stop_at is not None and now >= self.headers_stop_at:
            return {}
        if self.headers_mode == "none" or (self.headers_mode == "only_429" and not refused):
            return {}
        return headers

    @staticmethod
    def _lenient_problem(body: Any) -> Problem | None:
        """``strict=False``: only the shape every request needs (for benchmarks of odd traffic)."""
        if not isinstance(body, dict):
            return Problem(400, "request body must be a JSON object")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return Problem(400, "model is required")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return Problem(400, "messages must be a non-empty array")
        return None

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The responder's answer with ids filled in and content cut to ``max_tokens``."""
        answer = dict(self.responder(body))
        calls = []
        for call in answer.get("tool_calls") or []:
            with self._lock:
                self._id_counter += 1
                number = self._id_counter
            calls.append(
                {
                    "id": call.get("id") or f"toolu_fake_{number}",
                    "name": call["name"],
                    "arguments": _arguments_text(call.get("arguments")),
                }
            )
        answer["tool_calls"] = calls
        answer["content"] = str(answer.get("content") or "")
        thinking = body.get("extended_thinking") or {}
        if not (thinking.get("enabled") and thinking.get("include_reasoning")):
            answer.pop("reasoning", None)  # the real API returns reasoning only when asked for it
        finish = answer.get("finish_reason") or ("tool_calls" if calls else "stop")
        cap = body.get("max_tokens")
        if isinstance(cap, int) and fake_answer_tokens(answer) > cap:
            others = fake_answer_tokens({**answer, "content": ""})
            answer["content"] = answer["content"][: max(0, cap - others) * CHARS_PER_TOKEN]
            finish = "length"
        answer["finish_reason"] = finish
        return answer

    def _next_id(self) -> str:
        with self._lock:
            self._id_counter += 1
            return f"chatcmpl-fake-{self._id_counter}"

    def _completion(self, body: dict[str, Any], answer: dict[str, Any], usage: dict[str, int]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer["content"]}
        if answer["tool_calls"]:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in answer["tool_calls"]
            ]
        if answer.get("reasoning"):
            message["reasoning"] = {"thinking": answer["reasoning"]}
        return {
            "id": self._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": answer["finish_reason"]}],
            **({"usage": usage} if self.report_usage else {}),
        }

    def _chunks(
        self, body: dict[str, Any], answer: dict[str, Any], usage: dict[str, int] | None
    ) -> list[dict[str, Any]]:
        completion_id, created = self._next_id(), int(time.time())

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }

        chunks = [chunk({"role": "assistant", "content": ""})]
        for piece in _pieces(str(answer.get("reasoning") or ""), 3):
            chunks.append(chunk({"reasoning": piece}))
        for piece in _pieces(answer["content"], 4):
            chunks.append(chunk({"content": piece}))
        for index, call in enumerate(answer["tool_calls"]):
            opening = {"index": index, "id": call["id"], "type": "function"}
            chunks.append(chunk({"tool_calls": [{**opening, "function": {"name": call["name"], "arguments": ""}}]}))
            for piece in _pieces(call["arguments"], 2):
                chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        if usage is not None and self.usage_split:
            # Usage reported in two parts, as some gateways do: merge field by field.
            chunks[0]["usage"] = {"prompt_tokens": usage["prompt_tokens"]}
            usage = {key: value for key, value in usage.items() if key != "prompt_tokens"}
        chunks.append(chunk({}, answer["finish_reason"]))
        if usage is not None:
            last = chunk({})
            last["choices"] = []
            last["usage"] = usage
            chunks.append(last)
        return chunks

    # --- writing -------------------------------------------------------------------------

    def _send_json(
        self, handler: _Handler, status: int, document: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        self._send_bytes(
            handler, status, json.dumps(document, ensure_ascii=False).encode(), "application/json", headers
        )

    def _send_bytes(
        self,
        handler: _Handler,
        status: int,
        payload: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)
        handler.wfile.flush()

    def _send_error(
        self,
        handler: _Handler,
        status: int,
        message: str,
        error_type: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        error = {"message": message, "type": error_type, "code": status}
        if self.error_shape == "text":
            self._send_bytes(handler, status, message.encode(), "text/plain; charset=utf-8", headers)
            return
        self._send_json(handler, status, self.error_document(error), headers)

    def error_document(self, error: dict[str, Any]) -> Any:
        """An error object written in this fake's ``error_shape`` (a str for "text")."""
        if self.error_shape == "string":
            return {"error": json.dumps(error)}
        if self.error_shape == "top_level":
            return dict(error)
        if self.error_shape == "text":
            return str(error.get("message") or "")
        return {"error": error}

    def _send_failure(self, handler: _Handler, failure: _Failure) -> None:
        body = failure.body
        if body is None:
            self._send_error(
                handler, failure.status, f"injected failure {failure.status}", "injected_error", headers=failure.headers
            )
        elif isinstance(body, bytes | str):
            payload = body.encode() if isinstance(body, str) else body
            self._send_bytes(handler, failure.status, payload, "text/plain; charset=utf-8", failure.headers)
        else:
            self._send_json(handler, failure.status, body, failure.headers)

    def _hang_up(self, handler: _Handler, seconds: float) -> None:
        ended = threading.Event()
        with self._lock:
            self._hanging.add(ended)
        try:
            if not self._stopping.is_set():  # stop() sets it before it ends the hangs it sees
                ended.wait(seconds)
        finally:
            with self._lock:
                self._hanging.discard(ended)
        handler.close_connection = True

    def _send_stream(
        self,
        handler: _Handler,
        chunks: list[dict[str, Any]],
        headers: Mapping[str, str],
        latency: float,
        hang: _Hang | None,
        *,
        done: bool = True,
    ) -> None:
        # Half the latency before the first byte, the rest spread between chunks.
        if latency > 0 and self._stopping.wait(latency / 2):
            return
        gap = latency / 2 / max(1, len(chunks))
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        for number, chunk in enumerate(chunks):
            if hang is not None and number == hang.after_chunks:
                self._hang_up(handler, hang.seconds)
                return
            if gap > 0 and self._stopping.wait(gap):
                return
            _write_chunked(handler, f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
        if done:
            _write_chunked(handler, b"data: [DONE]\n\n")
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()


def _write_chunked(handler: _Handler, data: bytes) -> None:
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    handler.wfile.flush()


def _pieces(text: str, count: int) -> list[str]:
    """``text`` cut into at most ``count`` non-empty pieces of similar length."""
    if not text:
        return []
    size = max(1, math.ceil(len(text) / count))
    return [text[start : start + size] for start in range(0, len(text), size)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Heroku Managed Inference server for benchmarks.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="test-inference-key")
    parser.add_argument("--max-requests", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--latency-min", type=float, default=0.0)
    parser.add_argument("--latency-max", type=float, default=0.0)
    parser.add_argument("--accounting", choices=("actual", "corrected", "reserved"), default="actual")
    args = parser.parse_args(argv)
    fake = FakeInference(
        api_key=args.api_key,
        max_requests=args.max_requests,
        max_tokens=args.max_tokens,
        window=args.window,
        latency_min=args.latency_min,
        latency_max=max(args.latency_min, args.latency_max),
        port=args.port,
        accounting=args.accounting,
    ).start()
    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop.set())
    print(fake.url, flush=True)
    stop.wait()
    fake.stop()
    print(json.dumps(fake.stats()), flush=True)


if __name__ == "__main__":
    main()
