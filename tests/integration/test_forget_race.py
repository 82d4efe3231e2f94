"""Replies never write into a forgotten thread (issue 22), on PostgreSQL: a reply in flight used
to store its turn into a thread that was just forgotten, bringing part of it back."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from bot.db.engine import make_engine, make_session_factory
from bot.history import store as history
from bot.history.models import ThreadMessage


@pytest.fixture
def pg_sessions(postgres_url):
    engine = make_engine(postgres_url, pool_size=10)
    yield make_session_factory(engine)
    engine.dispose()


def thread_with_a_question(sessions) -> None:
    with sessions.begin() as session:
        history.engage_thread(session, "T1", "C1", "1.0", mid_thread=False)
        history.upsert_message(
            session, team_id="T1", channel_id="C1", thread_ts="1.0", ts="1.0", user_id="U1", text="secret plans"
        )


def turn(session) -> bool:
    return history.record_turn(
        session,
        team_id="T1",
        channel_id="C1",
        thread_ts="1.0",
        answers_ts="1.0",
        entries=[{"role": "assistant", "text": "about your secret plans", "reply_ts": ["2.0"]}],
    )


def rows(sessions) -> int:
    with sessions() as session:
        return session.execute(select(func.count()).select_from(ThreadMessage)).scalar_one()


def test_a_turn_is_not_stored_into_a_forgotten_thread(pg_sessions):
    thread_with_a_question(pg_sessions)
    with pg_sessions.begin() as session:
        history.forget_thread(session, "T1", "C1", "1.0")
    with pg_sessions.begin() as session:
        assert turn(session) is False
    assert rows(pg_sessions) == 0


def test_a_forget_during_the_turns_transaction_deletes_the_turn_too(pg_sessions):
    thread_with_a_question(pg_sessions)
    forgot = threading.Event()
    with pg_sessions.begin() as session:
        assert turn(session) is True  # holds the thread's row until commit

        def forget() -> None:
            with pg_sessions.begin() as other:
                history.forget_thread(other, "T1", "C1", "1.0")
            forgot.set()

        thread = threading.Thread(target=forget)
        thread.start()
        assert not forgot.wait(0.5)  # the forget waits for the turn's transaction
    thread.join(10)
    assert forgot.is_set() and rows(pg_sessions) == 0
