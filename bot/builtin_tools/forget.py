"""`forget_thread` (`/forget`): delete the bot's stored copy of a thread and stop following it.

Asked through the model, it forgets the thread the conversation is in; as a slash command
(which never runs in a thread) it takes a link to the thread (see `bot.tools.forget_logic`).
A link may name any thread of this workspace, so the asker must have written in it, or be an
admin. Slack keeps the messages; only what the bot stored goes.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.history import store as history
from bot.history.models import ThreadMessage
from bot.tools.errors import ToolFailed
from bot.tools.forget_logic import HOW_TO_FORGET, NOT_A_LINK, NOT_YOURS, forgotten_message, parse_message_link
from bot.tools.registry import ToolContext, ToolRegistry


def wrote_in_thread(session: Session, team_id: str, channel_id: str, thread_ts: str, user_id: str | None) -> bool:
    if not user_id:
        return False
    return (
        session.execute(
            select(ThreadMessage.id)
            .where(
                ThreadMessage.team_id == team_id,
                ThreadMessage.channel_id == channel_id,
                ThreadMessage.thread_ts == thread_ts,
                ThreadMessage.user_id == user_id,
            )
            .limit(1)
        ).first()
        is not None
    )


def forget_thread(ctx: ToolContext, thread_link: str = "") -> str:
    """Forget a thread: delete the assistant's stored copy of it and stop following it. Its
    messages, images and tool results go; Slack keeps the messages. Use when someone asks to
    forget a conversation.

    Args:
        thread_link: A Slack link to the thread or one of its messages; leave empty for the thread
            this conversation is in.
    """
    if ctx.db is None or not ctx.team_id:
        raise ToolFailed("Forgetting is not available here.")
    with ctx.db.begin() as session:
        if thread_link.strip():
            link = parse_message_link(thread_link)
            if link is None:
                raise ToolFailed(NOT_A_LINK)
            channel = link.channel_id
            thread_ts = link.thread_ts or history.thread_of_message(session, ctx.team_id, channel, link.ts) or link.ts
            if not ctx.user_is_admin and not wrote_in_thread(session, ctx.team_id, channel, thread_ts, ctx.user_id):
                raise ToolFailed(NOT_YOURS)
        elif ctx.thread_ts and ctx.channel_id:
            channel, thread_ts = ctx.channel_id, ctx.thread_ts
        else:
            raise ToolFailed(HOW_TO_FORGET)
        count = history.forget_thread(session, ctx.team_id, channel, thread_ts)
    return forgotten_message(count)


def register(registry: ToolRegistry) -> None:
    registry.add(forget_thread, command="forget", usage="/forget <thread link>", timeout=10.0, changes_state=True)
