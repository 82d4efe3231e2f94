"""A running bot for end-to-end tests: gunicorn web + worker processes, fake Slack and fake
inference over real HTTP, on SQLite and on PostgreSQL. One stack per module; tests use
fresh channels so they do not see each other's messages."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.fakes.inference import FakeInference
from tests.fakes.slack import FakeSlack
from tests.support import slack_requests
from tests.support.processes import (
    INFERENCE_KEY,
    SIGNING_SECRET,
    BotProcess,
    bot_env,
    start_web,
    start_worker,
)


@dataclass
class Stack:
    url: str
    slack: FakeSlack
    inference: FakeInference
    env: dict[str, str]
    database_url: str
    log_dir: Path
    web: BotProcess
    workers: list[BotProcess] = field(default_factory=list)

    def post_event(self, event: dict, *, event_id: str | None = None, retry_num: int | None = None) -> httpx.Response:
        body = slack_requests.event_callback(event, event_id=event_id)
        return slack_requests.post_signed(f"{self.url}/slack/events", body, SIGNING_SECRET, retry_num=retry_num)

    def post_form(self, form: str) -> httpx.Response:
        return slack_requests.post_signed(f"{self.url}/slack/events", form, SIGNING_SECRET)

    def logs(self) -> str:
        return "\n".join(p.output() for p in [self.web, *self.workers])


def new_channel() -> str:
    return "C" + uuid.uuid4().hex[:9].upper()


def _database(kind: str, request, tmp_path_factory) -> str:
    if kind == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path_factory.mktemp("e2e-db") / "bot.sqlite3"
        shutil.copy(template, path)
        return f"sqlite:///{path}"
    admin = request.getfixturevalue("postgres_admin_url")
    template = request.getfixturevalue("postgres_template")
    from tests.conftest import _admin_execute, _with_database

    name = f"bot_e2e_{uuid.uuid4().hex[:10]}"
    _admin_execute(admin, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    request.addfinalizer(lambda: _admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return _with_database(admin, name)


def build_stack(request, tmp_path_factory, kind: str, **env_overrides: str) -> Stack:
    database_url = _database(kind, request, tmp_path_factory)
    slack = FakeSlack().start()
    request.addfinalizer(slack.stop)
    inference = FakeInference(api_key=INFERENCE_KEY).start()
    request.addfinalizer(inference.stop)
    log_dir = tmp_path_factory.mktemp(f"e2e-logs-{kind}")
    settings = {
        "SLACK_API_URL": slack.api_url,
        "INFERENCE_URL": inference.url,
        "WEB_CONCURRENCY": "2",
        "WORKER_CONCURRENCY": "4",
        "JOB_LEASE_SECONDS": "10",
        "INFERENCE_MAX_OUTPUT_TOKENS": "4096",
    }
    env = bot_env(database_url, **{**settings, **env_overrides})
    web, url = start_web(env, log_dir)
    stack = Stack(url, slack, inference, env, database_url, log_dir, web)
    stack.workers.append(start_worker(env, log_dir))

    def stop_all():
        for process in [stack.web, *stack.workers]:
            if process.proc.poll() is None:
                process.stop()

    request.addfinalizer(stop_all)
    return stack


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory) -> Stack:
    return build_stack(request, tmp_path_factory, request.param)


@pytest.fixture
def fresh(stack):
    """The stack with its fakes' scripts reset for this test (recorded calls are kept)."""
    from tests.fakes.inference import echo_responder

    stack.inference.reset_script()
    stack.inference.responder = echo_responder
    yield stack


def wait_idle(stack: Stack, timeout: float = 20.0) -> None:
    """Until no job is queued or running (every reply finished)."""
    from sqlalchemy import create_engine, text

    from bot.config import normalize_database_url

    engine = create_engine(normalize_database_url(stack.database_url))
    try:

        def idle():
            with engine.connect() as connection:
                return (
                    connection.execute(
                        text("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")
                    ).scalar_one()
                    == 0
                )

        from tests.support.processes import wait_for

        assert wait_for(idle, timeout=timeout), f"jobs still pending; logs:\n{stack.logs()[-3000:]}"
    finally:
        engine.dispose()
