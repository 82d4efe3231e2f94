"""Feedback rows: record a click (once per person and answer), count them for `bot stats`.

Every function works inside the caller's session and scopes by workspace; the caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.agent.feedback import NEGATIVE, POSITIVE, Trace
from bot.agent.models import AnswerFeedback
from bot.db.clock import db_now


def record_feedback(
    session: Session,
    *,
    team_id: str,
    channel_id: str,
    answer_ts: str,
    user_id: str,
    rating: str,
    trace: Trace,
    thread_ts: str = "",
) -> bool:
    """Store or change `user_id`'s rating of one answer. True when it was new."""
    if rating not in (POSITIVE, NEGATIVE):
        raise ValueError(f"unknown rating {rating!r}")
    now = db_now(session)
    row = session.execute(
        select(AnswerFeedback)
        .where(
            AnswerFeedback.team_id == team_id,
            AnswerFeedback.channel_id == channel_id,
            AnswerFeedback.answer_ts == answer_ts,
            AnswerFeedback.user_id == user_id,
        )
        .with_for_update()
    ).scalar_one_or_none()
    values = dict(
        thread_ts=thread_ts or trace.thread_ts,
        rating=rating,
        model=trace.model,
        prompt_tokens=trace.prompt_tokens,
        completion_tokens=trace.completion_tokens,
        tools=list(trace.tools),
        latency_ms=trace.latency_ms,
        attempts=trace.attempts,
        updated_at=now,
    )
    if row is not None:
        for key, value in values.items():
            setattr(row, key, value)
        return False
    session.add(
        AnswerFeedback(
            team_id=team_id, channel_id=channel_id, answer_ts=answer_ts, user_id=user_id, created_at=now, **values
        )
    )
    session.flush()
    return True


@dataclass(frozen=True)
class FeedbackCounts:
    positive: int = 0
    negative: int = 0


def feedback_counts(session: Session, *, since: datetime, team_id: str | None = None) -> FeedbackCounts:
    """Ratings given since `since` (by their latest change), for one workspace or all."""
    query = select(AnswerFeedback.rating, func.count()).where(AnswerFeedback.updated_at >= since)
    if team_id is not None:
        query = query.where(AnswerFeedback.team_id == team_id)
    counts = dict(session.execute(query.group_by(AnswerFeedback.rating)).all())
    return FeedbackCounts(positive=counts.get(POSITIVE, 0), negative=counts.get(NEGATIVE, 0))


def feedback_by_day(session: Session, *, since: datetime, team_id: str | None = None) -> dict[str, FeedbackCounts]:
    """{"YYYY-MM-DD" (UTC): counts} since `since`; days are counted in Python so SQLite and
    Postgres agree."""
    query = select(AnswerFeedback.rating, AnswerFeedback.updated_at).where(AnswerFeedback.updated_at >= since)
    if team_id is not None:
        query = query.where(AnswerFeedback.team_id == team_id)
    days: dict[str, list[int]] = {}
    for rating, when in session.execute(query):
        day = days.setdefault(when.date().isoformat(), [0, 0])
        day[0 if rating == POSITIVE else 1] += 1
    return {day: FeedbackCounts(*counts) for day, counts in sorted(days.items())}
