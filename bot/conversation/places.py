"""Where a conversation happens, in words for the system prompt: "#general", "a direct message
with Alice", never a raw channel id.

`describe_place` is pure. `PlaceNames` reads Slack's conversations.info once per channel and
keeps the answer for an hour (names rarely change; a stale name only makes the prompt a little
out of date); the person of a direct message comes from the cached users.info profiles
(`bot.history.users`). When Slack cannot say (missing scope, channel gone), the place is
described without a name.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.history.users import current_user

log = logging.getLogger(__name__)

CHANNEL_INFO_TTL_SECONDS = 3600.0
FAILURE_TTL_SECONDS = 60.0  # a failed look-up is tried again soon
UNKNOWN_PLACE = "a Slack conversation"
UNKNOWN_WORKSPACE = "this workspace"


def describe_place(info: Mapping[str, Any] | None, *, person: str | None = None) -> str:
    """``info``: a conversations.info ``channel`` object (None when unknown); ``person``: the
    name of the other person of a direct message."""
    if not info:
        return UNKNOWN_PLACE
    if info.get("is_im"):
        return f"a direct message with {person}" if person else "a direct message"
    if info.get("is_mpim"):
        return "a group direct message"
    name = str(info.get("name") or "").strip().lstrip("#")
    if name:
        return f"#{name}"
    return "a private channel" if info.get("is_private") else "a channel"


class PlaceNames:
    """conversations.info, cached per (workspace, channel) in this process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        ttl: float = CHANNEL_INFO_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._infos: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}  # (expires, info)

    def describe(self, client: WebClient, team_id: str, channel_id: str, *, asker_id: str | None = None) -> str:
        if not channel_id:
            return UNKNOWN_PLACE
        info = self.channel_info(client, team_id, channel_id)
        person = None
        if info and info.get("is_im"):
            other = str(info.get("user") or asker_id or "")
            user = current_user(client, self.sessions, team_id, other, datetime.now(UTC)) if other else None
            person = (user.display_name or None) if user else None
        return describe_place(info, person=person)

    def workspace(self, client: WebClient, team_id: str) -> str:
        """The workspace's name (auth.test's ``team``), cached like channels."""
        info = self._cached(("auth.test", team_id), lambda: _data(client.auth_test()))
        return str((info or {}).get("team") or UNKNOWN_WORKSPACE)

    def channel_info(self, client: WebClient, team_id: str, channel_id: str) -> dict[str, Any] | None:
        return self._cached(
            (team_id, channel_id), lambda: dict(_data(client.conversations_info(channel=channel_id))["channel"])
        )

    def _cached(self, key: tuple[str, str], fetch: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        now = self.clock()
        with self._lock:
            cached = self._infos.get(key)
        if cached is not None and now < cached[0]:
            return cached[1]
        try:
            info: dict[str, Any] | None = fetch()
        except SlackApiError as error:
            log.info("slack look-up failed method=%s error=%s", key[0], error.response.get("error"))
            info = None
        with self._lock:
            self._infos[key] = (now + (self.ttl if info is not None else FAILURE_TTL_SECONDS), info)
        return info


def _data(response: Any) -> dict[str, Any]:
    """A SlackResponse's body (or a plain dict, from the terminal's stand-in client)."""
    return dict(getattr(response, "data", response))


__all__ = ["UNKNOWN_PLACE", "PlaceNames", "describe_place"]
