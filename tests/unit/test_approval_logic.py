"""State-changing tools wait for the person: the pure rules (bot.tools.approval_logic) and the
queue's decision for a job that waits (bot.queue.retry.decide → PARK)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.builtin_tools import configured_registry
from bot.config import Settings
from bot.failures import AwaitingPerson
from bot.queue.retry import PARK, decide
from bot.tools.approval_logic import (
    APPROVE_ACTION,
    APPROVED,
    DENIED,
    DENY_ACTION,
    EXPIRED,
    PENDING,
    ApprovalState,
    approval_card,
    arguments_key,
    changes_state,
    describe_call,
    effective_status,
    may_decide,
    needs_approval,
    refused_result,
)

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("declared", "arguments", "typed", "expected"),
    [
        (True, {}, False, True),
        (True, {}, True, False),  # a slash command the person typed needs no approval
        (False, {}, False, False),
        (lambda a: a.get("action") != "status", {"action": "on"}, False, True),
        (lambda a: a.get("action") != "status", {"action": "status"}, False, False),
        (lambda a: a["missing"], {}, False, True),  # unreadable: treated as changing state
    ],
)
def test_which_calls_need_approval(declared, arguments, typed, expected):
    assert needs_approval(declared, arguments, typed_by_person=typed) is expected


def test_builtin_tools_are_marked():
    registry = configured_registry(Settings())
    assert changes_state(registry.get("forget_thread").changes_state, {})
    moderation = registry.get("moderation").changes_state
    assert changes_state(moderation, {"action": "on"}) and changes_state(moderation, {"action": "off"})
    assert not changes_state(moderation, {"action": "status"}) and not changes_state(moderation, {})
    for name in ("calculate", "current_time", "get_weather", "search_messages", "token_usage"):
        assert not changes_state(registry.get(name).changes_state, {}), name


@pytest.mark.parametrize(
    ("status", "expires", "expected"),
    [
        (PENDING, NOW + timedelta(hours=1), PENDING),
        (PENDING, NOW, EXPIRED),
        (PENDING, NOW - timedelta(seconds=1), EXPIRED),
        (APPROVED, NOW - timedelta(days=1), APPROVED),
        (DENIED, NOW + timedelta(hours=1), DENIED),
    ],
)
def test_a_pending_approval_expires(status, expires, expected):
    assert effective_status(ApprovalState(status, expires), NOW) == expected


def test_only_the_asker_decides():
    assert may_decide(clicker="U1", asker="U1")
    assert not may_decide(clicker="U2", asker="U1")
    assert not may_decide(clicker="", asker="")


def test_refusals_say_why_and_keys_are_canonical():
    assert "they denied it" in refused_result(DENIED) and "no answer in time" in refused_result(EXPIRED)
    assert arguments_key({"b": 1, "a": "x"}) == arguments_key({"a": "x", "b": 1}) == '{"a":"x","b":1}'


def test_the_card_says_what_will_happen_and_whom_it_waits_for():
    what = describe_call("/moderation", "Image moderation in this channel. More.", {"action": "on"})
    assert what == '*/moderation* (action="on"): Image moderation in this channel.'
    card = approval_card(7, asker="U1", what=what, timeout_hours=24)
    actions = [e for b in card if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e["value"]) for e in actions] == [(APPROVE_ACTION, "7"), (DENY_ACTION, "7")]
    assert "<@U1>" in card[0]["text"]["text"] and "24 hours" in card[-1]["elements"][0]["text"]


def test_a_waiting_job_is_parked_without_using_an_attempt():
    decision = decide(AwaitingPerson("waits", until=NOW), attempts=8, max_attempts=8, stopping=False, jitter=0.5)
    assert decision.action == PARK and decision.counts_attempt is False


def test_the_card_shows_arguments_escaped_and_links_as_their_targets():
    link = "<https://acme.slack.com/archives/C0PRIVATE/p1700000000000100|this thread>"
    what = describe_call("forget_thread", "Forget <a> thread & all.", {"thread": link, "who": "<!here>"})
    assert "&lt;https://acme.slack.com/archives/C0PRIVATE/p1700000000000100|this thread&gt;" in what
    assert "&lt;!here&gt;" in what and "Forget &lt;a&gt; thread &amp; all." in what
    assert "<" not in what and ">" not in what  # nothing Slack would turn into a link or a ping


def test_a_copy_of_the_tools_keeps_every_flag():
    from bot.tools.audience import private_results, without_private_tools
    from bot.tools.registry import Permission, ToolRegistry

    def wipe(ctx, what: str) -> str:
        """Wipe something.

        Args:
            what: What.
        """
        return what

    @private_results
    def peek(ctx) -> str:
        """Peek."""
        return ""

    tools = ToolRegistry()
    tools.add(wipe, changes_state=True, permission=Permission.ADMINS, timeout=3.0, command="wipe")
    tools.add(peek)
    shared = without_private_tools(tools)
    assert shared.names() == ["wipe"] and shared.get("wipe") == tools.get("wipe")
    assert shared.get("wipe").changes_state is True
