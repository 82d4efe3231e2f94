"""Reading and changing settings; every change is recorded (who, when, old → new). Callers commit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channel_settings.models import WORKSPACE, ChannelSetting, ChannelSettingChange
from bot.channel_settings.resolve import Stored
from bot.db.clock import db_now


@dataclass(frozen=True)
class Change:
    channel_id: str
    name: str
    old_value: str | None
    new_value: str | None
    changed_by: str
    changed_at: datetime


def values(session: Session, team_id: str, channel_ids: Iterable[str]) -> dict[str, dict[str, Stored]]:
    """{channel id: {name: Stored}} of the given places (WORKSPACE for the defaults)."""
    wanted = sorted(set(channel_ids))
    found: dict[str, dict[str, Stored]] = {channel: {} for channel in wanted}
    rows = session.execute(
        select(ChannelSetting).where(ChannelSetting.team_id == team_id, ChannelSetting.channel_id.in_(wanted))
    ).scalars()
    for row in rows:
        found[row.channel_id][row.name] = Stored(row.value, row.changed_by, row.changed_at)
    return found


def set_value(
    session: Session, team_id: str, channel_id: str, name: str, value: str | None, *, user_id: str
) -> Change | None:
    """Store ``value`` (None: remove the place's own value) and record the change; None when
    nothing changed."""
    row = session.get(ChannelSetting, (team_id, channel_id, name), with_for_update=True)
    old = row.value if row is not None else None
    if old == value:
        return None
    now = db_now(session)
    if value is None:
        session.delete(row)
    elif row is None:
        session.add(
            ChannelSetting(
                team_id=team_id, channel_id=channel_id, name=name, value=value, changed_by=user_id, changed_at=now
            )
        )
    else:
        row.value, row.changed_by, row.changed_at = value, user_id, now
    session.add(
        ChannelSettingChange(
            team_id=team_id,
            channel_id=channel_id,
            name=name,
            old_value=old,
            new_value=value,
            changed_by=user_id,
            changed_at=now,
        )
    )
    return Change(channel_id, name, old, value, user_id, now)


def last_change(session: Session, team_id: str, channel_id: str) -> Change | None:
    row = session.execute(
        select(ChannelSettingChange)
        .where(ChannelSettingChange.team_id == team_id, ChannelSettingChange.channel_id == channel_id)
        .order_by(ChannelSettingChange.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        return None
    return Change(row.channel_id, row.name, row.old_value, row.new_value, row.changed_by, row.changed_at)


def channels_with_settings(session: Session, team_id: str, *, limit: int = 100) -> list[str]:
    """The channels that have values of their own (not the workspace defaults), sorted."""
    return list(
        session.execute(
            select(ChannelSetting.channel_id)
            .where(ChannelSetting.team_id == team_id, ChannelSetting.channel_id != WORKSPACE)
            .distinct()
            .order_by(ChannelSetting.channel_id)
            .limit(limit)
        ).scalars()
    )
