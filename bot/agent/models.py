"""Tables of the agent surface: people's feedback on answers, and Stop requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import BigIntId, JsonDocument, UTCDateTime


class AnswerFeedback(Base):
    """One person's 👍/👎 on one answer, with the answer's trace. A second click changes it.

    Holds no message text: ids, the rating and numbers only."""

    __tablename__ = "answer_feedback"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32), default="")
    answer_ts: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    rating: Mapped[str] = mapped_column(String(16))  # positive | negative
    model: Mapped[str] = mapped_column(String(100), default="")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    tools: Mapped[list] = mapped_column(JsonDocument)  # names of the tools called, in order
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "answer_ts", "user_id"),
        Index("ix_answer_feedback_team_id_updated_at", "team_id", "updated_at"),
    )


class StopRequest(Base):
    """Someone pressed Stop on a thread's agent session: work on that thread begun before
    `requested_at` ends, whichever process runs it."""

    __tablename__ = "stop_requests"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    team_id: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32), default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_stop_requests_thread", "team_id", "channel_id", "thread_ts"),)
