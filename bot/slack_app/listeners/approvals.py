"""Approve / Deny clicks on the approval cards of state-changing tools (block_actions).

Run before Bolt acknowledges and touch only the database: a click by the person who asked
records the answer and puts the parked job back in the queue (bot.queue.parking.wake), in one
transaction; anyone else's click changes nothing and gets a private note (an `approval_note`
job). A click on a settled or expired card changes nothing either.
"""

from __future__ import annotations

import logging

from slack_bolt import App
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.queue import parking
from bot.tools import approvals
from bot.tools.approval_logic import APPROVE_ACTION, DENY_ACTION, ONLY_ASKER
from bot.tools.approval_note_job import APPROVAL_NOTE, ApprovalNotePayload

log = logging.getLogger(__name__)


def register(app: App, sessions: sessionmaker[Session], settings: Settings) -> None:
    def handle_approval_click(ack, body: dict, action: dict, context) -> None:
        record_answer(sessions, settings, body=body, action=action, team_id=context.team_id)
        ack()

    for action_id in (APPROVE_ACTION, DENY_ACTION):
        app.action(action_id)(handle_approval_click)


def record_answer(
    sessions: sessionmaker[Session], settings: Settings, *, body: dict, action: dict, team_id: str | None
) -> str:
    """The outcome: "decided", "not_asker", "settled" or "unknown"."""
    try:
        approval_id = int(action.get("value") or "")
    except ValueError:
        return "unknown"
    clicker = (body.get("user") or {}).get("id", "")
    team = team_id or (body.get("team") or {}).get("id", "")
    with sessions.begin() as session:
        outcome, approval = approvals.decide(
            session,
            team_id=team,
            approval_id=approval_id,
            clicker=clicker,
            approve=action.get("action_id") == APPROVE_ACTION,
        )
        if outcome == "decided":
            parking.wake(session, approval.job_id)
        elif outcome == "not_asker":
            APPROVAL_NOTE.enqueue(
                session,
                ApprovalNotePayload(
                    channel=approval.channel_id,
                    thread_ts=approval.thread_ts,
                    user=clicker,
                    text=ONLY_ASKER.format(user=approval.user_id),
                ),
                team_id=team,
                user_id=clicker,
                settings=settings,
            )
    log.info("approval click id=%d outcome=%s", approval_id, outcome)
    return outcome
