"""`moderation` (`/moderation`, workspace admins only): image moderation's state and switch.

`/moderation` shows whether the current channel is watched, the counts of the last 7 days
and the latest decisions (answered to the admin alone; asked through the model, whose answer the
thread reads, only this channel's decisions are listed); `/moderation on` and `/moderation off`
switch the current channel (stored; this overrides MODERATION_CHANNELS for that channel). The workspace's own settings,
typed as a slash command only (never set by the model): `/moderation report #channel` (or
`report none`) and `/moderation token xoxp-…` (or `token none`), checked with auth.test to
belong to this workspace. In OAuth mode they are the only ones used (bot.moderation.workspace).
"""

from __future__ import annotations

from bot.moderation import store
from bot.moderation.report import UNUSABLE_REPORT_CHANNEL, invite_hint, status_text
from bot.moderation.trigger import is_watched
from bot.moderation.workspace import CLEAR_WORDS, effective, parse_channel
from bot.tools.audience import private_results
from bot.tools.errors import ArgumentError, ToolFailed
from bot.tools.registry import Permission, ToolContext, ToolRegistry

USAGE = "/moderation [on | off | report <#channel> | token <xoxp-…>]"
SUMMARY_DAYS = 7
RECENT_DECISIONS = 10


def register(registry: ToolRegistry) -> None:
    registry.add(
        moderation,
        command="moderation",
        usage=USAGE,
        permission=Permission.ADMINS,
        timeout=10.0,
        # Showing the state reads; switching (or any other action) changes it.
        changes_state=lambda arguments: str(arguments.get("action", "status")).split()[:1] not in ([], ["status"]),
    )


@private_results  # the status lists decisions from every channel, private ones included
def moderation(ctx: ToolContext, action: str = "status") -> str:
    """Image moderation in this channel: show its state and recent decisions, or switch it on or off.

    Args:
        action: "status" (the default) shows the state; "on" or "off" switches this channel.
    """
    if ctx.db is None or not ctx.team_id or not ctx.channel_id:
        raise ToolFailed("Moderation can only be managed from a channel in a workspace.")
    words = action.split()
    verb = words[0].lower() if words else "status"
    if verb in ("report", "token"):
        return _set_workspace_setting(ctx, verb, " ".join(words[1:]))
    if verb not in ("status", "on", "off"):
        raise ArgumentError(f"Unknown action {verb!r}.", usage=USAGE)
    action = verb
    settings = ctx.settings
    configured = tuple(getattr(settings, "moderation_channels", ()) or ())
    with ctx.db() as session:
        stored = store.workspace_settings(session, ctx.team_id)
    report_channel = effective(
        stored,
        env_report_channel=getattr(settings, "moderation_report_channel", None),
        env_admin_token=None,
        oauth=bool(getattr(settings, "oauth_enabled", False)),
    ).report_channel
    if action in ("on", "off"):
        if ctx.channel_id.startswith("D"):
            raise ToolFailed("Run /moderation on or off in the channel whose images should be checked.")
        with ctx.db.begin() as session:
            store.set_channel_switch(
                session, ctx.team_id, ctx.channel_id, enabled=action == "on", user_id=ctx.user_id or ""
            )
    with ctx.db() as session:
        switch = store.channel_switch(session, ctx.team_id, ctx.channel_id)
        # Typed by an admin, the answer is theirs alone (private results): every channel's decisions.
        # Asked through the model, the answer is posted in the thread: this channel's only.
        summary = store.summary(
            session,
            ctx.team_id,
            days=SUMMARY_DAYS,
            recent=RECENT_DECISIONS,
            only_channel=None if ctx.typed_by_person else ctx.channel_id,
        )
        problem = store.report_problem(session, ctx.team_id)
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
        report_problem=(problem.channel_id, problem.error) if problem is not None else None,
        bot_name=_bot_name(ctx) if problem is not None and ctx.slack is not None else "the bot",
    )
    if action in ("on", "off"):
        return f"Image moderation is now *{action}* in <#{ctx.channel_id}>.\n" + text
    return text


def _set_workspace_setting(ctx: ToolContext, verb: str, value: str) -> str:
    """`report <#channel>` / `token <xoxp-…>` (or `none`): typed by an admin, never by the model."""
    if not ctx.typed_by_person:
        raise ToolFailed("The report channel and the admin token can only be set with the /moderation command.")
    clear = value.strip().lower() in CLEAR_WORDS
    if verb == "report":
        channel = None if clear else parse_channel(value)
        if not clear and channel is None:
            raise ToolFailed("Give the report channel as #channel (or its id, C…), or `none`.")
        if channel is not None and ctx.slack is not None:
            _check_channel_is_ours(ctx, channel)
        with ctx.db.begin() as session:
            store.set_workspace_setting(session, ctx.team_id, user_id=ctx.user_id or "", report_channel=channel)
            store.clear_report_problem(session, ctx.team_id)  # a new channel: its own posts will tell
        return f"Moderation reports now go to <#{channel}>." if channel else "Moderation reports are off."
    token = None if clear else value.strip()
    if token is not None:
        if not token.startswith("xoxp-"):
            raise ToolFailed("The admin token is a user token (xoxp-…) of a workspace admin with files:write.")
        _check_token_is_ours(ctx, token)
    with ctx.db.begin() as session:
        store.set_workspace_setting(session, ctx.team_id, user_id=ctx.user_id or "", admin_user_token=token)
    return "The admin token is stored: removals are on." if token else "The admin token is removed: no removals."


def _check_channel_is_ours(ctx: ToolContext, channel: str) -> None:
    from slack_sdk.errors import SlackApiError

    try:  # with this workspace's bot token: another workspace's channel id is not found
        info = ctx.slack.conversations_info(channel=channel).get("channel") or {}
    except SlackApiError as error:
        raise ToolFailed(
            f"I can't see <#{channel}> in this workspace ({error.response.get('error')}): invite me there first."
        ) from error
    # conversations.info succeeds in a public channel the bot is not in, but posting there fails
    # with not_in_channel (no chat:write.public): membership is what counts (DESIGN-NOTES, Slack).
    problem = "is_archived" if info.get("is_archived") else None if info.get("is_member") else "not_in_channel"
    if problem in UNUSABLE_REPORT_CHANNEL:
        hint = invite_hint(channel, problem, _bot_name(ctx))
        raise ToolFailed(f"I can't post in <#{channel}> ({problem}): {hint}")


def _bot_name(ctx: ToolContext) -> str:
    from slack_sdk.errors import SlackApiError

    try:
        return str(ctx.slack.auth_test().get("user") or "the bot")
    except SlackApiError:
        return "the bot"


def _check_token_is_ours(ctx: ToolContext, token: str) -> None:
    from slack_sdk.errors import SlackApiError

    from bot.slack.clients import web_client

    try:
        identity = web_client(ctx.settings, token).auth_test()
    except SlackApiError as error:
        raise ToolFailed(f"Slack refused that token ({error.response.get('error')}).") from error
    if identity.get("team_id") != ctx.team_id:
        raise ToolFailed("That token belongs to another workspace: give a token of this workspace's admin.")
