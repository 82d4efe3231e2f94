"""The ``backfill`` job: the rest of a thread the bot joined mid-way, read in the background.

The answer took the first page (bot.history.backfill.first_page); this job reads the pages
after ``cursor`` and stores them. Slack may allow one ``conversations.replies`` a minute here
(DESIGN-NOTES, Slack): a 429 reschedules the job after its Retry-After without using an
attempt, resuming at the page it had reached (kept in the job's progress). The client it uses
does not wait 429s out itself, so a worker thread never sleeps a minute on Slack. Pages ask for
REPLIES_PAGE messages until Slack shows it throttles this app (a 429, or a page capped below what
was asked): then FIRST_PAGE (15, Slack's maximum there).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.failures import RetryLater
from bot.history import store as history
from bot.history.backfill import FIRST_PAGE, REPLIES_PAGE, BotIdentity, next_page_size, store_page
from bot.limits.headers import retry_after_seconds
from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler, JobType, Payload
from bot.queue.models import BACKGROUND
from bot.slack.clients import SlackClients, without_rate_limit_retries

log = logging.getLogger(__name__)

DEFAULT_WAIT_SECONDS = 60.0  # Slack's throttled rate: one call a minute


@dataclass(frozen=True)
class BackfillPayload(Payload):
    channel: str
    thread_ts: str
    cursor: str = ""  # where the first page stopped ("" : from the start)
    answer_other_bots: bool = False


class SlackThrottled(RetryLater):
    """Slack answered 429: come back after its Retry-After, without using an attempt."""

    counts_attempt = False


class BackfillJob(JobHandler):
    def __init__(self, slack: SlackClients, sessions: sessionmaker[Session]):
        self.slack = slack
        self.sessions = sessions
        self._identities: dict[str, BotIdentity] = {}

    def run(self, ctx: JobContext) -> None:
        payload: BackfillPayload = ctx.payload
        team = ctx.job.team_id
        client = without_rate_limit_retries(self.slack.for_team(team))
        cursor = ctx.progress.get("cursor", payload.cursor) or None
        limit = int(ctx.progress.get("limit") or REPLIES_PAGE)
        pages = 0
        while True:
            ctx.checkpoint()
            try:
                page = store_page(
                    client,
                    self.sessions,
                    team=team,
                    channel=payload.channel,
                    thread_ts=payload.thread_ts,
                    me=self._identity(client, team),
                    answer_other_bots=payload.answer_other_bots,
                    cursor=cursor,
                    limit=limit,
                )
            except SlackApiError as error:
                if getattr(error.response, "status_code", 0) != 429:
                    raise
                wait = retry_after_seconds(error.response.headers or {}, time.time()) or DEFAULT_WAIT_SECONDS
                # Throttled: Slack gives 15 messages a call here, so ask for 15 from now on.
                ctx.save_progress(cursor=cursor or "", limit=FIRST_PAGE)
                log.info("backfill throttled channel=%s retry_after_s=%.0f pages=%d", payload.channel, wait, pages)
                raise SlackThrottled("conversations.replies is throttled", delay=wait) from error
            pages += 1
            if page.cursor is None:
                break
            limit = next_page_size(page.size, limit, True)
            cursor = page.cursor
            ctx.save_progress(cursor=cursor, limit=limit)
        with self.sessions.begin() as session:
            history.mark_backfilled(session, team, payload.channel, payload.thread_ts)
        log.info("thread backfilled channel=%s pages=%d (background)", payload.channel, pages)

    def _identity(self, client: WebClient, team: str) -> BotIdentity:
        if team not in self._identities:
            response = client.auth_test()
            self._identities[team] = BotIdentity(response["user_id"], response.get("bot_id"))
        return self._identities[team]


BACKFILL = JobType("backfill", BackfillPayload, BackfillJob, lane=BACKGROUND, max_attempts=5)
