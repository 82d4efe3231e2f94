"""Database side of the limiter: a lock row per attachment, one row per call in its log."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, Float, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import BigIntId


class RateLimiterState(Base):
    """One row per attachment, locked (FOR UPDATE) by every booking on it, so bookings are
    serialized across dynos (bot.limits.admission)."""

    __tablename__ = "rate_limiter_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Set after a 429, a 5xx or no answer: nothing is sent to it until then (epoch seconds, database clock).
    paused_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class RateReservation(Base):
    """One call in an attachment's log (bot.limits.slots.Call): booked, sent, answered."""

    __tablename__ = "rate_reservations"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    limiter: Mapped[str] = mapped_column(String(64))  # the attachment
    admitted_at: Mapped[float] = mapped_column(Float)  # when it was booked (epoch seconds, database clock)
    slot: Mapped[float] = mapped_column(Float)  # when it may go
    sent_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # when it went out
    tokens: Mapped[int] = mapped_column(Integer)  # its estimate as counted (the prompt part calibrated)
    reconciled: Mapped[bool] = mapped_column(default=False)
    used_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)  # reported usage, once answered
    # The raw prompt estimate and the prompt tokens the provider reported (they calibrate later
    # estimates: bot.limits.calibration), and the output cap (max_tokens): with the reported
    # prompt, the most the provider can charge for the call.
    prompt_estimate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prompt_used: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answered_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # database clock
    refused: Mapped[bool] = mapped_column(default=False, server_default=false())  # a 429: not counted by the provider
    # The answer's x-ratelimit-remaining-requests / -tokens (the provider's view at its arrival).
    view_requests: Mapped[int | None] = mapped_column(Integer, nullable=True)
    view_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (Index("ix_rate_reservations_limiter_slot", "limiter", "slot"),)


class TokenUsage(Base):
    """Tokens the model reported, per team, user and UTC day."""

    __tablename__ = "token_usage"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)


class ChannelTokenUsage(Base):
    """Tokens the model reported for answers in a channel, per UTC day (channel budgets, #25)."""

    __tablename__ = "channel_token_usage"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)
