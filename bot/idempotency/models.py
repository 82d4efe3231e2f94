"""Keys that make inbound Slack deliveries idempotent across retries and dynos."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base
from bot.db.types import UTCDateTime


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # "event:<event_id>" or "message:<channel>:<ts>"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
