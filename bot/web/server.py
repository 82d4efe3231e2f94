"""gunicorn, configured in code so `bot web` and the Procfile run the same server."""

from __future__ import annotations

import os
from collections.abc import Callable

from gunicorn.app.base import BaseApplication


class GunicornServer(BaseApplication):
    def __init__(self, app_factory: Callable[[], object], options: dict):
        self._factory = app_factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        # Runs in each forked worker: every process gets its own engine and pool.
        return self._factory()


def gunicorn_options(port: int, *, workers: int | None = None) -> dict:
    return {
        "bind": f"0.0.0.0:{port}",
        "workers": workers or int(os.environ.get("WEB_CONCURRENCY", "2")),
        "worker_class": "gthread",
        "threads": 8,
        # Heroku's router gives up after 30 s and SIGKILLs 30 s after SIGTERM.
        "timeout": 30,
        "graceful_timeout": 25,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "proc_name": "bot-web",
    }
