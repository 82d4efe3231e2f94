"""`/moderation token xoxp-…`, handled in the web process: the admin token is checked and stored
in the workspace's moderation settings before Slack is acknowledged, so it never becomes a job
payload (kept in plain text in `jobs` for the retention period). Every other `/moderation` is an
ordinary `slash_command` job.

Two Web API calls before the 3-second acknowledgement: `users.info` (only a workspace admin may
set it) and `auth.test` with the token (it must belong to this workspace).
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.history.admins import is_workspace_admin
from bot.moderation import store
from bot.moderation.workspace import CLEAR_WORDS
from bot.slack.clients import web_client

log = logging.getLogger(__name__)

COMMAND = "/moderation"


def is_token_command(name: str, text: str) -> bool:
    words = (text or "").split()
    return name == COMMAND and bool(words) and words[0].lower() == "token"


def set_admin_token(
    sessions: sessionmaker[Session],
    settings: Settings,
    client: WebClient,
    *,
    team_id: str,
    user_id: str,
    text: str,
    enterprise_id: str | None = None,
) -> str:
    """The sentence the admin is told; the token is stored only when every check passes."""
    value = " ".join(text.split()[1:]).strip()
    try:
        user = client.users_info(user=user_id)["user"]
    except SlackApiError as error:
        log.warning("admin_token users_info_failed error=%s", error.response.get("error"))
        return "I couldn't check that you are a workspace admin. Please try again."
    if not is_workspace_admin(user, team_id=team_id, enterprise_id=enterprise_id):
        return "Only workspace admins can use /moderation."
    token = None if value.lower() in CLEAR_WORDS else value
    if token is not None:
        if not token.startswith("xoxp-"):
            return "The admin token is a user token (xoxp-…) of a workspace admin with files:write."
        try:
            identity = web_client(settings, token).auth_test()
        except SlackApiError as error:
            return f"Slack refused that token ({error.response.get('error')})."
        if identity.get("team_id") != team_id:
            return "That token belongs to another workspace: give a token of this workspace's admin."
    with sessions.begin() as session:
        store.set_workspace_setting(session, team_id, user_id=user_id, admin_user_token=token)
    log.info("admin_token %s team=%s", "stored" if token else "removed", team_id)
    return "The admin token is stored: removals are on." if token else "The admin token is removed: no removals."
