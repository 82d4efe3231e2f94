"""Backfilling a thread the bot joined mid-way, without ever holding an answer for it.

Slack limits ``conversations.replies`` to 1 request a minute and 15 messages a call for
commercially distributed apps outside the Marketplace (since 2025-05-29; DESIGN-NOTES, Slack).
So the answer reads what is there at once: the event, the stored rows, and ONE page of
``conversations.replies`` (FIRST_PAGE messages, the oldest first, so the thread's start is in
it), asked without the SDK's rate-limit retries (a 429 is not waited out). The rest is read by
the ``backfill`` job in the background (bot.history.backfill_job), which honours Retry-After.
A thread is claimed for backfill once (``needs_backfill`` is cleared by the first reader);
``backfilled_at`` is set when the last page is stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from bot.history import store as history
from bot.history.models import Thread

log = logging.getLogger(__name__)

# 15 messages a call where Slack throttles (its documented maximum there); asked everywhere for
# the first page, so the answer never waits on more than one small call.
FIRST_PAGE = 15
# Later pages: as many as Slack gives, or 15 where it was seen to cap them.
REPLIES_PAGE = 200
# Message subtypes that are somebody's words; the rest (joins, topic changes...) are skipped.
KEPT_SUBTYPES = (None, "file_share", "thread_broadcast", "bot_message", "me_message")


@dataclass
class BotIdentity:
    user_id: str
    bot_id: str | None


@dataclass(frozen=True)
class Page:
    stored: int  # messages stored from it
    cursor: str | None  # where the next page starts; None when this was the last
    size: int  # messages Slack returned


def backfill_role(message: dict, me: BotIdentity, *, answer_other_bots: bool) -> str | None:
    """ "assistant" for our own messages, "user" for people's, None for what is not kept (pure)."""
    if message.get("subtype") not in KEPT_SUBTYPES:
        return None
    if message.get("user") == me.user_id or (me.bot_id and message.get("bot_id") == me.bot_id):
        return "assistant"
    if message.get("bot_id") and not answer_other_bots:
        return None
    return "user"


def next_page_size(previous_size: int, asked: int, has_more: bool) -> int:
    """The limit to ask for next: FIRST_PAGE once asking for it (Slack throttles this app), or
    where Slack capped the last page below what was asked; else REPLIES_PAGE (pure)."""
    if asked <= FIRST_PAGE or (has_more and previous_size < asked and previous_size <= FIRST_PAGE):
        return FIRST_PAGE
    return REPLIES_PAGE


def claim_backfill(session: Session, team: str, channel: str, thread_ts: str) -> bool:
    """True for the one reader that takes the thread's backfill (caller commits)."""
    claimed = session.execute(
        update(Thread)
        .where(
            Thread.team_id == team,
            Thread.channel_id == channel,
            Thread.thread_ts == thread_ts,
            Thread.needs_backfill.is_(True),
        )
        .values(needs_backfill=False)
        .returning(Thread.thread_ts)
    ).first()
    return claimed is not None


def store_page(
    client: WebClient,
    sessions: sessionmaker[Session],
    *,
    team: str,
    channel: str,
    thread_ts: str,
    me: BotIdentity,
    answer_other_bots: bool,
    cursor: str | None,
    limit: int,
) -> Page:
    """Read one page of the thread and store its messages; SlackApiError goes up (a 429 too:
    ``client`` should not wait it out)."""
    response = client.conversations_replies(channel=channel, ts=thread_ts, limit=limit, cursor=cursor)
    messages = response.get("messages", [])
    stored = 0
    with sessions.begin() as session:
        for message in messages:
            role = backfill_role(message, me, answer_other_bots=answer_other_bots)
            if role is None:
                continue
            stored += history.upsert_message(
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
    next_cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
    return Page(
        stored=stored, cursor=next_cursor if response.get("has_more", bool(next_cursor)) else None, size=len(messages)
    )


def first_page(
    client: WebClient,
    sessions: sessionmaker[Session],
    *,
    team: str,
    channel: str,
    thread_ts: str,
    identity: Callable[[], BotIdentity],
    answer_other_bots: bool,
    later: Callable[[str | None, float], None],
) -> None:
    """For an answer: if the thread still needs a backfill, take it, store its first page now
    and hand the rest to ``later(cursor, delay_seconds)`` (the background job). A throttled or
    failing first call is handed over whole: the answer goes on from what is stored."""
    from slack_sdk.errors import SlackApiError

    from bot.limits.headers import retry_after_seconds

    with sessions.begin() as session:
        if not claim_backfill(session, team, channel, thread_ts):
            return
    try:
        page = store_page(
            client,
            sessions,
            team=team,
            channel=channel,
            thread_ts=thread_ts,
            me=identity(),
            answer_other_bots=answer_other_bots,
            cursor=None,
            limit=FIRST_PAGE,
        )
    except SlackApiError as error:
        status = getattr(error.response, "status_code", 0)
        wait = retry_after_seconds(error.response.headers or {}, time.time()) if status == 429 else None
        log.info("thread backfill_deferred channel=%s error=%s", channel, error.response.get("error"))
        later(None, wait or 0.0)
        return
    if page.cursor:
        later(page.cursor, 0.0)
        log.info("thread backfill first_page channel=%s messages=%d rest=background", channel, page.stored)
        return
    with sessions.begin() as session:
        history.mark_backfilled(session, team, channel, thread_ts)
    log.info("thread backfilled channel=%s messages=%d", channel, page.stored)
