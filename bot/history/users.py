"""Slack users in the `slack_users` cache: fetched with users.info when unknown or a day old.

Names attribute messages for the model; the admin flag decides admin-only tools.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.history import store as history
from bot.history.admins import is_workspace_admin
from bot.history.models import SlackUser

log = logging.getLogger(__name__)


def refresh_users(
    client: WebClient,
    sessions: sessionmaker[Session],
    team_id: str,
    user_ids: Iterable[str],
    *,
    enterprise_id: str | None = None,
) -> None:
    """Fetch and store each user; one that cannot be fetched keeps its old entry (or none).
    The admin flag is ours only (see bot.history.admins), cached with the profile; on an
    Enterprise Grid org install, the org's admins count too."""
    if enterprise_id is None:
        from bot.slack.org_workspaces import enterprise_of

        with sessions() as session:
            enterprise_id = enterprise_of(session, team_id)
    for user_id in sorted(set(user_ids)):
        try:
            user = client.users_info(user=user_id)["user"]
        except SlackApiError as error:
            log.info("users.info failed error=%s", error.response.get("error"))
            continue
        profile = user.get("profile") or {}
        with sessions.begin() as session:
            history.save_user(
                session,
                team_id=team_id,
                user_id=user_id,
                display_name=profile.get("display_name") or user.get("real_name") or user.get("name") or "",
                is_admin=is_workspace_admin(user, team_id=team_id, enterprise_id=enterprise_id),
                is_bot=bool(user.get("is_bot")),
                timezone=user.get("tz"),
            )


def current_user(
    client: WebClient, sessions: sessionmaker[Session], team_id: str, user_id: str, now: datetime
) -> SlackUser | None:
    """The cached user, refreshed first when stale; None when Slack does not know them."""
    with sessions() as session:
        stale = history.stale_users(session, team_id, {user_id}, now)
    if stale:
        refresh_users(client, sessions, team_id, stale)
    with sessions() as session:
        return history.get_user(session, team_id, user_id)
