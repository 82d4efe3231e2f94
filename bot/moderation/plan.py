"""What happens after a verdict (pure).

    allow   nothing anyone sees; a reaction on the message when MODERATION_ALLOW_REACTION is set
    flag    a report in MODERATION_REPORT_CHANNEL with Dismiss and Remove buttons
    remove  with SLACK_ADMIN_USER_TOKEN: the file is deleted, the poster told privately why, and
            the removal reported (no buttons: it is done). Without it (or when deletion fails):
            a report with the buttons and a note on what is missing, and a private warning to
            the poster.

Without a report channel the decision is only stored (``/moderation`` shows it).
"""

from __future__ import annotations

from dataclasses import dataclass

# Values of ModerationDecision.action: what the bot did on its own.
NONE = "none"
REACTED = "reacted"
REPORTED = "reported"
REMOVED = "removed"
WARNED = "warned"  # reported for removal, poster warned; nothing deleted
UNREPORTED = "unreported"  # needed a report but MODERATION_REPORT_CHANNEL is not set

# Values of ModerationDecision.override_action: what a moderator clicked.
DISMISS = "dismiss"
REMOVE = "remove"


@dataclass(frozen=True)
class Plan:
    react: str | None = None  # emoji name to add to the message
    delete: bool = False  # delete the file with the admin's user token
    report: bool = False  # post to the report channel
    buttons: bool = False  # Dismiss / Remove on the report
    tell_poster: bool = False  # an ephemeral message to the poster
    action: str = NONE  # what to record


def plan_actions(verdict: str, *, can_delete: bool, allow_reaction: str | None, report_channel: bool) -> Plan:
    if verdict == "allow":
        return Plan(react=allow_reaction, action=REACTED if allow_reaction else NONE)
    if verdict == "remove" and can_delete:
        return Plan(delete=True, report=report_channel, tell_poster=True, action=REMOVED)
    if verdict == "remove":
        return Plan(report=report_channel, buttons=True, tell_poster=True, action=WARNED)
    return Plan(report=report_channel, buttons=True, action=REPORTED if report_channel else UNREPORTED)


def after_failed_delete(plan: Plan) -> Plan:
    """Deletion was refused: fall back to a report with buttons and a warning."""
    return Plan(report=plan.report, buttons=True, tell_poster=True, action=WARNED)
