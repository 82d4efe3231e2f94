"""Pure guards against abuse: mentions the bot did not mean, text Postgres rejects, admins
who are not ours."""

from __future__ import annotations

import pytest

from bot.db.safe_text import postgres_safe, postgres_safe_parameters, postgres_safe_text
from bot.history.admins import is_workspace_admin
from bot.slack.mentions import WORD_JOINER, neutralize_mentions, neutralize_payload

J = WORD_JOINER


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!channel> look", f"@{J}channel look"),
        ("<!here>", f"@{J}here"),
        ("<!here|here> now", f"@{J}here now"),
        ("<!everyone>", f"@{J}everyone"),
        ("<!group>", f"@{J}group"),
        ("<!CHANNEL>", f"@{J}channel"),
        ("hi <!subteam^S0123|@devs>!", f"hi @{J}devs!"),
        ("<!subteam^S0123>", f"@{J}group"),
        ("bare @here and @channel", f"bare @{J}here and @{J}channel"),
        ("mail me@here.com", "mail me@here.com"),
        ("<@U123> and <#C123|general>", "<@U123> and <#C123|general>"),
        ("<!date^1392734382^{date}|Feb 18>", "<!date^1392734382^{date}|Feb 18>"),
        ("plain text", "plain text"),
        ("", ""),
    ],
)
def test_broadcast_and_group_mentions_become_text(text, expected):
    assert neutralize_mentions(text) == expected


def test_neutralizing_is_idempotent_and_leaves_no_mention():
    once = neutralize_mentions("<!channel> <!here> <!subteam^S1|@x> @everyone")
    assert neutralize_mentions(once) == once
    assert "<!" not in once


def test_a_payload_is_neutralized_in_every_string():
    payload = {
        "channel": "C1",
        "text": "<!here>",
        "blocks": [{"type": "markdown", "text": "ping <!channel>"}],
        "chunks": [{"type": "markdown_text", "text": "<!everyone>"}],
        "unfurl_links": False,
    }
    out = neutralize_payload(payload)
    assert out["channel"] == "C1" and out["unfurl_links"] is False
    assert "<!" not in repr(out)
    assert neutralize_payload(None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\x00b", "ab"),
        ("\x00", ""),
        ("lone \ud83d surrogate", "lone \ufffd surrogate"),
        ("emoji 😀 ok", "emoji 😀 ok"),
        ("clean", "clean"),
    ],
)
def test_text_postgres_rejects_is_cleaned(text, expected):
    assert postgres_safe_text(text) == expected


def test_documents_and_parameters_are_cleaned_everywhere():
    assert postgres_safe({"k\x00": ["a\x00", ("b\x00", 1)], "n": None}) == {"k": ["a", ("b", 1)], "n": None}
    assert postgres_safe_parameters({"text": "x\x00", "n": 3}) == {"text": "x", "n": 3}
    assert postgres_safe_parameters([{"text": "x\x00"}, {"text": "y"}]) == [{"text": "x"}, {"text": "y"}]
    assert postgres_safe_parameters(("x\x00", 2)) == ("x", 2)


HOME = "T1"


@pytest.mark.parametrize(
    ("user", "enterprise_id", "expected"),
    [
        ({"team_id": HOME, "is_admin": True}, None, True),
        ({"team_id": HOME, "is_owner": True}, None, True),
        ({"team_id": HOME}, None, False),
        # Slack Connect: an admin at home is a stranger here.
        ({"team_id": "T2", "is_admin": True, "is_stranger": True}, None, False),
        ({"team_id": HOME, "is_admin": True, "is_stranger": True}, None, False),
        ({"team_id": "T2", "is_admin": True}, None, False),
        # Enterprise Grid: the org's admins and owners count in each of its workspaces.
        ({"team_id": "T2", "enterprise_user": {"enterprise_id": "E1", "is_admin": True}}, "E1", True),
        ({"team_id": "T2", "enterprise_user": {"enterprise_id": "E1", "is_owner": True}}, "E1", True),
        ({"team_id": "T2", "is_admin": True, "enterprise_user": {"enterprise_id": "E1"}}, "E1", False),
        ({"team_id": "T2", "enterprise_user": {"enterprise_id": "E2", "is_admin": True}}, "E1", False),
        ({"team_id": "T2", "enterprise_user": {"enterprise_id": "E1", "is_admin": True}}, None, False),
        ({"team_id": HOME, "is_admin": True, "deleted": True}, None, False),
        ({"team_id": HOME, "is_admin": True, "is_bot": True}, None, False),
    ],
)
def test_only_our_workspace_admins_are_admins(user, enterprise_id, expected):
    assert is_workspace_admin(user, team_id=HOME, enterprise_id=enterprise_id) is expected
