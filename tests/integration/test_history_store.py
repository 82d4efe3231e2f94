"""The history store on both databases: once-only storage, edits, deletions, turns, scoping."""

from __future__ import annotations

from bot.history import store as history
from bot.history.models import MessageImage


def add(sessions, ts, text="hi", *, team="T1", channel="C1", thread="1.0", user="U1", files=None):
    with sessions.begin() as session:
        history.engage_thread(session, team, channel, thread, mid_thread=False)
        return history.upsert_message(
            session, team_id=team, channel_id=channel, thread_ts=thread, ts=ts, user_id=user, text=text, files=files
        )


def load(sessions, team="T1", channel="C1", thread="1.0"):
    with sessions() as session:
        return history.load_thread(session, team, channel, thread)


def test_a_message_is_stored_once(sessions):
    assert add(sessions, "1.0", "first")
    assert not add(sessions, "1.0", "first again")
    assert [e.text for e in load(sessions)] == ["first"]


def test_edits_replace_text_and_deletions_hide_and_drop_content(sessions):
    add(sessions, "1.0", "question")
    add(sessions, "1.1", "typo", files=[{"id": "F1", "name": "a.png", "mimetype": "image/png", "size": 10}])
    with sessions.begin() as session:
        message_id = history.load_rows(session, "T1", "C1", "1.0")[1].id
        session.add(
            MessageImage(message_id=message_id, file_id="F1", media_type="image/png", data=b"x", width=1, height=1)
        )
    with sessions.begin() as session:
        assert history.edit_message(session, team_id="T1", channel_id="C1", ts="1.0", text="better", files=None)
        assert history.delete_message(session, team_id="T1", channel_id="C1", ts="1.1")
    entries = load(sessions)
    assert entries[0].text == "better"
    assert entries[1].deleted and entries[1].text == "" and entries[1].images == ()
    with sessions() as session:
        assert session.query(MessageImage).count() == 0


def test_the_bots_turn_sorts_right_after_the_message_it_answers(sessions):
    add(sessions, "1.0", "weather?")
    add(sessions, "1.5", "meanwhile, someone else", user="U2")
    with sessions.begin() as session:
        history.record_turn(
            session,
            team_id="T1",
            channel_id="C1",
            thread_ts="1.0",
            answers_ts="1.0",
            entries=[
                {
                    "role": "assistant",
                    "text": "",
                    "tool_calls": [{"id": "c1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}],
                },
                {"role": "tool", "text": "5 °C", "tool_call_id": "c1"},
                {"role": "assistant", "text": "It is 5 °C.", "reply_ts": ["2.0"]},
            ],
        )
    roles = [(e.role, e.text) for e in load(sessions)]
    assert roles == [
        ("user", "weather?"),
        ("assistant", ""),
        ("tool", "5 °C"),
        ("assistant", "It is 5 °C."),
        ("user", "meanwhile, someone else"),
    ]
    assert load(sessions)[1].tool_calls[0].name == "get_weather"


def test_everything_is_scoped_by_team(sessions):
    add(sessions, "1.0", "secret of T1", team="T1")
    add(sessions, "1.0", "secret of T2", team="T2")
    assert [e.text for e in load(sessions, team="T1")] == ["secret of T1"]
    assert [e.text for e in load(sessions, team="T2")] == ["secret of T2"]
    with sessions.begin() as session:
        history.delete_message(session, team_id="T2", channel_id="C1", ts="1.0")
    assert [e.text for e in load(sessions, team="T1")] == ["secret of T1"]


def test_forget_thread_deletes_its_history(sessions):
    add(sessions, "1.0", "a")
    add(sessions, "1.1", "b")
    add(sessions, "5.0", "other thread", thread="5.0")
    with sessions.begin() as session:
        assert history.forget_thread(session, "T1", "C1", "1.0") == 2
        assert history.get_thread(session, "T1", "C1", "1.0") is None
    assert load(sessions) == []
    assert [e.text for e in load(sessions, thread="5.0")] == ["other thread"]


def test_engaging_twice_keeps_the_first_engagement(sessions):
    with sessions.begin() as session:
        assert history.engage_thread(session, "T1", "C1", "1.0", mid_thread=True)
        assert not history.engage_thread(session, "T1", "C1", "1.0", mid_thread=False)
        assert history.get_thread(session, "T1", "C1", "1.0").needs_backfill
        history.mark_backfilled(session, "T1", "C1", "1.0")
        assert not history.get_thread(session, "T1", "C1", "1.0").needs_backfill


def test_loading_the_newest_part_of_a_long_thread_keeps_its_first_message(sessions):
    for n in range(30):
        add(sessions, f"1.{n:03d}", f"message {n:02d} " + "x" * 88)  # 100 characters each
    with sessions() as session:
        entries = history.load_thread(session, "T1", "C1", "1.0", newest_chars=1000)
        everything = history.load_thread(session, "T1", "C1", "1.0")
    texts = [e.text[:10] for e in entries]
    assert texts[0] == "message 00"
    assert texts[1:] == [f"message {n:02d}" for n in range(20, 30)]
    assert len(everything) == 30
