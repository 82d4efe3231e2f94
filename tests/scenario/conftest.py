"""In-process scenarios: the web app through httpx's WSGI transport and the worker in a thread,
against the fake Slack and the fake model over real HTTP, on SQLite and on PostgreSQL.

Like bolt-python's scenario tests: a signed request goes in, and the test waits (with a
deadline, never a bare sleep) for the Web API calls, response_url posts and jobs it causes.
The subprocess end-to-end tests (tests/e2e) keep the Procfile, signals and faults.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select

from bot.config import Settings, load_settings
from bot.queue.models import Job
from bot.runtime import WorkerRuntime, build_worker
from bot.web.app import WebApp, create_web_app
from tests.fakes.inference import FakeInference, echo_responder
from tests.fakes.slack import FakeSlack
from tests.support import slack_requests
from tests.support.in_process import InProcessStack, build_in_process_stack
from tests.support.processes import BOT_TOKEN, INFERENCE_KEY, SIGNING_SECRET, wait_for

T = TypeVar("T")


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeSlack, FakeInference]]:
    slack = FakeSlack().start()
    inference = FakeInference(api_key=INFERENCE_KEY).start()
    try:
        yield slack, inference
    finally:
        slack.stop()
        inference.stop()


@dataclass
class Scenario:
    settings: Settings
    web: WebApp
    http: httpx.Client
    runtime: WorkerRuntime
    slack: FakeSlack
    inference: FakeInference

    def post_event(self, event: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self._post(json.dumps(slack_requests.event_callback(event, **kwargs)), slack_requests.JSON_CONTENT_TYPE)

    def post_form(self, form: str) -> httpx.Response:
        return self._post(form, slack_requests.FORM_CONTENT_TYPE)

    def _post(self, body: str, content_type: str) -> httpx.Response:
        headers = slack_requests.signed_headers(SIGNING_SECRET, body, content_type=content_type)
        return self.http.post("/slack/events", content=body, headers=headers)

    def jobs(self, kind: str | None = None) -> list[Job]:
        with self.runtime.sessions() as session:
            query = select(Job).order_by(Job.id)
            if kind is not None:
                query = query.where(Job.kind == kind)
            return list(session.execute(query).scalars())

    def wait(self, predicate: Callable[[], T], what: str, timeout: float = 20.0) -> T:
        found = wait_for(predicate, timeout=timeout)
        assert found, f"{what}: not within {timeout} s; jobs: {[(j.kind, j.status, j.last_error) for j in self.jobs()]}"
        return found

    def wait_settled(self, kind: str, count: int = 1, timeout: float = 20.0) -> list[Job]:
        """Until ``count`` jobs of ``kind`` are done or dead."""

        def settled():
            jobs = [job for job in self.jobs(kind) if job.status in ("done", "dead")]
            return jobs if len(jobs) >= count else None

        return self.wait(settled, f"{count} {kind} job(s) settled", timeout)


def new_channel() -> str:
    return "C" + uuid.uuid4().hex[:9].upper()


def start_scenario(database_url: str, fakes: tuple[FakeSlack, FakeInference], **env: str) -> Iterator[Scenario]:
    slack, inference = fakes
    slack.reset()
    inference.responder = echo_responder
    settings = load_settings(
        {
            "DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            "INFERENCE_URL": inference.url,
            "INFERENCE_KEY": INFERENCE_KEY,
            "WORKER_CONCURRENCY": "4",
            "JOB_LEASE_SECONDS": "10",
            **env,
        }
    )
    web = create_web_app(settings, warm_up=False)
    runtime = build_worker(settings)
    thread = threading.Thread(target=runtime.run, name="scenario-worker", daemon=True)
    thread.start()
    http = httpx.Client(transport=httpx.WSGITransport(app=web), base_url="http://bot")
    try:
        yield Scenario(settings, web, http, runtime, slack, inference)
    finally:
        http.close()
        runtime.worker.stop()
        thread.join(30)
        assert not thread.is_alive(), "the worker did not stop"
        web.engine.dispose()


@pytest.fixture
def scenario(database_url, fakes) -> Iterator[Scenario]:
    yield from start_scenario(database_url, fakes)


# --- the e2e stack's interface, in this process (tests.support.in_process) --------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory) -> InProcessStack:
    return build_in_process_stack(request, tmp_path_factory, request.param)


@pytest.fixture
def fresh(stack: InProcessStack) -> Iterator[InProcessStack]:
    """The stack with its fakes' scripts reset for this test (recorded calls are kept)."""
    stack.inference.reset_script()
    stack.inference.responder = echo_responder
    yield stack
