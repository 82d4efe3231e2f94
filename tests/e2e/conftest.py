"""A running bot for end-to-end tests: gunicorn web + worker processes, fake Slack and fake
inference over real HTTP, on SQLite and on PostgreSQL. A module builds its stack once (a
module-scoped fixture); tests use fresh channels so they do not see each other's messages. The
same stack in one process, for tests whose point is not the process boundary:
tests.support.in_process (tests/scenario)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.fakes.inference import FakeInference
from tests.fakes.slack import FakeSlack
from tests.support import slack_requests
from tests.support.processes import (
    INFERENCE_KEY,
    SIGNING_SECRET,
    BotProcess,
    bot_env,
    kill_all,
    start_together,
    start_web,
    start_worker,
)
from tests.support.stacks import STACK_SETTINGS, stack_database
from tests.support.stacks import new_channel as new_channel  # the e2e modules import these from here
from tests.support.stacks import wait_idle as wait_idle


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
    more_webs: list[tuple[BotProcess, str]] = field(default_factory=list)  # (process, url) of web-2, …

    @property
    def urls(self) -> list[str]:
        return [self.url, *(url for _, url in self.more_webs)]

    def post_event(self, event: dict, *, event_id: str | None = None, retry_num: int | None = None) -> httpx.Response:
        body = slack_requests.event_callback(event, event_id=event_id)
        return slack_requests.post_signed(f"{self.url}/slack/events", body, SIGNING_SECRET, retry_num=retry_num)

    def post_form(self, form: str) -> httpx.Response:
        return slack_requests.post_signed(f"{self.url}/slack/events", form, SIGNING_SECRET)

    def processes(self) -> list[BotProcess]:
        return [self.web, *(process for process, _ in self.more_webs), *self.workers]

    def logs(self) -> str:
        return "\n".join(p.output() for p in self.processes())


def build_stack(
    request, tmp_path_factory, kind: str, *, webs: int = 1, workers: int = 1, **env_overrides: str
) -> Stack:
    """``webs`` `bot web` processes (gunicorn, WEB_CONCURRENCY workers each) and ``workers`` `bot worker`
    processes, all started side by side."""
    database_url = stack_database(kind, request, tmp_path_factory)
    slack = FakeSlack().start()
    request.addfinalizer(slack.stop)
    inference = FakeInference(api_key=INFERENCE_KEY).start()
    request.addfinalizer(inference.stop)
    log_dir = tmp_path_factory.mktemp(f"e2e-logs-{kind}")
    settings = {"SLACK_API_URL": slack.api_url, "INFERENCE_URL": inference.url, **STACK_SETTINGS}
    env = bot_env(database_url, **{**settings, **env_overrides})
    web_names = ["web", *(f"web-{n}" for n in range(2, webs + 1))]
    worker_names = ["worker", *(f"worker-{n}" for n in range(2, workers + 1))]
    started = start_together(
        *(lambda name=name: start_web(env, log_dir, name=name) for name in web_names),
        *(lambda name=name: start_worker(env, log_dir, name=name) for name in worker_names),
    )
    [(web, url), *more_webs] = started[:webs]
    stack = Stack(url, slack, inference, env, database_url, log_dir, web, list(started[webs:]), more_webs)
    # Killed, not stopped: nothing is asserted about a stack's exit, and a graceful one waits for
    # gunicorn's workers and the worker's drain (seconds each). Tests of SIGTERM stop theirs themselves.
    request.addfinalizer(lambda: kill_all(stack.processes()))
    return stack
