"""What applies in a place, read from the database; the worker keeps it for a few seconds.

The cache belongs to one job handler (never the process), and an entry lives at most
CACHE_SECONDS: a change made with `/settings` applies to the next answer a moment later, on
every dyno, without any invalidation message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.channel_settings import store
from bot.channel_settings.models import WORKSPACE
from bot.channel_settings.names import MENTIONS, THREADS
from bot.channel_settings.resolve import Applied, Defaults, Resolved, applied, resolve

CACHE_SECONDS = 3.0
MAX_CACHED_PLACES = 1000


def defaults_of(settings: Any) -> Defaults:
    """The app's own values, from its configuration."""
    return Defaults(
        answer=THREADS if getattr(settings, "answer_thread_followups", True) else MENTIONS,
        model=getattr(settings, "inference_model_id", "") or "",
    )


def channel_of(channel_id: str | None, *, is_dm: bool) -> str | None:
    """The place whose settings apply: None (the workspace defaults) for DMs and commands outside
    a channel. DM ids start with D; a DM is also said so by its event's channel_type."""
    if not channel_id or is_dm or channel_id.startswith("D"):
        return None
    return channel_id


def resolved_in(session: Session, team_id: str, channel_id: str | None, defaults: Defaults) -> dict[str, Resolved]:
    """Every setting for ``channel_id`` (None: the workspace defaults), with its source."""
    places = [WORKSPACE] + ([channel_id] if channel_id else [])
    found = store.values(session, team_id, places)
    return resolve(found.get(channel_id) if channel_id else None, found[WORKSPACE], defaults)


def applied_in(session: Session, team_id: str, channel_id: str | None, defaults: Defaults) -> Applied:
    return applied(resolved_in(session, team_id, channel_id, defaults), defaults)


class SettingsReader:
    """``reader.applied(team, channel)``: what applies there, cached for at most CACHE_SECONDS."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Any,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.sessions = sessions
        self.defaults = defaults_of(settings)
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, str | None], tuple[float, Applied]] = {}
        self._lock = threading.Lock()

    def applied(self, team_id: str, channel_id: str | None, *, is_dm: bool = False) -> Applied:
        key = (team_id, channel_of(channel_id, is_dm=is_dm))
        now = self.clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        with self.sessions() as session:
            value = applied_in(session, key[0], key[1], self.defaults)
        with self._lock:
            if len(self._cache) >= MAX_CACHED_PLACES:
                fresh = {k: v for k, v in self._cache.items() if now - v[0] < self.ttl}
                self._cache = fresh if len(fresh) < MAX_CACHED_PLACES else {}
            self._cache[key] = (now, value)
        return value
