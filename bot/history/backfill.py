"""Backfilling a thread the bot joined mid-way: its earlier messages, read once with
conversations.replies and stored like any other message (then the thread is marked done)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.history import store as history

log = logging.getLogger(__name__)

REPLIES_PAGE = 200
# Message subtypes that are somebody's words; the rest (joins, topic changes...) are skipped.
KEPT_SUBTYPES = (None, "file_share", "thread_broadcast", "bot_message", "me_message")


@dataclass
class BotIdentity:
    user_id: str
    bot_id: str | None


def backfill_role(message: dict, me: BotIdentity, *, answer_other_bots: bool) -> str | None:
    """ "assistant" for our own messages, "user" for people's, None for what is not kept (pure)."""
    if message.get("subtype") not in KEPT_SUBTYPES:
        return None
    if message.get("user") == me.user_id or (me.bot_id and message.get("bot_id") == me.bot_id):
        return "assistant"
    if message.get("bot_id") and not answer_other_bots:
        return None
    return "user"


def backfill_if_needed(
    client: WebClient,
    sessions: sessionmaker[Session],
    *,
    team: str,
    channel: str,
    thread_ts: str,
    identity: Callable[[], BotIdentity],
    answer_other_bots: bool,
) -> None:
    """Store the thread's earlier messages once, if it still needs it. ``identity`` is asked
    only then (it may call auth.test)."""
    with sessions() as session:
        thread = history.get_thread(session, team, channel, thread_ts)
        if thread is None or not thread.needs_backfill:
            return
    me = identity()
    cursor, count = None, 0
    while True:
        response = client.conversations_replies(channel=channel, ts=thread_ts, limit=REPLIES_PAGE, cursor=cursor)
        with sessions.begin() as session:
            for message in response.get("messages", []):
                role = backfill_role(message, me, answer_other_bots=answer_other_bots)
                if role is None:
                    continue
                count += history.upsert_message(
                    session,
                    team_id=team,
                    channel_id=channel,
                    thread_ts=thread_ts,
                    ts=message["ts"],
                    user_id=message.get("user") if role == "user" else None,
                    text=message.get("text", ""),
                    files=message.get("files"),
                    role=role,
                )
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    with sessions.begin() as session:
        history.mark_backfilled(session, team, channel, thread_ts)
    log.info("thread backfilled channel=%s messages=%d", channel, count)
