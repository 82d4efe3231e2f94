"""`moderation` (`/moderation`, workspace admins only): image moderation's state and switch.

`/moderation` shows whether the current channel is watched, the counts of the last 7 days
and the latest decisions; `/moderation on` and `/moderation off` switch the current channel
(stored; this overrides MODERATION_CHANNELS for that channel).
"""

from __future__ import annotations

from typing import Literal

from bot.moderation import store
from bot.moderation.report import status_text
from bot.moderation.trigger import is_watched
from bot.tools.errors import ToolFailed
from bot.tools.registry import Permission, ToolContext, ToolRegistry

SUMMARY_DAYS = 7
RECENT_DECISIONS = 10


def register(registry: ToolRegistry) -> None:
    registry.add(
        moderation,
        command="moderation",
        usage="/moderation [on | off]",
        permission=Permission.ADMINS,
        timeout=10.0,
    )


def moderation(ctx: ToolContext, action: Literal["status", "on", "off"] = "status") -> str:
    """Image moderation in this channel: show its state and recent decisions, or switch it on or off.

    Args:
        action: "status" (the default) shows the state; "on" or "off" switches this channel.
    """
    if ctx.db is None or not ctx.team_id or not ctx.channel_id:
        raise ToolFailed("Moderation can only be managed from a channel in a workspace.")
    settings = ctx.settings
    configured = tuple(getattr(settings, "moderation_channels", ()) or ())
    report_channel = getattr(settings, "moderation_report_channel", None)
    if action in ("on", "off"):
        if ctx.channel_id.startswith("D"):
            raise ToolFailed("Run /moderation on or off in the channel whose images should be checked.")
        with ctx.db.begin() as session:
            store.set_channel_switch(
                session, ctx.team_id, ctx.channel_id, enabled=action == "on", user_id=ctx.user_id or ""
            )
    with ctx.db() as session:
        switch = store.channel_switch(session, ctx.team_id, ctx.channel_id)
        summary = store.summary(session, ctx.team_id, days=SUMMARY_DAYS, recent=RECENT_DECISIONS)
    text = status_text(
        channel_id=ctx.channel_id,
        watched=is_watched(ctx.channel_id, configured, switch),
        switched=switch,
        configured=ctx.channel_id in configured,
        report_channel=report_channel,
        counts=summary.counts,
        overridden=summary.overridden,
        recent=summary.recent,
        days=SUMMARY_DAYS,
    )
    if action in ("on", "off"):
        return f"Image moderation is now *{action}* in <#{ctx.channel_id}>.\n" + text
    return text
