"""The `feedback_thanks` job: tell the person who clicked 👍/👎 that it was kept (ephemeral)."""

from __future__ import annotations

from bot.queue.worker import JobContext
from bot.slack.clients import SlackClients

THANKS = {"positive": "Thanks for the feedback! 👍", "negative": "Thanks: noted, I'll try to do better. 👎"}


class FeedbackThanksJob:
    def __init__(self, slack: SlackClients):
        self.slack = slack

    def run(self, ctx: JobContext) -> None:
        payload = ctx.job.payload
        ctx.checkpoint()
        self.slack.for_team(ctx.job.team_id).chat_postEphemeral(
            channel=payload["channel"],
            user=payload["user"],
            thread_ts=payload.get("thread_ts") or None,
            text=THANKS.get(payload.get("rating", ""), THANKS["positive"]),
        )
