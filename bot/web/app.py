"""The WSGI app: `POST /slack/events` (Bolt) and `GET /healthz`.

Requests are checked before Bolt sees them: size, signature and well-formed body, so bad
input gets a 4xx instead of an exception inside Bolt. The web process records and
enqueues; it never calls the model.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.db.connections import WEB_POOL_SIZE
from bot.db.engine import make_engine, make_session_factory, ping
from bot.limits.admission import RateLimiter, attachment_limits
from bot.mcp import status as mcp_status
from bot.queue.store import queue_stats
from bot.slack_app.bolt import create_bolt_app
from bot.stats import queue_and_limiter

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # Slack payloads are a few KB; anything this large is not Slack
SLACK_PATHS = ("/slack/events",)
HEALTH_CACHE_SECONDS = 1.0  # /healthz is unauthenticated: at most one database summary a second

StartResponse = Callable[..., object]


def _respond(start_response: StartResponse, status: str, payload: dict) -> Iterable[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def malformed_body(body: bytes, content_type: str) -> str | None:
    """Why Bolt could not handle this body, or None if it can (parsed once, on the ack path)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    try:
        if content_type.startswith("application/json") or text.startswith("{"):
            parsed = json.loads(text)
            return malformed_envelope(parsed) if isinstance(parsed, dict) else "JSON body is not an object"
        form = dict(parse_qsl(text, keep_blank_values=True))
        if "payload" in form:
            parsed = json.loads(form["payload"])
            return None if isinstance(parsed, dict) else "payload is not an object"
    except ValueError:
        return "malformed JSON"
    return None


def malformed_envelope(payload: dict) -> str | None:
    """Shapes Bolt assumes without checking; a payload that breaks them is not from Slack."""
    for key in ("team_id", "event_id", "api_app_id", "type", "enterprise_id"):
        if payload.get(key) is not None and not isinstance(payload[key], str):
            return f"{key} is not a string"
    authorizations = payload.get("authorizations")
    if authorizations is not None and not (
        isinstance(authorizations, list) and all(isinstance(a, dict) for a in authorizations)
    ):
        return "authorizations is not a list of objects"
    if payload.get("type") == "event_callback":
        event = payload.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "event is not an object with a type"
        for key in ("user", "channel", "ts", "thread_ts", "subtype", "text", "bot_id", "channel_type", "team"):
            if event.get(key) is not None and not isinstance(event[key], str):
                return f"event.{key} is not a string"
        for key in ("message", "previous_message", "assistant_thread", "item", "channel"):
            value = event.get(key)
            if value is not None and not isinstance(value, dict | str):
                return f"event.{key} has the wrong type"
        if event.get("files") is not None and not isinstance(event["files"], list):
            return "event.files is not a list"
        if event["type"].startswith("assistant_thread_"):
            # Bolt's assistant middleware raises (a 500) without both ids of the thread.
            thread = event.get("assistant_thread")
            if not isinstance(thread, dict):
                return "event.assistant_thread is not an object"
            if thread.get("channel_id") is None or thread.get("thread_ts") is None:
                return "event.assistant_thread has no channel_id or thread_ts"
    return None


class WebApp:
    def __init__(self, settings: Settings, engine: Engine, *, warm_up: bool = True):
        self.settings = settings
        self.engine = engine
        self.sessions = make_session_factory(engine)
        # None in Socket Mode without a signing secret: every HTTP Slack request is then refused.
        self.verifier = SignatureVerifier(settings.slack_signing_secret) if settings.slack_signing_secret else None
        # Without Slack credentials (right after a Heroku deploy) /healthz and /setup still serve.
        self.bolt = create_bolt_app(settings, self.sessions, warm_up=warm_up) if settings.has_slack else None
        self.slack = SlackRequestHandler(self.bolt) if self.bolt else None
        self.limiter = RateLimiter(self.sessions, attachment_limits(settings))
        self._health_lock = threading.Lock()
        self._health_cache: tuple[float, tuple[str, dict]] | None = None

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        request_id = environ.get("HTTP_X_REQUEST_ID") or uuid.uuid4().hex[:12]
        status_seen: list[str] = []

        def recording_start_response(status, headers, exc_info=None):
            status_seen.append(status)
            return start_response(status, headers, exc_info)

        try:
            return self._route(environ, recording_start_response)
        finally:
            log.info(
                "request id=%s method=%s path=%s status=%s duration_ms=%.1f retry_num=%s",
                request_id,
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
                (status_seen[0].split()[0] if status_seen else "-"),
                (time.monotonic() - started) * 1000,
                environ.get("HTTP_X_SLACK_RETRY_NUM", "-"),
            )

    def _route(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method in ("GET", "HEAD"):
            return self.health(start_response)
        if path == "/setup" and method in ("GET", "HEAD"):
            return self.setup_page(environ, start_response)
        if path.startswith("/slack/") and self.slack is None:
            return _respond(start_response, "503 Service Unavailable", {"error": "Slack is not configured: see /setup"})
        if path in SLACK_PATHS and method == "POST":
            return self.slack_event(environ, start_response)
        if path.startswith("/slack/"):
            return self.slack(environ, start_response)  # OAuth install and redirect (GET)
        return _respond(start_response, "404 Not Found", {"error": "not found"})

    def slack_event(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _respond(start_response, "400 Bad Request", {"error": "bad content length"})
        if length > MAX_BODY_BYTES:
            return _respond(start_response, "413 Payload Too Large", {"error": "body too large"})
        body = environ["wsgi.input"].read(length) if length else b""
        if not self._signed_by_slack(body, environ):
            return _respond(start_response, "401 Unauthorized", {"error": "invalid signature"})
        problem = malformed_body(body, environ.get("CONTENT_TYPE", ""))
        if problem:
            log.warning("request rejected reason=%r", problem)
            return _respond(start_response, "400 Bad Request", {"error": problem})
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            return self.slack(environ, start_response)
        except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
            # Raised by Bolt itself on a payload shape it does not expect (listener errors are
            # caught by Bolt and answered 500, so Slack retries those).
            log.warning("request rejected reason=unexpected_payload error=%s", type(exc).__name__)
            return _respond(start_response, "400 Bad Request", {"error": "unexpected payload"})

    def _signed_by_slack(self, body: bytes, environ: dict) -> bool:
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        if self.verifier is None or not timestamp or not signature or not timestamp.isdigit():
            return False
        return self.verifier.is_valid(body, timestamp, signature)

    def setup_page(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        from bot.slack_app.commands import manifest_commands
        from bot.web.setup_page import public_base_url, render_setup_page

        base_url = public_base_url(
            environ.get("HTTP_HOST"), environ.get("HTTP_X_FORWARDED_PROTO"), environ.get("wsgi.url_scheme", "")
        )
        if base_url is None:
            return _respond(start_response, "400 Bad Request", {"error": "bad Host header"})
        page = render_setup_page(
            base_url,
            commands=manifest_commands(),
            slack_configured=self.settings.has_slack,
            oauth=self.settings.oauth_enabled,
        ).encode()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page)))])
        return [page]

    def health(self, start_response: StartResponse) -> Iterable[bytes]:
        """Unauthenticated, so cheap: one summary per HEALTH_CACHE_SECONDS and process, built
        from indexed queries (partial indexes per status, never a scan of done jobs). Only one
        request at a time asks the database, and none waits for it: while one is asking (a dead
        database can take its connect timeout), the others get the last answer, or 503 at once.
        A failure is remembered as long as a success, so an outage is not asked about per request."""
        cached = self._health_cache
        if cached is not None and time.monotonic() - cached[0] < HEALTH_CACHE_SECONDS:
            return _respond(start_response, *cached[1])
        if not self._health_lock.acquire(blocking=False):
            if cached is not None:
                return _respond(start_response, *cached[1])
            return _respond(start_response, "503 Service Unavailable", {"status": "checking"})
        try:
            try:
                answer = ("200 OK", self._health_summary())
            except SQLAlchemyError as exc:
                log.warning("health database_error=%s", type(exc).__name__)
                answer = ("503 Service Unavailable", {"status": "error", "database": "down"})
            self._health_cache = (time.monotonic(), answer)
        finally:
            self._health_lock.release()
        return _respond(start_response, *answer)

    def _health_summary(self) -> dict:
        ping(self.engine)
        with self.sessions() as session:
            stats = queue_stats(session)
            # MCP servers as the workers last found them: a server down costs its tools, not the bot.
            servers = [server.name for server in self.settings.mcp_servers]
            mcp = {"mcp": mcp_status.summary(session, servers)} if servers else {}
        return {"status": "ok", "database": "ok", **queue_and_limiter(stats, self.limiter), **mcp}


def create_web_app(settings: Settings, *, warm_up: bool = True) -> WebApp:
    return WebApp(settings, make_engine(settings.database_url, pool_size=WEB_POOL_SIZE), warm_up=warm_up)
