"""The place named in the system prompt (bot.conversation.places.describe_place, pure)."""

from __future__ import annotations

import pytest

from bot.conversation.places import UNKNOWN_PLACE, describe_place


@pytest.mark.parametrize(
    ("info", "person", "expected"),
    [
        ({"id": "C1", "name": "general", "is_channel": True}, None, "#general"),
        ({"id": "G1", "name": "secret-plans", "is_private": True}, None, "#secret-plans"),
        ({"id": "D1", "is_im": True, "user": "U1"}, "Alice", "a direct message with Alice"),
        ({"id": "D1", "is_im": True}, None, "a direct message"),
        ({"id": "G2", "is_mpim": True, "name": "mpdm-a--b-1"}, None, "a group direct message"),
        ({"id": "C2"}, None, "a channel"),
        ({"id": "G3", "is_private": True}, None, "a private channel"),
        (None, None, UNKNOWN_PLACE),
    ],
)
def test_places_are_named_never_by_id(info, person, expected):
    described = describe_place(info, person=person)
    assert described == expected
    assert "C1" not in described and "D1" not in described
