"""The settings store and the worker's cache, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from bot.channel_settings import store
from bot.channel_settings.models import ChannelSettingChange
from bot.channel_settings.reader import SettingsReader
from bot.config import Settings


def test_the_reader_keeps_a_place_for_a_few_seconds_only(sessions):
    now = [0.0]
    reader = SettingsReader(sessions, Settings(), ttl=3.0, clock=lambda: now[0])
    assert reader.applied("T1", "C1").answer == "threads"
    with sessions.begin() as session:
        store.set_value(session, "T1", "C1", "answer", "mentions", user_id="U1")
    now[0] = 2.9
    assert reader.applied("T1", "C1").answer == "threads"  # cached
    now[0] = 3.0
    assert reader.applied("T1", "C1").answer == "mentions"
    assert reader.applied("T1", "D1").answer == "threads"  # a DM: the workspace defaults
    assert reader.applied("T2", "C1").answer == "threads"  # another workspace's channel


def test_every_change_is_recorded_and_a_repeat_is_not(sessions):
    with sessions.begin() as session:
        assert store.set_value(session, "T1", "C1", "tools", "calculate", user_id="U1") is not None
        assert store.set_value(session, "T1", "C1", "tools", "calculate", user_id="U2") is None
        assert store.set_value(session, "T1", "C1", "tools", None, user_id="U2") is not None
    with sessions() as session:
        rows = session.execute(select(ChannelSettingChange).order_by(ChannelSettingChange.id)).scalars().all()
        assert [(r.old_value, r.new_value, r.changed_by) for r in rows] == [
            (None, "calculate", "U1"),
            ("calculate", None, "U2"),
        ]
        assert store.values(session, "T1", ["C1"]) == {"C1": {}}
        assert store.last_change(session, "T1", "C1").changed_by == "U2"
