"""The WSGI app: `POST /slack/events` (Bolt) and `GET /healthz`.

Requests are checked before Bolt sees them: size, signature and well-formed body, so bad
input gets a 4xx instead of an exception inside Bolt. The web process records and
enqueues; it never calls the model.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl

from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.db.engine import make_engine, make_session_factory, ping
from bot.limits.admission import GlobalRateLimiter, rate_limits
from bot.queue.store import queue_stats
from bot.slack.app import create_bolt_app

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # Slack payloads are a few KB; anything this large is not Slack
SLACK_PATHS = ("/slack/events",)

StartResponse = Callable[..., object]


def _respond(start_response: StartResponse, status: str, payload: dict) -> Iterable[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def malformed_body(body: bytes, content_type: str) -> str | None:
    """Why Bolt could not parse this body, or None if it can."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    try:
        if content_type.startswith("application/json") or text.startswith("{"):
            parsed = json.loads(text)
            return None if isinstance(parsed, dict) else "JSON body is not an object"
        form = dict(parse_qsl(text, keep_blank_values=True))
        if "payload" in form:
            parsed = json.loads(form["payload"])
            return None if isinstance(parsed, dict) else "payload is not an object"
    except ValueError:
        return "malformed JSON"
    return None


class WebApp:
    def __init__(self, settings: Settings, engine: Engine, *, warm_up: bool = True):
        self.settings = settings
        self.engine = engine
        self.sessions = make_session_factory(engine)
        self.verifier = SignatureVerifier(settings.slack_signing_secret or "")
        self.bolt = create_bolt_app(settings, self.sessions, warm_up=warm_up)
        self.slack = SlackRequestHandler(self.bolt)
        self.limiter = GlobalRateLimiter(self.sessions, rate_limits(settings))

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
        return self.slack(environ, start_response)

    def _signed_by_slack(self, body: bytes, environ: dict) -> bool:
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        if not timestamp or not signature or not timestamp.isdigit():
            return False
        return self.verifier.is_valid(body, timestamp, signature)

    def health(self, start_response: StartResponse) -> Iterable[bytes]:
        try:
            ping(self.engine)
            with self.sessions() as session:
                stats = queue_stats(session)
            requests, tokens = self.limiter.usage()
        except SQLAlchemyError as exc:
            log.warning("health database_error=%s", type(exc).__name__)
            return _respond(start_response, "503 Service Unavailable", {"status": "error", "database": "down"})
        limits = self.limiter.limits
        return _respond(
            start_response,
            "200 OK",
            {
                "status": "ok",
                "database": "ok",
                "queue": {
                    "queued": stats.queued,
                    "running": stats.running,
                    "dead": stats.dead,
                    "oldest_queued_age_seconds": stats.oldest_queued_age_seconds,
                },
                "limiter": {
                    "window_seconds": limits.window_seconds,
                    "requests": requests,
                    "max_requests": limits.max_requests,
                    "tokens": tokens,
                    "max_tokens": limits.max_tokens,
                },
            },
        )


def create_web_app(settings: Settings, *, warm_up: bool = True) -> WebApp:
    return WebApp(settings, make_engine(settings.database_url), warm_up=warm_up)
