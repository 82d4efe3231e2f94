"""Reading a thread to answer it: what the `reply` job sends the model.

Steps: backfill a thread joined mid-way (once), refresh unknown users' names, resolve the
attachments that can be sent, and rebuild the thread as entries within the context budget: the
summary of its older part, if any, then the newest rows that fit. A thread grown past the
budget asks (once at a time) for its summary to be written by a background job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.conversation import summary_store
from bot.conversation.summary import summary_entry, wants_summary
from bot.conversation.summary_job import SUMMARIZE, SummaryPayload
from bot.conversation.window import load_window, newest_rows
from bot.history import store as history
from bot.history.backfill import BotIdentity, first_page
from bot.history.backfill_job import BACKFILL, BackfillPayload
from bot.history.thread import ThreadEntry
from bot.history.users import refresh_users
from bot.slack.clients import without_rate_limit_retries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThreadRead:
    """A thread as the model will see it: ``entries`` (the summary first, if any), the asker's
    `slack_users` row (None if unknown) and ``file_notes``: what the person should hear about
    files that could not be sent this time."""

    entries: list[ThreadEntry]
    asker: Any
    file_notes: list[str]


class ThreadReader:
    """``resolve_attachments``: bot.history.attachments.AttachmentResolver (None: files are
    sent as the notes already stored)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Any,
        *,
        resolve_attachments: Callable[..., list[str] | None] | None = None,
    ):
        self.sessions = sessions
        self.settings = settings
        self.resolve_attachments = resolve_attachments
        self._identities: dict[str, BotIdentity] = {}

    def read(self, client: WebClient, *, team: str, user: str, channel: str, thread_ts: str) -> ThreadRead:
        """The thread ``thread_ts`` in ``channel`` as ``user`` asks about it."""
        self.backfill_first_page(client, team=team, channel=channel, thread_ts=thread_ts)
        budget = self.settings.context_budget_tokens
        with self.sessions() as session:
            # A long thread's older part is in its summary; the rows after it are read verbatim.
            summary = summary_store.get_summary(session, team, channel, thread_ts)
            after = summary.covers if summary else None
            # Only the newest rows the budget can hold, picked by the database from stored estimates.
            window = newest_rows(session, team, channel, thread_ts, budget_tokens=budget, after=after)
            user_ids = {row.user_id for row in window.rows if row.user_id and row.role == "user"}
            stale = history.stale_users(session, team, user_ids, datetime.now(UTC))
        refresh_users(client, self.sessions, team, stale)
        notes: list[str] = []
        prepared = False
        if self.resolve_attachments and any(row.files for row in window.rows):
            # Only the files that can be sent: the newest images up to the cap, documents that fit.
            prepared = True
            spent = sum(row.tokens + row.image_tokens for row in window.rows)
            notes = (
                self.resolve_attachments(
                    client,
                    team,
                    window.rows,
                    max_images=self.settings.max_images_per_request,
                    budget_tokens=max(0, budget - spent),
                )
                or []
            )
        with self.sessions() as session:
            entries, _ = load_window(
                session,
                team,
                channel,
                thread_ts,
                budget_tokens=budget,
                max_images=self.settings.max_images_per_request,
                after=after,
                window=None if prepared else window,  # estimates change when files are read
            )
            asker = history.get_user(session, team, user)
        if summary:
            entries.insert(0, summary_entry(summary))
        if wants_summary(window.total_tokens, budget):
            self.request_summary(team=team, user=user, channel=channel, thread_ts=thread_ts)
        return ThreadRead(entries, asker, notes)

    def backfill_first_page(self, client: WebClient, *, team: str, channel: str, thread_ts: str) -> None:
        """A thread joined mid-way: one page now (its start), the rest in the background; a
        throttled Slack never holds the answer (bot.history.backfill)."""

        def later(cursor: str | None, delay: float) -> None:
            with self.sessions.begin() as session:
                BACKFILL.enqueue(
                    session,
                    BackfillPayload(
                        channel=channel,
                        thread_ts=thread_ts,
                        cursor=cursor or "",
                        answer_other_bots=self.settings.answer_other_bots,
                    ),
                    team_id=team,
                    delay_seconds=delay,
                )

        first_page(
            without_rate_limit_retries(client),
            self.sessions,
            team=team,
            channel=channel,
            thread_ts=thread_ts,
            identity=lambda: self.identity(client, team),
            answer_other_bots=self.settings.answer_other_bots,
            later=later,
        )

    def request_summary(self, *, team: str, user: str, channel: str, thread_ts: str) -> None:
        """Once per thread at a time: a background job folds the older messages into the summary."""
        with self.sessions.begin() as session:
            if summary_store.request_summary(session, team, channel, thread_ts):
                SUMMARIZE.enqueue(
                    session,
                    SummaryPayload(channel=channel, thread_ts=thread_ts),
                    team_id=team,
                    user_id=user,
                    settings=self.settings,
                )
                log.info("summary requested channel=%s", channel)

    def identity(self, client: WebClient, team_id: str) -> BotIdentity:
        """The bot's own user and bot ids in a workspace (auth.test once per process)."""
        if team_id not in self._identities:
            response = client.auth_test()
            self._identities[team_id] = BotIdentity(response["user_id"], response.get("bot_id"))
        return self._identities[team_id]
