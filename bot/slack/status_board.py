"""Thread status updates (assistant.threads.setStatus) sent off the caller's thread.

Telling a waiting user where they stand must never hold up the work itself: a job thread
waiting for the rate limiter, or the worker's upkeep, only offers the newest text here. It is
sent by a small pool of its own threads, at most once every ``interval`` seconds per thread
and at most ``max_updates`` times, and only when the text changed: a bounded number of Slack
calls per job, whatever the queue does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0
MAX_UPDATES = 12


class StatusBoard:
    def __init__(self, *, threads: int = 2, interval: float = INTERVAL_SECONDS, max_updates: int = MAX_UPDATES):
        self.interval = interval
        self.max_updates = max_updates
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="status")
        self._lock = threading.Lock()
        self._told: dict[Hashable, tuple[float, str, int]] = {}  # key -> (when, text, updates)
        self.sent = 0

    def offer(self, key: Hashable, text: str, send: Callable[[], None], *, now: float | None = None) -> bool:
        """Send `text` for `key` with `send()` unless it is what was last sent, the last update
        was less than `interval` ago, or `key` has had `max_updates`. Returns whether it goes."""
        now = time.monotonic() if now is None else now
        with self._lock:
            when, last, updates = self._told.get(key, (float("-inf"), "", 0))
            if text == last or now - when < self.interval or updates >= self.max_updates:
                return False
            self._told[key] = (now, text, updates + 1)

        def run() -> None:
            try:
                send()
                with self._lock:
                    self.sent += 1
            except Exception as exc:  # a status is a courtesy: never let it break anything
                log.debug("status update_failed error=%s", type(exc).__name__)

        try:
            self._pool.submit(run)
        except RuntimeError:
            return False
        return True

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._told.pop(key, None)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
