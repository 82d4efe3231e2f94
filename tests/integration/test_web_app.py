"""The WSGI app in-process (httpx's WSGI transport): health, signatures, bad input."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.exc import OperationalError

from bot.config import Settings
from bot.web.app import MAX_BODY_BYTES, create_web_app

SECRET = "web-test-secret"


def signed(body: str, *, secret: str = SECRET, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}


@pytest.fixture
def client(database_url):
    settings = Settings(
        database_url=database_url,
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SECRET,
        slack_api_url="http://127.0.0.1:9/api/",  # nothing listens: these tests must not reach Slack
    )
    app = create_web_app(settings, warm_up=False)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://bot") as client:
        yield client
    app.engine.dispose()


def test_health_reports_database_queue_and_limiter(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["queue"]["queued"] == 0
    assert body["limiter"]["max_requests"] == 200 and body["limiter"]["requests"] == 0


def test_url_verification_challenge_is_answered(client):
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"})
    response = client.post("/slack/events", content=body, headers={**signed(body), "Content-Type": "application/json"})
    assert response.status_code == 200
    assert "abc123" in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=deadbeef"},
        "wrong-secret",
        "stale",
    ],
)
def test_unsigned_wrongly_signed_or_replayed_requests_get_401(client, headers):
    body = json.dumps({"type": "url_verification", "challenge": "abc"})
    if headers == "wrong-secret":
        headers = signed(body, secret="another-secret")
    elif headers == "stale":
        headers = signed(body, timestamp=int(time.time()) - 10 * 60)
    response = client.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401


def test_malformed_json_gets_400(client):
    body = '{"type": "event_callback", '
    response = client.post("/slack/events", content=body, headers={**signed(body), "Content-Type": "application/json"})
    assert response.status_code == 400


def test_oversized_body_gets_413(client):
    body = "x" * (MAX_BODY_BYTES + 1)
    response = client.post("/slack/events", content=body, headers=signed(body))
    assert response.status_code == 413


def test_unknown_paths_get_404(client):
    assert client.get("/nope").status_code == 404


def test_health_is_503_when_the_database_is_down():
    settings = Settings(
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/none",
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SECRET,
    )
    app = create_web_app(settings, warm_up=False)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://bot") as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "down"


def test_health_never_queues_behind_a_request_stuck_on_the_database():
    """A dead database can hold a health check for its connect timeout; the requests arriving
    meanwhile are answered at once instead of piling up behind it (issue 22)."""
    import threading

    settings = Settings(
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/none",
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SECRET,
    )
    app = create_web_app(settings, warm_up=False)
    asking, release = threading.Event(), threading.Event()

    def stuck_summary() -> dict:
        asking.set()
        release.wait(30)
        raise OperationalError("SELECT 1", {}, Exception("connection timed out"))

    app._health_summary = stuck_summary
    first: list[httpx.Response] = []
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://bot") as client:
        thread = threading.Thread(target=lambda: first.append(client.get("/healthz")))
        thread.start()
        assert asking.wait(10)
        started = time.monotonic()
        response = client.get("/healthz")
        assert time.monotonic() - started < 1.0
        assert response.status_code == 503 and response.json() == {"status": "checking"}
        release.set()
        thread.join(10)
        assert first[0].status_code == 503 and first[0].json()["database"] == "down"
        # The failure is remembered for a moment: the next request does not ask again.
        assert client.get("/healthz").json()["database"] == "down"
