"""Socket Mode for local development: Slack events over a websocket, no public URL needed.

Bolt's built-in `SocketModeHandler` (no extra dependency) feeds the same Bolt app the web
process uses, so events are recorded and enqueued exactly as over HTTP. Connecting is
retried with backoff until it works or the process stops; once connected, slack_sdk's
client reconnects by itself.
"""

from __future__ import annotations

import logging
import random
import threading

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackApiError

from bot.queue.retry import backoff_delay

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


class SocketModeConnection:
    def __init__(self, app: App, app_token: str, *, stopping: threading.Event):
        self.stopping = stopping
        self.handler = SocketModeHandler(app, app_token, logger=logging.getLogger("bot.slack.bolt"))
        self.connected = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._connect_until_connected, name="socket-mode", daemon=True)
        self._thread.start()

    def _connect_until_connected(self) -> None:
        attempt = 0
        while not self.stopping.is_set():
            attempt += 1
            reason = None
            try:
                self.handler.client.connect_to_new_endpoint(force=True)
            except SlackApiError as error:
                reason = str(error.response.get("error"))
            except OSError as error:
                reason = type(error).__name__
            if reason is None and self.handler.client.is_connected():
                self.connected.set()
                log.info("socket_mode connected attempt=%d", attempt)
                return
            delay = backoff_delay(attempt, base=1.0, cap=MAX_BACKOFF_SECONDS, jitter=random.random())
            log.warning(
                "socket_mode connect_failed attempt=%d reason=%s retry_in_s=%.1f",
                attempt,
                reason or "no_connection",
                delay,
            )
            self.stopping.wait(delay)

    def close(self) -> None:
        try:
            self.handler.close()
        except Exception as error:  # closing a half-open client must not mask the shutdown
            log.debug("socket_mode close_failed error=%s", type(error).__name__)
        if self._thread:
            self._thread.join(timeout=5)
