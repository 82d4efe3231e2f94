"""The `summarize_thread` job (background lane): write or extend a long thread's summary.

Reads the messages after the current summary, keeps the newest half of the context budget
verbatim, and folds the older ones into the summary, at most CHUNK_TOKENS of messages per model
call (each call through the gateway: limiter, budgets, a valid request with max_tokens 1024).
The summary is saved after every call, so a re-run continues where the last one stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.channel_settings.reader import SettingsReader
from bot.config import Settings
from bot.conversation import summary_store
from bot.conversation.summary import Summary, chunks, split_point, summary_request
from bot.conversation.window import ATTRIBUTION_ALLOWANCE, ROW_COLUMNS, thread_rows
from bot.failures import Permanent
from bot.history.models import MessageImage, ThreadMessage
from bot.history.store import entry_of, user_names
from bot.inference.gateway import CallContext, ModelGateway
from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler, JobType, Payload
from bot.queue.models import BACKGROUND

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SummaryPayload(Payload):
    """The thread to summarize: ``thread_ts`` in ``channel`` (the team is the job's)."""

    channel: str
    thread_ts: str


class SummaryJob(JobHandler):
    def __init__(self, gateway: ModelGateway, sessions: sessionmaker[Session], settings: Settings):
        self.gateway = gateway
        self.sessions = sessions
        self.settings = settings
        self.rules = SettingsReader(sessions, settings)  # the channel's `model` setting

    def run(self, ctx: JobContext) -> None:
        job = ctx.job
        payload: SummaryPayload = ctx.payload
        team, channel, thread_ts = job.team_id, payload.channel, payload.thread_ts
        with self.sessions() as session:
            current = summary_store.get_summary(session, team, channel, thread_ts)
            # Sizes only: the text of the rows is read part by part below, never all at once.
            rows = _sizes_after(session, team, channel, thread_ts, current.covers if current else None)
        point = split_point(
            [(row.ts, row.seq, row.tokens + row.image_tokens + ATTRIBUTION_ALLOWANCE) for row in rows],
            self.settings.context_budget_tokens,
        )
        if point == 0:
            with self.sessions.begin() as session:
                summary_store.finish_request(session, team, channel, thread_ts)
            return
        older = rows[:point]
        ranges = chunks([row.tokens + ATTRIBUTION_ALLOWANCE for row in older])
        # The channel's model summarizes its threads; else BOT_SUMMARY_MODEL's route, or the default.
        model = self.rules.applied(team, channel).model or self.settings.model_for("summary")
        for number, (start, end) in enumerate(ranges, start=1):
            part = older[start:end]
            with self.sessions() as session:
                entries = _entries(session, team, _rows(session, [row.id for row in part]))
            body = summary_request(current.text if current else None, entries)
            call = CallContext(
                team_id=team,
                user_id=job.user_id,
                should_stop=ctx.should_stop,
                model=model,
            )
            try:
                completion = self.gateway.call(body, call)
            except Permanent as exc:  # a spent budget, a rejected request: retrying cannot help
                # The thread keeps its first message and a note until a later request succeeds.
                log.warning("summary not written channel=%s reason=%s", channel, type(exc).__name__)
                return
            text = (completion.content or "").strip()
            if not text:
                log.warning("summary empty channel=%s part=%d", channel, number)
                return
            current = Summary(text, (part[-1].ts, part[-1].seq), (current.covered if current else 0) + len(part))
            ctx.checkpoint()
            with self.sessions.begin() as session:
                summary_store.save_summary(session, team, channel, thread_ts, current, done=number == len(ranges))
            log.info("summary saved channel=%s part=%d/%d messages=%d", channel, number, len(ranges), current.covered)


SUMMARIZE = JobType("summarize_thread", SummaryPayload, SummaryJob, lane=BACKGROUND)


def _sizes_after(session: Session, team: str, channel: str, thread_ts: str, after: tuple[str, int] | None) -> list:
    """(id, ts, seq, tokens, image_tokens) of the rows after the summary: what the split needs."""
    return list(
        session.execute(
            select(
                ThreadMessage.id, ThreadMessage.ts, ThreadMessage.seq, ThreadMessage.tokens, ThreadMessage.image_tokens
            )
            .where(*thread_rows(team, channel, thread_ts, after))
            .order_by(ThreadMessage.ts, ThreadMessage.seq)
        ).all()
    )


def _rows(session: Session, ids: list[int]) -> list:
    """One part's rows, whole, in thread order."""
    return list(
        session.execute(
            select(*ROW_COLUMNS).where(ThreadMessage.id.in_(ids)).order_by(ThreadMessage.ts, ThreadMessage.seq)
        ).all()
    )


def _entries(session: Session, team: str, rows: list) -> list:
    """The rows as entries, with documents' text and image names (no image bytes)."""
    ids = [row.id for row in rows if row.files and row.role == "user"]
    attachments: dict[int, list] = {}
    if ids:
        for attachment in session.execute(
            select(
                MessageImage.id,
                MessageImage.message_id,
                MessageImage.file_id,
                MessageImage.media_type,
                MessageImage.width,
                MessageImage.height,
                MessageImage.problem,
                MessageImage.text,
                MessageImage.data.is_(None).label("no_data"),
            ).where(MessageImage.message_id.in_(ids))
        ):
            attachments.setdefault(attachment.message_id, []).append(attachment)
    names = user_names(session, team, {row.user_id for row in rows if row.user_id})
    return [entry_of(row, attachments.get(row.id, []), names) for row in rows]


__all__ = ["SUMMARIZE", "SummaryJob", "SummaryPayload"]
