"""Moderation tables: per-channel switches and the audit trail of every decision."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import BigIntId, JsonDocument, UTCDateTime


class ModerationChannel(Base):
    """`/moderation on|off` for one channel; overrides MODERATION_CHANNELS for it."""

    __tablename__ = "moderation_channels"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    changed_by: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModerationDecision(Base):
    """One moderated file: the verdict, what it cost, what the bot did and who overrode it.

    Holds no image bytes and no message text: the reason is the model's one sentence."""

    __tablename__ = "moderation_decisions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    message_ts: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))  # who posted the file
    file_id: Mapped[str] = mapped_column(String(32))
    file_name: Mapped[str] = mapped_column(String(255), default="")
    permalink: Mapped[str | None] = mapped_column(Text, nullable=True)
    verdict: Mapped[str] = mapped_column(String(16))  # allow | flag | remove
    categories: Mapped[list] = mapped_column(JsonDocument)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)  # None: no model judged it
    reason: Mapped[str] = mapped_column(Text, default="")
    model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    # What the bot did (bot.moderation.plan: none, reacted, reported, removed, warned, unreported).
    action: Mapped[str] = mapped_column(String(32))
    action_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    report_channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    report_ts: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The latest moderator click: dismiss | remove, by whom, when.
    override_action: Mapped[str | None] = mapped_column(String(16), nullable=True)
    overridden_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    overridden_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (UniqueConstraint("team_id", "file_id"),)


class ModerationSettings(Base):
    """A workspace's own report channel and admin user token (`/moderation report|token`).

    In OAuth mode these are the only ones used: MODERATION_REPORT_CHANNEL and
    SLACK_ADMIN_USER_TOKEN belong to one workspace and would send another's reports there."""

    __tablename__ = "moderation_settings"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    report_channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    admin_user_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    changed_by: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ModerationReportProblem(Base):
    """The workspace's report channel refused a report (``not_in_channel``, ``channel_not_found``,
    ``is_archived``): flagged once, shown by ``/moderation`` and ``bot check`` until a report goes
    through or another channel is set."""

    __tablename__ = "moderation_report_problems"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32))
    error: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
