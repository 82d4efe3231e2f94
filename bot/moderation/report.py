"""What moderation says in Slack: the report with its buttons, the notes to posters and
moderators, and the ``/moderation`` summary (pure: data in, text and Block Kit out).

Text the bot did not write (file names, the model's reason) is escaped for mrkdwn and cut
short, so a report always fits one section block (3,000 characters).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.moderation.plan import DISMISS, REMOVE, REMOVED, WARNED

DISMISS_ACTION_ID = "moderation_dismiss"
REMOVE_ACTION_ID = "moderation_remove"
ACTION_IDS = (DISMISS_ACTION_ID, REMOVE_ACTION_ID)
MAX_NAME_CHARS = 80

REMOVE_NEEDS_ADMIN = (
    "I can't remove this file: Slack lets only a workspace admin's user token delete other people's files. "
    "Set SLACK_ADMIN_USER_TOKEN to a workspace admin's user token (xoxp-…) with the files:write scope, "
    "restart the worker, then click Remove again."
)
AUTOMATIC_REMOVAL_OFF = (
    "Not removed automatically: SLACK_ADMIN_USER_TOKEN is not set (an admin's user token with files:write)."
)


@dataclass(frozen=True)
class DecisionView:
    """One stored decision, as the report and the summary show it."""

    id: int
    channel_id: str
    user_id: str
    file_id: str
    file_name: str
    permalink: str | None
    verdict: str
    categories: tuple[str, ...]
    confidence: float | None
    reason: str
    model: str | None
    action: str
    created_at: datetime
    action_detail: str | None = None
    override_action: str | None = None
    overridden_by: str | None = None
    overridden_at: datetime | None = None


def escape(text: str) -> str:
    """Slack mrkdwn escaping: &, < and > would otherwise start entities, links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _short(text: str, limit: int = MAX_NAME_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def file_link(view: DecisionView) -> str:
    name = escape(_short(view.file_name or view.file_id))
    if view.permalink and "|" not in view.permalink and ">" not in view.permalink:
        return f"<{view.permalink}|{name}>"
    return name


def categories_text(categories: Sequence[str]) -> str:
    return ", ".join(categories) if categories else "none named"


def headline(view: DecisionView) -> str:
    if view.action == REMOVED:
        return f":wastebasket: *Image removed* from <#{view.channel_id}>"
    if view.verdict == "remove":
        return f":rotating_light: *Image to remove* in <#{view.channel_id}>"
    if view.confidence is None:
        return f":grey_question: *Image needs a look* in <#{view.channel_id}>"
    return f":warning: *Image flagged* in <#{view.channel_id}>"


def report_text(view: DecisionView) -> str:
    """The notification text (and the fallback where blocks do not show)."""
    plain = headline(view).split("*")[1]
    return f"{plain} in <#{view.channel_id}>: {categories_text(view.categories)}"


def report_blocks(view: DecisionView, *, buttons: bool) -> list[dict]:
    lines = [
        headline(view),
        f"*Posted by:* <@{view.user_id}>    *File:* {file_link(view)}",
        f"*Categories:* {escape(categories_text(view.categories))}",
    ]
    if view.confidence is not None:
        lines.append(f"*Confidence:* {view.confidence:.0%}")
    lines.append(f"*Reason:* {escape(view.reason) or '—'}")
    blocks: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
    notes = [f"Decision #{view.id}" + (f" · {escape(view.model)}" if view.model else "")]
    if view.action == WARNED and view.action_detail:
        notes.append(escape(_short(view.action_detail, 300)))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(notes)}]})
    if view.override_action:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": override_note(view)}]})
    if buttons and not is_settled(view):
        blocks.append(action_buttons(view.id))
    return blocks


def is_settled(view: DecisionView) -> bool:
    """Nothing left to click: dismissed, or the file is gone. A removal that failed stays open."""
    return view.override_action == DISMISS or view.action == REMOVED


def action_buttons(decision_id: int) -> dict:
    value = str(decision_id)
    return {
        "type": "actions",
        "block_id": f"moderation_{decision_id}",
        "elements": [
            {
                "type": "button",
                "action_id": DISMISS_ACTION_ID,
                "text": {"type": "plain_text", "text": "Dismiss"},
                "value": value,
            },
            {
                "type": "button",
                "action_id": REMOVE_ACTION_ID,
                "text": {"type": "plain_text", "text": "Remove"},
                "style": "danger",
                "value": value,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Remove the file?"},
                    "text": {"type": "plain_text", "text": "The file is deleted from Slack for everyone."},
                    "confirm": {"type": "plain_text", "text": "Remove"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
        ],
    }


def override_note(view: DecisionView) -> str:
    when = f" at {view.overridden_at:%Y-%m-%d %H:%M} UTC" if view.overridden_at else ""
    if view.override_action == DISMISS:
        return f":white_check_mark: Dismissed by <@{view.overridden_by}>{when}"
    if view.override_action == REMOVE and view.action == REMOVED:
        return f":wastebasket: Removed by <@{view.overridden_by}>{when}"
    detail = f": {escape(_short(view.action_detail, 300))}" if view.action_detail else ""
    return f":x: <@{view.overridden_by}> asked to remove it{when}, but it was not removed{detail}"


def poster_notice(view: DecisionView, *, removed: bool, by_moderator: bool = False) -> str:
    name = escape(_short(view.file_name or "your image"))
    why = f"it appears to break this workspace's rules ({categories_text(view.categories)})"
    reason = f" Reason: {escape(view.reason)}" if view.reason else ""
    if removed:
        who = "A moderator removed" if by_moderator else "I removed"
        return (
            f"{who} your image “{name}” from <#{view.channel_id}>: {why}.{reason} "
            "If you think this is a mistake, please talk to a workspace admin."
        )
    return f"Your image “{name}” in <#{view.channel_id}>: {why}.{reason} Moderators have been told and may remove it."


# Slack's answers to a post in a channel the bot cannot write to. Posting needs membership
# (without chat:write.public, which the manifest does not ask for) and conversations.info
# succeeds anyway, so membership is checked with ``is_member`` (DESIGN-NOTES, Slack).
UNUSABLE_REPORT_CHANNEL = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


def invite_hint(channel: str, problem: str, bot_name: str = "the bot") -> str:
    """What to do about a report channel Slack refused, in one sentence."""
    mention = bot_name if bot_name.startswith("@") or bot_name == "the bot" else f"@{bot_name}"
    if problem == "is_archived":
        return f"<#{channel}> is archived: unarchive it, or set another with /moderation report #channel."
    if problem == "channel_not_found":
        return f"<#{channel}> was not found: set another with /moderation report #channel."
    return f"invite {mention} to <#{channel}> (/invite {mention}), or set another with /moderation report #channel."


def report_channel_problem(channel: str, problem: str) -> str:
    """The decision's action detail when its report could not be posted."""
    return f"the report could not be posted to <#{channel}> ({problem})"


def status_text(
    *,
    channel_id: str,
    watched: bool,
    switched: bool | None,
    configured: bool,
    report_channel: str | None,
    counts: Mapping[str, int],
    overridden: int,
    recent: Sequence[DecisionView],
    days: int,
    report_problem: tuple[str, str] | None = None,
    bot_name: str = "the bot",
) -> str:
    """The `/moderation` answer: this channel's state, counts by verdict, and recent decisions.
    ``report_problem``: (channel, Slack's error) when reports to the channel fail."""
    if switched is not None:
        source = "switched " + ("on" if switched else "off") + " with /moderation"
    else:
        source = "listed in MODERATION_CHANNELS" if configured else "not listed in MODERATION_CHANNELS"
    lines = [f"Image moderation in <#{channel_id}> is *{'on' if watched else 'off'}* ({source})."]
    lines.append(
        f"Reports go to <#{report_channel}>."
        if report_channel
        else "MODERATION_REPORT_CHANNEL is not set: flagged images are only stored."
    )
    if report_problem is not None:
        channel, problem = report_problem
        hint = invite_hint(channel, problem, bot_name)
        lines.append(
            f":warning: Reports to <#{channel}> fail ({problem}); decisions are stored. {hint[:1].upper()}{hint[1:]}"
        )
    total = sum(counts.values())
    by_verdict = ", ".join(f"{verdict} {counts.get(verdict, 0)}" for verdict in ("allow", "flag", "remove"))
    lines.append(f"Last {days} days: {total} images checked ({by_verdict}); {overridden} overridden by moderators.")
    if recent:
        lines.append("Recent decisions:")
        for view in recent:
            override = f", {view.override_action} by <@{view.overridden_by}>" if view.override_action else ""
            confidence = f" {view.confidence:.0%}" if view.confidence is not None else ""
            lines.append(
                f"• #{view.id} {view.created_at:%m-%d %H:%M} <#{view.channel_id}> <@{view.user_id}> "
                f"{view.verdict}{confidence} ({escape(categories_text(view.categories))}) → {view.action}{override}"
            )
    return "\n".join(lines)
