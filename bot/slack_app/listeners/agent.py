"""Slack's agent surface in the web process: 👍/👎 clicks and the native Stop button.

Like the other listeners these run before Bolt acknowledges and touch only the database:

- a feedback click is stored (once per person and answer; a second click changes it) with
  the answer's trace from the button's value, and a `feedback_thanks` job is enqueued in
  the same transaction to tell the person "Thanks" (ephemeral);
- `agent_session_stopped` records a Stop for the thread (bot.agent.stops): the worker
  running its answer abandons it; reply jobs for the thread still queued are finished as
  stopped, so they never start.
"""

from __future__ import annotations

import logging

from slack_bolt import App
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.agent.feedback import FEEDBACK_ACTION_ID, decode_value
from bot.agent.feedback_store import record_feedback
from bot.agent.stops import request_stop
from bot.config import Settings
from bot.conversation.feedback_job import FEEDBACK_THANKS, FeedbackThanksPayload
from bot.conversation.reply_job import REPLY
from bot.db.clock import db_now
from bot.idempotency.store import claim_once, event_key
from bot.queue.models import DONE, QUEUED, Job
from bot.queue.store import notify_workers

log = logging.getLogger(__name__)

STOPPED_ERROR = "stopped: the person pressed Stop"


def register(app: App, sessions: sessionmaker[Session], settings: Settings, *, reply_kind: str = REPLY.kind) -> None:
    def handle_feedback_click(ack, body: dict, action: dict, context) -> None:
        record_click(sessions, settings, body=body, action=action, team_id=context.team_id)
        ack()

    def handle_agent_session_stopped(body: dict, event: dict, context) -> None:
        team_id = context.team_id or body.get("team_id") or ""
        record_stop(sessions, team_id=team_id, event=event, event_id=body.get("event_id"), reply_kind=reply_kind)

    app.action(FEEDBACK_ACTION_ID)(handle_feedback_click)
    app.event("agent_session_stopped")(handle_agent_session_stopped)


def record_click(
    sessions: sessionmaker[Session], settings: Settings, *, body: dict, action: dict, team_id: str | None
) -> bool:
    """Store the click; False when it cannot be one of our answers' buttons."""
    decoded = decode_value(action.get("value"))
    user = (body.get("user") or {}).get("id", "")
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id", "")
    answer_ts = container.get("message_ts") or message.get("ts", "")
    team = team_id or (body.get("team") or {}).get("id", "")
    if decoded is None or not (user and channel and answer_ts and team):
        log.warning("feedback click_ignored reason=%s", "bad_value" if decoded is None else "incomplete")
        return False
    rating, trace = decoded
    thread_ts = trace.thread_ts or container.get("thread_ts") or message.get("thread_ts") or ""
    with sessions.begin() as session:
        new = record_feedback(
            session,
            team_id=team,
            channel_id=channel,
            answer_ts=answer_ts,
            user_id=user,
            rating=rating,
            trace=trace,
            thread_ts=thread_ts,
        )
        FEEDBACK_THANKS.enqueue(
            session,
            FeedbackThanksPayload(channel=channel, user=user, thread_ts=thread_ts, rating=rating),
            team_id=team,
            user_id=user,
        )
    log.info("feedback recorded rating=%s new=%s channel=%s", rating, new, channel)
    return True


def record_stop(
    sessions: sessionmaker[Session], *, team_id: str, event: dict, event_id: str | None, reply_kind: str = REPLY.kind
) -> int | None:
    """Record the Stop and finish the thread's queued replies; the number finished, or None
    for a redelivery."""
    channel, thread_ts = event.get("channel") or "", event.get("thread_ts") or ""
    if not (team_id and channel and thread_ts):
        log.warning("agent_session_stopped ignored reason=incomplete")
        return None
    with sessions.begin() as session:
        if event_id and not claim_once(session, team_id, event_key(event_id)):
            return None
        request_stop(session, team_id=team_id, channel_id=channel, thread_ts=thread_ts, user_id=event.get("user", ""))
        cancelled = cancel_queued_replies(session, team_id, channel, thread_ts, kind=reply_kind)
    log.info("agent_session_stopped channel=%s queued_cancelled=%d", channel, cancelled)
    return cancelled


def cancel_queued_replies(session: Session, team_id: str, channel: str, thread_ts: str, *, kind: str) -> int:
    """Reply jobs of the thread that never started end as stopped here. Those waiting for a
    retry already set the session to `processing`: they are made due now, and the worker
    ends them at once (the stop request is there), moving the session on."""
    rows = session.execute(
        select(Job.id, Job.payload, Job.attempts)
        .where(Job.team_id == team_id, Job.kind == kind, Job.status == QUEUED)
        .with_for_update(skip_locked=True)
    ).all()
    mine = [
        (job_id, attempts)
        for job_id, payload, attempts in rows
        if (payload or {}).get("channel") == channel and (payload or {}).get("thread_ts") == thread_ts
    ]
    if not mine:
        return 0
    now = db_now(session)
    never_started = [job_id for job_id, attempts in mine if attempts == 0]
    retrying = [job_id for job_id, attempts in mine if attempts > 0]
    if never_started:
        session.execute(
            update(Job)
            .where(Job.id.in_(never_started), Job.status == QUEUED)
            .values(status=DONE, finished_at=now, last_error=STOPPED_ERROR, lease_token=None, lease_expires_at=None)
        )
    if retrying:
        session.execute(update(Job).where(Job.id.in_(retrying), Job.status == QUEUED).values(run_at=now))
        notify_workers(session)
    return len(mine)
