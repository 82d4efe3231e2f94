"""A workspace leaves: `app_uninstalled`, or `tokens_revoked` for the bot's token.

Before the ack: its tokens are deleted from the installation store (OAuth mode), so no
further event authorizes, and a background `forget_workspace` job is enqueued in the same
durable way as replies. The worker then deletes the workspace's history, settings, images, cached
users, idempotency keys and jobs in small batches (bot/retention). Token usage counts stay.

Revoking only users' tokens (the bot never asks for any) deletes those users' installations
and nothing else.
"""

from __future__ import annotations

import logging

from slack_bolt import App
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.idempotency.store import claim_once, event_key
from bot.retention.tasks import FORGET_WORKSPACE, ForgetPayload

log = logging.getLogger(__name__)


def register(app: App, sessions: sessionmaker[Session], settings: Settings, store=None) -> None:
    """`store`: the installation store in OAuth mode, else None (SLACK_BOT_TOKEN stays set)."""

    def handle_app_uninstalled(body: dict, context) -> None:
        team_id = context.team_id or body.get("team_id") or ""
        org_teams: list[str] = []
        if store is not None:
            from bot.slack.oauth import forget_tokens

            forget_tokens(store, enterprise_id=context.enterprise_id, team_id=team_id)
            if context.is_enterprise_install and context.enterprise_id:
                # An org-wide install is one bot for the whole org: it goes, with every workspace's data.
                from bot.slack.org_workspaces import teams_of

                forget_tokens(store, enterprise_id=context.enterprise_id, team_id=None)
                with sessions() as session:
                    org_teams = [t for t in teams_of(session, context.enterprise_id) if t != team_id]
        event_id = body.get("event_id")
        enqueue_forget(sessions, settings, team_id=team_id, event_id=event_id, reason="app_uninstalled")
        for other in org_teams:
            enqueue_forget(sessions, settings, team_id=other, event_id=event_id, reason="app_uninstalled")

    def handle_tokens_revoked(body: dict, event: dict, context) -> None:
        team_id = context.team_id or body.get("team_id") or ""
        tokens = event.get("tokens") or {}
        if store is not None:
            for user_id in tokens.get("oauth") or []:
                store.delete_installation(enterprise_id=context.enterprise_id, team_id=team_id, user_id=user_id)
        if not tokens.get("bot"):
            return
        if store is not None:
            from bot.slack.oauth import forget_tokens

            forget_tokens(store, enterprise_id=context.enterprise_id, team_id=team_id)
        enqueue_forget(sessions, settings, team_id=team_id, event_id=body.get("event_id"), reason="tokens_revoked")

    app.event("app_uninstalled")(handle_app_uninstalled)
    app.event("tokens_revoked")(handle_tokens_revoked)


def enqueue_forget(
    sessions: sessionmaker[Session], settings: Settings, *, team_id: str, event_id: str | None, reason: str
) -> int | None:
    with sessions.begin() as session:
        if event_id and not claim_once(session, team_id, event_key(event_id)):
            return None
        job_id = FORGET_WORKSPACE.enqueue(session, ForgetPayload(reason=reason), team_id=team_id, settings=settings)
    log.info("workspace leaving team=%s reason=%s job_id=%d", team_id, reason, job_id)
    return job_id
