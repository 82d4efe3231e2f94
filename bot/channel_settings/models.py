"""The settings table (one row per value set) and its history of changes, scoped by workspace."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import BigIntId, UTCDateTime

# The channel id of a workspace default: every real channel id is non-empty.
WORKSPACE = ""


class ChannelSetting(Base):
    """One setting's own value in a channel (or, with channel_id WORKSPACE, the workspace's default).
    A setting without a row inherits: the channel from the workspace, the workspace from the app."""

    __tablename__ = "channel_settings"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ChannelSettingChange(Base):
    """Who changed what, when: old → new (None: inherited). Purged with RETENTION_DAYS."""

    __tablename__ = "channel_setting_changes"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    new_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    changed_by: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (Index("ix_channel_setting_changes_place", "team_id", "channel_id", "id"),)
