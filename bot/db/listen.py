"""LISTEN/NOTIFY on Postgres, on a dedicated connection that survives database restarts.

A listener connection that died with the database would silently leave workers on
polling alone, so the loop reconnects with backoff, re-LISTENs, and reports every
reconnect (the worker then runs a claim pass, since notifications sent while it was
disconnected are lost).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)


def psycopg_conninfo(sqlalchemy_url: str) -> str:
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class NotificationListener:
    def __init__(
        self,
        sqlalchemy_url: str,
        channels: dict[str, Callable[[], None]],
        *,
        on_reconnect: Callable[[], None] = lambda: None,
    ):
        self._conninfo = psycopg_conninfo(sqlalchemy_url)
        self._channels = channels
        self._on_reconnect = on_reconnect
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="listen", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)

    def _run(self) -> None:
        delay = 0.5
        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as connection:
                    for channel in self._channels:
                        connection.execute(f'LISTEN "{channel}"')
                    self.connected.set()
                    if not first:
                        log.info("listen reconnected=true")
                    first, delay = False, 0.5
                    self._on_reconnect()
                    while not self._stop.is_set():
                        for notification in connection.notifies(timeout=1.0):
                            callback = self._channels.get(notification.channel)
                            if callback:
                                callback()
            except psycopg.Error as exc:
                self.connected.clear()
                log.warning("listen error=%s retry_in=%.1f", type(exc).__name__, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
