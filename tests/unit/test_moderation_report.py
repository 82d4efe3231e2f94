from datetime import UTC, datetime

import pytest

from bot.moderation.plan import (
    DISMISS,
    NONE,
    REACTED,
    REMOVE,
    REMOVED,
    REPORTED,
    UNREPORTED,
    WARNED,
    Plan,
    after_failed_delete,
    plan_actions,
)
from bot.moderation.report import (
    AUTOMATIC_REMOVAL_OFF,
    DISMISS_ACTION_ID,
    REMOVE_ACTION_ID,
    DecisionView,
    escape,
    poster_notice,
    report_blocks,
    report_text,
    status_text,
)

WHEN = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)


def decision(**changes) -> DecisionView:
    base = {
        "id": 42,
        "channel_id": "CWATCH",
        "user_id": "UPOSTER",
        "file_id": "F1",
        "file_name": "card.png",
        "permalink": "https://slack.example/files/F1",
        "verdict": "flag",
        "categories": ("personal data",),
        "confidence": 0.83,
        "reason": "A payment card number is visible.",
        "model": "claude-4-5-haiku",
        "action": REPORTED,
        "created_at": WHEN,
    }
    return DecisionView(**{**base, **changes})


@pytest.mark.parametrize(
    ("verdict", "can_delete", "reaction", "report_channel", "expected"),
    [
        ("allow", True, None, True, Plan(action=NONE)),
        ("allow", False, "white_check_mark", True, Plan(react="white_check_mark", action=REACTED)),
        ("flag", True, "ok", True, Plan(report=True, buttons=True, action=REPORTED)),
        ("flag", False, None, False, Plan(buttons=True, action=UNREPORTED)),
        ("remove", True, None, True, Plan(delete=True, report=True, tell_poster=True, action=REMOVED)),
        ("remove", False, None, True, Plan(report=True, buttons=True, tell_poster=True, action=WARNED)),
        ("remove", False, None, False, Plan(buttons=True, tell_poster=True, action=WARNED)),
    ],
)
def test_what_each_verdict_does(verdict, can_delete, reaction, report_channel, expected):
    assert plan_actions(verdict, can_delete=can_delete, allow_reaction=reaction, report_channel=report_channel) == (
        expected
    )


def test_a_refused_deletion_falls_back_to_a_report_with_buttons_and_a_warning():
    plan = after_failed_delete(plan_actions("remove", can_delete=True, allow_reaction=None, report_channel=True))
    assert (plan.delete, plan.report, plan.buttons, plan.tell_poster, plan.action) == (False, True, True, True, WARNED)


def buttons_of(blocks):
    actions = [block for block in blocks if block["type"] == "actions"]
    return {element["action_id"]: element["value"] for block in actions for element in block["elements"]}


def section_text(blocks):
    return blocks[0]["text"]["text"]


def test_a_flag_report_has_everything_a_moderator_needs():
    blocks = report_blocks(decision(), buttons=True)
    text = section_text(blocks)
    for part in (
        "<#CWATCH>",
        "<@UPOSTER>",
        "<https://slack.example/files/F1|card.png>",
        "personal data",
        "83%",
        "A payment card number is visible.",
    ):
        assert part in text
    assert buttons_of(blocks) == {DISMISS_ACTION_ID: "42", REMOVE_ACTION_ID: "42"}
    assert "Decision #42" in str(blocks[1])
    assert "flagged" in report_text(decision())


def test_text_from_outside_is_escaped_and_the_report_fits_a_section():
    view = decision(file_name="<!channel> & " + "x" * 5000, reason="<@UADMIN> says " + "y" * 300)
    text = section_text(report_blocks(view, buttons=True))
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp;" in text
    assert "<@UADMIN>" not in text
    assert len(text) < 3000


def test_a_removed_file_is_reported_without_buttons():
    blocks = report_blocks(decision(verdict="remove", action=REMOVED), buttons=False)
    assert buttons_of(blocks) == {} and "Image removed" in section_text(blocks)


def test_a_removal_without_the_token_says_what_is_missing():
    view = decision(verdict="remove", action=WARNED, action_detail=AUTOMATIC_REMOVAL_OFF)
    blocks = report_blocks(view, buttons=True)
    assert "SLACK_ADMIN_USER_TOKEN" in str(blocks) and set(buttons_of(blocks)) == {DISMISS_ACTION_ID, REMOVE_ACTION_ID}


@pytest.mark.parametrize(
    ("changes", "note", "buttons_left"),
    [
        ({"override_action": DISMISS}, "Dismissed by <@UMOD>", False),
        ({"override_action": REMOVE, "action": REMOVED}, "Removed by <@UMOD>", False),
        # a removal that failed keeps the buttons, so it can be tried again once configured
        ({"override_action": REMOVE, "action_detail": "SLACK_ADMIN_USER_TOKEN is not set"}, "not removed", True),
    ],
)
def test_after_a_click_the_report_says_who_did_what(changes, note, buttons_left):
    view = decision(overridden_by="UMOD", overridden_at=WHEN, **changes)
    blocks = report_blocks(view, buttons=True)
    assert note in str(blocks) and "2026-11-25 10:30" in str(blocks)
    assert bool(buttons_of(blocks)) is buttons_left


def test_could_not_check_reads_as_needing_a_look():
    view = decision(confidence=None, categories=(), reason="could not be checked: the file is empty", model=None)
    text = section_text(report_blocks(view, buttons=True))
    assert "needs a look" in text and "Confidence" not in text and "none named" in text


@pytest.mark.parametrize(
    ("removed", "by_moderator", "words"),
    [(True, False, "I removed"), (True, True, "A moderator removed"), (False, False, "Moderators have been told")],
)
def test_the_poster_hears_why(removed, by_moderator, words):
    text = poster_notice(decision(verdict="remove"), removed=removed, by_moderator=by_moderator)
    assert words in text and "personal data" in text and "card.png" in text and "A payment card" in text


def test_status_text():
    text = status_text(
        channel_id="CWATCH",
        watched=True,
        switched=None,
        configured=True,
        report_channel="CREP",
        counts={"allow": 5, "flag": 2},
        overridden=1,
        recent=[decision(override_action=DISMISS, overridden_by="UMOD")],
        days=7,
    )
    assert "*on* (listed in MODERATION_CHANNELS)" in text
    assert "<#CREP>" in text
    assert "7 images checked (allow 5, flag 2, remove 0); 1 overridden" in text
    assert "#42" in text and "dismiss by <@UMOD>" in text


def test_status_text_when_switched_off_and_without_a_report_channel():
    text = status_text(
        channel_id="C1",
        watched=False,
        switched=False,
        configured=True,
        report_channel=None,
        counts={},
        overridden=0,
        recent=[],
        days=7,
    )
    assert "*off* (switched off with /moderation)" in text and "MODERATION_REPORT_CHANNEL is not set" in text
    assert "Recent" not in text


def test_escape():
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"
