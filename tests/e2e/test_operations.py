"""Operating the bot: logs without secrets, /healthz, /setup, `bot stats`, Socket Mode,
`bot serve` without Slack, and `bot chat` through a pipe. (The settings `bot chat` sets:
tests/scenario/test_chat.py, in one process.)"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import httpx
import pytest
from PIL import Image
from sqlalchemy import create_engine, text

from bot.config import normalize_database_url
from tests.e2e.conftest import build_stack, new_channel, wait_idle
from tests.fakes.inference import FakeInference
from tests.fakes.slack import FakeSlack
from tests.support import slack_requests as sr
from tests.support.processes import (
    INFERENCE_KEY,
    REPO,
    BotProcess,
    bot_env,
    free_port,
    start_web,
    wait_for,
    wait_healthy,
)

SECRET_TOKEN = "xoxb-9999-distinctive-BOTTOKEN-qwerty"
SECRET_SIGNING = "distinctive-signing-secret-7d1f"
SECRET_TEXT = "PURPLE-OCTOPUS-7781"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def secret_stack(request, tmp_path_factory):
    return build_stack(
        request, tmp_path_factory, request.param, SLACK_BOT_TOKEN=SECRET_TOKEN, SLACK_SIGNING_SECRET=SECRET_SIGNING
    )


# A deadline: `bot chat` answers in seconds, but took over 60 s with every core busy (-n 4 on 2 cores).
def run_cli(env: dict, *args: str, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_info_logs_have_ids_durations_and_token_counts_but_no_secrets_or_text(secret_stack):
    stack = secret_stack
    stack.slack.add_token(SECRET_TOKEN)
    stack.slack.add_user("U1", name="alice", real_name="Alice")
    channel = new_channel()
    event = sr.app_mention(f"<@UBOT> please remember {SECRET_TEXT}", channel=channel)
    body = sr.event_callback(event)
    assert sr.post_signed(f"{stack.url}/slack/events", body, SECRET_SIGNING).status_code == 200
    assert wait_for(lambda: stack.slack.bot_messages(channel), timeout=20), stack.logs()[-3000:]
    wait_idle(stack)
    assert SECRET_TEXT in json.dumps(list(stack.inference.requests))  # the text did flow through
    # The worker logs "job done" just after the commit that makes the job done (what wait_idle sees).
    wait_for(lambda: "job done id=" in stack.logs(), timeout=10)

    logs = stack.logs()
    for secret in (SECRET_TOKEN, SECRET_SIGNING, INFERENCE_KEY, SECRET_TEXT, "OCTOPUS"):
        assert secret not in logs, secret
    assert "request id=" in logs and "duration_ms=" in logs
    assert "job done id=" in logs
    assert "prompt_tokens=" in logs and "completion_tokens=" in logs

    # /healthz: queue depth, the oldest job's age and the limiter's window use.
    engine = create_engine(normalize_database_url(stack.database_url))
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO jobs (kind, payload, lane, team_id, user_id, status, attempts, max_attempts, "
                    "run_at, created_at) VALUES ('parked', '{}', 'background', 'T1', '', 'queued', 0, 1, "
                    ":later, :earlier)"
                ),
                {"later": "2999-01-01 00:00:00+00:00", "earlier": "2020-01-01 00:00:00+00:00"},
            )
        # Each web process rebuilds the summary at most once a second (HEALTH_CACHE_SECONDS).
        health = wait_for(
            lambda: (h := httpx.get(f"{stack.url}/healthz", timeout=5).json())["queue"]["queued"] == 1 and h,
            timeout=10,
        )
        assert health, "the parked-in-the-future job never showed in /healthz"
        assert health["queue"]["queued"] == 1
        assert health["queue"]["oldest_queued_age_seconds"] > 3600 * 24 * 365
        assert health["limiter"]["requests"] >= 1 and health["limiter"]["tokens"] > 0
        assert health["limiter"]["max_requests"] == 200

        # `bot stats`: the same figures, plus usage per workspace.
        stats = run_cli(stack.env, "stats", "--json")
        assert stats.returncode == 0, stats.stderr
        figures = json.loads(stats.stdout)
        assert figures["queue"]["queued"] == 1
        [workspace] = [w for w in figures["workspaces"] if w["team_id"] == "T1"]
        assert workspace["requests_today"] >= 1 and workspace["tokens_today"] > 0
        plain = run_cli(stack.env, "stats")
        assert "1 queued" in plain.stdout and "T1: today" in plain.stdout
    finally:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM jobs WHERE kind = 'parked'"))
        engine.dispose()

    # /setup: the next steps, with a manifest for this app's own URL.
    page = httpx.get(f"{stack.url}/setup", headers={"Host": "my-bot.example.com", "X-Forwarded-Proto": "https"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "https://my-bot.example.com/slack/events" in page.text
    assert SECRET_TOKEN not in page.text and SECRET_SIGNING not in page.text


def test_web_without_slack_serves_health_and_setup_only(tmp_path, sqlite_url):
    env = bot_env(
        sqlite_url, INFERENCE_URL="http://127.0.0.1:9", SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET="", WEB_CONCURRENCY="1"
    )
    web, url = start_web(env, tmp_path)
    try:
        assert httpx.get(f"{url}/setup", timeout=5).status_code == 200
        assert "Slack is not configured yet" in httpx.get(f"{url}/setup", timeout=5).text
        refused = httpx.post(f"{url}/slack/events", content=b"{}", timeout=5)
        assert refused.status_code == 503 and "see /setup" in refused.text
        assert "slack not_configured" in web.output()
    finally:
        web.stop()


def test_serve_without_slack_says_so_and_points_to_chat(tmp_path, sqlite_url):
    env = bot_env(sqlite_url, INFERENCE_URL="http://127.0.0.1:9", SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET="")
    result = run_cli(env, "serve")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "Slack is not configured" in line and "`bot chat`" in line


def test_serve_with_an_app_token_uses_socket_mode_and_retries_cleanly(tmp_path, sqlite_url):
    refused_port = free_port()  # nothing listens there: the websocket connection is refused
    app_token = "xapp-1-A1-distinctive-apptoken"
    with FakeSlack() as slack:
        slack.add_token(app_token)
        slack.socket_mode_url = f"ws://127.0.0.1:{refused_port}/link/?ticket=t1"
        port = free_port()
        env = bot_env(
            sqlite_url,
            SLACK_API_URL=slack.api_url,
            SLACK_APP_TOKEN=app_token,
            SLACK_SIGNING_SECRET="",
            INFERENCE_URL="http://127.0.0.1:9",
            PORT=str(port),
        )
        serve = BotProcess([sys.executable, "-m", "bot.cli", "serve"], env, tmp_path / "serve.log")
        try:
            wait_healthy(f"http://127.0.0.1:{port}", serve)
            assert wait_for(lambda: len(slack.calls_to("apps.connections.open")) >= 2, timeout=15), serve.output()
            assert wait_for(lambda: "socket_mode connect_failed attempt=2" in serve.output(), timeout=5)
            opened = slack.calls_to("apps.connections.open")[0]
            assert opened.headers.get("Authorization") == f"Bearer {app_token}"
            assert "slack_over=socket_mode" in serve.output()
        finally:
            code = serve.stop(timeout=20)
        assert code == 0, serve.output()
        assert app_token not in serve.output()


def _png(path, color=(200, 30, 30)) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


def test_chat_through_a_pipe_answers_and_keeps_history(tmp_path, database_url):
    picture = tmp_path / "red.png"
    _png(picture)
    with FakeInference(api_key=INFERENCE_KEY) as inference:
        env = bot_env(database_url, INFERENCE_URL=inference.url, SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET="")
        lines = "my favourite colour is teal\n\n/image " + str(picture) + " what is in this picture?\n/exit\nignored\n"
        first = run_cli(env, "chat", stdin=lines)
        assert first.returncode == 0, first.stderr
        answers = [line for line in first.stdout.splitlines() if line.startswith("bot> ")]
        assert len(answers) == 2, first.stdout
        assert "my favourite colour is teal" in answers[0]
        assert "what is in this picture?" in answers[1]
        assert "ignored" not in json.dumps(list(inference.requests))

        second_request = inference.requests[-1][2]
        dumped = json.dumps(second_request)
        assert "my favourite colour is teal" in dumped  # the first turn is in the second request
        assert [m["role"] for m in second_request["messages"]] == ["system", "user", "assistant", "user"]
        assert "data:image/png;base64," in dumped

        resumed = run_cli(env, "chat", "--resume", stdin="which colour did I name?\n")
        assert resumed.returncode == 0, resumed.stderr
        assert "which colour did I name?" in resumed.stdout
        assert "my favourite colour is teal" in json.dumps(inference.requests[-1][2])

        fresh = run_cli(env, "chat", stdin="a brand new topic\n")
        assert "my favourite colour is teal" not in json.dumps(inference.requests[-1][2])
        assert fresh.returncode == 0
