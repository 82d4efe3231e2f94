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


def test_mcp_tools_the_workers_found_can_be_named_in_the_web_process(sessions):
    from datetime import UTC, datetime

    from bot.builtin_tools import default_registry
    from bot.channel_settings.command_job import choices_for
    from bot.channel_settings.names import parse_value
    from bot.mcp.status import McpServerStatus

    with sessions.begin() as session:
        session.add(
            McpServerStatus(
                name="docs",
                status="up",
                detail="",
                tools=[{"name": "docs__search", "needs_approval": False}],
                checked_at=datetime.now(UTC),
            )
        )
    choices = choices_for(default_registry(None), Settings(), sessions)
    assert "docs__search" in choices.tool_names and "calculate" in choices.tool_names
    assert parse_value("tools", "docs__search, calc", choices) == "calculate,docs__search"


def test_retention_purges_old_changes_and_an_uninstall_everything(sessions):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, update

    from bot.channel_settings.models import ChannelSetting
    from bot.limits.budgets import record_channel_usage
    from bot.limits.models import ChannelTokenUsage
    from bot.retention.policy import cutoffs
    from bot.retention.purge import forget_workspace, purge_expired

    with sessions.begin() as session:
        store.set_value(session, "T1", "C1", "tools", "calculate", user_id="U1")
        store.set_value(session, "T1", "C1", "budget", "1000", user_id="U1")
        store.set_value(session, "T2", "C1", "tools", "none", user_id="U9")
        record_channel_usage(session, team_id="T1", channel_id="C1", tokens=50)
    with sessions.begin() as session:
        session.execute(
            update(ChannelSettingChange)
            .where(ChannelSettingChange.name == "tools")
            .values(changed_at=datetime.now(UTC) - timedelta(days=40))
        )
        purge_expired(session, cutoffs(datetime.now(UTC), 30), batch_size=100)

    def count(model, *where) -> int:
        with sessions() as session:
            return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()

    assert count(ChannelSettingChange) == 1  # the budget's change is recent; both old ones went
    assert count(ChannelSetting) == 3  # values stay while they are set
    assert count(ChannelTokenUsage) == 1  # today's usage stays
    while True:
        with sessions.begin() as session:
            if forget_workspace(session, "T1", batch_size=10) == 0:
                break
    assert count(ChannelSetting, ChannelSetting.team_id == "T1") == 0
    assert count(ChannelSettingChange, ChannelSettingChange.team_id == "T1") == 0
    assert count(ChannelTokenUsage) == 0
    assert count(ChannelSetting, ChannelSetting.team_id == "T2") == 1  # another workspace's stay
