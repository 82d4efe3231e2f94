"""Database side of the global rate window: one lock row, one row per admitted call."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, Float, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import BigIntId


class RateLimiterState(Base):
    """Locked (FOR UPDATE) by every admission, so admissions are serialized across dynos."""

    __tablename__ = "rate_limiter_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Set after a 429: the whole pool waits until then (epoch seconds, database clock).
    paused_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The server's view (x-ratelimit-* headers) as a difference to ours, valid until
    # correction_until; correction_seen_at is the admission time the view belongs to, so an
    # older view never replaces a newer one (bot.limits.server_view).
    correction_requests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    correction_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    correction_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    correction_seen_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The estimates of the reservations that view covered: a credit leaves with them.
    correction_seen_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    correction_taken_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # when it was compared
    correction_external_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The largest request difference of the recent views, held until its own reset.
    correction_held_requests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    correction_held_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class RateReservation(Base):
    __tablename__ = "rate_reservations"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    limiter: Mapped[str] = mapped_column(String(64))
    admitted_at: Mapped[float] = mapped_column(Float)  # epoch seconds, database clock
    tokens: Mapped[int] = mapped_column(Integer)  # what the call counts: the estimate, its prompt part scaled
    reconciled: Mapped[bool] = mapped_column(default=False)
    used_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)  # reported usage, once returned
    # The raw prompt estimate and the prompt tokens the server reported: they calibrate the
    # next calls' estimates (bot.limits.calibration).
    prompt_estimate: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prompt_used: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The output cap (max_tokens): with prompt_used, the most the server can charge for the call.
    output_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    answered_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # database clock
    sent_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # when the request went out, once answered
    refused: Mapped[bool] = mapped_column(default=False, server_default=false())  # a 429: not counted by the server

    __table_args__ = (Index("ix_rate_reservations_limiter_admitted_at", "limiter", "admitted_at"),)


class RateWaiter(Base):
    """A call waiting in line for admission; the line is served in fair order (window.schedule).
    A row whose process died stops counting at expires_at (the waiter refreshes it)."""

    __tablename__ = "rate_waiters"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    limiter: Mapped[str] = mapped_column(String(64))
    lane: Mapped[str] = mapped_column(String(16))
    tokens: Mapped[int] = mapped_column(Integer)  # the raw estimate
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # its prompt part
    since: Mapped[float] = mapped_column(Float)  # epoch seconds, database clock
    expires_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_rate_waiters_limiter", "limiter"),)


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
