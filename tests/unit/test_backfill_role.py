"""Which messages of a thread joined mid-way are kept, and as whose; how many a page asks for (pure)."""

from __future__ import annotations

import pytest

from bot.history.backfill import FIRST_PAGE, REPLIES_PAGE, BotIdentity, backfill_role, next_page_size

ME = BotIdentity(user_id="UBOT", bot_id="BBOT")


@pytest.mark.parametrize(
    ("message", "answer_other_bots", "role"),
    [
        ({"user": "U1", "text": "hi"}, False, "user"),
        ({"user": "U1", "subtype": "file_share"}, False, "user"),
        ({"user": "U1", "subtype": "thread_broadcast"}, False, "user"),
        ({"user": "U1", "subtype": "me_message"}, False, "user"),
        ({"user": "UBOT", "text": "an earlier answer"}, False, "assistant"),
        ({"bot_id": "BBOT", "subtype": "bot_message"}, False, "assistant"),
        ({"bot_id": "BOTHER", "subtype": "bot_message"}, False, None),
        ({"bot_id": "BOTHER", "subtype": "bot_message"}, True, "user"),
        ({"user": "U1", "subtype": "channel_join"}, False, None),
        ({"user": "U1", "subtype": "message_deleted"}, True, None),
    ],
)
def test_backfill_role(message, answer_other_bots, role):
    assert backfill_role(message, ME, answer_other_bots=answer_other_bots) == role


def test_a_bot_without_bot_id_is_known_by_its_user():
    assert backfill_role({"user": "UBOT"}, BotIdentity("UBOT", None), answer_other_bots=False) == "assistant"
    assert backfill_role({"bot_id": "B1"}, BotIdentity("UBOT", None), answer_other_bots=False) is None


@pytest.mark.parametrize(
    ("previous_size", "asked", "has_more", "expected"),
    [
        (200, 200, True, REPLIES_PAGE),  # Slack gave what was asked: not throttled
        (15, 200, True, FIRST_PAGE),  # capped at 15 below what was asked: throttled (since 2025-05-29)
        (15, 15, True, FIRST_PAGE),  # once throttled, 15 a call
        (7, 200, False, REPLIES_PAGE),  # the last page is short because the thread ended
    ],
)
def test_the_page_size_follows_what_slack_gave(previous_size, asked, has_more, expected):
    assert next_page_size(previous_size, asked, has_more) == expected
