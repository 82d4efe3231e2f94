import pytest

from bot.conversation.engagement import classify, decide

BOT = {"bot_user_id": "UBOT", "bot_id": "BBOT", "allow_bots": False}


def message(**kw):
    event = {"type": "message", "channel": "C1", "channel_type": "channel", "user": "U1", "text": "hi", "ts": "10.1"}
    event.update(kw)
    return event


@pytest.mark.parametrize(
    ("event", "engaged", "expected"),
    [
        # (engage, store, answer, mid_thread)
        ({"type": "app_mention", "text": "<@UBOT> hi"}, False, (True, True, True, False)),
        ({"text": "<@UBOT> hi"}, False, (True, True, True, False)),  # the message event of a mention
        ({"type": "app_mention", "thread_ts": "9.0"}, False, (True, True, True, True)),  # mention mid-thread
        ({"thread_ts": "9.0"}, True, (False, True, True, False)),  # follow-up in an engaged thread
        ({"thread_ts": "9.0"}, False, (False, False, False, False)),  # a thread we are not in
        ({}, False, (False, False, False, False)),  # plain channel chatter
        ({}, True, (False, True, False, False)),  # a top-level message whose own thread is engaged
        ({"channel_type": "im"}, False, (True, True, True, False)),  # every DM
        ({"channel_type": "im", "thread_ts": "9.0"}, True, (False, True, True, False)),
        ({"subtype": "file_share", "channel_type": "im"}, False, (True, True, True, False)),
        ({"subtype": "thread_broadcast", "thread_ts": "9.0"}, True, (False, True, True, False)),
    ],
)
def test_when_to_store_and_answer(event, engaged, expected):
    inbound = classify(message(**event), **BOT)
    decision = decide(inbound, thread_engaged=engaged, answer_followups=True)
    assert (decision.engage, decision.store, decision.answer, decision.mid_thread) == expected


def test_follow_ups_can_be_switched_off_but_are_still_stored():
    inbound = classify(message(thread_ts="9.0"), **BOT)
    decision = decide(inbound, thread_engaged=True, answer_followups=False)
    assert (decision.store, decision.answer) == (True, False)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"user": "UBOT"}, "own message"),
        ({"bot_id": "BBOT", "user": ""}, "own message"),
        ({"bot_id": "BOTHER", "user": "U9"}, "other bot"),
        ({"subtype": "bot_message", "bot_id": "BOTHER"}, "other bot"),
        ({"subtype": "channel_join"}, "subtype channel_join"),
    ],
)
def test_ignored_events(event, reason):
    inbound = classify(message(**event), **BOT)
    assert inbound.kind == "ignore" and inbound.reason == reason


def test_other_bots_can_be_allowed():
    inbound = classify(message(bot_id="BOTHER", text="<@UBOT> status?"), **{**BOT, "allow_bots": True})
    assert inbound.kind == "message" and inbound.from_bot
    assert decide(inbound, thread_engaged=False, answer_followups=True).answer
    # …but a bot in an engaged thread is stored, not answered (two bots must not loop).
    follow = classify(message(bot_id="BOTHER", thread_ts="9.0"), **{**BOT, "allow_bots": True})
    assert decide(follow, thread_engaged=True, answer_followups=True).answer is False


def test_edits_and_deletions_are_read_from_their_nested_message():
    edit = classify(
        message(subtype="message_changed", message={"ts": "10.1", "thread_ts": "9.0", "text": "new", "user": "U1"}),
        **BOT,
    )
    assert (edit.kind, edit.ts, edit.thread_ts, edit.text) == ("edit", "10.1", "9.0", "new")
    deletion = classify(message(subtype="message_deleted", deleted_ts="10.1"), **BOT)
    assert (deletion.kind, deletion.ts) == ("delete", "10.1")
