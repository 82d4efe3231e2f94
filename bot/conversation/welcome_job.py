"""The `welcome` job: suggested prompts in the agent messages tab."""

from __future__ import annotations

from dataclasses import dataclass

from bot.queue.context import JobContext
from bot.queue.job_type import JobHandler, JobType, Payload
from bot.queue.models import INTERACTIVE
from bot.slack.clients import SlackClients
from bot.slack.manifest import SUGGESTED_PROMPTS

GREETING = "Hi! Ask me anything here, mention me in a channel, or attach a screenshot. For example:"


def greeting_text() -> str:
    return "\n".join([GREETING, *(f"• _{prompt['message']}_" for prompt in SUGGESTED_PROMPTS)])


@dataclass(frozen=True)
class WelcomePayload(Payload):
    """Where to greet: ``kind`` "home" (the messages tab, ``channel``) or "assistant_thread"
    (suggested prompts in ``thread_ts`` of ``channel``)."""

    kind: str
    channel: str
    thread_ts: str | None = None


class WelcomeJob(JobHandler):
    def __init__(self, slack: SlackClients):
        self.slack = slack

    def run(self, ctx: JobContext) -> None:
        payload: WelcomePayload = ctx.payload
        client = self.slack.for_team(ctx.job.team_id)
        ctx.checkpoint()
        if payload.kind == "assistant_thread":
            # Without thread_ts: with it, the call silently fails for agent apps (DESIGN-NOTES, Slack).
            client.assistant_threads_setSuggestedPrompts(
                channel_id=payload.channel,
                title="Try asking",
                prompts=[dict(prompt) for prompt in SUGGESTED_PROMPTS],
            )
        else:
            client.chat_postMessage(channel=payload.channel, text=greeting_text())


WELCOME = JobType("welcome", WelcomePayload, WelcomeJob, lane=INTERACTIVE, max_attempts=3)
