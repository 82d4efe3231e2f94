"""The `feedback_thanks` job: tell the person who clicked 👍/👎 that it was kept (ephemeral)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler, JobType, Payload
from bot.queue.models import INTERACTIVE
from bot.slack.clients import SlackClients

if TYPE_CHECKING:
    from bot.runtime import WorkerParts

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

    @classmethod
    def from_parts(cls, parts: WorkerParts) -> FeedbackThanksJob:
        return cls(parts.slack)

    def run(self, ctx: JobContext) -> None:
        payload = ctx.job.payload
        ctx.checkpoint()
        self.slack.for_team(ctx.job.team_id).chat_postEphemeral(
            channel=payload["channel"],
            user=payload["user"],
            thread_ts=payload.get("thread_ts") or None,
            text=THANKS.get(payload.get("rating", ""), THANKS["positive"]),
        )


FEEDBACK_THANKS = JobType("feedback_thanks", FeedbackThanksPayload, FeedbackThanksJob, lane=INTERACTIVE, max_attempts=3)
