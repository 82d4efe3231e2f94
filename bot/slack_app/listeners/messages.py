"""Message and mention events: record each delivery once, keep engaged threads' history,
and enqueue a reply when the bot should answer.

These run before Bolt acknowledges (process_before_response), so an event is acknowledged
only once it is durably recorded: a database outage makes Slack retry instead of losing it.
Nothing here calls Slack or the model; that is the worker's job.
"""

from __future__ import annotations

import logging

from slack_bolt import App
from sqlalchemy.orm import Session, sessionmaker

from bot.channel_settings.reader import applied_in, channel_of, defaults_of
from bot.config import Settings
from bot.conversation.ask_job import ASK
from bot.conversation.engagement import Inbound, classify, decide
from bot.conversation.queue_full_job import QUEUE_FULL, QueueFullPayload
from bot.conversation.reply_job import REPLY, ReplyPayload
from bot.history import store as history
from bot.idempotency.store import claim_once, event_key, message_key
from bot.moderation.intake import enqueue_moderation
from bot.queue import store

log = logging.getLogger(__name__)


def register(app: App, sessions: sessionmaker[Session], settings: Settings) -> None:
    def handle_message_event(body: dict, event: dict, context) -> None:
        inbound = classify(
            event,
            bot_user_id=context.bot_user_id,
            bot_id=context.bot_id,
            allow_bots=settings.answer_other_bots,
        )
        if inbound.kind == "ignore":
            log.debug("event ignored reason=%s", inbound.reason)
            return
        team_id = context.team_id or body.get("team_id") or ""
        record(sessions, settings, team_id=team_id, event_id=body.get("event_id"), inbound=inbound)

    app.event("app_mention")(handle_message_event)
    app.event("message")(handle_message_event)


def answers_followups(session: Session, settings: Settings, team_id: str, inbound: Inbound, *, engaged: bool) -> bool:
    """Whether a follow-up without a mention is answered here: the channel's `answer` setting
    (bot.channel_settings), read only for a message it decides (in a thread the bot is in, no
    mention, not a DM)."""
    if not engaged or inbound.mentions_bot or inbound.is_dm or not inbound.in_thread:
        return settings.answer_thread_followups  # not a follow-up: the setting cannot change the decision
    return applied_in(
        session, team_id, channel_of(inbound.channel, is_dm=False), defaults_of(settings)
    ).answers_followups


def record(
    sessions: sessionmaker[Session], settings: Settings, *, team_id: str, event_id: str | None, inbound: Inbound
) -> int | None:
    """Store and enqueue in one transaction. Returns the reply job's id, if one was enqueued."""
    with sessions.begin() as session:
        if event_id and not claim_once(session, team_id, event_key(event_id)):
            log.info("event duplicate event_id=%s", event_id)
            return None
        enqueue_moderation(session, settings, team_id=team_id, inbound=inbound)  # images in watched channels
        if inbound.kind == "edit":
            history.edit_message(
                session,
                team_id=team_id,
                channel_id=inbound.channel,
                ts=inbound.ts,
                text=inbound.text,
                files=list(inbound.files),
            )
            return None
        if inbound.kind == "delete":
            history.delete_message(session, team_id=team_id, channel_id=inbound.channel, ts=inbound.ts)
            return None
        engaged = history.get_thread(session, team_id, inbound.channel, inbound.thread_ts) is not None
        decision = decide(
            inbound,
            thread_engaged=engaged,
            answer_followups=answers_followups(session, settings, team_id, inbound, engaged=engaged),
        )
        if decision.engage:
            history.engage_thread(session, team_id, inbound.channel, inbound.thread_ts, mid_thread=decision.mid_thread)
        if decision.store:
            history.upsert_message(
                session,
                team_id=team_id,
                channel_id=inbound.channel,
                thread_ts=inbound.thread_ts,
                ts=inbound.ts,
                user_id=inbound.user,
                text=inbound.text,
                files=list(inbound.files),
                role="user",
            )
            history.touch_thread(session, team_id, inbound.channel, inbound.thread_ts)
        if not decision.answer:
            return None
        # app_mention and message arrive separately for one message: answer it once.
        if not claim_once(session, team_id, message_key(inbound.channel, inbound.ts)):
            log.info("event duplicate_message channel=%s ts=%s", inbound.channel, inbound.ts)
            return None
        waiting = store.waiting_for_user(session, team_id, inbound.user, kinds=(REPLY.kind, ASK.kind))
        if waiting >= settings.max_queued_per_user:
            # One person cannot crowd out everyone: one message saying why, no model call.
            QUEUE_FULL.enqueue(
                session,
                QueueFullPayload(
                    channel=inbound.channel, thread_ts=inbound.thread_ts, user=inbound.user, waiting=waiting
                ),
                team_id=team_id,
                user_id=inbound.user,
                settings=settings,
            )
            log.info("event queue_full channel=%s waiting=%d", inbound.channel, waiting)
            return None
        job_id = REPLY.enqueue(
            session,
            ReplyPayload(
                channel=inbound.channel,
                thread_ts=inbound.thread_ts,
                ts=inbound.ts,
                user=inbound.user,
                channel_type=inbound.channel_type,
            ),
            team_id=team_id,
            user_id=inbound.user,
            settings=settings,
        )
    log.info("event queued job_id=%d channel=%s event_id=%s", job_id, inbound.channel, event_id)
    return job_id
