"""The `feedback_thanks` job: tell the person who clicked 👍/👎 that it was kept (ephemeral)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler, JobType, Payload
from bot.queue.models import INTERACTIVE
from bot.slack.clients import SlackClients

THANKS = {"positive": "Thanks for the feedback! 👍", "negative": "Thanks: noted, I'll try to do better. 👎"}


@dataclass(frozen=True)
class FeedbackThanksPayload(Payload):
    channel: str
    user: str
    thread_ts: str | None = None
    rating: str = ""


class FeedbackThanksJob(JobHandler):
    def __init__(self, slack: SlackClients):
        self.slack = slack

    def run(self, ctx: JobContext) -> None:
        payload: FeedbackThanksPayload = ctx.payload
        ctx.checkpoint()
        self.slack.for_team(ctx.job.team_id).chat_postEphemeral(
            channel=payload.channel,
            user=payload.user,
            thread_ts=payload.thread_ts or None,
            text=THANKS.get(payload.rating, THANKS["positive"]),
        )


FEEDBACK_THANKS = JobType("feedback_thanks", FeedbackThanksPayload, FeedbackThanksJob, lane=INTERACTIVE, max_attempts=3)
