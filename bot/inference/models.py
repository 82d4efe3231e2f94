"""What this provider refused, shared by every dyno: request arguments it said it does not
recognize (a 400 "unrecognized request argument supplied: stream_options", DESIGN-NOTES), so
a dyno that starts later leaves them out from its first call."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base


class RefusedArgument(Base):
    __tablename__ = "inference_refused_arguments"

    # The completions URL the refusal came from (another attachment may accept the argument).
    endpoint: Mapped[str] = mapped_column(String(512), primary_key=True)
    argument: Mapped[str] = mapped_column(String(128), primary_key=True)
    learned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
