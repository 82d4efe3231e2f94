"""State-changing tools wait for the person (pure: no clock, no I/O).

Tools are declared as reading or changing state (`ToolRegistry.add(changes_state=...)`). When
the *model* calls one that changes state, the call is not run: the person who asked gets an
approval card (what will happen, Approve / Deny) and the job waits, holding no worker thread
and no lease, until they answer or the approval expires. A slash command the person typed
runs at once: they asked for it themselves. Only the asker can approve; an admin-only tool
still needs them to be an admin when it finally runs (the runner checks its permission then).

A decision is keyed by the job, the tool, its arguments (canonical JSON) and the occurrence
(the n-th identical call in one run of the job), so the job, re-run from the thread after the
answer, finds it when the model makes the same call again, and an approval covers that one
call: an identical later call asks again. Once an approved call has run, its result is kept
with the approval; a retry of the job gets that result instead of running the call twice.

The card shows the arguments escaped (Slack's `&`, `<`, `>`), so a link reads as its target
(`<https://…/C0PRIVATE/p…|this thread>` is shown as written, never as "this thread").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.tools import bounded_json

PENDING = "pending"
APPROVED = "approved"
DENIED = "denied"
EXPIRED = "expired"

APPROVE_ACTION = "tool_approval_approve"
DENY_ACTION = "tool_approval_deny"
APPROVAL_ACTIONS = (APPROVE_ACTION, DENY_ACTION)

REFUSED_RESULT = (
    "The person did not approve this action ({why}), so it was not done. Tell them it was not done; "
    "do not try it again unless they ask."
)
ONLY_ASKER = "Only <@{user}>, who asked, can approve or deny this."
# The approved call was started by an earlier attempt of the job, which stopped before saying how
# it ended: it is never run a second time.
STARTED_BEFORE_RESULT = (
    "This action was already started once after the person approved it, and its outcome was not "
    "recorded, so it was not run again. Tell them it may or may not have been done, and to check."
)
MAX_ARGUMENTS_SHOWN = 600


def changes_state(declared: Any, arguments: dict) -> bool:
    """What a tool's `changes_state` declaration says about these arguments."""
    if callable(declared):
        try:
            return bool(declared(arguments))
        except Exception:  # an unreadable argument set is treated as changing state
            return True
    return bool(declared)


def needs_approval(declared: Any, arguments: dict, *, typed_by_person: bool) -> bool:
    return not typed_by_person and changes_state(declared, arguments)


def arguments_key(arguments: dict) -> str:
    """The arguments as canonical JSON: the same call finds the same decision."""
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_arguments(arguments_json: str) -> dict | None:
    try:
        value = bounded_json.loads(arguments_json or "{}")
    except ValueError:  # TooDeep too: the runner refuses such a call with a sentence
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class ApprovalState:
    status: str
    expires_at: datetime


def effective_status(state: ApprovalState, now: datetime) -> str:
    """A pending approval past its time counts as expired."""
    if state.status == PENDING and now >= state.expires_at:
        return EXPIRED
    return state.status


def refused_result(status: str) -> str:
    why = {DENIED: "they denied it", EXPIRED: "no answer in time"}.get(status, status)
    return REFUSED_RESULT.format(why=why)


def may_decide(*, clicker: str, asker: str) -> bool:
    return bool(clicker) and clicker == asker


def escape_mrkdwn(text: str) -> str:
    """Text shown as written in a mrkdwn field: Slack reads `<…>` as links, mentions and
    `<!here>`, and `&` starts an entity (https://docs.slack.dev/messaging/formatting-message-text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def describe_call(tool_label: str, description: str, arguments: dict) -> str:
    """One line saying what will happen: the tool, its purpose, its arguments (as mrkdwn, every
    part that came from the model or a tool's author escaped)."""
    shown = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(arguments.items()))
    if len(shown) > MAX_ARGUMENTS_SHOWN:
        shown = shown[: MAX_ARGUMENTS_SHOWN - 1] + "…"
    first = description.strip().split("\n", 1)[0].split(". ", 1)[0].rstrip(".")
    label, shown, first = escape_mrkdwn(tool_label), escape_mrkdwn(shown), escape_mrkdwn(first)
    return f"*{label}*" + (f" ({shown})" if shown else "") + (f": {first}." if first else ".")


def approval_card(approval_id: int, *, asker: str, what: str, timeout_hours: float) -> list[dict]:
    """The card posted in the thread: what will happen, and Approve / Deny for the asker."""
    hours = f"{timeout_hours:g} hour" + ("" if timeout_hours == 1 else "s")
    return [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"<@{asker}>, I'd like to run {what}\nShall I go ahead?"},
        },
        {
            "type": "actions",
            "block_id": f"tool_approval_{approval_id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE_ACTION,
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "value": str(approval_id),
                },
                {
                    "type": "button",
                    "action_id": DENY_ACTION,
                    "text": {"type": "plain_text", "text": "Deny"},
                    "style": "danger",
                    "value": str(approval_id),
                },
            ],
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"Only <@{asker}> can answer; no answer in {hours} means no."}],
        },
    ]


def settled_card(*, asker: str, what: str, status: str, decided_by: str | None) -> list[dict]:
    outcome = {
        APPROVED: f"Approved by <@{decided_by}>.",
        DENIED: f"Denied by <@{decided_by}>.",
        EXPIRED: "Not approved in time: nothing was done.",
    }.get(status, status)
    return [{"type": "section", "text": {"type": "mrkdwn", "text": f"<@{asker}>: {what}\n{outcome}"}}]


def card_text(what: str) -> str:
    return f"Approval needed: {what}"
