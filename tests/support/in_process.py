"""The bot in one process, for the scenario tests whose point is the product, not the process boundary.

The same stack as tests/e2e's (the web app, a worker, the fake Slack and the fake model over real
HTTP, a migrated database on SQLite or PostgreSQL) and the same interface (`post_event`,
`post_form`, `logs()`, `env`, `database_url`), without the four Python processes each e2e stack
starts: the web app is called through httpx's WSGI transport, as bolt-python's scenario tests
dispatch requests, and the worker runs in a thread. `logs()` is what the processes would have
printed at INFO: every log record in logfmt (scrubbed, as `bot.logs` writes it), and the traceback
of any exception a thread did not handle. The real processes, signals and faults stay in tests/e2e.
"""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.config import load_settings
from bot.logs import LogfmtFormatter
from bot.runtime import WorkerRuntime, build_worker
from bot.web.app import WebApp, create_web_app
from tests.fakes.inference import FakeInference
from tests.fakes.slack import FakeSlack
from tests.support import slack_requests
from tests.support.processes import INFERENCE_KEY, SIGNING_SECRET, bot_env
from tests.support.stacks import STACK_SETTINGS, stack_database

QUIET_LIBRARIES = ("slack_sdk", "slack_bolt", "httpx", "httpcore", "urllib3", "sqlalchemy", "alembic")


class LogCapture(logging.Handler):
    """Every record at INFO and above, formatted as `bot.logs.configure_logging` prints it, and the
    tracebacks of exceptions threads leave unhandled (a process prints those on stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(LogfmtFormatter())
        self._lines: list[str] = []
        self._lines_lock = threading.Lock()
        self._saved: dict[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self._append(self.format(record))

    def _append(self, line: str) -> None:
        with self._lines_lock:
            self._lines.append(line)

    def text(self) -> str:
        with self._lines_lock:
            return "\n".join(self._lines)

    def install(self) -> LogCapture:
        root = logging.getLogger()
        self._saved = {
            "root_level": root.level,
            "levels": {name: logging.getLogger(name).level for name in QUIET_LIBRARIES},
            "excepthook": threading.excepthook,
        }
        root.addHandler(self)
        root.setLevel(logging.INFO)
        for name in QUIET_LIBRARIES:  # as configure_logging does at INFO
            logging.getLogger(name).setLevel(logging.WARNING)
        previous = threading.excepthook

        def excepthook(args: threading.ExceptHookArgs) -> None:
            self._append("".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)))
            previous(args)

        threading.excepthook = excepthook
        return self

    def remove(self) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._saved["root_level"])
        for name, level in self._saved["levels"].items():
            logging.getLogger(name).setLevel(level)
        threading.excepthook = self._saved["excepthook"]


@dataclass
class InProcessStack:
    url: str
    slack: FakeSlack
    inference: FakeInference
    env: dict[str, str]
    database_url: str
    log_dir: Path
    web: WebApp
    runtime: WorkerRuntime
    http: httpx.Client
    capture: LogCapture
    workers: list[Any] = field(default_factory=list)  # no worker processes here

    def post_event(self, event: dict, *, event_id: str | None = None, retry_num: int | None = None) -> httpx.Response:
        body = slack_requests.event_callback(event, event_id=event_id)
        return slack_requests.post_signed(
            f"{self.url}/slack/events", body, SIGNING_SECRET, retry_num=retry_num, client=self.http
        )

    def post_form(self, form: str) -> httpx.Response:
        return slack_requests.post_signed(f"{self.url}/slack/events", form, SIGNING_SECRET, client=self.http)

    def logs(self) -> str:
        return self.capture.text()

    def browser(self, **options: Any) -> httpx.Client:
        """A client of its own (no cookies shared with ``http``), as a person's browser would be."""
        return httpx.Client(transport=httpx.WSGITransport(app=self.web), base_url=self.url, **options)


def build_in_process_stack(request, tmp_path_factory, kind: str, **env_overrides: str) -> InProcessStack:
    """Like tests.e2e.conftest.build_stack (same settings, same overrides), in this process."""
    database_url = stack_database(kind, request, tmp_path_factory)
    slack = FakeSlack().start()
    request.addfinalizer(slack.stop)
    inference = FakeInference(api_key=INFERENCE_KEY).start()
    request.addfinalizer(inference.stop)
    env = bot_env(
        database_url,
        **{"SLACK_API_URL": slack.api_url, "INFERENCE_URL": inference.url, **STACK_SETTINGS, **env_overrides},
    )
    capture = LogCapture().install()
    request.addfinalizer(capture.remove)
    settings = load_settings(env)
    web = create_web_app(settings, warm_up=False)
    request.addfinalizer(web.engine.dispose)
    runtime = build_worker(settings)
    thread = threading.Thread(target=runtime.run, name=f"in-process-worker-{kind}", daemon=True)
    thread.start()
    http = httpx.Client(transport=httpx.WSGITransport(app=web), base_url="http://bot")

    def stop() -> None:
        http.close()
        runtime.worker.stop()
        thread.join(30)
        assert not thread.is_alive(), "the in-process worker did not stop"

    request.addfinalizer(stop)
    log_dir = tmp_path_factory.mktemp(f"in-process-{kind}")
    return InProcessStack("http://bot", slack, inference, env, database_url, log_dir, web, runtime, http, capture)
