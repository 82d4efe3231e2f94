"""SQLite has no NOTIFY: a commit that notifies a channel wakes that channel's listeners in the
same process (bot.db.dialect.LocalListener), so `bot serve`'s and `bot chat`'s workers take a job
the moment it is enqueued. Other processes' workers still poll."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.db.dialect import LocalListener, notify
from bot.db.engine import make_engine, make_session_factory
from bot.queue import store
from bot.runtime import build_worker
from tests.support.processes import BOT_TOKEN, INFERENCE_KEY, SIGNING_SECRET


@pytest.fixture
def sqlite_sessions(sqlite_url):
    engine = make_engine(sqlite_url)
    yield make_session_factory(engine)
    engine.dispose()


def test_a_commit_wakes_the_channels_listeners_once_and_a_rollback_wakes_none(sqlite_url, sqlite_sessions):
    woken: list[str] = []
    listener = LocalListener(sqlite_url, {"jobs": lambda: woken.append("jobs"), "other": lambda: woken.append("other")})
    listener.start()
    try:
        with sqlite_sessions.begin() as session:
            notify(session, "jobs")
            notify(session, "jobs")
            assert woken == []  # not before the commit
        assert woken == ["jobs"]

        with pytest.raises(RuntimeError), sqlite_sessions.begin() as session:
            notify(session, "other")
            raise RuntimeError("rolled back")
        with sqlite_sessions.begin() as session:
            pass  # a later commit of the same factory does not carry the rolled-back notice
        assert woken == ["jobs"]
    finally:
        listener.stop()

    with sqlite_sessions.begin() as session:
        notify(session, "jobs")
    assert woken == ["jobs"]  # a stopped listener hears nothing


def test_another_databases_commit_wakes_no_one_here(sqlite_url, sqlite_sessions, tmp_path):
    other_url = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    woken: list[str] = []
    listener = LocalListener(other_url, {"jobs": lambda: woken.append("jobs")})
    listener.start()
    try:
        with sqlite_sessions.begin() as session:
            notify(session, "jobs")
    finally:
        listener.stop()
    assert woken == []


def test_on_sqlite_the_workers_runtime_is_woken_by_an_enqueue_in_this_process(sqlite_url, sqlite_sessions):
    settings = load_settings(
        {
            "DATABASE_URL": sqlite_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "INFERENCE_URL": "http://127.0.0.1:9",
            "INFERENCE_KEY": INFERENCE_KEY,
        }
    )
    runtime = build_worker(settings)
    woken = runtime.worker._wake  # what Worker.wake sets; its loop waits on it between claim passes
    assert isinstance(runtime.listener, LocalListener)
    runtime.listener.start()
    try:
        woken.clear()
        with sqlite_sessions.begin() as session:  # another engine, as the web app's is
            store.enqueue(session, kind="reply", payload={}, team_id="T1")
        assert woken.is_set()
    finally:
        runtime.listener.stop()
        runtime.engine.dispose()
