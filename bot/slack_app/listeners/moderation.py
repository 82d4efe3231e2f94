"""Dismiss and Remove clicks on moderation reports (block_actions).

Like the message listeners, these run before Bolt acknowledges and only touch the database:
the click is recorded on the decision (who, what, when) and a `moderation_action` job is
enqueued in the same transaction; the worker deletes the file and updates the report.
"""

from __future__ import annotations

import logging

from slack_bolt import App
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.moderation import store
from bot.moderation.job import MODERATION_ACTION, ModerationActionPayload
from bot.moderation.plan import DISMISS, REMOVE
from bot.moderation.report import DISMISS_ACTION_ID, REMOVE_ACTION_ID

log = logging.getLogger(__name__)

CLICKS = {DISMISS_ACTION_ID: DISMISS, REMOVE_ACTION_ID: REMOVE}


def register(app: App, sessions: sessionmaker[Session], settings: Settings) -> None:
    def handle_moderation_click(ack, body: dict, action: dict, context) -> None:
        record_click(sessions, settings, body=body, action=action, team_id=context.team_id)
        ack()

    for action_id in CLICKS:
        app.action(action_id)(handle_moderation_click)


def record_click(
    sessions: sessionmaker[Session], settings: Settings, *, body: dict, action: dict, team_id: str | None
) -> int | None:
    """Record the click and enqueue the job doing it; the job's id, or None for a stale button."""
    kind = CLICKS[action["action_id"]]
    try:
        decision_id = int(action.get("value") or "")
    except ValueError:
        log.warning("moderation click_ignored reason=bad_value")
        return None
    user = (body.get("user") or {}).get("id", "")
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id", "")
    report_ts = container.get("message_ts") or (body.get("message") or {}).get("ts", "")
    team = team_id or (body.get("team") or {}).get("id", "")
    with sessions.begin() as session:
        found = store.get_decision(session, decision_id)
        if found is None or found.team_id != team:
            log.warning("moderation click_ignored reason=unknown_decision id=%d", decision_id)
            return None
        store.record_click(session, decision_id, action=kind, user_id=user)
        job_id = MODERATION_ACTION.enqueue(
            session,
            ModerationActionPayload(
                decision_id=decision_id, action=kind, user=user, report_channel=channel, report_ts=report_ts
            ),
            team_id=team,
            user_id=user,
            settings=settings,
        )
    log.info("moderation click id=%d action=%s job_id=%d", decision_id, kind, job_id)
    return job_id
