"""The `queue_full` job: one person already has BOT_MAX_QUEUED_PER_USER requests waiting, so
their new mention is not queued for the model; it gets this one message instead, saying why
(no model call). Everyone else's requests keep their place (issue 22)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler, JobType, Payload
from bot.queue.models import INTERACTIVE
from bot.slack.clients import SlackClients

QUEUE_FULL_TEXT = (
    "<@{user}>, you already have {waiting} requests waiting for me, the most one person can have, "
    "so I did not queue this one. Please ask again once some of them are answered."
)


@dataclass(frozen=True)
class QueueFullPayload(Payload):
    channel: str
    thread_ts: str
    user: str
    waiting: int


class QueueFullJob(JobHandler):
    def __init__(self, slack: SlackClients):
        self.slack = slack

    def run(self, ctx: JobContext) -> None:
        payload: QueueFullPayload = ctx.payload
        ctx.checkpoint()
        self.slack.for_team(ctx.job.team_id).chat_postMessage(
            channel=payload.channel,
            thread_ts=payload.thread_ts,
            text=QUEUE_FULL_TEXT.format(user=payload.user, waiting=payload.waiting),
        )


QUEUE_FULL = JobType("queue_full", QueueFullPayload, QueueFullJob, lane=INTERACTIVE, max_attempts=3)
