"""Stored thread summaries (see bot.conversation.summary): read, request once, save. The caller commits."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from bot.conversation.summary import Summary
from bot.db.clock import db_now
from bot.history.models import ThreadSummary

# A request older than this whose job did not finish (dead, or its budget spent) may be made again.
REQUEST_STALE_AFTER = timedelta(minutes=10)


def _key(team_id: str, channel_id: str, thread_ts: str):
    return (
        ThreadSummary.team_id == team_id,
        ThreadSummary.channel_id == channel_id,
        ThreadSummary.thread_ts == thread_ts,
    )


def get_summary(session: Session, team_id: str, channel_id: str, thread_ts: str) -> Summary | None:
    row = session.get(ThreadSummary, (team_id, channel_id, thread_ts))
    if row is None or not row.text:
        return None
    return Summary(row.text, (row.covers_ts, row.covers_seq), row.covered)


def request_summary(session: Session, team_id: str, channel_id: str, thread_ts: str) -> bool:
    """Mark the thread as wanting a summary. True if this call made the request (then enqueue the
    job in the same transaction); False if one is already pending."""
    now = db_now(session)
    row = session.get(ThreadSummary, (team_id, channel_id, thread_ts), with_for_update=True)
    if row is None:
        session.add(
            ThreadSummary(
                team_id=team_id,
                channel_id=channel_id,
                thread_ts=thread_ts,
                text="",
                covers_ts="",
                covers_seq=0,
                covered=0,
                requested_at=now,
                updated_at=now,
            )
        )
        session.flush()
        return True
    result = session.execute(
        update(ThreadSummary)
        .where(
            *_key(team_id, channel_id, thread_ts),
            or_(ThreadSummary.requested_at.is_(None), ThreadSummary.requested_at < now - REQUEST_STALE_AFTER),
        )
        .values(requested_at=now)
    )
    return result.rowcount > 0


def save_summary(
    session: Session, team_id: str, channel_id: str, thread_ts: str, summary: Summary, *, done: bool
) -> None:
    """Store the summary as extended so far; `done`: the request is fulfilled. Only over the row
    the request made: if it is gone, the thread was forgotten meanwhile and nothing is kept."""
    values: dict = dict(
        text=summary.text, covers_ts=summary.covers[0], covers_seq=summary.covers[1], covered=summary.covered
    )
    values["updated_at"] = db_now(session)
    if done:
        values["requested_at"] = None
    session.execute(update(ThreadSummary).where(*_key(team_id, channel_id, thread_ts)).values(**values))


def finish_request(session: Session, team_id: str, channel_id: str, thread_ts: str) -> None:
    session.execute(update(ThreadSummary).where(*_key(team_id, channel_id, thread_ts)).values(requested_at=None))


def delete_summary(session: Session, team_id: str, channel_id: str, thread_ts: str) -> None:
    session.execute(delete(ThreadSummary).where(*_key(team_id, channel_id, thread_ts)))


def summary_row(session: Session, team_id: str, channel_id: str, thread_ts: str) -> ThreadSummary | None:
    return session.execute(select(ThreadSummary).where(*_key(team_id, channel_id, thread_ts))).scalar_one_or_none()


__all__ = ["delete_summary", "finish_request", "get_summary", "request_summary", "save_summary"]
